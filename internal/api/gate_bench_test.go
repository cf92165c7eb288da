package api_test

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

var (
	gateRecords = flag.Int("gate.records", 100_000, "change records in the live state during BenchmarkGate")
	gateProfile = flag.String("gate.cpuprofile", "", "write a CPU profile of BenchmarkGate's timed requests only (not the loading) to this file")
)

// BenchmarkGate measures GET /v1/gate against the live state in NATS KV
// (the daemon's KVReader) holding -gate.records other change records
// besides the compliant one asked about, and reports p50/p99 latency.
//
//	go test ./internal/api -run '^$' -bench Gate -benchtime 2000x
//
// -gate.cpuprofile FILE profiles the timed requests only (-cpuprofile
// would mostly profile the loading of the records).
func BenchmarkGate(b *testing.B) {
	ctx := context.Background()
	js := testenv.NATS(b)
	kv, err := correlate.NewKVState(ctx, js.JS, correlate.KVOptions{})
	if err != nil {
		b.Fatal(err)
	}
	base, approval := gateFacts(b)
	if _, err := kv.Merge(ctx, append(base, approval...)); err != nil {
		b.Fatal(err)
	}
	start := time.Now()
	var facts []correlate.Fact
	flush := func() {
		if _, err := kv.Merge(ctx, facts); err != nil {
			b.Fatal(err)
		}
		facts = facts[:0]
	}
	for i := 0; i < *gateRecords; i++ {
		e := &ce.Event{ID: fmt.Sprintf("m-%d", i), Source: "https://github.com/acme", Type: "dev.evidencepipeline.change.merged.v1",
			Time: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Second),
			Data: fmt.Appendf(nil, `{"repository":"github.com/acme/svc%d","change":{"number":%d},"target_branch":"main","head_commit":"%040x","merge_commit":"%040x","merged_by":{"login":"bob"},"merged_at":"2026-01-01T00:00:00Z"}`, i%50, i+1, 2*i+1, 2*i+2)}
		fs, err := correlate.Extract(e)
		if err != nil {
			b.Fatal(err)
		}
		facts = append(facts, fs...)
		if len(facts) >= 2000 {
			flush()
		}
	}
	flush()
	b.Logf("%d change records loaded into KV in %s", *gateRecords, time.Since(start).Round(time.Millisecond))

	engine, err := evaluate.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Changes: correlate.KVReader{KV: kv}, Gate: engine, GateParams: evaluate.DefaultParams()}))
	defer srv.Close()
	url := srv.URL + "/v1/gate?env=production&repo=" + gateRepo + "&commit=" + gateCommit
	lat := make([]time.Duration, 0, b.N)
	if *gateProfile != "" && b.N > 1 {
		f, err := os.Create(*gateProfile)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("status %d", resp.StatusCode)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50_ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99_ms")
}
