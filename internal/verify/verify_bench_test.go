package verify_test

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/internal/verify/verifytest"
)

// BenchmarkVerify recomputes a chain of 100k and 1M events written straight
// into ClickHouse with the archive's chain code (a checkpoint every 10,000
// events), as evidence verify does. It reports events/s and the peak Go
// heap during the run, sampled every 5ms: the verifier streams, so the peak
// must not grow with the number of events.
//
//	go test -run '^$' -bench BenchmarkVerify -benchtime 1x ./internal/verify/
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) {
			ctx := context.Background()
			st := testenv.Store(b)
			key, err := verify.GenerateKey()
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			if _, err := verifytest.Write(ctx, st, verifytest.Chain{Events: n, Every: 10_000, Key: key, Batch: 50_000}, false); err != nil {
				b.Fatal(err)
			}
			b.Logf("wrote %d events in %s", n, time.Since(start).Round(time.Millisecond))
			keys := verify.PublicKeys{key.ID: key.Public()}
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)

			var peak atomic.Uint64
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				t := time.NewTicker(5 * time.Millisecond)
				defer t.Stop()
				var m runtime.MemStats
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						runtime.ReadMemStats(&m)
						if m.HeapInuse > peak.Load() {
							peak.Store(m.HeapInuse)
						}
					}
				}
			}()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				res, err := verify.Verify(ctx, st.Conn(), verify.Options{Keys: keys})
				if err != nil {
					b.Fatal(err)
				}
				if !res.OK() || res.Events != uint64(n) || res.Checkpoints != n/10_000 {
					b.Fatalf("verify: %+v", res)
				}
			}
			b.StopTimer()
			close(stop)
			wg.Wait()
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
			b.ReportMetric(float64(base.HeapInuse)/(1<<20), "heap-before-MiB")
		})
	}
}
