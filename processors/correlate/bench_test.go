package correlate

import (
	"flag"
	"runtime"
	"testing"
	"time"
)

var benchEvents = flag.Int("correlate.events", 100_000, "number of events BenchmarkCorrelate feeds")

// BenchmarkCorrelate feeds the events of a generated history (about 30
// events per pull request: ticket, pushes, runs, tests, scans, reviews,
// merge, build, two deployments) through Extract and State.Add, then
// derives every record. The history is generated before the timer starts.
//
//	go test ./processors/correlate -run '^$' -bench Correlate -benchtime=1x
//	go test ./processors/correlate -run '^$' -bench Correlate -benchtime=1x -correlate.events=1000000
//
// Metrics: events/s over the whole (extract, add, derive), the split
// between ingest (extract+add) and derivation, the heap the State holds
// per fact (live-B/fact: the heap after a GC with the State alive, less
// the heap before, which holds the generated events; it must stay flat as
// the history grows), and the records derived.
func BenchmarkCorrelate(b *testing.B) {
	events := history(42, *benchEvents)
	n := len(events)
	var base runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&base)
	var ingest, derive time.Duration
	var records, facts int
	var live uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		s := NewState()
		for _, e := range events {
			fs, err := Extract(e)
			if err != nil {
				b.Fatal(err)
			}
			s.Add(fs...)
		}
		t1 := time.Now()
		records = len(s.Records())
		t2 := time.Now()
		ingest += t1.Sub(t0)
		derive += t2.Sub(t1)
		facts = s.Len()
		b.StopTimer()
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		live = ms.HeapAlloc - base.HeapAlloc
		runtime.KeepAlive(s)
		b.StartTimer()
	}
	runs := float64(b.N)
	b.ReportMetric(float64(n)*runs/(ingest+derive).Seconds(), "events/s")
	b.ReportMetric(float64(n)*runs/ingest.Seconds(), "ingest-events/s")
	b.ReportMetric(derive.Seconds()/runs, "derive-s")
	b.ReportMetric(float64(live)/float64(facts), "live-B/fact")
	b.ReportMetric(float64(records), "records")
	b.ReportMetric(float64(n), "events")
}
