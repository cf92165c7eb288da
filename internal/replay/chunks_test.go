package replay

import (
	"slices"
	"strings"
	"testing"
)

// TestChunks: the ids bound into one query stay under the bound (each id
// counted with its quotes and separator), none is lost or repeated, order
// is kept, and an id longer than the bound still goes, alone.
func TestChunks(t *testing.T) {
	long := strings.Repeat("x", 50)
	ids := []string{"a", "bb", "ccc", long, "d", "e"}
	got := chunks(ids, 12)
	// Hand-worked with 4 bytes of quoting each: a(5) bb(6) = 11, ccc(7)
	// alone, the long id alone, d(5) e(5) = 10.
	want := [][]string{{"a", "bb"}, {"ccc"}, {long}, {"d", "e"}}
	if len(got) != len(want) {
		t.Fatalf("chunks = %q, want %q", got, want)
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Fatalf("chunk %d = %q, want %q", i, got[i], want[i])
		}
	}
	if got := chunks(nil, 12); len(got) != 0 {
		t.Errorf("chunks of nothing = %q, want none", got)
	}
	var flat []string
	many := make([]string, 10000)
	for i := range many {
		many[i] = strings.Repeat("e", i%97+1)
	}
	for _, c := range chunks(many, maxQueryIDs) {
		size := 0
		for _, id := range c {
			size += len(id) + 4
		}
		if size > maxQueryIDs {
			t.Fatalf("a chunk of %d bytes, over %d", size, maxQueryIDs)
		}
		flat = append(flat, c...)
	}
	if !slices.Equal(flat, many) {
		t.Errorf("the chunks lost, repeated or reordered ids")
	}
}
