package evaluate

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/processors/correlate"
)

var update = flag.Bool("update", false, "rewrite testdata/golden_verdicts.txt from the engine (review the diff it prints)")

// goldenVerdicts holds the expected verdict of every control on every
// golden record of the correlation stage, each checked by hand against
// the scenario's events (the header of the file says how).
const goldenVerdicts = "testdata/golden_verdicts.txt"

// goldenAt is when the golden records are judged.
var goldenAt = time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)

// TestGoldenRecords judges the correlation stage's golden records
// (../correlate/testdata/scenarios/*/record.golden.json, and
// checkpoint.golden.json: the records before the rest of the evidence
// arrived) as of goldenAt
// with the default params, and compares every control's status and
// reasons with testdata/golden_verdicts.txt. A difference fails with the
// diff; -update rewrites the file and prints the diff, which must be
// reviewed against the scenario's events before it is committed: the
// file is the hand-checked expectation, not a snapshot.
func TestGoldenRecords(t *testing.T) {
	e := engine(t)
	files, _ := filepath.Glob("../correlate/testdata/scenarios/*/*.golden.json")
	if len(files) == 0 {
		t.Fatal("no golden records in ../correlate/testdata/scenarios: they are part of the repository")
	}
	var got strings.Builder
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var recs []correlate.Record
		if err := json.Unmarshal(b, &recs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		scenario := filepath.Base(filepath.Dir(f))
		if strings.HasPrefix(filepath.Base(f), "checkpoint.") {
			scenario += " (checkpoint)"
		}
		for _, r := range recs {
			res, err := e.Evaluate(context.Background(), r, goldenAt, Params{})
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(res) != 8 {
				t.Fatalf("%s: %s: %d results, want 8", scenario, r.ID, len(res))
			}
			fmt.Fprintf(&got, "\n== %s %s\n", scenario, r.ID)
			for _, x := range res {
				fmt.Fprintf(&got, "%s %s\n", x.Control.ID, x.Status)
				for _, reason := range x.Reasons {
					fmt.Fprintf(&got, "  %s\n", reason)
				}
			}
		}
	}
	want, err := os.ReadFile(goldenVerdicts)
	if err != nil && !*update {
		t.Fatalf("%v (run with -update to write it, then check every verdict by hand)", err)
	}
	header, body := splitHeader(string(want))
	if body == got.String() {
		return
	}
	diff := cmp.Diff(strings.Split(body, "\n"), strings.Split(got.String(), "\n"))
	if !*update {
		t.Fatalf("verdicts differ from %s (-want +got); if the change is right, run with -update and review every changed verdict against its scenario:\n%s", goldenVerdicts, diff)
	}
	if header == "" {
		header = "# Expected verdicts of the golden change records. Check each by hand.\n"
	}
	if err := os.WriteFile(goldenVerdicts, []byte(header+got.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("rewrote %s (-old +new); review every changed verdict:\n%s", goldenVerdicts, diff)
}

// splitHeader splits the golden file into its header (the comment lines
// before the first record) and the verdicts.
func splitHeader(s string) (header, body string) {
	i := strings.Index(s, "\n== ")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
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
