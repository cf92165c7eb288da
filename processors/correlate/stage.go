package correlate

// The correlation stage: events from the stream, facts into the KV bucket,
// change records out to a Sink.
//
// # Flow
//
// [Stage.Run] pulls batches from EVIDENCE_EVENTS through its durable
// consumer (correlate, explicit acks) and, for each batch:
//
//  1. parses each message (ce.ParseStored) and extracts its facts, each
//     carrying the message's stream timestamp (Fact.Arrived); a message
//     that is not a CloudEvent, or whose catalog data cannot be read, goes
//     to the dead-letter stream (bus.DeadLetter, stage "correlate", the
//     reason in Evidence-Dlq-Reason) and is acknowledged;
//  2. merges the facts into the bucket ([KVState.Merge]); a fact refused
//     (an entry grown past the bucket's value size, a key too long) has
//     its event dead-lettered with the error naming the key;
//  3. finds the records the facts may change ([State.Affected], over the
//     entries it reads) and derives them from the bucket; in steps 2 and
//     3 the stage takes the entries its KVState's cache holds for the
//     bucket's while the bucket moved by its own writes alone (see
//     entryCache), and reads the others;
//  4. gives the records to the sink (Put; PutEncoded, with the canonical
//     JSON and hash the stage computed, to an [EncodedSink]) but for
//     those derived to the version it put last (see writtenCache), and
//     the ids that no longer derive a record (an unmatched deployment
//     since linked, a direct push since found to be a merge) to its
//     Retire method when it has one ([Retirer]);
//  5. acknowledges the batch.
//
// Until the sink has taken the records the batch stays unacknowledged
// and in progress on JetStream (it is not redelivered meanwhile): a
// failing sink or KV is retried with exponential backoff, up to
// MaxBackoff between tries, forever. A crash anywhere before the
// acknowledgement redelivers the batch, which is processed again: merging
// facts already in the bucket changes nothing, and the affected records
// are found from the facts themselves, not from what changed, so they
// are derived and written again. A stage stopped (its context cancelled)
// negatively acknowledges the batch in hand, for immediate redelivery.
// The consumer is durable: a new stage resumes where it left.
//
// # Replicas
//
// Every replica runs a Stage on the same durable consumer and bucket:
// JetStream hands each batch to one of them. Two replicas may merge into
// the same entry at once; compare-and-set makes one of them read and
// merge again, so no fact is lost (see kv.go). Each replica derives the
// records it affected after its own writes, so the replica whose write
// to a record's entries comes last reads them all. What remains is the
// order in which replicas' writes reach the sink: a replica may derive a
// record, another write newer evidence and put the newer version, and the
// first put its older version last. So after writing, the stage checks
// the bucket's last revision: unchanged since before it read the
// entries, nothing was written meanwhile and what it wrote was current;
// otherwise it derives the same records again and writes those that
// changed, until the bucket holds still over a round (at most 20 rounds,
// then the batch is retried). The last write of each record is therefore
// one derived from every fact written before it: with a sink that keeps
// the last version (or, like chsink, the version with the most evidence),
// the records converge to what the whole state derives. A single replica
// pays one check (a stream info request) per batch.
//
// # Retired records
//
// The affected set is a superset: many of its ids derive no record and
// never did. An id that derives nothing is retired only if it was
// written: the records that may disappear (unmatched deployments', direct
// pushes') are noted live in a second bucket, EVIDENCE_CORRELATION_RECORDS,
// before they are written to the sink, and noted retired after Retire. So
// a redelivered batch, or one holding a duplicate of a deployment together
// with the evidence that links it, still retires its record, and ids that
// never were a record are never sent to Retire. Known limit: a record
// that comes back after it was retired (a corner case of derivation, see
// chsink's doc) while another replica retires it may be left noted
// retired and live in the sink; should it disappear again, it would not
// be retired.
//
// # Metrics
//
// NewStage is given the stage's [Metrics]; evidenced passes stage
// "correlate" of internal/metrics: received (messages), written
// (messages acknowledged after their records were written), failed by
// reason (dead_letter; unavailable: a retry of the KV or the sink;
// contended: a retry after maxRounds of re-deriving), and the latency of
// a batch.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
)

