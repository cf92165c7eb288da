package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/metrics"
)

// StageConfig configures the access stage's consumer.
type StageConfig struct {
	// Consumer is the durable consumer's name (default "access").
	Consumer string
	// BatchSize is the most events fetched at once (default 100).
	BatchSize int
	// FlushInterval is the longest a fetch waits (default 500ms).
	FlushInterval time.Duration
	// AckWait is how long JetStream waits for an acknowledgement before
	// redelivering (default 1m).
	AckWait time.Duration
}

func (c StageConfig) withDefaults() StageConfig {
	if c.Consumer == "" {
		c.Consumer = "access"
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 500 * time.Millisecond
	}
	if c.AckWait <= 0 {
		c.AckWait = time.Minute
	}
	return c
}

// Stage consumes the access event types (and the ticket and exception
// types the records read) from the event stream with its own durable
// consumer, merges their facts into the KV store, and acknowledges each
// batch once its facts are stored. Changed is then told which subjects'
// facts changed (repositories, organisations, "ticket:<KEY>"): what
// derives records from them (ClickHouse rows, controls) is downstream and
// may catch up later from the store. An event whose data cannot be read
// is dead-lettered with the field named.
type Stage struct {
	js      jetstream.JetStream
	store   *KVStore
	cfg     StageConfig
	log     *slog.Logger
	stage   *metrics.Stage
	changed func(ctx context.Context, subjects []string)
}

// NewStage makes the stage; log and stage metrics may be nil.
func NewStage(js jetstream.JetStream, store *KVStore, cfg StageConfig, log *slog.Logger, st *metrics.Stage, changed func(ctx context.Context, subjects []string)) *Stage {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if changed == nil {
		changed = func(context.Context, []string) {}
	}
	return &Stage{js: js, store: store, cfg: cfg.withDefaults(), log: log, stage: st, changed: changed}
}

// Subjects are the stream subjects of the types Extract reads.
func Subjects() []string {
	var out []string
	for _, t := range Types() {
		out = append(out, bus.Subject(t))
	}
	return out
}

func (s *Stage) consumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := s.js.CreateOrUpdateConsumer(ctx, bus.EventStream, jetstream.ConsumerConfig{
		Durable:        s.cfg.Consumer,
		Description:    "evidenced access: access events -> facts (KV " + Bucket + ") -> access records",
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        s.cfg.AckWait,
		MaxAckPending:  20 * s.cfg.BatchSize,
		FilterSubjects: Subjects(),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, fmt.Errorf("access: create consumer %s: %w", s.cfg.Consumer, err)
	}
	return cons, nil
}

// Run consumes until ctx ends, then returns nil, leaving the batch in hand
// negatively acknowledged. It returns an error when the consumer cannot be
// created or the KV store fails (the caller restarts it).
func (s *Stage) Run(ctx context.Context) error {
	cons, err := s.consumer(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.log.Info("access stage starting", "consumer", s.cfg.Consumer, "bucket", Bucket)
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
			if err != nil && !errors.Is(err, jetstream.ErrNoMessages) && ctx.Err() == nil {
				s.log.Warn("access: fetch failed; retrying", "err", err, "backoff", backoff)
				select {
				case <-ctx.Done():
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, 10*time.Second)
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

func (s *Stage) process(ctx context.Context, msgs []jetstream.Msg) error {
	start := time.Now()
	if s.stage != nil {
		s.stage.Received(len(msgs))
	}
	var facts []Fact
	var keep []jetstream.Msg
	for _, m := range msgs {
		e, err := ce.ParseStored(m.Data())
		if err != nil {
			s.deadLetter(ctx, m, "not a valid CloudEvent: "+err.Error())
			continue
		}
		f, err := Extract(e)
		if err != nil {
			s.deadLetter(ctx, m, fmt.Sprintf("cannot read access facts from %s event %s: %v", e.Type, e.ID, err))
			continue
		}
		if f != nil {
			facts = append(facts, *f)
		}
		keep = append(keep, m)
	}
	changed, err := s.store.Add(ctx, facts...)
	if err != nil {
		return err
	}
	for _, m := range keep {
		_ = m.Ack()
	}
	if s.stage != nil {
		s.stage.Written(len(keep))
		s.stage.Since(start)
	}
	if changed {
		seen := map[string]bool{}
		var subjects []string
		for _, f := range facts {
			if !seen[f.Subject] {
				seen[f.Subject] = true
				subjects = append(subjects, f.Subject)
			}
		}
		s.changed(ctx, subjects)
	}
	return nil
}

func (s *Stage) deadLetter(ctx context.Context, m jetstream.Msg, reason string) {
	if s.stage != nil {
		s.stage.Failed("dead_letter", 1)
	}
	s.log.Error("access: event dead-lettered", "subject", m.Subject(), "reason", reason)
	if err := bus.DeadLetter(ctx, s.js, "access", m, reason); err != nil {
		s.log.Error("access: dead-letter failed; message left unacknowledged", "err", err)
		return
	}
	_ = m.Term()
}

// Subjects lists the subjects (repositories, organisations, tickets) that
// have facts in the store.
func (s *KVStore) Subjects(ctx context.Context) ([]string, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list access subjects: %w", err)
	}
	var out []string
	for k := range lister.Keys() {
		raw, err := base64RawURL(k)
		if err != nil {
			continue
		}
		out = append(out, raw)
	}
	return out, nil
}
