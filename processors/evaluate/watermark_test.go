package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// Deciding in stream terms: a deployment's verdict is judged on the
// evidence that arrived by the deployment's arrival plus the delay, and
// decided once the correlation's watermark is past that.

// fakeWatermark is a Watermark the test sets.
type fakeWatermark struct {
	mu sync.Mutex
	t  time.Time
}

func (w *fakeWatermark) Watermark(context.Context) (time.Time, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.t, nil
}
func (w *fakeWatermark) Set(t time.Time) { w.mu.Lock(); w.t = t; w.mu.Unlock() }

var _ Watermark = (*fakeWatermark)(nil)

// arrived returns copies of facts that arrived in the stream at t.
func arrived(facts []correlate.Fact, t time.Time) []correlate.Fact {
	out := slices.Clone(facts)
	for i := range out {
		out[i].Arrived = t
	}
	return out
}

// stageDeploymentKey is the verdicts bucket's key of the stage change's
// production deployment.
var stageDeploymentKey = queueKey("production\x00payments\x00id:payments-production-118")

// verdictRows are deployment_verdicts, every column but decided_at, one
// line per row.
func verdictRows(t *testing.T, st *store.Store) []string {
	t.Helper()
	r, err := st.Conn().Query(context.Background(), `SELECT environment, service, deployment_key, deployment_id, change_id, repository,
		commit, deployer, deployed_at_ns, verdict, failing, pending, waived, results, record_hash, bundle_hash
		FROM deployment_verdicts FINAL ORDER BY environment, service, deployment_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var v store.DeploymentVerdictRow
		if err := r.Scan(&v.Environment, &v.Service, &v.DeploymentKey, &v.DeploymentID, &v.ChangeID, &v.Repository,
			&v.Commit, &v.Deployer, &v.DeployedNs, &v.Verdict, &v.Failing, &v.Pending, &v.Waived, &v.Results,
			&v.RecordHash, &v.BundleHash); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%+v", v))
	}
	return out
}

// verdictSummaries are deployment_verdicts as "change verdict [pending]".
func verdictSummaries(t *testing.T, st *store.Store) []string {
	t.Helper()
	r, err := st.Conn().Query(context.Background(), `SELECT change_id, verdict, pending, failing FROM deployment_verdicts FINAL ORDER BY change_id`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var c, v string
		var p, f []string
		if err := r.Scan(&c, &v, &p, &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s pending%v failing%v", c, v, p, f))
	}
	return out
}

// storedVerdictOf reads the verdicts bucket's entry of the stage change's
// deployment.
func storedVerdictOf(t *testing.T, js jetstream.JetStream) (storedVerdict, bool) {
	t.Helper()
	kv, err := js.KeyValue(context.Background(), VerdictBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := kv.Get(context.Background(), stageDeploymentKey)
	if err != nil {
		return storedVerdict{}, false
	}
	var sv storedVerdict
	if err := json.Unmarshal(e.Value(), &sv); err != nil {
		t.Fatal(err)
	}
	return sv, true
}

func queuedTask(t *testing.T, queue jetstream.KeyValue, id string) (task, bool) {
	t.Helper()
	e, err := queue.Get(context.Background(), queueKey(id))
	if err != nil {
		return task{}, false
	}
	var tk task
	if err := json.Unmarshal(e.Value(), &tk); err != nil {
		t.Fatal(err)
	}
	return tk, true
}

// TestStageBackfill: a history posted long after it happened (the wall
// clock months past the deployment). The deployment event arrives in the
// stream at T0 and, 40 s after it, the merge, the review and the ticket
// approval; the delay is 2 min. Deciding on the wall clock (deployment
// time + delay, long past) would judge the deployment alone, unmatched
// (CM-8 fails, for good). In stream terms the verdict waits until the
// watermark passes T0 + 2 min, then it is the pull request's, pass.
func TestStageBackfill(t *testing.T) {
	ctx := context.Background()
	js, st, kv := stageEnv(t)
	base, approval, deploy := stageEvidence(t)
	t0 := at("2025-09-01T12:00:00Z")
	cutoff := t0.Add(2 * time.Minute)
	reader := correlate.KVReader{KV: kv}
	if _, err := kv.Merge(ctx, arrived(deploy, t0)); err != nil {
		t.Fatal(err)
	}
	recs, err := reader.ChangesOf(ctx, stageRepo, "c0ffee1234567890abcdef1234567890abcdef12")
	if err != nil || len(recs) != 1 || !recs[0].Unmatched {
		t.Fatalf("the deployment alone: %d records (%v), want one unmatched", len(recs), err)
	}
	unmatched := recs[0].ID

	clk := &clock{t: at("2025-12-01T00:00:00Z")} // months after the deployment (2025-03-04 07:02)
	wm := &fakeWatermark{t: t0.Add(10 * time.Second)}
	stop := runStage(t, js.JS, engine(t), reader, st, StageConfig{Now: clk.Now, VerdictDelay: 2 * time.Minute, Watermark: wm})
	defer stop()
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	if err := Enqueue(ctx, queue, []string{unmatched}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	// The unmatched record waits for the watermark to pass T0 + 2 min.
	testenv.Eventually(t, 30*time.Second, func() error {
		if tk, ok := queuedTask(t, queue, unmatched); !ok || !tk.Watermark.Equal(cutoff) {
			return fmt.Errorf("unmatched record's task %+v (present %v), want to wait for the watermark past %s", tk, ok, cutoff)
		}
		return nil
	})
	// The rest arrives 40 s after the deployment: correlated, queued.
	if _, err := kv.Merge(ctx, arrived(append(base, approval...), t0.Add(40*time.Second))); err != nil {
		t.Fatal(err)
	}
	wm.Set(t0.Add(time.Minute))
	if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if tk, ok := queuedTask(t, queue, stageChange); !ok || !tk.Watermark.Equal(cutoff) {
			return fmt.Errorf("change's task %+v (present %v), want to wait for the watermark past %s", tk, ok, cutoff)
		}
		return nil
	})
	if v := verdictSummaries(t, st); len(v) != 0 {
		t.Fatalf("verdicts before the watermark passed the cutoff: %v", v)
	}
	wm.Set(cutoff) // W > cutoff is needed: at the cutoff an event may still be uncorrelated
	time.Sleep(500 * time.Millisecond)
	if v := verdictSummaries(t, st); len(v) != 0 {
		t.Fatalf("verdicts with the watermark at the cutoff: %v", v)
	}
	wm.Set(cutoff.Add(time.Second))
	testenv.Eventually(t, 30*time.Second, func() error {
		if v := verdictSummaries(t, st); !slices.Equal(v, []string{stageChange + " pass pending[] failing[]"}) {
			return fmt.Errorf("verdicts %v, want the pull request's, pass", v)
		}
		return nil
	})
	sv, ok := storedVerdictOf(t, js.JS)
	if !ok || !sv.Written || !sv.ArrivedBy.Equal(cutoff) || !sv.DeployedAt.Equal(at("2025-03-04T07:02:00Z")) {
		t.Errorf("stored verdict %+v, want written, judged on arrivals by %s, as of 07:02", sv, cutoff)
	}
}

// TestStageLateArrival: the ticket approval arrives 5 min after the
// deployment in the stream, past the 2 min delay: the verdict is judged
// without it (CM-1 pending, as of the deployment), even though the
// approval is already correlated when the verdict is decided; the
// approval is noted beside the verdict as late evidence that would make
// CM-1 pass, once.
func TestStageLateArrival(t *testing.T) {
	ctx := context.Background()
	js, st, kv := stageEnv(t)
	base, approval, deploy := stageEvidence(t)
	t0 := at("2025-09-01T12:00:00Z")
	if _, err := kv.Merge(ctx, append(arrived(append(base, deploy...), t0), arrived(approval, t0.Add(5*time.Minute))...)); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: at("2025-12-01T00:00:00Z")}
	wm := &fakeWatermark{t: t0.Add(10 * time.Minute)}
	stop := runStage(t, js.JS, engine(t), correlate.KVReader{KV: kv}, st, StageConfig{Now: clk.Now, VerdictDelay: 2 * time.Minute, Watermark: wm})
	defer stop()
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if v := verdictSummaries(t, st); !slices.Equal(v, []string{stageChange + " pending pending[CM-1] failing[]"}) {
			return fmt.Errorf("verdicts %v, want pending on CM-1 (the approval arrived after the cutoff)", v)
		}
		return nil
	})
	// The live results (as of now) count the approval: CM-1 passes there.
	if h := history(resultRows(t, st), "CM-1"); !slices.Equal(h, []string{"pass/update"}) {
		t.Errorf("CM-1 history %v, want pass (the live verdict has the approval)", h)
	}
	// The record judged is the one without the approval: its hash is not
	// the full record's.
	full, _, err := correlate.KVReader{KV: kv}.Change(ctx, stageChange)
	if err != nil {
		t.Fatal(err)
	}
	// The verdicts bucket notes the late evidence once the rows are
	// written.
	var sv storedVerdict
	var ok bool
	testenv.Eventually(t, 30*time.Second, func() error {
		if sv, ok = storedVerdictOf(t, js.JS); !ok || len(sv.Late) == 0 {
			return fmt.Errorf("no late evidence noted yet")
		}
		return nil
	})
	if !ok || sv.RecordHash == full.Hash() {
		t.Errorf("the verdict's record hash is the full record's (%v): want the record as of the cutoff", ok)
	}
	// The approval is late evidence that would change the verdict: noted
	// beside it (CM-1 pending -> pass, the approval's event), in the
	// verdicts bucket and in deployment_late_evidence; the verdict stays.
	approvalEvent := approval[0].Event.String()
	if len(sv.Late) != 1 || len(sv.Late[0].Controls) != 1 {
		t.Fatalf("late evidence %+v, want one note of one control", sv.Late)
	}
	if c := sv.Late[0].Controls[0]; c.Control != "CM-1" || c.Decided != Pending || c.Late != Pass ||
		!slices.Equal(sv.Late[0].Events, []string{approvalEvent}) || sv.Late[0].RecordHash != full.Hash() || sv.Verdict != Pending {
		t.Errorf("late evidence %+v (verdict %s), want CM-1 pending -> pass from %s beside the pending verdict", sv.Late, sv.Verdict, approvalEvent)
	}
	lateRows := func() []string {
		r, err := st.Conn().Query(ctx, `SELECT control_id, decided_status, late_status, late_events, arrived_by_ns FROM deployment_late_evidence ORDER BY noted_at_ns, control_id`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []string
		for r.Next() {
			var c, d, l string
			var evs []string
			var ns int64
			if err := r.Scan(&c, &d, &l, &evs, &ns); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s->%s %v %s", c, d, l, evs, time.Unix(0, ns).UTC().Format(time.RFC3339)))
		}
		return out
	}
	want := []string{fmt.Sprintf("CM-1 pending->pass [%s] 2025-09-01T12:02:00Z", approvalEvent)}
	if got := lateRows(); !slices.Equal(got, want) {
		t.Errorf("deployment_late_evidence %q, want %q", got, want)
	}
	// Judged again with nothing new: nothing more is noted.
	if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if _, ok := queuedTask(t, queue, stageChange); ok {
			return fmt.Errorf("still queued")
		}
		return nil
	})
	if got := lateRows(); !slices.Equal(got, want) {
		t.Errorf("after an unchanged evaluation deployment_late_evidence %q, want still %q", got, want)
	}
	if sv, _ := storedVerdictOf(t, js.JS); len(sv.Late) != 1 || sv.Verdict != Pending {
		t.Errorf("after an unchanged evaluation: %d late notes, verdict %s; want 1, pending", len(sv.Late), sv.Verdict)
	}
}

// stagePublish publishes events one at a time, in order, each checked.
func stagePublish(t *testing.T, js jetstream.JetStream, events []*ce.Event) {
	t.Helper()
	p := bus.NewPublisher(js)
	for _, e := range events {
		res, err := p.Publish(context.Background(), []*ce.Event{e})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err != nil {
			t.Fatalf("publish %s: %v", e.ID, res[0].Err)
		}
	}
}

// enqueueSink is the correlation stage's sink as the daemon's (chsink)
// behaves towards the evaluation: every record put is queued.
type enqueueSink struct{ queue jetstream.KeyValue }

func (s enqueueSink) Put(ctx context.Context, recs []correlate.Record) error {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.ID
	}
	return Enqueue(ctx, s.queue, ids, time.Now())
}

// pipeline is a correlation stage over a real stream and an evaluation
// stage deciding on its watermark.
type pipeline struct {
	js     *testenv.JetStream
	st     *store.Store
	kv     *correlate.KVState
	queue  jetstream.KeyValue
	delay  time.Duration
	stopCo func()
}

func newPipeline(t *testing.T, delay time.Duration) *pipeline {
	t.Helper()
	ctx := context.Background()
	p := &pipeline{js: testenv.NATS(t), st: testenv.Store(t), delay: delay}
	var err error
	if p.kv, err = correlate.NewKVState(ctx, p.js.JS, correlate.KVOptions{}); err != nil {
		t.Fatal(err)
	}
	if p.queue, err = OpenQueue(ctx, p.js.JS); err != nil {
		t.Fatal(err)
	}
	stop := runStage(t, p.js.JS, engine(t), correlate.KVReader{KV: p.kv}, p.st, StageConfig{
		VerdictDelay: delay, Watermark: correlate.StreamWatermark{JS: p.js.JS}, WatermarkInterval: 50 * time.Millisecond,
	})
	t.Cleanup(stop)
	return p
}

// correlate starts the correlation stage (stopped by the returned stop,
// or at the end of the test).
func (p *pipeline) correlate(t *testing.T) (stop func()) {
	t.Helper()
	cs, err := correlate.NewStage(p.js.JS, p.kv, enqueueSink{p.queue}, correlate.StageConfig{FlushInterval: 20 * time.Millisecond}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cs.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("correlate Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// waitCorrelated waits until the correlation consumer has acknowledged
// every message.
func (p *pipeline) waitCorrelated(t *testing.T) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		c, err := p.js.JS.Consumer(context.Background(), bus.EventStream, "correlate")
		if err != nil {
			return err
		}
		info, err := c.Info(context.Background())
		if err != nil {
			return err
		}
		if info.NumPending != 0 || info.NumAckPending != 0 {
			return fmt.Errorf("correlation: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
}

// TestStageLaggingCorrelation: the deployment event is correlated alone;
// the correlation stage then stops while the merge and the rest arrive
// in the stream, well within the delay. The wall clock passes the
// deployment's arrival plus the delay, and more: the evaluation holds the
// decision (the watermark stays at the first uncorrelated event), so the
// deployment is not judged unmatched. Once the correlation catches up,
// the verdict is the pull request's, pass: what live delivery gives.
func TestStageLaggingCorrelation(t *testing.T) {
	base, approval, deploy := stageEvents(t)
	const delay = 2 * time.Second
	p := newPipeline(t, delay)
	stopCo := p.correlate(t)
	start := time.Now()
	stagePublish(t, p.js.JS, deploy)
	p.waitCorrelated(t)
	stopCo()
	stagePublish(t, p.js.JS, append(base, approval...))

	// The arrival of the deployment, from the stream.
	stream, err := p.js.JS.Stream(context.Background(), bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	cutoff := first.Time.Add(delay)
	if d := time.Since(start); d > delay/2 {
		t.Fatalf("publishing took %s: the evidence must arrive within the delay for this test", d)
	}
	// Past the cutoff on the clock, with a margin: still nothing decided.
	time.Sleep(time.Until(cutoff) + time.Second)
	if v := verdictSummaries(t, p.st); len(v) != 0 {
		t.Fatalf("verdicts while the correlation lags: %v", v)
	}
	w, err := correlate.StreamWatermark{JS: p.js.JS}.Watermark(context.Background())
	if err != nil || w.After(cutoff) {
		t.Fatalf("watermark %s (%v) while the correlation lags, want at most the cutoff %s", w, err, cutoff)
	}
	p.correlate(t)
	testenv.Eventually(t, 30*time.Second, func() error {
		if v := verdictSummaries(t, p.st); !slices.Equal(v, []string{stageChange + " pass pending[] failing[]"}) {
			return fmt.Errorf("verdicts %v, want the pull request's, pass", v)
		}
		return nil
	})
}

// TestStageVerdictOrder: the same history delivered in time order,
// reversed and shuffled, each time within the delay, gives the same
// deployment verdict, byte for byte (every column but decided_at).
func TestStageVerdictOrder(t *testing.T) {
	base, approval, deploy := stageEvents(t)
	all := append(append(append([]*ce.Event{}, base...), approval...), deploy...)
	slices.SortStableFunc(all, func(a, b *ce.Event) int { return a.Time.Compare(b.Time) })
	reversed := slices.Clone(all)
	slices.Reverse(reversed)
	shuffled := slices.Clone(all)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	orders := []struct {
		name   string
		events []*ce.Event
	}{{"time order", all}, {"reversed", reversed}, {"shuffled", shuffled}}
	var want []string
	for _, o := range orders {
		p := newPipeline(t, 3*time.Second)
		p.correlate(t)
		start := time.Now()
		stagePublish(t, p.js.JS, o.events)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("%s: publishing took %s, more than the delay allows", o.name, d)
		}
		var rows []string
		testenv.Eventually(t, 30*time.Second, func() error {
			if rows = verdictRows(t, p.st); len(rows) != 1 {
				return fmt.Errorf("%s: %d verdicts", o.name, len(rows))
			}
			return nil
		})
		if !strings.Contains(rows[0], "Verdict:pass") || !strings.Contains(rows[0], "ChangeID:"+stageChange) {
			t.Errorf("%s: verdict %s, want the pull request's, pass", o.name, rows[0])
		}
		if want == nil {
			want = rows
		} else if !slices.Equal(rows, want) {
			t.Errorf("%s: verdict\n%s\nwant (time order)\n%s", o.name, rows[0], want[0])
		}
	}
}