// Retirer is implemented by a Sink that keeps records until it is told
// they are gone: Retire is given the ids that no longer derive a record
// (an unmatched deployment's once its change is known, a direct push's
// once a merge names its head). It must be idempotent, and accept an id
// it never stored.
type Retirer interface {
	Retire(ctx context.Context, ids []string) error
}

// StageConfig tunes the correlation stage. Zero values take the defaults.
type StageConfig struct {
	// Consumer is the durable consumer's name (default "correlate"). Every
	// replica uses the same one, to share the work.
	Consumer string
	// BatchSize is the most messages per batch (default 500).
	BatchSize int
	// FlushInterval is the longest the stage waits for a batch to fill
	// (default 100ms).
	FlushInterval time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before
	// redelivering a message to any replica (default 1m). The stage keeps
	// the batch in hand in progress while it works on it.
	AckWait time.Duration
	// MaxAckPending bounds the messages delivered and not yet acknowledged
	// across replicas (default 20 batches).
	MaxAckPending int
	// MaxBackoff caps the wait between retries when the KV or the sink
	// fails (default 10s).
	MaxBackoff time.Duration
	// Extractor reads the facts of events (nil: the default ticket
	// pattern).
	Extractor *Extractor
	// WrittenRecords bounds the records whose last version put the stage
	// remembers (by the SHA-256 of its canonical JSON, about 200 bytes a
	// record), so as not to put a record derived again unchanged (default
	// 100000; negative: none, every record derived is put).
	WrittenRecords int
}

func (c *StageConfig) defaults() {
	if c.Consumer == "" {
		c.Consumer = "correlate"
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.FlushInterval == 0 {
		c.FlushInterval = 100 * time.Millisecond
	}
	if c.AckWait == 0 {
		c.AckWait = time.Minute
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 20 * c.BatchSize
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = 10 * time.Second
	}
	if c.Extractor == nil {
		c.Extractor = &defaultExtractor
	}
	if c.WrittenRecords == 0 {
		c.WrittenRecords = 100_000
	}
}

// Validate checks the configuration (after defaults).
func (c *StageConfig) Validate() error {
	var errs []error
	if c.BatchSize < 1 {
		errs = append(errs, fmt.Errorf("BatchSize: must be at least 1, got %d", c.BatchSize))
	}
	if c.FlushInterval < time.Millisecond {
		errs = append(errs, fmt.Errorf("FlushInterval: must be at least 1ms, got %s", c.FlushInterval))
	}
	if c.AckWait < time.Second {
		errs = append(errs, fmt.Errorf("AckWait: must be at least 1s, got %s", c.AckWait))
	}
	if c.MaxAckPending < c.BatchSize {
		errs = append(errs, fmt.Errorf("MaxAckPending: must be at least BatchSize (%d), got %d", c.BatchSize, c.MaxAckPending))
	}
	if c.MaxBackoff < time.Millisecond {
		errs = append(errs, fmt.Errorf("MaxBackoff: must be at least 1ms, got %s", c.MaxBackoff))
	}
	return errors.Join(errs...)
}

// maxRounds bounds the rounds of derive-and-write of one batch while
// other replicas keep writing the entries it reads.
const maxRounds = 20

// errContended: other replicas kept writing; the batch is retried.
var errContended = errors.New("correlate: other replicas kept writing")

// Stage is the correlation stage.
type Stage struct {
	js      jetstream.JetStream
	kv      *KVState
	sink    Sink
	retirer Retirer
	cfg     StageConfig
	log     *slog.Logger
	stage   Metrics
	// last remembers what was put (see writtenCache).
	last *writtenCache
	// encoded is sink's, when it takes records with their encoding.
	encoded EncodedSink
}

// EncodedSink is implemented by a Sink that can take each record with its
// canonical JSON (Record.Canonical) and hash (Record.Hash), which the
// stage has computed already, instead of encoding it again. PutEncoded
// is Put otherwise.
type EncodedSink interface {
	PutEncoded(ctx context.Context, records []Record, canonical [][]byte, hashes []string) error
}

// Metrics counts the stage's work (internal/metrics' Stage implements
// it): declared here so that the correlation code, which the policy
// replay of the CLI reuses, does not link the metrics library.
type Metrics interface {
	Received(n int)
	Written(n int)
	Failed(reason string, n int)
	Since(start time.Time)
}

type noMetrics struct{}

func (noMetrics) Received(int)       {}
func (noMetrics) Written(int)        {}
func (noMetrics) Failed(string, int) {}
func (noMetrics) Since(time.Time)    {}

// NewStage returns a correlation stage reading js's event stream into kv
// and writing records to sink (and retiring them, when sink is a
// [Retirer]). log and m may be nil.
func NewStage(js jetstream.JetStream, kv *KVState, sink Sink, cfg StageConfig, log *slog.Logger, m Metrics) (*Stage, error) {
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("correlate: %w", err)
	}
	if js == nil || kv == nil || sink == nil {
		return nil, errors.New("correlate: NewStage needs a JetStream, a KVState and a Sink")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = noMetrics{}
	}
	r, _ := sink.(Retirer)
	es, _ := sink.(EncodedSink)
	return &Stage{js: js, kv: kv, sink: sink, retirer: r, encoded: es, cfg: cfg, log: log.With("stage", "correlate"), stage: m,
		last: newWrittenCache(cfg.WrittenRecords)}, nil
}

