package evaluate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
)

// TestGoldenRecords evaluates the correlation stage's golden records: every
// control answers with a valid result.
func TestGoldenRecords(t *testing.T) {
	e := engine(t)
	files, _ := filepath.Glob("../correlate/testdata/scenarios/*/record.golden.json")
	if len(files) == 0 {
		t.Fatal("no golden records in ../correlate/testdata/scenarios: they are part of the repository")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var recs []correlate.Record
		if err := json.Unmarshal(b, &recs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, r := range recs {
			res, err := e.Evaluate(context.Background(), r, time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC), Params{})
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(res) != 8 {
				t.Fatalf("%s: %d results", f, len(res))
			}
			for _, x := range res {
				t.Logf("%s %s %s %s %q", filepath.Base(filepath.Dir(f)), r.ID, x.Control.ID, x.Status, x.Reasons)
			}
		}
	}
}

var testEngine *Engine

func engine(tb testing.TB) *Engine {
	tb.Helper()
	if testEngine == nil {
		e, err := New(context.Background())
		if err != nil {
			tb.Fatal(err)
		}
		testEngine = e
	}
	return testEngine
}
