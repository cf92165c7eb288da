package correlate_test

import (
	"bytes"
	"flag"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

var (
	historySizes = flag.String("correlate.history", "1000,10000", "history sizes, in changes (records), of BenchmarkStageHistory")
	historyTail  = flag.Int("correlate.tail", 3000, "events BenchmarkStageHistory times after the history")
)

// BenchmarkStageHistory measures the cost of correlating new events
// against a history already in the bucket, for growing histories: the
// history (about 23 events per change record) goes through the stage
// first, untimed; then the next -correlate.tail events of the same
// generated history are published and timed until acknowledged. The
// records are checked against the core's. Cost must not grow with the
// history.
//
//	go test ./processors/correlate -run '^$' -bench StageHistory -benchtime=1x -count 5
//
// Metrics, over the timed tail: ns/event and ns/record-put (per record
// the tail puts), cpu-ns/event (the process's CPU time: the embedded NATS
// server's included, as in evidenced; steadier than the wall clock on a
// shared machine), allocs/event (the
// whole process: the embedded server included), nats-msgs/event (messages
// the stage's connection sent: KV requests, fetches, acks) and the heap in
// use after the run (heap-MiB, after a GC).
func BenchmarkStageHistory(b *testing.B) {
	for _, s := range strings.Split(*historySizes, ",") {
		changes, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("changes=%d", changes), func(b *testing.B) {
			events := correlate.GenHistory(42, changes*23+*historyTail)
			head, tail := events[:len(events)-*historyTail], events[len(events)-*historyTail:]
			for b.Loop() {
				b.StopTimer()
				env := testenv.NATS(b)
				kv := newKV(b, env.JS, correlate.KVOptions{})
				publish(b, env.JS, head)
				sink := &countingSink{recordingSink: newSink()}
				stop := startStage(b, env.JS, kv, sink, correlate.StageConfig{})
				waitAcked(b, env.JS, "correlate", 20*time.Minute)
				stop()
				publish(b, env.JS, tail)
				before := sink.n.Load()
				msgs := env.Conn.Stats().OutMsgs
				reads := correlate.BatchedReads(kv)
				var m0, m1 runtime.MemStats
				runtime.ReadMemStats(&m0)
				b.StartTimer()
				cpu0 := cpuTime()
				start := time.Now()
				// A new stage, on the same KVState (its cache warm), pulls
				// the tail from the stream.
				stop = startStage(b, env.JS, kv, sink, correlate.StageConfig{})
				waitAcked(b, env.JS, "correlate", 20*time.Minute)
				took := time.Since(start)
				cpu := cpuTime() - cpu0
				b.StopTimer()
				runtime.ReadMemStats(&m1)
				sent := env.Conn.Stats().OutMsgs - msgs
				reads = correlate.BatchedReads(kv) - reads
				put := sink.n.Load() - before
				stop()
				n := float64(len(tail))
				b.ReportMetric(float64(took.Nanoseconds())/n, "ns/event")
				b.ReportMetric(float64(cpu.Nanoseconds())/n, "cpu-ns/event")
				b.ReportMetric(float64(took.Nanoseconds())/float64(max(put, 1)), "ns/record-put")
				b.ReportMetric(float64(m1.Mallocs-m0.Mallocs)/n, "allocs/event")
				b.ReportMetric(float64(m1.TotalAlloc-m0.TotalAlloc)/n, "B/event")
				b.ReportMetric(float64(sent)/n, "nats-msgs/event")
				b.ReportMetric(float64(reads)/n, "batched-reads/event")
				runtime.GC()
				runtime.ReadMemStats(&m1)
				b.ReportMetric(float64(m1.HeapInuse)/(1<<20), "heap-MiB")
				b.ReportMetric(float64(len(sink.Records())), "records")
				if !bytes.Equal(encode(b, sink.Records()), encode(b, stateOf(b, events).Records())) {
					b.Fatal("the sink holds other records than the core derives")
				}
				b.StartTimer()
			}
		})
	}
}