// Run correlates until ctx ends, then returns nil, leaving the batch in
// hand negatively acknowledged (redelivered at once, to this stage's
// successor or another replica). It returns an error only for what a
// retry cannot fix (the consumer cannot be created).
func (s *Stage) Run(ctx context.Context) error {
	cons, err := s.consumer(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.log.Info("correlate starting", "consumer", s.cfg.Consumer, "bucket", s.kv.Bucket())
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		b, err := cons.Fetch(s.cfg.BatchSize, jetstream.FetchMaxWait(s.cfg.FlushInterval))
		var msgs []jetstream.Msg
		if err == nil {
			for m := range b.Messages() {
				msgs = append(msgs, m)
			}
			err = b.Error()
		}
		if len(msgs) == 0 {
			if err != nil && ctx.Err() == nil {
				// NATS unavailable, or the consumer removed: wait, and
				// pull again (through a new consumer if need be).
				s.log.Warn("correlate: fetch failed; retrying", "err", err, "backoff", backoff)
				sleep(ctx, backoff)
				backoff = min(2*backoff, s.cfg.MaxBackoff)
				if errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrConsumerDeleted) {
					if c, err := s.consumer(ctx); err == nil {
						cons = c
					}
				}
			}
			continue
		}
		backoff = 100 * time.Millisecond
		if err := s.process(ctx, msgs); err != nil {
			for _, m := range msgs {
				_ = m.Nak()
			}
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
	return nil
}

// consumer creates the durable consumer, or updates it: every replica
// does, with the same configuration.
func (s *Stage) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, bus.EventStream, jetstream.ConsumerConfig{
		Durable:       s.cfg.Consumer,
		Description:   "evidenced correlate: events -> facts (KV " + s.kv.Bucket() + ") -> change records",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       s.cfg.AckWait,
		MaxAckPending: s.cfg.MaxAckPending,
		FilterSubject: bus.EventSubjects,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("correlate: create consumer %s: %w", s.cfg.Consumer, err)
	}
	return cons, nil
}

// item is a message whose facts are being correlated.
type item struct {
	msg   jetstream.Msg
	facts []Fact
}

