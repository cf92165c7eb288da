// Package archive is the stage that writes every event of the event stream
// to the ClickHouse events table: in stream order, in batches, exactly once,
// each row hash-chained to the one before it.
//
// One archive writes at a time: the hash chain has a single writer. With
// several evidenced replicas, the daemon runs the archive under a lease
// (bus.RunLeased) and fences every INSERT with it (Config.Fence).
//
// Exactly once: ClickHouse is the record of progress. At start the archive
// reads the newest archived stream sequence and its hash, and recreates its
// durable JetStream consumer right after it; every message at or below that
// sequence is skipped. A batch is acknowledged on JetStream (AckAll on
// its last message) only after ClickHouse has stored it, so a crash between
// the two replays the batch, which is then skipped.
//
// ClickHouse unreachable: the batch is retried with backoff, forever, while
// the events wait in JetStream; ingestion is unaffected. A message that can
// never be archived (not a valid event, or refused by ClickHouse row by
// row) goes to the dead-letter stream with the reason.
package archive

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/tlog"
)

// Config tunes the archive. Zero values take the defaults.
type Config struct {
	// Consumer is the durable consumer's name (default "archive").
	Consumer string
	// BatchSize is the most rows per INSERT (default 10000). ClickHouse
	// wants big batches: 18.16 takes ~50k rows/s at 10k rows per insert
	// and a tenth of that at 100.
	BatchSize int
	// FlushInterval is the longest an event waits for its batch to fill
	// (default 200ms).
	FlushInterval time.Duration
	// MaxBackoff caps the wait between retries when ClickHouse fails
	// (default 10s).
	MaxBackoff time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before
	// redelivering (default 2m). While ClickHouse is down the archive
	// keeps its batch in progress.
	AckWait time.Duration
	// Fence, when set, is asked before each INSERT whether the archive may
	// write, and until when (the archive lease: bus.Held.Valid); a refusal
	// stops Run.
	Fence func() (time.Time, error)
}

func (c *Config) defaults() {
	if c.Consumer == "" {
		c.Consumer = "archive"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 10000
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 200 * time.Millisecond
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.AckWait <= 0 {
		c.AckWait = 2 * time.Minute
	}
}

// Hooks let tests and benchmarks observe or interrupt the archive.
type Hooks struct {
	// AfterInsert runs after a batch is stored in ClickHouse and before it
	// is acknowledged; an error stops Run at once, as a crash would.
	AfterInsert func(rows []store.EventRow) error
	// Committed runs after a batch is stored and acknowledged.
	Committed func(rows []store.EventRow)
}

// Archive is the archive stage.
type Archive struct {
	js    jetstream.JetStream
	st    *store.Store
	cfg   Config
	log   *slog.Logger
	stage *metrics.Stage
	lag   prometheus.Gauge
	hooks Hooks

	lastSeq  uint64
	lastHash string
	canon    bytes.Buffer // the writer's scratch for canonical encodings
	tlog     *tlog.Log    // the transparency log, opened at the first batch (log.go)
}

// New returns an archive reading js's event stream into st. log and m may
// be nil.
func New(js jetstream.JetStream, st *store.Store, cfg Config, log *slog.Logger, m *metrics.Metrics, hooks Hooks) *Archive {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Archive{js: js, st: st, cfg: cfg, log: log.With("stage", "archive"), stage: m.Stage("archive"), hooks: hooks}
	if m != nil {
		a.lag = prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "evidence_archive_lag_events", Help: "Events in the stream not yet archived, as of the last batch.",
		})
		_ = m.Registerer().Register(a.lag)
	}
	return a
}

// pending is a message accepted into the current batch.
type pending struct {
	msg   jetstream.Msg
	row   store.EventRow
	event *ce.Event // encoded canonically into the chain
}

