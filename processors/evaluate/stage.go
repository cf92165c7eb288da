package evaluate

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
)

// The evaluation stage judges change records as they change.
//
// Its work list is the queue bucket (QueueBucket): one entry per change
// record to evaluate, keyed by the record id, whose value is when to
// evaluate it and why. The correlation stage's sink enqueues every record
// it writes (Enqueue: now, "update"); an evaluation that leaves a control
// pending enqueues the record again for the earliest deadline
// ("deadline"). Entries survive a restart, so a pending deadline is
// re-evaluated on time after one, and a burst of updates to a record is
// judged once, as it stands when its turn comes.
//
// An evaluation appends to control_results the results of the controls
// whose verdict changed since the last one written for the record (status,
// reasons, evidence, exception, deadline, or the policy bundle), kept in
// the last-results bucket (LastBucket). The first time it sees a production
// deployment of the record, it decides the deployment's verdict: the record
// judged as of the deployment's start. That verdict is kept in the verdicts
// bucket (VerdictBucket), created once and never changed, and written to
// deployment_verdicts. A queue entry is removed only once everything it
// caused is in ClickHouse; until then it is retried with backoff.
//
// One evaluation stage runs per deployment of evidenced (like the archive):
// two would each append the same changes to control_results.

// Buckets of the evaluation stage.
const (
	QueueBucket   = "EVIDENCE_EVAL_QUEUE"
	LastBucket    = "EVIDENCE_EVAL_LAST"
	VerdictBucket = "EVIDENCE_DEPLOYMENT_VERDICTS"
)

// Writer stores what the stage decided: ClickHouse's control_results and
// deployment_verdicts.
type Writer interface {
	Write(ctx context.Context, results []store.ControlResultRow, verdicts []store.DeploymentVerdictRow) error
}

// StoreWriter writes to the store Get returns; Get returns nil while there
// is none (ClickHouse not connected yet), and Write then fails with
// ErrNoStore, so the stage retries later.
type StoreWriter struct{ Get func() *store.Store }

// ErrNoStore: the store is not available yet.
var ErrNoStore = errors.New("ClickHouse not connected yet")

// Write implements Writer.
func (w StoreWriter) Write(ctx context.Context, results []store.ControlResultRow, verdicts []store.DeploymentVerdictRow) error {
	st := w.Get()
	if st == nil {
		return ErrNoStore
	}
	if err := st.InsertControlResults(ctx, results); err != nil {
		return err
	}
	return st.InsertDeploymentVerdicts(ctx, verdicts)
}

// StageConfig configures the evaluation stage.
type StageConfig struct {
	Params Params
	// Workers evaluate in parallel (default 2).
	Workers int
	// Batch is the most records evaluated and written together (default 256).
	Batch int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Publish, when set, receives every evaluation that changed a verdict
	// or decided a deployment's, once it is written.
	Publish func(Verdict)
	// VerdictDelay: a deployment's verdict is judged on the evidence that
	// arrived in the stream by the deployment's own arrival plus this
	// delay (still as of the deployment), so that evidence sent before it
	// but delivered after it (a merge webhook racing the pipeline's
	// deployment event) is counted. It is decided once the Watermark is
	// past that arrival cutoff. Zero: the evidence that arrived with it.
	VerdictDelay time.Duration
	// Watermark tells how far the correlation stage has come in stream
	// time (correlate.StreamWatermark). Nil: the clock (Now), for a stage
	// run over a reader that is not fed from the stream.
	Watermark Watermark
	// WatermarkInterval is how often the Watermark is read (default 200ms).
	WatermarkInterval time.Duration
	// Hold: a record queued because it was updated is judged no earlier
	// than Hold after that update was queued, and every further update
	// queued meanwhile is judged with it, in the same evaluation: a record
	// updated N times within the hold is judged once, as it stands after
	// the hold, instead of N times. The hold changes when a verdict is
	// computed, never what it is: a deployment's verdict is decided on the
	// record as of its arrival cutoff once the watermark is past it, and
	// the controls are judged as of the clock when the evaluation runs, as
	// they would be after any wait for a worker. Only updates are held
	// (not deadlines, nor a new bundle's re-judging). Zero: none.
	Hold time.Duration
	// Started, when set, is called once by Run when it has queued what a
	// new policy bundle asks to judge again and watches the queue: a
	// record enqueued after it is written no earlier than those (tests
	// wait on it instead of sleeping).
	Started func()
}

// Watermark is how far the correlation has come in stream time: every
// event that arrived before the time it returns has been correlated.
// correlate.StreamWatermark implements it.
type Watermark interface {
	Watermark(ctx context.Context) (time.Time, error)
}

// clockWatermark is the clock as a watermark.
type clockWatermark func() time.Time

func (c clockWatermark) Watermark(context.Context) (time.Time, error) { return c(), nil }

// Stage is the evaluation stage.
type Stage struct {
	engine   *Engine
	reader   correlate.Reader
	w        Writer
	cfg      StageConfig
	log      *slog.Logger
	stage    *metrics.Stage
	queue    jetstream.KeyValue
	last     jetstream.KeyValue
	verdicts jetstream.KeyValue

	wm      atomic.Int64  // the latest watermark read, ns since the epoch (0: none yet)
	wmMoved chan struct{} // signalled when it moves on
}

