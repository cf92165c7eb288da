package correlate_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// recordingSink is a Sink (and Retirer) that keeps the last version of
// each record, like a table keyed by record ID. It can be told to fail.
type recordingSink struct {
	mu      sync.Mutex
	records map[string]correlate.Record
	puts    int
	retired int
	fail    atomic.Int64 // fail this many calls
	failed  atomic.Int64
}

func newSink() *recordingSink { return &recordingSink{records: map[string]correlate.Record{}} }

func (s *recordingSink) Put(_ context.Context, rs []correlate.Record) error {
	if s.fail.Add(-1) >= 0 {
		s.failed.Add(1)
		return errors.New("sink unavailable (test)")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rs {
		if r.ID == "" {
			return errors.New("record without an id")
		}
		s.records[r.ID] = r
	}
	s.puts += len(rs)
	return nil
}

func (s *recordingSink) Retire(_ context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		delete(s.records, id)
	}
	s.retired += len(ids)
	return nil
}

// Retired is how many ids were retired.
func (s *recordingSink) Retired() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retired
}

// Records returns the records kept, sorted by ID.
func (s *recordingSink) Records() []correlate.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]correlate.Record, 0, len(s.records))
	for _, r := range s.records {
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b correlate.Record) int { return strings.Compare(a.ID, b.ID) })
	return out
}

var _ correlate.Retirer = (*recordingSink)(nil)

// countingSink forwards to a shared sink and counts what its stage wrote.
type countingSink struct {
	*recordingSink
	n atomic.Int64
}

func (c *countingSink) Put(ctx context.Context, rs []correlate.Record) error {
	c.n.Add(int64(len(rs)))
	return c.recordingSink.Put(ctx, rs)
}

// startStage runs a stage until the returned stop is called; stop waits
// for Run to return and fails the test on its error.
func startStage(t testing.TB, js jetstream.JetStream, kv *correlate.KVState, sink correlate.Sink, cfg correlate.StageConfig) (stop func()) {
	t.Helper()
	st, err := correlate.NewStage(js, kv, sink, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func publish(t testing.TB, js jetstream.JetStream, events []*ce.Event) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := bus.NewPublisher(js)
	for len(events) > 0 {
		n := min(len(events), 1000)
		res, err := p.Publish(ctx, events[:n])
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Err != nil {
				t.Fatalf("publish %s: %v", events[i].ID, r.Err)
			}
		}
		events = events[n:]
	}
}

// publishDuplicates publishes events again under other message ids, so
// that JetStream stores them twice: what a producer retrying after the
// duplicate window, or re-sending under a new id, gives.
func publishDuplicates(t testing.TB, js jetstream.JetStream, events []*ce.Event) {
	t.Helper()
	ctx := context.Background()
	for i, e := range events {
		m := bus.Message(e)
		m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("dup-%d-%s", i, e.MsgID()))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
}

// waitAcked waits until the consumer has acknowledged every message of the
// event stream.
func waitAcked(t testing.TB, js jetstream.JetStream, consumer string, timeout time.Duration) {
	t.Helper()
	testenv.Eventually(t, timeout, func() error {
		ctx := context.Background()
		st, err := js.Stream(ctx, bus.EventStream)
		if err != nil {
			return err
		}
		si, err := st.Info(ctx)
		if err != nil {
			return err
		}
		c, err := st.Consumer(ctx, consumer)
		if err != nil {
			return err
		}
		ci, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if ci.AckFloor.Stream < si.State.LastSeq || ci.NumAckPending > 0 {
			return fmt.Errorf("acknowledged up to %d of %d, %d pending", ci.AckFloor.Stream, si.State.LastSeq, ci.NumAckPending)
		}
		return nil
	})
}

// checkRecords compares what the sink holds, and what KVReader answers,
// with the core's records of the same events: byte for byte.
func checkRecords(t testing.TB, kv *correlate.KVState, sink *recordingSink, want []correlate.Record) {
	t.Helper()
	wantB := encode(t, want)
	if got := encode(t, sink.Records()); !bytes.Equal(got, wantB) {
		t.Errorf("the sink holds other records than the core derives:\n%s", diffRecords(t, sink.Records(), want))
	}
	ctx := context.Background()
	kr := correlate.KVReader{KV: kv}
	for _, r := range want {
		got, ok, err := kr.Change(ctx, r.ID)
		if err != nil || !ok {
			t.Fatalf("KVReader.Change(%q) = %v, %v", r.ID, ok, err)
		}
		if !bytes.Equal(encode(t, got), encode(t, r)) {
			t.Fatalf("KVReader.Change(%q) differs from the core's record:\n got %s\nwant %s", r.ID, encode(t, got), encode(t, r))
		}
	}
}

