package daemon

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// kvOptions are the correlation state's options from the configuration.
func kvOptions(cfg *config.Config) correlate.KVOptions {
	o := correlate.KVOptions{CacheFacts: cfg.CorrelateCacheFacts}
	if o.CacheFacts == 0 {
		o.CacheFacts = -1 // no cache
	}
	return o
}

// OutboxBucket holds the ids of change records whose ClickHouse rows are
// behind the live state: written while ClickHouse was unavailable, and
// flushed when it is back.
const OutboxBucket = "EVIDENCE_CHANGES_OUTBOX"

// errNoClickHouse: the daemon has not connected to ClickHouse yet.
var errNoClickHouse = errors.New("ClickHouse not connected yet")

// storeSink writes change records to ClickHouse. When ClickHouse is not
// available it notes the records' ids in the outbox bucket and succeeds,
// so that the correlation stage goes on (the live state, which the gate
// reads, never waits for ClickHouse); flushOutbox writes them later, as
// they are then.
type storeSink struct {
	d      *Daemon
	outbox jetstream.KeyValue
	// queue is the evaluation stage's: every record written is enqueued
	// there to be judged.
	queue jetstream.KeyValue
	mu    sync.Mutex
	sink  *chsink.Sink
}

func (s *storeSink) get() (*chsink.Sink, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sink != nil {
		return s.sink, nil
	}
	st := s.d.Store()
	if st == nil {
		return nil, errNoClickHouse
	}
	sink, err := chsink.New(st, s.d.log)
	if err != nil {
		return nil, err
	}
	sink.KeepRecent(s.d.cfg.CorrelateSinkCache)
	s.sink = sink
	return sink, nil
}

const (
	opPut    = "put"
	opRetire = "retire"
)

func outboxKey(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

// note writes the ids into the outbox; it fails only when NATS does.
func (s *storeSink) note(ctx context.Context, op string, ids []string, cause error) error {
	for _, id := range ids {
		if _, err := s.outbox.Put(ctx, outboxKey(id), []byte(op)); err != nil {
			return errors.Join(cause, fmt.Errorf("outbox: %w", err))
		}
	}
	return nil
}

// Put implements correlate.Sink: it writes the records (or notes them in
// the outbox), then enqueues them for evaluation.
func (s *storeSink) Put(ctx context.Context, records []correlate.Record) error {
	return s.put(ctx, records, nil, nil)
}

// PutEncoded implements correlate.EncodedSink: Put, the rows taking the
// records' canonical JSON and hashes as the stage encoded them.
func (s *storeSink) PutEncoded(ctx context.Context, records []correlate.Record, canonical [][]byte, hashes []string) error {
	return s.put(ctx, records, canonical, hashes)
}

func (s *storeSink) put(ctx context.Context, records []correlate.Record, canonical [][]byte, hashes []string) error {
	ids := make([]string, len(records))
	for i, r := range records {
		ids[i] = r.ID
	}
	sink, err := s.get()
	if err == nil {
		if canonical != nil {
			err = sink.PutEncoded(ctx, records, canonical, hashes)
		} else {
			err = sink.Put(ctx, records)
		}
	}
	if err != nil {
		if err := s.note(ctx, opPut, ids, err); err != nil {
			return err
		}
	}
	if s.queue == nil {
		return nil
	}
	return evaluate.Enqueue(ctx, s.queue, ids, time.Now())
}

// Retire implements correlate.Retirer.
func (s *storeSink) Retire(ctx context.Context, ids []string) error {
	sink, err := s.get()
	if err == nil {
		if err = sink.Retire(ctx, ids); err == nil {
			return nil
		}
	}
	return s.note(ctx, opRetire, ids, err)
}

var (
	_ correlate.Sink        = (*storeSink)(nil)
	_ correlate.EncodedSink = (*storeSink)(nil)
	_ correlate.Retirer     = (*storeSink)(nil)
)

// flushOutbox writes the records noted in the outbox to ClickHouse, as the
// live state derives them now, and removes each entry that was not noted
// again meanwhile. It returns how many it flushed.
func (s *storeSink) flushOutbox(ctx context.Context, reader correlate.Reader) (int, error) {
	sink, err := s.get()
	if err != nil {
		return 0, err
	}
	lister, err := s.outbox.ListKeys(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for key := range lister.Keys() {
		entry, err := s.outbox.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return n, err
		}
		raw, err := base64.RawURLEncoding.DecodeString(key)
		if err != nil {
			_ = s.outbox.Delete(ctx, key)
			continue
		}
		id := string(raw)
		// Whatever was noted (put or retire), the live state decides now:
		// a record that exists is written as it is, one that does not is
		// retired.
		rec, ok, err := reader.Change(ctx, id)
		switch {
		case err != nil:
		case ok:
			err = sink.Put(ctx, []correlate.Record{rec})
		default:
			err = sink.Retire(ctx, []string{id})
		}
		if err != nil {
			return n, err
		}
		// Noted again since we read it: keep it for the next round.
		if err := s.outbox.Delete(ctx, key, jetstream.LastRevision(entry.Revision())); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
			return n, err
		}
		n++
	}
	return n, nil
}

// runCorrelation runs the correlation stage until ctx ends, restarting it
// after a failure, and flushes the outbox while ClickHouse is available.
func (d *Daemon) runCorrelation(ctx context.Context, kv *correlate.KVState, m *metrics.Metrics) {
	outbox, err := d.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: OutboxBucket, Description: "change records whose ClickHouse rows wait for ClickHouse",
		Storage: jetstream.FileStorage, History: 1,
	})
	if err != nil {
		d.log.Error("correlation: outbox bucket", "err", err)
		return
	}
	queue, err := evaluate.OpenQueue(ctx, d.js)
	if err != nil {
		d.log.Error("correlation: evaluation queue", "err", err)
		return
	}
	sink := &storeSink{d: d, outbox: outbox, queue: queue}
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if n, err := sink.flushOutbox(ctx, correlate.KVReader{KV: kv}); err != nil && !errors.Is(err, errNoClickHouse) && ctx.Err() == nil {
				d.log.Warn("correlation: outbox flush failed; will retry", "err", err, "flushed", n)
			} else if n > 0 {
				d.log.Info("correlation: change records written to ClickHouse after a delay", "records", n)
			}
		}
	}()
	backoff := time.Second
	for {
		written := d.cfg.CorrelateWrittenRecords
		if written == 0 {
			written = -1 // none
		}
		stage, err := correlate.NewStage(d.js, kv, sink, correlate.StageConfig{
			Extractor:      &correlate.Extractor{Tickets: d.cfg.Tickets()},
			WrittenRecords: written,
		}, d.log, m.Stage("correlate"))
		if err == nil {
			err = stage.Run(ctx)
		}
		if ctx.Err() != nil {
			return
		}
		d.log.Error("correlation stopped; restarting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}