// NewStage creates (or opens) the stage's buckets.
func NewStage(ctx context.Context, js jetstream.JetStream, engine *Engine, reader correlate.Reader, w Writer, cfg StageConfig, log *slog.Logger, m *metrics.Metrics) (*Stage, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Watermark == nil {
		cfg.Watermark = clockWatermark(cfg.Now)
	}
	if cfg.WatermarkInterval <= 0 {
		cfg.WatermarkInterval = 200 * time.Millisecond
	}
	cfg.Params = cfg.Params.WithDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Stage{engine: engine, reader: reader, w: w, cfg: cfg, log: log.With("stage", "evaluate"), stage: m.Stage("evaluate"), wmMoved: make(chan struct{}, 1)}
	var err error
	if s.queue, err = OpenQueue(ctx, js); err != nil {
		return nil, err
	}
	for _, b := range []struct {
		dst  *jetstream.KeyValue
		name string
		desc string
	}{
		{&s.last, LastBucket, "the control results last written to ClickHouse, per change record"},
		{&s.verdicts, VerdictBucket, "the verdict in force at the moment of each production deployment, decided once"},
	} {
		if *b.dst, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, Description: b.desc, Storage: jetstream.FileStorage, History: 1,
		}); err != nil {
			return nil, fmt.Errorf("evaluate: bucket %s: %w", b.name, err)
		}
	}
	return s, nil
}

// OpenQueue creates (or opens) the queue bucket.
func OpenQueue(ctx context.Context, js jetstream.JetStream) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: QueueBucket, Description: "change records to evaluate: when, and why",
		Storage: jetstream.FileStorage, History: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("evaluate: bucket %s: %w", QueueBucket, err)
	}
	return kv, nil
}

func queueKey(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// task is a queue entry's value: evaluate the record once Due has passed
// and the correlation's watermark is past Watermark (zero: no wait), or
// once any of Or holds. A record waiting for the stream (a deployment's
// verdict, a deadline in stream terms) costs nothing while it waits: the
// scheduler holds it, nothing is written until it is evaluated.
type task struct {
	Due       time.Time `json:"due"`
	Trigger   string    `json:"trigger"`
	Watermark time.Time `json:"watermark,omitzero"`
	Or        []wake    `json:"or,omitempty"`
}

// wake is one condition for evaluating a record: the clock past Due and
// the watermark past Watermark.
type wake struct {
	Due       time.Time `json:"due"`
	Watermark time.Time `json:"watermark,omitzero"`
}

func (w wake) holds(now, wm time.Time) bool {
	return !w.Due.After(now) && (w.Watermark.IsZero() || wm.After(w.Watermark))
}

// wakes are the task's conditions.
func (t task) wakes() []wake {
	return append([]wake{{Due: t.Due, Watermark: t.Watermark}}, t.Or...)
}

// newTask makes the task for conditions (at least one): the earliest
// first.
func newTask(trigger string, ws []wake) task {
	ws = slices.Clone(ws)
	slices.SortFunc(ws, func(a, b wake) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return a.Watermark.Compare(b.Watermark)
	})
	ws = slices.Compact(ws)
	t := task{Due: ws[0].Due.UTC(), Trigger: trigger, Watermark: ws[0].Watermark.UTC()}
	for _, w := range ws[1:] {
		t.Or = append(t.Or, wake{Due: w.Due.UTC(), Watermark: w.Watermark.UTC()})
	}
	return t
}

// Enqueue asks for the records to be evaluated now, because they were
// updated. It returns once the queue holds them (up to 32 puts in flight).
func Enqueue(ctx context.Context, queue jetstream.KeyValue, ids []string, now time.Time) error {
	v, _ := json.Marshal(task{Due: now.UTC(), Trigger: TriggerUpdate})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, 32)
	)
	for _, id := range ids {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := queue.Put(ctx, queueKey(id), v); err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("evaluate: enqueue %q: %w", id, err)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return first
}

// entry is a queue entry as the scheduler holds it.
type entry struct {
	id      string
	key     string
	rev     uint64
	task    task
	attempt int
	retryAt time.Time
	// holdUntil: an update is held until then (StageConfig.Hold), from
	// the first update queued since the record was last judged.
	holdUntil time.Time
}

// ready reports whether the entry is to be evaluated now, at watermark
// wm; when not, next is the clock time at which it will be without the
// watermark moving (zero: only when the watermark moves on).
func (e *entry) ready(now, wm time.Time) (ok bool, next time.Time) {
	if e.retryAt.After(now) {
		return false, e.retryAt
	}
	if e.holdUntil.After(now) {
		return false, e.holdUntil
	}
	for _, w := range e.task.wakes() {
		if w.holds(now, wm) {
			return true, time.Time{}
		}
		if w.Watermark.IsZero() || wm.After(w.Watermark) {
			if next.IsZero() || w.Due.Before(next) {
				next = w.Due
			}
		}
	}
	return false, next
}

// watermark is the latest watermark read (zero: none yet).
func (s *Stage) watermark() time.Time {
	if ns := s.wm.Load(); ns != 0 {
		return time.Unix(0, ns).UTC()
	}
	return time.Time{}
}