func diffRecords(t testing.TB, got, want []correlate.Record) string {
	g, w := map[string][]byte{}, map[string][]byte{}
	for _, r := range got {
		g[r.ID] = encode(t, r)
	}
	for _, r := range want {
		w[r.ID] = encode(t, r)
	}
	var b strings.Builder
	for id, wb := range w {
		switch gb, ok := g[id]; {
		case !ok:
			fmt.Fprintf(&b, "missing %s\n", id)
		case !bytes.Equal(gb, wb):
			fmt.Fprintf(&b, "differs %s:\n got %s\nwant %s\n", id, gb, wb)
		}
	}
	for id := range g {
		if _, ok := w[id]; !ok {
			fmt.Fprintf(&b, "extra %s\n", id)
		}
	}
	return b.String()
}

// TestStageScenarios feeds each scenario's events through the stage and
// checks the records against the core's.
func TestStageScenarios(t *testing.T) {
	dirs, err := filepath.Glob("testdata/scenarios/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			events := correlate.ReadEvents(t, filepath.Join(dir, "events.json"))
			env := testenv.NATS(t)
			kv := newKV(t, env.JS, correlate.KVOptions{})
			sink := newSink()
			startStage(t, env.JS, kv, sink, correlate.StageConfig{BatchSize: 1}) // one event per batch: every intermediate state is written
			publish(t, env.JS, events)
			waitAcked(t, env.JS, "correlate", 20*time.Second)
			checkRecords(t, kv, sink, stateOf(t, events).Records())
			if _, err := os.Stat(filepath.Join(dir, "checkpoint.golden.json")); err == nil && sink.Retired() == 0 {
				t.Error("the scenario retires a record; the sink was never told")
			}
		})
	}
}

var replicaSeed = flag.Uint64("correlate.replicaseed", 5, "seed of TestStageReplicas's history and shuffle")

// TestStageReplicas: two stages on the same durable consumer and bucket,
// on two connections, share a few thousand events (shuffled, a tenth of
// them stored twice) and give the records the core gives.
func TestStageReplicas(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 1200
	}
	seed := *replicaSeed
	events := correlate.WithExceptions(correlate.GenHistory(seed, n), seed)
	rng := rand.New(rand.NewPCG(seed, 6))
	shuffled := slices.Clone(events)
	rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	var dups []*ce.Event
	for range len(events) / 10 {
		dups = append(dups, events[rng.IntN(len(events))])
	}

	env := testenv.NATS(t)
	nc2, err := nats.Connect(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	shared := newSink()
	a, b := &countingSink{recordingSink: shared}, &countingSink{recordingSink: shared}
	cfg := correlate.StageConfig{BatchSize: 40}
	startStage(t, env.JS, newKV(t, env.JS, correlate.KVOptions{}), a, cfg)
	kvB := newKV(t, js2, correlate.KVOptions{})
	startStage(t, js2, kvB, b, cfg)
	start := time.Now()
	publish(t, env.JS, shuffled[:len(shuffled)/2])
	publishDuplicates(t, env.JS, dups)
	publish(t, env.JS, shuffled[len(shuffled)/2:])
	// Generous: on a loaded 2-core machine the two replicas took 57 s.
	waitAcked(t, env.JS, "correlate", 5*time.Minute)
	t.Logf("%d events (+%d duplicates) in %s; records written by replica A %d, B %d; %d retired",
		len(events), len(dups), time.Since(start).Round(time.Millisecond), a.n.Load(), b.n.Load(), shared.Retired())
	if a.n.Load() == 0 || b.n.Load() == 0 {
		t.Errorf("one replica did all the work (A %d, B %d)", a.n.Load(), b.n.Load())
	}
	checkRecords(t, kvB, shared, stateOf(t, events).Records())
}

// TestStageRestart stops a stage mid-stream and starts another on the
// same consumer: it resumes, and the records are the core's; the sink
// fails for a while too, and the stage retries.
func TestStageRestart(t *testing.T) {
	events := correlate.GenHistory(8, 1500)
	env := testenv.NATS(t)
	kv := newKV(t, env.JS, correlate.KVOptions{})
	sink := newSink()
	publish(t, env.JS, events)
	stop := startStage(t, env.JS, kv, sink, correlate.StageConfig{BatchSize: 25, MaxBackoff: 50 * time.Millisecond})
	testenv.Eventually(t, 20*time.Second, func() error {
		if len(sink.Records()) < 15 {
			return errors.New("not started")
		}
		return nil
	})
	stop()
	c, err := env.JS.Consumer(context.Background(), bus.EventStream, "correlate")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ci.AckFloor.Stream >= uint64(len(events)) {
		t.Fatalf("the first stage processed everything before it was stopped (%d)", ci.AckFloor.Stream)
	}
	t.Logf("stopped after %d of %d events, %d pending", ci.AckFloor.Stream, len(events), ci.NumAckPending)
	sink.fail.Store(5)
	startStage(t, env.JS, kv, sink, correlate.StageConfig{BatchSize: 25, MaxBackoff: 50 * time.Millisecond})
	waitAcked(t, env.JS, "correlate", 30*time.Second)
	if sink.failed.Load() != 5 {
		t.Errorf("the sink failed %d times, want 5", sink.failed.Load())
	}
	checkRecords(t, kv, sink, stateOf(t, events).Records())
}