// process correlates one batch and acknowledges it; it returns an error
// (ctx's) only when ctx ended first, the batch unacknowledged.
func (s *Stage) process(ctx context.Context, msgs []jetstream.Msg) error {
	start := time.Now()
	s.stage.Received(len(msgs))
	defer s.keepInProgress(msgs)()

	items := make([]item, 0, len(msgs))
	for _, m := range msgs {
		e, err := ce.ParseStored(m.Data())
		if err != nil {
			s.deadLetter(ctx, m, "not a valid CloudEvent: "+err.Error())
			continue
		}
		fs, err := s.cfg.Extractor.Extract(e)
		if err != nil {
			s.deadLetter(ctx, m, fmt.Sprintf("cannot extract facts from %s event %s: %v", e.Type, e.ID, err))
			continue
		}
		// Each fact carries when its event arrived in the stream (not part
		// of its ID): what the evaluation's watermark is measured in.
		if md, err := m.Metadata(); err == nil {
			for i := range fs {
				fs[i].Arrived = md.Timestamp.UTC()
			}
		}
		items = append(items, item{msg: m, facts: fs})
	}

	var refused map[string]*EntryError
	var seq uint64 // the bucket's sequence after the merge
	err := s.retry(ctx, "merge facts", func() error {
		var err error
		_, seq, err = s.kv.mergeChecked(ctx, factsOf(items))
		var re *RefusedError
		if errors.As(err, &re) {
			refused = re.Facts
			return nil
		}
		return err
	})
	if err != nil {
		return err
	}
	if len(refused) > 0 {
		kept := items[:0]
		for _, it := range items {
			var why *EntryError
			for _, f := range it.facts {
				if e := refused[f.ID]; e != nil {
					why = e
				}
			}
			if why == nil {
				kept = append(kept, it)
			} else {
				s.deadLetter(ctx, it.msg, "fact refused by the correlation state: "+why.Error())
			}
		}
		items = kept
	}

	first := true
	if err := s.retry(ctx, "write records", func() error {
		if !first {
			seq = 0 // read it again
		}
		first = false
		return s.update(ctx, factsOf(items), seq)
	}); err != nil {
		return err
	}
	for _, it := range items {
		_ = it.msg.Ack() // a lost ack redelivers the batch: processed again, harmlessly
	}
	s.stage.Written(len(items))
	s.stage.Since(start)
	return nil
}

func factsOf(items []item) []Fact {
	var out []Fact
	for _, it := range items {
		out = append(out, it.facts...)
	}
	return out
}

// update derives the records the facts may have changed and writes them,
// until they are current (see Replicas in the file comment). seq is the
// bucket's last sequence, read after the facts were merged (0: read it
// now).
func (s *Stage) update(ctx context.Context, facts []Fact, seq uint64) error {
	if len(facts) == 0 {
		return nil
	}
	if seq == 0 {
		var err error
		if seq, err = s.kv.lastSeq(ctx); err != nil {
			return err
		}
	}
	l := s.kv.stageLazy()
	ids, err := s.kv.affected(ctx, l, facts)
	if err != nil {
		return err
	}
	recs, none, err := l.records(ctx, ids)
	if err != nil {
		return err
	}
	// The ids that derive nothing now and were written before: records
	// that disappeared.
	gone, err := s.gone(ctx, none, nil)
	if err != nil {
		return err
	}
	written := map[string]string{} // id -> hash of the version put, "" when retired
	if err := s.write(ctx, recs, gone, written, true); err != nil {
		return err
	}
	for round := 1; ; round++ {
		now, err := s.kv.lastSeq(ctx)
		if err != nil {
			return err
		}
		if now == seq {
			if round > 1 {
				s.log.Debug("correlate: records current after re-deriving", "records", len(ids), "rounds", round)
			}
			return nil
		}
		if round >= maxRounds {
			return fmt.Errorf("%w: the entries of %d records kept changing for %d rounds", errContended, len(ids), round)
		}
		seq = now
		recs, none, err := s.kv.stageLazy().records(ctx, ids)
		if err != nil {
			return err
		}
		retire, err := s.gone(ctx, none, written)
		if err != nil {
			return err
		}
		if err := s.write(ctx, recs, retire, written, false); err != nil {
			return err
		}
	}
}