// readWatermark reads the watermark and, when it moved on, signals Run.
func (s *Stage) readWatermark(ctx context.Context) {
	w, err := s.cfg.Watermark.Watermark(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Debug("evaluate: reading the correlation's watermark failed; will retry", "err", err)
		}
		return
	}
	if ns := w.UnixNano(); ns > s.wm.Load() {
		s.wm.Store(ns)
		select {
		case s.wmMoved <- struct{}{}:
		default:
		}
	}
}

// pollWatermark reads the watermark every WatermarkInterval until ctx ends.
func (s *Stage) pollWatermark(ctx context.Context) {
	t := time.NewTicker(s.cfg.WatermarkInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.readWatermark(ctx)
		}
	}
}

// Run evaluates queued records until ctx ends.
func (s *Stage) Run(ctx context.Context) error {
	if err := s.rejudge(ctx); err != nil {
		return err
	}
	s.readWatermark(ctx)
	pctx, stopPoll := context.WithCancel(ctx)
	defer stopPoll()
	go s.pollWatermark(pctx)
	w, err := s.queue.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("evaluate: watch %s: %w", QueueBucket, err)
	}
	defer func() { _ = w.Stop() }()
	if s.cfg.Started != nil {
		s.cfg.Started()
	}
	pending := map[string]*entry{}
	apply := func(kve jetstream.KeyValueEntry) {
		if kve == nil {
			return
		}
		if kve.Operation() != jetstream.KeyValuePut {
			delete(pending, kve.Key())
			return
		}
		raw, err := base64.RawURLEncoding.DecodeString(kve.Key())
		var t task
		if err == nil {
			err = json.Unmarshal(kve.Value(), &t)
		}
		if err != nil {
			s.log.Error("evaluate: dropping a malformed queue entry", "key", kve.Key(), "err", err)
			_ = s.queue.Delete(ctx, kve.Key(), jetstream.LastRevision(kve.Revision()))
			return
		}
		e := pending[kve.Key()]
		if e == nil {
			e = &entry{key: kve.Key(), id: string(raw)}
			pending[kve.Key()] = e
		}
		// The first update since the record was last judged starts the
		// hold; later ones join it. An entry is dropped from pending once
		// judged, so the next update starts a new hold.
		if s.cfg.Hold > 0 && t.Trigger == TriggerUpdate && e.holdUntil.IsZero() {
			e.holdUntil = t.Due.Add(s.cfg.Hold)
		}
		e.rev, e.task = kve.Revision(), t
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		// Take in whatever the watcher has, without blocking.
	drain:
		for {
			select {
			case kve, ok := <-w.Updates():
				if !ok {
					return fmt.Errorf("evaluate: queue watcher stopped")
				}
				apply(kve)
			default:
				break drain
			}
		}
		now, wm := s.cfg.Now(), s.watermark()
		var due []*entry
		next := time.Time{}
		for _, e := range pending {
			if ok, at := e.ready(now, wm); ok {
				due = append(due, e)
			} else if !at.IsZero() && (next.IsZero() || at.Before(next)) {
				next = at
			}
		}
		if len(due) > 0 {
			slices.SortFunc(due, func(a, b *entry) int { return a.task.Due.Compare(b.task.Due) })
			if len(due) > s.cfg.Batch {
				due = due[:s.cfg.Batch]
			}
			s.process(ctx, due, pending)
			if ctx.Err() != nil {
				return nil
			}
			continue
		}
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(now), time.Millisecond)
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case kve, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("evaluate: queue watcher stopped")
			}
			apply(kve)
		case <-s.wmMoved:
		case <-timer.C:
		}
	}
}

// bundleKey holds, in the last-results bucket, the hash of the bundle
// the stage last ran with ("." never appears in a record's key, which is
// base64url).
const bundleKey = "bundle.current"

// rejudge queues every record judged before when evidenced starts with
// another policy bundle than it last ran with, so that the verdicts in
// force are the new bundle's (trigger bundle) without waiting for new
// evidence. Deployment verdicts stay as decided.
func (s *Stage) rejudge(ctx context.Context) error {
	cur := s.engine.BundleHash()
	kve, err := s.last.Get(ctx, bundleKey)
	switch {
	case err == nil && string(kve.Value()) == cur:
		return nil
	case err != nil && !errors.Is(err, jetstream.ErrKeyNotFound):
		return fmt.Errorf("evaluate: last bundle: %w", err)
	}
	lister, err := s.last.ListKeys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		return fmt.Errorf("evaluate: list judged records: %w", err)
	}
	v, _ := json.Marshal(task{Due: s.cfg.Now().UTC(), Trigger: TriggerBundle})
	n := 0
	if lister != nil {
		for key := range lister.Keys() {
			if key == bundleKey {
				continue
			}
			if _, err := s.queue.Put(ctx, key, v); err != nil {
				return fmt.Errorf("evaluate: queue for the new bundle: %w", err)
			}
			n++
		}
	}
	if _, err := s.last.Put(ctx, bundleKey, []byte(cur)); err != nil {
		return fmt.Errorf("evaluate: note the bundle: %w", err)
	}
	if n > 0 {
		s.log.Info("evaluate: another policy bundle than last run: every judged change record is judged again", "records", n, "bundle_hash", cur)
	}
	return nil
}

