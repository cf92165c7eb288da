package evaluate

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// countingReader counts the records the stage reads to judge them (one
// read per evaluation).
type countingReader struct {
	correlate.KVReader
	reads atomic.Int64
}

func (r *countingReader) ChangeArrivals(ctx context.Context, id string) (correlate.Record, correlate.Arrivals, bool, error) {
	r.reads.Add(1)
	return r.KVReader.ChangeArrivals(ctx, id)
}

// judgedRows are a change's control results and deployment verdicts as
// ClickHouse holds them, with what makes a verdict (not when it was
// computed).
func judgedRows(t *testing.T, st *store.Store, change string) (results, verdicts []string) {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Conn().Query(ctx, `SELECT control_id, status, reasons, evidence, exception_id, record_hash, trigger
		FROM control_results WHERE change_id = ? ORDER BY control_id, evaluated_at_ns`, change)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c, s, x, h, tr string
		var reasons, evidence []string
		if err := rows.Scan(&c, &s, &reasons, &evidence, &x, &h, &tr); err != nil {
			t.Fatal(err)
		}
		results = append(results, fmt.Sprintf("%s %s %q %q %s %s %s", c, s, reasons, evidence, x, h, tr))
	}
	rows.Close()
	rows, err = st.Conn().Query(ctx, `SELECT deployment_key, verdict, failing, pending, waived, results, record_hash, deployed_at_ns
		FROM deployment_verdicts FINAL WHERE change_id = ? ORDER BY deployment_key`, change)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, v, res, h string
		var failing, pending, waived []string
		var dep int64
		if err := rows.Scan(&k, &v, &failing, &pending, &waived, &res, &h, &dep); err != nil {
			t.Fatal(err)
		}
		verdicts = append(verdicts, fmt.Sprintf("%s %s %q %q %q %s %s %d", k, v, failing, pending, waived, res, h, dep))
	}
	return results, verdicts
}

// TestStageHold: a change record updated three times within the hold
// (its evidence, its production deployment, its ticket approval, each
// queued as an update) is judged once, after the hold, and what that one
// evaluation writes (control results, the deployment's verdict) is what a
// stage without a hold writes for the record as it stands at the end.
func TestStageHold(t *testing.T) {
	ctx := context.Background()
	base, approval, deploy := stageEvidence(t)
	eng := engine(t)
	const hold = 500 * time.Millisecond
	t0 := at("2025-03-04T07:05:00Z")

	// Held: the clock stands still within the hold while the updates
	// arrive, so the stage cannot judge any of them before the last.
	js, st, kv := stageEnv(t)
	reader := &countingReader{KVReader: correlate.KVReader{KV: kv}}
	clk := &clock{t: t0}
	var mu sync.Mutex
	var published []Verdict
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	var started sync.WaitGroup
	started.Add(1)
	stop := runStage(t, js.JS, eng, reader, st, StageConfig{Now: clk.Now, Hold: hold, Started: started.Done,
		Publish: func(v Verdict) { mu.Lock(); published = append(published, v); mu.Unlock() }})
	started.Wait()
	for i, facts := range [][]correlate.Fact{base, deploy, approval} {
		if _, err := kv.Merge(ctx, facts); err != nil {
			t.Fatal(err)
		}
		if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
			t.Fatal(err)
		}
		clk.Set(t0.Add(time.Duration(i+1) * hold / 4)) // still within the hold of the first
		if n := reader.reads.Load(); n != 0 {
			t.Fatalf("judged %d times within the hold, after update %d", n, i+1)
		}
	}
	clk.Set(t0.Add(hold))
	testenv.Eventually(t, 60*time.Second, func() error {
		if _, err := queue.Get(ctx, queueKey(stageChange)); err == nil {
			return fmt.Errorf("still queued")
		}
		if n := changeRows(t, st, stageChange); n != 8 {
			return fmt.Errorf("%d control results, want 8", n)
		}
		return nil
	})
	stop()
	if n := reader.reads.Load(); n != 1 {
		t.Errorf("judged %d times, want once", n)
	}
	mu.Lock()
	if len(published) != 1 || published[0].Status != Pass || len(published[0].Deployments) != 1 {
		var got []string
		for _, v := range published {
			got = append(got, v.summary())
		}
		t.Errorf("published %q, want one evaluation: pass, its deployment decided", got)
	}
	mu.Unlock()
	heldResults, heldVerdicts := judgedRows(t, st, stageChange)

	// Unheld: the same final record, judged at once at the same clock.
	js2, st2, kv2 := stageEnv(t)
	if _, err := kv2.Merge(ctx, slices.Concat(base, deploy, approval)); err != nil {
		t.Fatal(err)
	}
	queue2, err := OpenQueue(ctx, js2.JS)
	if err != nil {
		t.Fatal(err)
	}
	stop2 := runStage(t, js2.JS, eng, correlate.KVReader{KV: kv2}, st2, StageConfig{Now: clk.Now})
	if err := Enqueue(ctx, queue2, []string{stageChange}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		if _, err := queue2.Get(ctx, queueKey(stageChange)); err == nil {
			return fmt.Errorf("still queued")
		}
		if n := changeRows(t, st2, stageChange); n != 8 {
			return fmt.Errorf("%d control results, want 8", n)
		}
		return nil
	})
	stop2()
	wantResults, wantVerdicts := judgedRows(t, st2, stageChange)
	if len(wantVerdicts) != 1 {
		t.Fatalf("unheld: deployment verdicts %q, want one", wantVerdicts)
	}
	if !slices.Equal(heldResults, wantResults) {
		t.Errorf("control results with the hold:\n%s\nwithout:\n%s", heldResults, wantResults)
	}
	if !slices.Equal(heldVerdicts, wantVerdicts) {
		t.Errorf("deployment verdicts with the hold:\n%s\nwithout:\n%s", heldVerdicts, wantVerdicts)
	}
}