// Run archives until ctx ends; it returns nil then, after the batch in hand
// is stored or abandoned unacknowledged (to be replayed by the next run).
// It returns an error only for what a retry cannot fix.
func (a *Archive) Run(ctx context.Context) error {
	cons, err := a.position(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * a.cfg.BatchSize))
	if err != nil {
		return fmt.Errorf("archive: consume: %w", err)
	}
	defer it.Stop()
	// Stop the iterator when ctx ends so that Next returns.
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()

	// The writer stores batches in order while the reader prepares the
	// next one: parsing overlaps the INSERT.
	w := a.startWriter()
	defer w.close()

	watch := stallWatch{last: time.Now(), log: a.log}
	readSeq := a.lastSeq // highest sequence taken into a batch
	batch := make([]pending, 0, a.cfg.BatchSize)
	var month int64 = -1
	var deadline time.Time
	var skipped jetstream.Msg // newest message skipped as already archived
	hand := func(c context.Context) error {
		err := w.send(c, batch)
		batch, month = make([]pending, 0, a.cfg.BatchSize), -1
		return err
	}
	for {
		if err := w.failed(); err != nil {
			return a.stopErr(ctx, err)
		}
		wait := a.cfg.FlushInterval
		if len(batch) > 0 {
			wait = time.Until(deadline)
		}
		var msg jetstream.Msg
		if wait > 0 {
			msg, err = it.Next(jetstream.NextMaxWait(wait))
		} else {
			err = nats.ErrTimeout
		}
		switch {
		case err == nil:
		case errors.Is(err, jetstream.ErrMsgIteratorClosed) || ctx.Err() != nil:
			if len(batch) > 0 {
				// Store what is in hand if ClickHouse answers promptly;
				// otherwise leave it to be replayed.
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				_ = hand(fctx)
				w.close()
				cancel()
			}
			return nil
		case errors.Is(err, nats.ErrTimeout):
			if len(batch) > 0 {
				if err := hand(ctx); err != nil {
					return a.stopErr(ctx, err)
				}
			} else if skipped != nil {
				_ = skipped.Ack()
				skipped = nil
			} else if err := watch.idle(ctx, cons, readSeq); err != nil {
				return a.stopErr(ctx, err)
			}
			continue
		default:
			return fmt.Errorf("archive: next message: %w", err)
		}

		watch.received()
		md, err := msg.Metadata()
		if err != nil {
			a.deadLetter(ctx, msg, "no JetStream metadata: "+err.Error())
			continue
		}
		seq := md.Sequence.Stream
		if seq <= readSeq {
			skipped = msg // already archived (a replay after a crash or a redelivery)
			continue
		}
		if seq > readSeq+1 && readSeq > 0 {
			// A sequence skipped: make sure it was not an event lost
			// between JetStream and here (a client-side drop when a
			// cluster fails over), else the batch's AckAll would
			// acknowledge it unarchived.
			if err := a.checkSkipped(ctx, readSeq+1, seq-1); err != nil {
				if len(batch) > 0 {
					if herr := hand(ctx); herr != nil {
						return a.stopErr(ctx, herr)
					}
				}
				w.close()
				if werr := w.failed(); werr != nil {
					return a.stopErr(ctx, werr)
				}
				return a.stopErr(ctx, err)
			}
		}
		readSeq = seq
		a.stage.Received(1)
		e, err := ce.ParseStored(msg.Data())
		if err != nil {
			a.deadLetter(ctx, msg, "not a valid CloudEvent: "+err.Error())
			continue
		}
		row := rowFromEvent(e, seq, md.Timestamp.UnixNano())
		// One INSERT stays within one partition (month), so that it is
		// atomic.
		if m := monthOf(row.ReceivedNs); month != -1 && m != month {
			if err := hand(ctx); err != nil {
				return a.stopErr(ctx, err)
			}
		}
		month = monthOf(row.ReceivedNs)
		if len(batch) == 0 {
			deadline = time.Now().Add(a.cfg.FlushInterval)
		}
		batch = append(batch, pending{msg: msg, row: row, event: e})
		if len(batch) >= a.cfg.BatchSize {
			if err := hand(ctx); err != nil {
				return a.stopErr(ctx, err)
			}
		}
		if a.lag != nil {
			a.lag.Set(float64(md.NumPending))
		}
	}
}

// writer stores batches one after the other, in the order given.
type writer struct {
	jobs chan job
	errc chan error
	done chan struct{}
	once sync.Once
}

type job struct {
	ctx   context.Context
	batch []pending
}

func (a *Archive) startWriter() *writer {
	w := &writer{jobs: make(chan job, 1), errc: make(chan error, 1), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for j := range w.jobs {
			if err := a.flush(j.ctx, j.batch); err != nil {
				w.errc <- err
				// Leave the rest unacknowledged: it is replayed.
				for range w.jobs {
				}
				return
			}
		}
	}()
	return w
}