// outcome is what evaluating one queued record gave.
type outcome struct {
	e        *entry
	results  []store.ControlResultRow // the rows to append: controls whose verdict changed
	verdicts []heldVerdict            // deployment verdicts decided and not yet written
	late     []heldLate               // late evidence noted and not yet written
	last     []byte                   // the new last-results value; nil: unchanged
	lastRev  uint64                   // its revision when read; 0: none
	wakes    []wake                   // when to evaluate it again (pending deadlines, verdicts not due yet); none: dequeue
	publish  *Verdict
	err      error
}

// heldVerdict is a deployment verdict as the verdicts bucket holds it.
type heldVerdict struct {
	v   DeploymentVerdict
	key string
	rev uint64
}

type storedVerdict struct {
	DeploymentVerdict
	// Written: the verdict is in deployment_verdicts.
	Written bool `json:"written"`
	// Late: evidence that arrived after the decision and would change it,
	// oldest first (the verdict above stays as decided).
	Late []LateEvidence `json:"late,omitempty"`
}

// heldLate is late evidence noted for a deployment, to be written and
// then added to its entry in the verdicts bucket.
type heldLate struct {
	key  string
	late LateEvidence
	rows []store.LateEvidenceRow
	note LateNote // as announced on LiveSubject
}

// LateWriter is implemented by a Writer that also keeps late evidence
// (deployment_late_evidence). StoreWriter does.
type LateWriter interface {
	WriteLate(ctx context.Context, rows []store.LateEvidenceRow) error
}

// WriteLate implements LateWriter.
func (w StoreWriter) WriteLate(ctx context.Context, rows []store.LateEvidenceRow) error {
	st := w.Get()
	if st == nil {
		return ErrNoStore
	}
	return st.InsertLateEvidence(ctx, rows)
}

// lastResults is the last-results bucket's value of a record: a digest of
// each control's verdict as last written, the bundle that judged, and the
// keys (in the verdicts bucket) of its deployments whose verdict is
// written, so that they are not looked up again at every evaluation.
type lastResults struct {
	Bundle   string            `json:"bundle"`
	Controls map[string]string `json:"controls"`
	Decided  []string          `json:"decided,omitempty"` // sorted
	// AsOf: per decided deployment (its key), the hash of the record last
	// judged again as of it for late evidence.
	AsOf map[string]string `json:"as_of,omitempty"`
}

// process evaluates a batch of due entries, writes what they gave in one
// round, and settles their queue entries.
func (s *Stage) process(ctx context.Context, due []*entry, pending map[string]*entry) {
	start := time.Now()
	s.stage.Received(len(due))
	outs := make([]outcome, len(due))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(s.cfg.Workers, len(due)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				outs[i] = s.evaluate(ctx, due[i])
			}
		}()
	}
	for i := range due {
		next <- i
	}
	close(next)
	wg.Wait()

	var results []store.ControlResultRow
	var verdicts []store.DeploymentVerdictRow
	var late []store.LateEvidenceRow
	for i := range outs {
		if o := &outs[i]; o.err == nil {
			results = append(results, o.results...)
			for _, h := range o.verdicts {
				verdicts = append(verdicts, VerdictRow(h.v))
			}
			for _, h := range o.late {
				late = append(late, h.rows...)
			}
		}
	}
	// Writing and settling go on through a shutdown (for a while), so that
	// a stop between the two does not leave rows written and their entry
	// queued (judged again at restart, the same rows appended twice). A
	// crash there still does: control_results is at-least-once.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var werr error
	if len(results) > 0 || len(verdicts) > 0 {
		werr = s.w.Write(wctx, results, verdicts)
	}
	if lw, ok := s.w.(LateWriter); ok && werr == nil && len(late) > 0 {
		werr = lw.WriteLate(wctx, late)
	}
	now := s.cfg.Now()
	written := 0
	for i := range outs {
		o := &outs[i]
		switch {
		case o.err != nil:
			if ctx.Err() == nil {
				s.log.Warn("evaluate: evaluating a change record failed; will retry", "change", o.e.id, "attempt", o.e.attempt+1, "err", o.err)
			}
		case werr != nil:
			o.err = werr
		default:
			if err := s.settle(wctx, o); err != nil {
				o.err = err
				if ctx.Err() == nil {
					s.log.Warn("evaluate: settling a queue entry failed; will retry", "change", o.e.id, "err", err)
				}
			}
		}
		if o.err != nil {
			o.e.attempt++
			o.e.retryAt = now.Add(min(time.Duration(1)<<min(o.e.attempt, 5)*time.Second/2, 30*time.Second))
			s.stage.Failed("retry", 1)
			continue
		}
		written++
		if o.publish != nil && s.cfg.Publish != nil {
			s.cfg.Publish(*o.publish)
		}
		// The watcher will report the delete or the update; drop the entry
		// now so that it is not taken again before that arrives.
		if pending[o.e.key] == o.e {
			delete(pending, o.e.key)
		}
	}
	if werr != nil && ctx.Err() == nil {
		lvl := slog.LevelWarn
		if errors.Is(werr, ErrNoStore) {
			lvl = slog.LevelDebug
		}
		s.log.Log(ctx, lvl, "evaluate: writing results failed; will retry", "records", len(due), "rows", len(results), "verdicts", len(verdicts), "err", werr)
	}
	s.stage.Written(written)
	s.stage.Since(start)
}

