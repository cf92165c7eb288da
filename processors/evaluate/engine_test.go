package evaluate

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
)

// TestJSONPathMatchesEngine: judging a record from its stored JSON (what
// evidence policy replay does, with policies.NormalizeRecord and the
// default params of policies) gives the Engine's results, for the
// correlation stage's golden records and the table tests' compliant one.
func TestJSONPathMatchesEngine(t *testing.T) {
	// The JSON path gets the defaults spelled out; the Engine zero params,
	// which take the defaults.
	b, _ := json.Marshal(policies.DefaultParams().Input())
	recs := []correlate.Record{compliant()}
	files, _ := filepath.Glob("../correlate/testdata/scenarios/*/record.golden.json")
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rs []correlate.Record
		if err := json.Unmarshal(raw, &rs); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		recs = append(recs, rs...)
	}
	if len(recs) < 5 {
		t.Fatalf("%d records, want the golden ones too", len(recs))
	}
	e := engine(t)
	params, _ := policies.ParseJSON(b)
	ctx := context.Background()
	for _, r := range recs {
		for _, at := range []time.Time{deployAt.Add(10 * time.Minute), later, time.Date(2025, 4, 1, 0, 0, 0, 0, time.UTC)} {
			want, err := e.Evaluate(ctx, r, at, Params{})
			if err != nil {
				t.Fatal(err)
			}
			norm, err := policies.NormalizeRecord(r.Canonical())
			if err != nil {
				t.Fatal(err)
			}
			rv, err := policies.ParseJSON(norm)
			if err != nil {
				t.Fatal(err)
			}
			xs, err := policies.Exceptions(r.Canonical())
			if err != nil {
				t.Fatal(err)
			}
			got, err := e.Bundle().Eval(ctx, policies.Input(rv, at, params), xs, at)
			if err != nil {
				t.Fatal(err)
			}
			for i := range want {
				w, g := want[i], got[i]
				if w.Control.ID != g.Control.ID || w.Status != g.Status || !reflect.DeepEqual(w.Reasons, g.Reasons) ||
					!reflect.DeepEqual(w.Evidence, g.Evidence) || w.Exception != g.Exception || !reflect.DeepEqual(w.Deadline, g.Deadline) {
					t.Fatalf("%s at %s, %s: engine %s %q, JSON path %s %q", r.ID, at, w.Control.ID, w.Status, w.Reasons, g.Status, g.Reasons)
				}
			}
		}
	}
}

// TestConcurrentEvaluationsShareTheParsedRecord: evaluations of the same
// record at once (the parsed input is shared from the cache) agree.
func TestConcurrentEvaluationsShareTheParsedRecord(t *testing.T) {
	e, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := compliant()
	r.Tests = nil // CM-4 fails: not every result is a pass
	want, err := e.Evaluate(context.Background(), r, later, Params{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := e.Evaluate(context.Background(), r, later, Params{})
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Errorf("concurrent evaluation differs: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if want[3].Control.ID != "CM-4" || want[3].Status != Fail {
		t.Fatalf("CM-4: %+v", want[3])
	}
}

// BenchmarkEvaluateDistinct judges a different record each time (its id
// changes), so that no parsed input is reused: the throughput of the
// evaluation stage, where records change, rather than of the gate.
func BenchmarkEvaluateDistinct(b *testing.B) {
	e := engine(b)
	r := compliant()
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		r.PullRequest.Number = int64(i)
		if _, err := e.Evaluate(ctx, r, later, Params{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}