// gone returns those of ids (which derive no record) to retire: those
// this update put, and those live in the records bucket, less those this
// update retired already.
func (s *Stage) gone(ctx context.Context, ids []string, written map[string]string) ([]string, error) {
	if s.retirer == nil {
		return nil, nil
	}
	var out, ask []string
	for _, id := range ids {
		switch h, ok := written[id]; {
		case ok && h != "":
			out = append(out, id)
		case !ok:
			ask = append(ask, id)
		}
	}
	live, err := s.kv.live(ctx, ask)
	if err != nil {
		return nil, err
	}
	out = append(out, live...)
	slices.Sort(out)
	return out, nil
}

// write puts records and retires ids, noting what it wrote. A record is
// not put when its version is the one this update put (written), or, on
// an update's first write (first), the one the stage put last. The
// records that may disappear are noted live in the records bucket before
// they are put, and retired after they are retired.
func (s *Stage) write(ctx context.Context, recs []Record, gone []string, written map[string]string, first bool) error {
	var put []Record
	var canon [][]byte
	var hashes []string
	var sums [][32]byte
	for _, r := range recs {
		e, err := encodeRecord(r)
		if err != nil {
			return err
		}
		if h, ok := written[r.ID]; ok && h == e.hash {
			continue
		}
		if first && s.last.same(r.ID, e.sum) {
			written[r.ID] = e.hash // in the sink as it is
			continue
		}
		put = append(put, r)
		canon = append(canon, e.canon)
		hashes = append(hashes, e.hash)
		sums = append(sums, e.sum)
	}
	if len(put) > 0 {
		if err := s.kv.markWritten(ctx, put); err != nil {
			return err
		}
		var err error
		if s.encoded != nil {
			err = s.encoded.PutEncoded(ctx, put, canon, hashes)
		} else {
			err = s.sink.Put(ctx, put)
		}
		if err != nil {
			return fmt.Errorf("correlate: sink: put %d records: %w", len(put), err)
		}
		for i, r := range put {
			written[r.ID] = hashes[i]
			s.last.put(r.ID, sums[i])
		}
	}
	if len(gone) > 0 && s.retirer != nil {
		s.last.forget(gone)
		if err := s.retirer.Retire(ctx, gone); err != nil {
			return fmt.Errorf("correlate: sink: retire %d records: %w", len(gone), err)
		}
		if err := s.kv.markRetired(ctx, gone); err != nil {
			return err
		}
		for _, id := range gone {
			written[id] = ""
		}
	}
	return nil
}

// retry runs op until it succeeds or ctx ends, waiting with exponential
// backoff between attempts.
func (s *Stage) retry(ctx context.Context, what string, op func() error) error {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := op()
		if err == nil {
			if attempt > 1 {
				s.log.Info("correlate: recovered", "op", what, "attempts", attempt)
			}
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		reason := "unavailable"
		if errors.Is(err, errContended) {
			reason = "contended"
		}
		s.stage.Failed(reason, 1)
		if attempt == 1 || attempt%10 == 0 {
			s.log.Warn("correlate: failed; retrying", "op", what, "attempt", attempt, "backoff", backoff, "err", err)
		}
		sleep(ctx, backoff)
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// keepInProgress tells JetStream, every third of AckWait, that the batch
// is being worked on, until the returned function is called.
func (s *Stage) keepInProgress(msgs []jetstream.Msg) func() {
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(s.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				for _, m := range msgs {
					_ = m.InProgress()
				}
			}
		}
	}()
	return func() { close(done) }
}

// deadLetter moves a message that cannot be correlated to the dead-letter
// stream and acknowledges it; until the dead-letter stream takes it, the
// message stays unacknowledged (and will be redelivered).
func (s *Stage) deadLetter(ctx context.Context, msg jetstream.Msg, reason string) {
	s.stage.Failed("dead_letter", 1)
	s.log.Error("correlate: event dead-lettered", "subject", msg.Subject(), "reason", reason)
	if err := bus.DeadLetter(ctx, s.js, "correlate", msg, reason); err != nil {
		s.log.Error("correlate: dead-letter failed; message left unacknowledged", "err", err)
		return
	}
	_ = msg.Term()
}
