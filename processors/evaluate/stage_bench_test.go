package evaluate

import (
	"context"
	"flag"
	"fmt"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

var stageRecords = flag.Int("evaluate.records", 2000, "change records BenchmarkStageThroughput evaluates")

// BenchmarkStageThroughput measures the evaluation stage end to end: each
// of -evaluate.records merged pull requests, deployed to production, is
// queued, read from the live state (NATS KV), judged (and its deployment's
// verdict decided: a second evaluation), and written to ClickHouse. It
// reports changes/s.
//
//	go test ./processors/evaluate -run '^$' -bench StageThroughput -benchtime 1x
func BenchmarkStageThroughput(b *testing.B) {
	ctx := context.Background()
	n := *stageRecords
	now := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	for range b.N {
		b.StopTimer()
		js := testenv.NATS(b)
		st := testenv.Store(b)
		kv, err := correlate.NewKVState(ctx, js.JS, correlate.KVOptions{})
		if err != nil {
			b.Fatal(err)
		}
		facts, ids := genChanges(b, 0, n)
		if _, err := kv.Merge(ctx, facts); err != nil {
			b.Fatal(err)
		}
		s, err := NewStage(ctx, js.JS, engine(b), correlate.KVReader{KV: kv}, StoreWriter{Get: func() *store.Store { return st }},
			StageConfig{Now: func() time.Time { return now }}, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		queue, err := OpenQueue(ctx, js.JS)
		if err != nil {
			b.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		b.StartTimer()
		start := time.Now()
		if err := Enqueue(ctx, queue, ids, now); err != nil {
			b.Fatal(err)
		}
		go func() { done <- s.Run(rctx) }()
		for {
			var got uint64
			if err := st.Conn().QueryRow(ctx, `SELECT count() FROM deployment_verdicts`).Scan(&got); err != nil {
				b.Fatal(err)
			}
			if got >= uint64(n) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		el := time.Since(start)
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		var rows uint64
		if err := st.Conn().QueryRow(ctx, `SELECT count() FROM control_results`).Scan(&rows); err != nil {
			b.Fatal(err)
		}
		if rows != uint64(8*n) {
			b.Fatalf("%d control results, want %d", rows, 8*n)
		}
		b.ReportMetric(float64(n)/el.Seconds(), "changes/s")
		b.StartTimer()
	}
}

// genChanges are the facts of n merged pull requests (numbers from+1 to
// from+n, spread over 50 repositories), each deployed to production by the
// pipeline on 2026-01-01 01:00, and the ids of their records.
func genChanges(tb testing.TB, from, n int) ([]correlate.Fact, []string) {
	tb.Helper()
	var facts []correlate.Fact
	ids := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		repo := fmt.Sprintf("github.com/acme/svc%d", i%50)
		merge := fmt.Sprintf("%040x", 2*i+2)
		ids = append(ids, repo+"@"+merge)
		for _, e := range []*ce.Event{
			{ID: fmt.Sprintf("m-%d", i), Source: "https://github.com/acme", Type: "dev.evidencepipeline.change.merged.v1",
				Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC),
				Data: fmt.Appendf(nil, `{"repository":%q,"change":{"number":%d},"target_branch":"main","head_commit":"%040x","merge_commit":%q,"merged_by":{"login":"bob"},"merged_at":"2026-01-01T00:00:00Z"}`, repo, i+1, 2*i+1, merge)},
			{ID: fmt.Sprintf("d-%d", i), Source: "https://ci.example/acme", Type: "dev.evidencepipeline.deployment.started.v1",
				Time: time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC),
				Data: fmt.Appendf(nil, `{"deployment_id":"d-%d","environment":"production","service":"svc%d","repository":%q,"commit":%q,"deployer":{"login":"github-actions[bot]"},"started_at":"2026-01-01T01:00:00Z"}`, i, i%50, repo, merge)},
		} {
			fs, err := correlate.Extract(e)
			if err != nil {
				tb.Fatal(err)
			}
			facts = append(facts, fs...)
		}
	}
	return facts, ids
}