// settle notes what was written and removes or re-schedules the queue
// entry. An entry re-queued meanwhile (its revision moved on) is left
// alone: it is evaluated again.
func (s *Stage) settle(ctx context.Context, o *outcome) error {
	for _, h := range o.verdicts {
		b, _ := json.Marshal(storedVerdict{DeploymentVerdict: h.v, Written: true})
		if _, err := s.verdicts.Update(ctx, h.key, b, h.rev); err != nil && !isConflict(err) {
			return fmt.Errorf("verdict of deployment %s: %w", h.v.DeploymentKey, err)
		}
	}
	for _, h := range o.late {
		if err := s.noteLate(ctx, h); err != nil {
			return err
		}
	}
	if o.last != nil {
		var err error
		if o.lastRev == 0 {
			_, err = s.last.Create(ctx, o.e.key, o.last)
		} else {
			_, err = s.last.Update(ctx, o.e.key, o.last, o.lastRev)
		}
		if err != nil && !isConflict(err) {
			return fmt.Errorf("last results: %w", err)
		}
	}
	if len(o.wakes) > 0 {
		b, _ := json.Marshal(newTask(TriggerDeadline, o.wakes))
		if _, err := s.queue.Update(ctx, o.e.key, b, o.e.rev); err != nil && !isConflict(err) {
			return fmt.Errorf("schedule deadline: %w", err)
		}
		return nil
	}
	if err := s.queue.Delete(ctx, o.e.key, jetstream.LastRevision(o.e.rev)); err != nil && !isConflict(err) {
		return fmt.Errorf("dequeue: %w", err)
	}
	return nil
}

func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || strings.Contains(err.Error(), "wrong last sequence")
}

// evaluate judges one queued record: its controls now, and the verdict of
// each production deployment not judged before.
func (s *Stage) evaluate(ctx context.Context, e *entry) outcome {
	o := outcome{e: e}
	var (
		rec correlate.Record
		arr correlate.Arrivals
		ok  bool
		err error
	)
	if ar, isAR := s.reader.(correlate.ArrivalReader); isAR {
		rec, arr, ok, err = ar.ChangeArrivals(ctx, e.id)
	} else {
		rec, ok, err = s.reader.Change(ctx, e.id)
	}
	if err != nil {
		o.err = fmt.Errorf("read %s: %w", e.id, err)
		return o
	}
	if !ok {
		// Retired (an unmatched deployment since linked, a push since found
		// to be a merge): its results stay as they were; nothing to do.
		return o
	}
	now, wm := s.cfg.Now().UTC(), s.watermark()
	// Hashed once: every evaluation of it below names the same version.
	recHash := rec.Hash()
	res, err := s.engine.evaluateHashed(ctx, rec, recHash, now, s.cfg.Params, "")
	if err != nil {
		o.err = err
		return o
	}

	// The controls whose verdict changed since the last written.
	var prev lastResults
	switch kve, err := s.last.Get(ctx, e.key); {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		o.err = fmt.Errorf("last results of %s: %w", e.id, err)
		return o
	default:
		o.lastRev = kve.Revision()
		if err := json.Unmarshal(kve.Value(), &prev); err != nil {
			s.log.Warn("evaluate: unreadable last results; writing every result again", "change", e.id, "err", err)
			prev = lastResults{}
		}
	}
	trigger := e.task.Trigger
	if trigger == "" {
		trigger = TriggerUpdate
	}
	if prev.Bundle != "" && prev.Bundle != s.engine.BundleHash() {
		trigger = TriggerBundle
	}
	next := lastResults{Bundle: s.engine.BundleHash(), Controls: map[string]string{}}
	var changed []string
	for _, r := range res {
		fp := fingerprint(r)
		next.Controls[r.Control.ID] = fp
		if prev.Controls[r.Control.ID] != fp {
			changed = append(changed, r.Control.ID)
			o.results = append(o.results, ResultRow(rec, r, trigger))
		}
		if r.Status == Pending && r.Deadline != nil && r.Deadline.After(now) {
			o.wakes = append(o.wakes, s.deadlineWake(rec, arr, *r.Deadline, now))
		}
	}
	// The verdict at the moment of each production deployment.
	var decided []DeploymentVerdict
	next.Decided = slices.Clone(prev.Decided)
	for _, d := range rec.Deployments {
		if !s.production(d.Environment) {
			continue
		}
		key := verdictKey(d)
		if _, done := slices.BinarySearch(prev.Decided, key); done {
			// Decided: does evidence that arrived since change it?
			if prev.AsOf[key] == recHash {
				setAsOf(&next, key, recHash)
				continue
			}
			h, checked, err := s.lateEvidence(ctx, rec, recHash, arr, key, now)
			if err != nil {
				o.err = err
				return o
			}
			if h != nil {
				o.late = append(o.late, *h)
			}
			if checked {
				setAsOf(&next, key, recHash)
			}
			continue
		}
		h, isNew, wait, err := s.deploymentVerdict(ctx, rec, recHash, arr, d, key, now, wm)
		if err != nil {
			o.err = err
			return o
		}
		if !wait.IsZero() {
			o.wakes = append(o.wakes, wake{Due: now, Watermark: wait})
			continue
		}
		next.Decided = append(next.Decided, key) // written, or written with this round
		if h == nil {
			continue
		}
		o.verdicts = append(o.verdicts, *h)
		if isNew {
			decided = append(decided, h.v)
		}
		// Evidence already here that arrived after the cutoff and would
		// change the verdict is noted beside it at once.
		if h.v.RecordHash != recHash {
			l, err := s.lateAgainst(ctx, key, storedVerdict{DeploymentVerdict: h.v}, rec, recHash, arr, now)
			if err != nil {
				o.err = err
				return o
			}
			if l != nil {
				o.late = append(o.late, *l)
			}
		}
		setAsOf(&next, key, recHash)
	}
	slices.Sort(next.Decided)
	next.Decided = slices.Compact(next.Decided)
	if len(changed) > 0 || prev.Bundle != next.Bundle || !slices.Equal(prev.Decided, next.Decided) || !maps.Equal(prev.AsOf, next.AsOf) {
		o.last, _ = json.Marshal(next)
	}
	if len(changed) > 0 || len(decided) > 0 || len(o.late) > 0 {
		o.publish = &Verdict{
			Change: rec.ID, Repository: rec.Repository, Commit: rec.Commit,
			Environments: environments(rec), Services: services(rec),
			Status: Overall(res), Trigger: trigger, Results: res, Changed: changed,
			EvaluatedAt: now, Deployments: decided,
		}
		for _, h := range o.late {
			o.publish.Late = append(o.publish.Late, h.note)
		}
		if rec.PullRequest != nil {
			o.publish.Title = rec.PullRequest.Title
		}
	}
	return o
}

