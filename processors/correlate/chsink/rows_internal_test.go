package chsink

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
)

// TestRowsEncodedSame checks that the rows PutEncoded writes, given the
// stage's encoding (Record.Canonical, Record.Hash), are Put's, for the
// records of every correlator scenario.
func TestRowsEncodedSame(t *testing.T) {
	dirs, err := os.ReadDir("../testdata/scenarios")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	n := 0
	for _, d := range dirs {
		events := correlatetest.Events(t, filepath.Join("../testdata/scenarios", d.Name(), "events.json"), 0)
		for _, r := range correlatetest.State(t, events...).Records() {
			c1, d1, err1 := Rows(r, now)
			c2, d2, err2 := rows(r, r.Canonical(), r.Hash(), now)
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if !reflect.DeepEqual(c1, c2) || !reflect.DeepEqual(d1, d2) {
				t.Fatalf("%s: record %s: rows differ:\n%+v\n%+v", d.Name(), r.ID, c1, c2)
			}
			n += 1 + len(d1)
		}
	}
	if n == 0 {
		t.Fatal("no rows")
	}
	t.Logf("%d rows", n)
}