// send queues a batch, waiting while the writer is busy with the previous
// one; it returns the writer's error, if it failed, or ctx's if ctx ends
// first. A batch that could not be queued must be the last one the
// writer is given: a later batch stored without it would leave a gap of
// stream sequences that the next run, resuming after the highest one
// stored, would never fill. So Run stops at any error from send.
func (w *writer) send(ctx context.Context, b []pending) error {
	select {
	case w.jobs <- job{ctx: ctx, batch: b}:
		return nil
	case err := <-w.errc:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failed returns the writer's error without waiting, or nil.
func (w *writer) failed() error {
	select {
	case err := <-w.errc:
		return err
	default:
		return nil
	}
}

// close waits for the queued batches to be stored (or abandoned).
func (w *writer) close() {
	w.once.Do(func() { close(w.jobs) })
	<-w.done
}

func (a *Archive) stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func monthOf(ns int64) int64 {
	t := time.Unix(0, ns).UTC()
	return int64(t.Year())*12 + int64(t.Month())
}

// position reads the resume point from ClickHouse (waiting for it to be
// reachable) and returns the durable consumer positioned right after it.
func (a *Archive) position(ctx context.Context) (jetstream.Consumer, error) {
	err := a.retry(ctx, "read resume point", nil, func() error {
		if err := a.awaitInflight(ctx); err != nil {
			return err
		}
		seq, hash, err := a.st.LastEvent(ctx)
		if errors.Is(err, store.ErrEmpty) {
			seq, hash, err = 0, GenesisHash, nil
		}
		a.lastSeq, a.lastHash = seq, hash
		return err
	})
	if err != nil {
		return nil, err
	}
	stream, err := a.js.Stream(ctx, bus.EventStream)
	if err != nil {
		return nil, fmt.Errorf("archive: stream %s: %w", bus.EventStream, err)
	}
	if err := a.checkStream(ctx, stream); err != nil {
		return nil, err
	}
	if err := a.mayWrite(); err != nil {
		return nil, err
	}
	// The consumer is recreated at every start, positioned by ClickHouse:
	// an existing one may hold messages delivered to the previous run and
	// not acknowledged, which JetStream would only redeliver after AckWait.
	switch err := stream.DeleteConsumer(ctx, a.cfg.Consumer); {
	case err == nil, errors.Is(err, jetstream.ErrConsumerNotFound):
	default:
		return nil, fmt.Errorf("archive: reposition consumer %s: %w", a.cfg.Consumer, err)
	}
	cc := jetstream.ConsumerConfig{
		Durable:       a.cfg.Consumer,
		Description:   "evidenced archive: events -> ClickHouse",
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       a.cfg.AckWait,
		MaxAckPending: -1,
		FilterSubject: bus.EventSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if a.lastSeq > 0 {
		cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, a.lastSeq+1
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("archive: create consumer: %w", err)
	}
	a.log.Info("archive starting", "after_seq", a.lastSeq)
	return cons, nil
}

// commitGrace bounds how long a batch whose rows are stored may take to
// be finished once the archive is asked to stop.
const commitGrace = 10 * time.Second

// outliving returns a context that ends grace after ctx does (or when
// the returned cancel is called).
func outliving(ctx context.Context, grace time.Duration) (context.Context, context.CancelFunc) {
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(grace, cancel) })
	return octx, func() { stop(); cancel() }
}

// flush chains and stores the batch, retrying while ClickHouse is
// unavailable, then acknowledges it.
func (a *Archive) flush(ctx context.Context, batch []pending) error {
	if len(batch) == 0 {
		return nil
	}
	start := time.Now()
	rows := a.chain(a.lastHash, batch)
	// An INSERT in flight when the archive is stopped is let finish (for
	// commitGrace): cancelling it would leave its outcome unknown, the
	// rows perhaps stored while the archive believes they are not. No new
	// attempt starts after the stop (retry watches ctx).
	octx, cancel := outliving(ctx, commitGrace)
	defer cancel()
	attempts := 0
	err := a.retry(ctx, "insert batch", batch, func() error {
		attempts++
		err := a.insert(octx, rows)
		if err != nil && store.IsPermanent(err) && attempts >= 3 {
			return errPermanent{err}
		}
		return err
	})
	var perm errPermanent
	if errors.As(err, &perm) {
		a.log.Error("archive: ClickHouse refuses the batch; storing row by row", "rows", len(rows), "err", perm.err)
		rows, err = a.insertOneByOne(ctx, batch)
	}
	if err != nil {
		return err
	}
	// The rows are stored: finish the batch (its leaves and tiles, its
	// acknowledgement) even when the archive is being stopped, so that a
	// graceful stop never leaves stored rows outside the log and
	// unsigned until the next start. A ClickHouse that does not answer
	// within commitGrace leaves it to that next start, which repairs it.
	if ctx.Err() != nil {
		// Stopped: finish only while this replica still holds the
		// archive lease; one that lost it leaves the tiles to the writer
		// that took over (which builds them from the stored rows).
		if err := a.mayWrite(); err != nil {
			return err
		}
	}
	if err := a.appendLog(octx, rows); err != nil {
		return err
	}
	if a.hooks.AfterInsert != nil {
		if err := a.hooks.AfterInsert(rows); err != nil {
			return err
		}
	}
	last := batch[len(batch)-1].msg
	if err := last.Ack(); err != nil {
		// The rows are stored; a lost ack means a replay, which is skipped.
		a.log.Warn("archive: ack failed; the batch will be replayed and skipped", "err", err)
	}
	if len(rows) > 0 {
		a.lastSeq, a.lastHash = rows[len(rows)-1].StreamSeq, rows[len(rows)-1].Hash
	}
	a.lastSeq = max(a.lastSeq, batch[len(batch)-1].row.StreamSeq)
	a.stage.Written(len(rows))
	a.stage.Since(start)
	if a.hooks.Committed != nil {
		a.hooks.Committed(rows)
	}
	return nil
}

type errPermanent struct{ err error }

func (e errPermanent) Error() string { return e.err.Error() }

// chain returns the rows of the batch with prev_hash and hash set,
// starting from prev. It runs in the writer only (it reuses a.canon).
func (a *Archive) chain(prev string, batch []pending) []store.EventRow {
	rows := make([]store.EventRow, len(batch))
	for i := range batch {
		r := batch[i].row
		r.PrevHash = prev
		a.canon.Reset()
		batch[i].event.WriteCanonical(&a.canon)
		r.Hash = chainHash(prev, r.StreamSeq, r.ReceivedNs, a.canon.Bytes())
		rows[i] = r
		prev = r.Hash
	}
	return rows
}

// insertOneByOne stores a batch that ClickHouse refused as a whole, one
// row at a time, sending the rows it refuses to the dead-letter stream and
// chaining the rest. It returns the rows stored.
func (a *Archive) insertOneByOne(ctx context.Context, batch []pending) ([]store.EventRow, error) {
	var stored []store.EventRow
	prev := a.lastHash
	for i := range batch {
		p := batch[i]
		rows := a.chain(prev, batch[i:i+1])
		attempts := 0
		err := a.retry(ctx, "insert row", nil, func() error {
			attempts++
			err := a.insert(ctx, rows)
			if err != nil && store.IsPermanent(err) && attempts >= 2 {
				return errPermanent{err}
			}
			return err
		})
		var perm errPermanent
		switch {
		case errors.As(err, &perm):
			a.deadLetter(ctx, p.msg, "refused by ClickHouse: "+perm.err.Error())
		case err != nil:
			return stored, err
		default:
			stored = append(stored, rows[0])
			prev = rows[0].Hash
		}
	}
	return stored, nil
}

// retry runs op until it succeeds, returns errPermanent, or ctx ends,
// waiting with exponential backoff between attempts. While it waits it
// keeps the batch's messages in progress so JetStream does not redeliver
// them.
func (a *Archive) retry(ctx context.Context, what string, batch []pending, op func() error) error {
	backoff := 100 * time.Millisecond
	var lastTouch time.Time
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			if attempt > 1 {
				a.log.Info("archive: ClickHouse available again", "op", what, "attempts", attempt)
			}
			return nil
		}
		var perm errPermanent
		var fenced errFenced
		if errors.As(err, &perm) || errors.As(err, &fenced) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		a.stage.Failed("unavailable", 1)
		if attempt == 1 || attempt%10 == 0 {
			a.log.Warn("archive: ClickHouse failed; retrying", "op", what, "attempt", attempt, "backoff", backoff, "err", err)
		}
		if len(batch) > 0 && time.Since(lastTouch) > a.cfg.AckWait/3 {
			for _, p := range batch {
				_ = p.msg.InProgress()
			}
			lastTouch = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, a.cfg.MaxBackoff)
	}
}

// deadLetter moves a message that cannot be archived to the dead-letter
// stream and acknowledges it; until the dead-letter stream takes it, the
// message stays unacknowledged (and will be redelivered).
func (a *Archive) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) {
	a.stage.Failed("dead_letter", 1)
	a.log.Error("archive: event dead-lettered", "subject", msg.Subject(), "reason", reason)
	if err := bus.DeadLetter(ctx, a.js, "archive", msg, reason); err != nil {
		a.log.Error("archive: dead-letter failed; message left unacknowledged", "err", err)
		return
	}
	_ = msg.Term()
}