func (s *Stage) production(env string) bool {
	return slices.ContainsFunc(s.cfg.Params.ProductionEnvironments, func(p string) bool { return strings.EqualFold(p, env) })
}

// verdictKey is a deployment's key in the verdicts bucket.
func verdictKey(d correlate.Deployment) string {
	return queueKey(d.Environment + "\x00" + d.Service + "\x00" + chsink.DeploymentKey(d))
}

// deployedAt is when a deployment happened: its start, else its finish,
// else (neither known) now.
func deployedAt(d correlate.Deployment, now time.Time) time.Time {
	switch {
	case !d.StartedAt.IsZero():
		return d.StartedAt
	case !d.FinishedAt.IsZero():
		return d.FinishedAt
	}
	return now
}

// production is the first production deployment of the record (by
// deployedAt), the one the controls' deadlines are relative to.
func (s *Stage) firstProduction(rec correlate.Record, now time.Time) (correlate.Deployment, bool) {
	var first correlate.Deployment
	found := false
	for _, d := range rec.Deployments {
		if s.production(d.Environment) && (!found || deployedAt(d, now).Before(deployedAt(first, now))) {
			first, found = d, true
		}
	}
	return first, found
}

// arrivedAt is when the deployment arrived in the stream: its first
// event's arrival; when no arrival is known (facts stored by an earlier
// version, a reader not fed from the stream), its own time.
func arrivedAt(arr correlate.Arrivals, d correlate.Deployment, now time.Time) time.Time {
	if a := arr.First(d.Events); !a.IsZero() {
		return a
	}
	return deployedAt(d, now)
}

// deadlineWake is when a pending deadline passes, in stream terms: a
// deadline relative to the record's first production deployment (every
// built-in one is) passes when the clock is past it and the watermark is
// past the deployment's arrival plus the same offset, so that evidence
// that arrived in time but is not correlated yet still counts.
func (s *Stage) deadlineWake(rec correlate.Record, arr correlate.Arrivals, deadline, now time.Time) wake {
	d, ok := s.firstProduction(rec, now)
	if !ok {
		return wake{Due: deadline}
	}
	return wake{Due: deadline, Watermark: arrivedAt(arr, d, now).Add(deadline.Sub(deployedAt(d, now)))}
}

