package chsink

import (
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/store"
)

// TestRecentBound: the rows kept stay within the byte bound, the least
// recently written go first, a row too large for the bound is not kept,
// and a lower version never replaces a higher one (as ReplacingMergeTree).
func TestRecentBound(t *testing.T) {
	row := func(id string, size int, version uint64) store.ChangeRow {
		return store.ChangeRow{ChangeID: id, Record: strings.Repeat("x", size), Version: version}
	}
	// Each row of 744 record bytes and a 1-byte id costs 1,001 bytes.
	c := newRecent(3000)
	c.put([]store.ChangeRow{row("a", 744, 1), row("b", 744, 1), row("c", 744, 1)})
	if c.bytes != 2*1001 { // three would be 3,003, over the bound: one goes
		t.Fatalf("bytes %d, want 2002", c.bytes)
	}
	if _, ok := c.get("a"); ok {
		t.Errorf("a, written first, is still kept past the bound")
	}
	for _, id := range []string{"b", "c"} {
		if _, ok := c.get(id); !ok {
			t.Errorf("%s is not kept", id)
		}
	}
	c.put([]store.ChangeRow{row("b", 10, 0)}) // an older version of b
	if r, _ := c.get("b"); r.Version != 1 || len(r.Record) != 744 {
		t.Errorf("b replaced by a lower version: %d, %d bytes", r.Version, len(r.Record))
	}
	c.put([]store.ChangeRow{row("b", 10, 2)})
	if r, _ := c.get("b"); r.Version != 2 || c.bytes != 1001+267 {
		t.Errorf("b at version %d, bytes %d; want 2 and 1268", r.Version, c.bytes)
	}
	c.put([]store.ChangeRow{row("huge", 5000, 1)})
	if _, ok := c.get("huge"); ok {
		t.Errorf("a row over the whole bound is kept")
	}
	var none *recent
	none.put([]store.ChangeRow{row("a", 1, 1)})
	if _, ok := none.get("a"); ok {
		t.Errorf("a nil cache keeps rows")
	}
}
