package live_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// BenchmarkFreshness measures, for each of b.N events, the time from the
// start of its POST /v1/events to (a) its verdict received on the live
// page's stream (/live/events, SSE) and (b) its first row in ClickHouse
// control_results, through an in-process evidenced with every stage. Each
// event is a production deployment that matches no change, so each makes a
// new change record and a new verdict; they are posted one at a time.
// Reported: p50 and p99 of both, in milliseconds.
//
//	go test -run '^$' -bench Freshness -benchtime 300x ./internal/live/
func BenchmarkFreshness(b *testing.B) {
	e := startEvidenced(b)
	ctx := context.Background()

	var mu sync.Mutex
	seen := map[string]chan time.Time{}
	wait := func(change string) chan time.Time {
		mu.Lock()
		defer mu.Unlock()
		c, ok := seen[change]
		if !ok {
			c = make(chan time.Time, 1)
			seen[change] = c
		}
		return c
	}
	s := openStream(b, e.base+"/live/events", http.Header{"Authorization": {"Bearer " + e.auditor}})
	go func() {
		for {
			ev := s.nextOrEnd()
			if ev == nil {
				return
			}
			at := time.Now()
			var v evaluate.Verdict
			if json.Unmarshal([]byte(ev["data"]), &v) == nil {
				select {
				case wait(v.Change) <- at:
				default:
				}
			}
		}
	}()
	for e.d.Store() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	st := e.d.Store()

	var toPage, toCH []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sc := demo.BuildKind(9, "bench", i, demo.UnmatchedDeployment, time.Now().Add(-time.Minute), time.Second)
		arrived := wait(sc.Change)
		start := time.Now()
		if _, err := e.client.Send(ctx, sc.Events[0]); err != nil {
			b.Fatal(err)
		}
		chDone := make(chan time.Duration, 1)
		go func() {
			for time.Since(start) < 20*time.Second {
				var n uint64
				if err := st.Conn().QueryRow(ctx, "SELECT count() FROM control_results WHERE change_id = ?", sc.Change).Scan(&n); err == nil && n > 0 {
					chDone <- time.Since(start)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
			chDone <- -1
		}()
		select {
		case at := <-arrived:
			toPage = append(toPage, at.Sub(start))
		case <-time.After(20 * time.Second):
			b.Fatalf("event %d: no verdict on the stream in 20 s", i)
		}
		d := <-chDone
		if d < 0 {
			b.Fatalf("event %d: no control_results row in 20 s", i)
		}
		toCH = append(toCH, d)
	}
	b.StopTimer()
	pct := func(ds []time.Duration, p float64) float64 {
		s := slices.Clone(ds)
		slices.Sort(s)
		return float64(s[min(len(s)-1, int(p*float64(len(s))))].Microseconds()) / 1000
	}
	b.ReportMetric(pct(toPage, 0.50), "page-p50-ms")
	b.ReportMetric(pct(toPage, 0.99), "page-p99-ms")
	b.ReportMetric(pct(toCH, 0.50), "clickhouse-p50-ms")
	b.ReportMetric(pct(toCH, 0.99), "clickhouse-p99-ms")
	b.ReportMetric(0, "ns/op")
}