// deploymentVerdict returns the deployment's verdict when it still has to
// be written (nil when it was), deciding it first if it never was (isNew).
// It is decided once the watermark wm is past the deployment's arrival
// plus VerdictDelay (the arrival cutoff), on the record derived from the
// evidence that arrived by the cutoff; before that it gives nil and the
// cutoff to wait for.
func (s *Stage) deploymentVerdict(ctx context.Context, rec correlate.Record, recHash string, arr correlate.Arrivals, d correlate.Deployment, key string, now, wm time.Time) (h *heldVerdict, isNew bool, wait time.Time, err error) {
	dk := chsink.DeploymentKey(d)
	for range 3 {
		kve, err := s.verdicts.Get(ctx, key)
		if err == nil {
			var sv storedVerdict
			if err := json.Unmarshal(kve.Value(), &sv); err != nil {
				return nil, false, wait, fmt.Errorf("verdict of deployment %s: %w", dk, err)
			}
			if sv.Written {
				return nil, false, wait, nil
			}
			return &heldVerdict{v: sv.DeploymentVerdict, key: key, rev: kve.Revision()}, false, wait, nil
		}
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, false, wait, fmt.Errorf("verdict of deployment %s: %w", dk, err)
		}
		cutoff := arrivedAt(arr, d, now).Add(s.cfg.VerdictDelay).UTC()
		if !wm.After(cutoff) {
			return nil, false, cutoff, nil
		}
		// The record as it stood at the cutoff: what live delivery would
		// have judged.
		judged, jd, judgedHash := rec, d, recHash
		if ar, ok := s.reader.(correlate.ArrivalReader); ok {
			r, dd, found, err := ar.DeploymentAsOf(ctx, rec.ID, d, cutoff)
			if err != nil {
				return nil, false, wait, fmt.Errorf("verdict of deployment %s: the record as of %s: %w", dk, cutoff, err)
			}
			if found {
				judged, jd, judgedHash = r, dd, r.Hash()
			}
		}
		at := deployedAt(jd, now)
		// The deployment is judged on what it deployed: the provenance of
		// its own artifact, not of the change's others.
		res, err := s.engine.evaluateHashed(ctx, judged, judgedHash, at, s.cfg.Params, deployedArtifact(jd))
		if err != nil {
			return nil, false, wait, err
		}
		v := DeploymentVerdict{
			Environment: d.Environment, Service: d.Service, DeploymentKey: dk, DeploymentID: d.DeploymentID,
			Change: judged.ID, Repository: judged.Repository, Commit: jd.Commit, DeployedAt: at.UTC(),
			Verdict: Overall(res), Failing: ByStatus(res, Fail), Pending: ByStatus(res, Pending), Waived: ByStatus(res, Waived),
			Results: res, RecordHash: judgedHash, BundleHash: s.engine.BundleHash(), DecidedAt: now, ArrivedBy: cutoff,
		}
		if jd.Deployer != nil {
			v.Deployer = jd.Deployer.Login
		}
		if v.Commit == "" {
			v.Commit = judged.Commit
		}
		b, _ := json.Marshal(storedVerdict{DeploymentVerdict: v})
		rev, err := s.verdicts.Create(ctx, key, b)
		if err == nil {
			return &heldVerdict{v: v, key: key, rev: rev}, true, wait, nil
		}
		if !isConflict(err) {
			return nil, false, wait, fmt.Errorf("verdict of deployment %s: %w", dk, err)
		}
		// Decided meanwhile by another evaluation: take that one.
	}
	return nil, false, wait, fmt.Errorf("verdict of deployment %s: kept changing", dk)
}

func setAsOf(l *lastResults, key, hash string) {
	if l.AsOf == nil {
		l.AsOf = map[string]string{}
	}
	l.AsOf[key] = hash
}

// lateEvidence judges the record again as of a decided deployment (key),
// with every fact arrived so far, and returns what differs from the
// verdict as decided (or as last noted late): nil when nothing does.
// checked is false when the verdict is not there to compare with yet
// (not written), so the comparison is made again later. A verdict
// decided under another bundle, or before arrival cutoffs were kept, is
// not compared: its differences are not late evidence.
func (s *Stage) lateEvidence(ctx context.Context, rec correlate.Record, recHash string, arr correlate.Arrivals, key string, now time.Time) (h *heldLate, checked bool, err error) {
	kve, err := s.verdicts.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("verdict %s: %w", key, err)
	}
	var sv storedVerdict
	if err := json.Unmarshal(kve.Value(), &sv); err != nil {
		return nil, false, fmt.Errorf("verdict %s: %w", key, err)
	}
	if !sv.Written {
		return nil, false, nil
	}
	h, err = s.lateAgainst(ctx, key, sv, rec, recHash, arr, now)
	return h, err == nil, err
}

// lateAgainst is lateEvidence against the verdict sv.
func (s *Stage) lateAgainst(ctx context.Context, key string, sv storedVerdict, rec correlate.Record, recHash string, arr correlate.Arrivals, now time.Time) (*heldLate, error) {
	if sv.ArrivedBy.IsZero() || sv.BundleHash != s.engine.BundleHash() {
		return nil, nil
	}
	// Judged as the verdict was: on the deployment's own artifact.
	artifact := ""
	for _, d := range rec.Deployments {
		if verdictKey(d) == key {
			artifact = deployedArtifact(d)
			break
		}
	}
	res, err := s.engine.evaluateHashed(ctx, rec, recHash, sv.DeployedAt, s.cfg.Params, artifact)
	if err != nil {
		return nil, err
	}
	decided := map[string]Status{}
	for _, r := range sv.Results {
		decided[r.Control.ID] = r.Status
	}
	base := maps.Clone(decided)
	for _, l := range sv.Late {
		for _, c := range l.Controls {
			base[c.Control] = c.Late
		}
	}
	late := LateEvidence{Change: rec.ID, RecordHash: recHash, NotedAt: now, Events: []string{}}
	for _, r := range res {
		if r.Status != base[r.Control.ID] {
			late.Controls = append(late.Controls, LateControl{Control: r.Control.ID, Decided: decided[r.Control.ID], Late: r.Status, Reasons: orEmpty(r.Reasons)})
		}
	}
	if len(late.Controls) == 0 {
		return nil, nil
	}
	for _, e := range arr.After(sv.ArrivedBy) {
		late.Events = append(late.Events, e.String())
	}
	h := &heldLate{key: key, late: late, note: LateNote{Environment: sv.Environment, Service: sv.Service, DeploymentKey: sv.DeploymentKey,
		DeployedAt: sv.DeployedAt, Verdict: sv.Verdict, ArrivedBy: sv.ArrivedBy, LateEvidence: late}}
	for _, c := range late.Controls {
		h.rows = append(h.rows, store.LateEvidenceRow{
			Environment: sv.Environment, Service: sv.Service, DeploymentKey: sv.DeploymentKey, ChangeID: rec.ID,
			ControlID: c.Control, DecidedStatus: string(c.Decided), LateStatus: string(c.Late), LateReasons: c.Reasons,
			LateEvents: late.Events, ArrivedByNs: sv.ArrivedBy.UnixNano(), RecordHash: late.RecordHash,
			BundleHash: s.engine.BundleHash(), NotedNs: now.UnixNano(),
		})
	}
	return h, nil
}