// TestStageDeadLetter: a catalog event whose data cannot be read, a
// message that is not a CloudEvent and an event whose fact would overflow
// an entry go to the dead-letter stream with the reason; the rest is
// correlated and everything is acknowledged.
func TestStageDeadLetter(t *testing.T) {
	ctx := context.Background()
	env := testenv.NATS(t)
	kv := newKV(t, env.JS, correlate.KVOptions{MaxValueSize: 8 << 10})
	sink := newSink()
	reg := prometheus.NewRegistry()
	st, err := correlate.NewStage(env.JS, kv, sink, correlate.StageConfig{}, nil, metrics.New(reg).Stage("correlate"))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- st.Run(rctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	good := correlate.ReadEvents(t, "testdata/scenarios/squash_merge/events.json")
	bad := &ce.Event{ID: "bad-1", Source: "https://github.com/acme/payments", Type: correlate.TypeChangeOpened,
		Time: time.Date(2025, 3, 7, 8, 0, 0, 0, time.UTC), DataContentType: "application/json",
		Data: []byte(`{"repository":"github.com/acme/payments","change":{"number":"sixty-four"},"title":"x","author":{"login":"bob"},` +
			`"source_branch":"b","target_branch":"main","head_commit":"64a0b1c2d3e4f5061728394a5b6c7d8e9f0a1b2c","opened_at":"2025-03-07T08:00:00Z"}`)}
	hot := approvals("CHG-FULL", "h", 40)
	publish(t, env.JS, append(append(slices.Clone(good), bad), hot...))
	if _, err := env.JS.Publish(ctx, "evidence.events.garbage", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	waitAcked(t, env.JS, "correlate", 20*time.Second)

	dlq, err := env.JS.Stream(ctx, bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for seq := uint64(1); seq <= info.State.LastSeq; seq++ {
		m, err := dlq.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Header.Get(bus.HeaderDLQStage) != "correlate" || m.Header.Get(bus.HeaderDLQOriginalSeq) == "" {
			t.Errorf("dead letter %d: headers %v", seq, m.Header)
		}
		reason := m.Header.Get(bus.HeaderDLQReason)
		switch {
		case strings.Contains(reason, "data/change/number") && strings.Contains(reason, "bad-1"):
			reasons["extract"]++
		case strings.HasPrefix(reason, "not a valid CloudEvent"):
			reasons["parse"]++
		case strings.Contains(reason, `"ticket:CHG-FULL"`) && strings.Contains(reason, "entry too large"):
			reasons["too large"]++
		default:
			t.Errorf("dead letter %d: unexpected reason %q", seq, reason)
		}
	}
	if reasons["extract"] != 1 || reasons["parse"] != 1 || reasons["too large"] == 0 {
		t.Errorf("dead letters by reason: %v", reasons)
	}
	e, err := kv.Entry(ctx, correlate.TicketKey("CHG-FULL"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Facts)+reasons["too large"] != len(hot) {
		t.Errorf("%d approvals merged, %d dead-lettered, want %d in all", len(e.Facts), reasons["too large"], len(hot))
	}
	want := correlate.NewState()
	want.Add(facts(t, good)...)
	want.Add(e.Facts...)
	checkRecords(t, kv, sink, want.Records())

	total := len(good) + 1 + len(hot) + 1
	dead := reasons["extract"] + reasons["parse"] + reasons["too large"]
	for name, want := range map[string]float64{
		`evidence_stage_received_total{stage="correlate"}`:                    float64(total),
		`evidence_stage_written_total{stage="correlate"}`:                     float64(total - dead),
		`evidence_stage_failed_total{reason="dead_letter",stage="correlate"}`: float64(dead),
	} {
		if got := metricValue(t, reg, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

// metricValue reads a counter from a registry, by its text form.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			if mf.GetName()+"{"+strings.Join(labels, ",")+"}" == name && m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

var stageEvents = flag.Int("correlate.stageevents", 20_000, "number of events BenchmarkStage feeds")

// BenchmarkStage measures events/s through the stage, KV included: a
// generated history is published first, then one stage correlates it
// into a sink that keeps the records, which are then checked against the
// core's.
//
//	go test ./processors/correlate -run '^$' -bench Stage -benchtime=1x
//	go test ./processors/correlate -run '^$' -bench Stage -benchtime=1x -correlate.stageevents=100000
func BenchmarkStage(b *testing.B) {
	events := correlate.GenHistory(42, *stageEvents)
	var total time.Duration
	var records int
	for b.Loop() {
		b.StopTimer()
		env := testenv.NATS(b)
		kv := newKV(b, env.JS, correlate.KVOptions{})
		publish(b, env.JS, events)
		sink := newSink()
		b.StartTimer()
		start := time.Now()
		stop := startStage(b, env.JS, kv, sink, correlate.StageConfig{})
		waitAcked(b, env.JS, "correlate", 10*time.Minute)
		total += time.Since(start)
		b.StopTimer()
		stop()
		records = len(sink.Records())
		if !bytes.Equal(encode(b, sink.Records()), encode(b, stateOf(b, events).Records())) {
			b.Fatal("the sink holds other records than the core derives")
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(events))*float64(b.N)/total.Seconds(), "events/s")
	b.ReportMetric(float64(records), "records")
	b.ReportMetric(float64(len(events)), "events")
}

// TestStageForeignWrite checks that the stage takes its cached entries
// for the bucket's only while the bucket moved by its own writes: facts
// another writer merged between two batches are in the records the stage
// derives after them, though the stage had every entry it reads cached.
// The stage is then given the first events again: their facts are all in
// the bucket already (nothing to write, so no compare-and-set conflict
// reads the entries again), and the records it derives are read from the
// entries alone.
func TestStageForeignWrite(t *testing.T) {
	events := correlate.GenHistory(11, 600)
	head, mid := events[:400], events[400:]
	env := testenv.NATS(t)
	kv := newKV(t, env.JS, correlate.KVOptions{})
	stop := startStage(t, env.JS, kv, newSink(), correlate.StageConfig{})
	publish(t, env.JS, head)
	waitAcked(t, env.JS, "correlate", 2*time.Minute)
	stop()

	other := newKV(t, env.JS, correlate.KVOptions{})
	if _, err := other.Merge(context.Background(), facts(t, mid)); err != nil {
		t.Fatal(err)
	}

	// The same KVState (its cache warm) under a new stage and sink: what
	// the new sink holds was derived after the foreign write.
	sink := newSink()
	startStage(t, env.JS, kv, sink, correlate.StageConfig{})
	publishDuplicates(t, env.JS, head)
	waitAcked(t, env.JS, "correlate", 2*time.Minute)

	all := map[string]correlate.Record{}
	for _, r := range stateOf(t, events).Records() {
		all[r.ID] = r
	}
	before := map[string]correlate.Record{}
	for _, r := range stateOf(t, head).Records() {
		before[r.ID] = r
	}
	got := sink.Records()
	if len(got) == 0 {
		t.Fatal("the stage wrote no record after the foreign write")
	}
	moved := 0 // records the foreign facts change
	for _, r := range got {
		want, ok := all[r.ID]
		if !ok {
			t.Errorf("record %s is not the core's", r.ID)
			continue
		}
		if b, ok := before[r.ID]; !ok || !bytes.Equal(encode(t, b), encode(t, want)) {
			moved++
		}
		if !bytes.Equal(encode(t, r), encode(t, want)) {
			t.Errorf("record %s misses the facts another writer merged:\n got %s\nwant %s", r.ID, encode(t, r), encode(t, want))
		}
	}
	if moved == 0 {
		t.Fatal("no record the stage wrote depends on the foreign facts: the test proves nothing")
	}
	t.Logf("%d records written after the foreign write, %d of them changed by it", len(got), moved)
}

// TestStageSkipsUnchanged checks that the stage does not put again a
// record derived unchanged: the same events sent again (duplicates, which
// add nothing) give no put, and the records stay the core's; with the
// memory of what was put turned off, every record is put again.
func TestStageSkipsUnchanged(t *testing.T) {
	events := correlate.GenHistory(5, 400)
	want := stateOf(t, events).Records()
	for _, tc := range []struct {
		name    string
		written int
		again   bool // records put again
	}{{"remembered", 0, false}, {"off", -1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			env := testenv.NATS(t)
			kv := newKV(t, env.JS, correlate.KVOptions{})
			sink := &countingSink{recordingSink: newSink()}
			startStage(t, env.JS, kv, sink, correlate.StageConfig{WrittenRecords: tc.written})
			publish(t, env.JS, events)
			waitAcked(t, env.JS, "correlate", 2*time.Minute)
			first := sink.n.Load()
			publishDuplicates(t, env.JS, events)
			waitAcked(t, env.JS, "correlate", 2*time.Minute)
			again := sink.n.Load() - first
			t.Logf("%d records; puts %d, then %d for the duplicates", len(want), first, again)
			if tc.again != (again > 0) {
				t.Errorf("the duplicates gave %d puts; want them put again: %v", again, tc.again)
			}
			checkRecords(t, kv, sink.recordingSink, want)
		})
	}
}