// noteLate adds late evidence to its verdict's entry in the verdicts
// bucket (the verdict itself unchanged), retrying on a concurrent update.
func (s *Stage) noteLate(ctx context.Context, h heldLate) error {
	for range 5 {
		kve, err := s.verdicts.Get(ctx, h.key)
		if err != nil {
			return fmt.Errorf("late evidence of verdict %s: %w", h.key, err)
		}
		var sv storedVerdict
		if err := json.Unmarshal(kve.Value(), &sv); err != nil {
			return fmt.Errorf("late evidence of verdict %s: %w", h.key, err)
		}
		sv.Late = append(sv.Late, h.late)
		b, _ := json.Marshal(sv)
		if _, err := s.verdicts.Update(ctx, h.key, b, kve.Revision()); err == nil {
			return nil
		} else if !isConflict(err) {
			return fmt.Errorf("late evidence of verdict %s: %w", h.key, err)
		}
	}
	return fmt.Errorf("late evidence of verdict %s: kept changing", h.key)
}

// deployedArtifact is what a deployment names as deployed: its digest,
// else its purl; "" when it names neither (the controls then judge the
// change's production deployments as a whole, this one among them).
func deployedArtifact(d correlate.Deployment) string {
	if d.Digest != "" {
		return d.Digest
	}
	return d.Purl
}

// fingerprint digests what makes a control's verdict: a change in any of
// it is a new row in control_results.
func fingerprint(r Result) string {
	h := sha256.New()
	b, _ := json.Marshal([]any{r.Status, r.Reasons, r.Evidence, r.Exception, r.Deadline, r.BundleHash, r.Control.Title, r.Control.Severity})
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil)[:16])
}

func environments(rec correlate.Record) []string {
	var out []string
	for _, d := range rec.Deployments {
		out = append(out, d.Environment)
	}
	slices.Sort(out)
	return slices.Compact(orEmpty(out))
}

func services(rec correlate.Record) []string {
	var out []string
	for _, d := range rec.Deployments {
		out = append(out, d.Service)
	}
	slices.Sort(out)
	return slices.Compact(orEmpty(out))
}

// ResultRow is a result's row of control_results.
func ResultRow(rec correlate.Record, r Result, trigger string) store.ControlResultRow {
	row := store.ControlResultRow{
		ChangeID: r.Change, ControlID: r.Control.ID, ControlTitle: r.Control.Title, Severity: r.Control.Severity,
		Status: string(r.Status), Reasons: r.Reasons, Evidence: r.Evidence, ExceptionID: r.Exception,
		Repository: rec.Repository, Environments: environments(rec), Services: services(rec),
		RecordHash: r.RecordHash, BundleHash: r.BundleHash, Trigger: trigger, EvaluatedNs: r.EvaluatedAt.UnixNano(),
	}
	if r.Deadline != nil {
		row.DeadlineNs = r.Deadline.UnixNano()
	}
	return row
}

// resultJSON is a result as deployment_verdicts.results holds it.
type resultJSON struct {
	Control   string     `json:"control"`
	Title     string     `json:"title"`
	Severity  string     `json:"severity"`
	Status    Status     `json:"status"`
	Reasons   []string   `json:"reasons"`
	Evidence  []string   `json:"evidence"`
	Exception string     `json:"exception,omitempty"`
	Deadline  *time.Time `json:"deadline,omitempty"`
}

// VerdictRow is a deployment verdict's row of deployment_verdicts.
func VerdictRow(v DeploymentVerdict) store.DeploymentVerdictRow {
	rs := make([]resultJSON, len(v.Results))
	for i, r := range v.Results {
		rs[i] = resultJSON{Control: r.Control.ID, Title: r.Control.Title, Severity: r.Control.Severity, Status: r.Status,
			Reasons: orEmpty(r.Reasons), Evidence: orEmpty(r.Evidence), Exception: r.Exception, Deadline: r.Deadline}
	}
	b, _ := json.Marshal(rs)
	return store.DeploymentVerdictRow{
		Environment: v.Environment, Service: v.Service, DeploymentKey: v.DeploymentKey, DeploymentID: v.DeploymentID,
		ChangeID: v.Change, Repository: v.Repository, Commit: v.Commit, Deployer: v.Deployer, DeployedNs: v.DeployedAt.UnixNano(),
		Verdict: string(v.Verdict), Failing: v.Failing, Pending: v.Pending, Waived: v.Waived, Results: string(b),
		RecordHash: v.RecordHash, BundleHash: v.BundleHash, DecidedAt: v.DecidedAt,
	}
}
