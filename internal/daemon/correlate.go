package daemon

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
)

// errNoClickHouse makes the stage retry a batch: its facts are already in
// the KV bucket (the live state the API reads), only the ClickHouse rows
// wait.
var errNoClickHouse = errors.New("ClickHouse not connected yet")

// storeSink writes change records to ClickHouse once the daemon has
// connected to it; until then Put and Retire fail, and the stage retries.
type storeSink struct {
	d    *Daemon
	mu   sync.Mutex
	sink *chsink.Sink
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
	s.sink = sink
	return sink, nil
}

// Put implements correlate.Sink.
func (s *storeSink) Put(ctx context.Context, records []correlate.Record) error {
	sink, err := s.get()
	if err != nil {
		return err
	}
	return sink.Put(ctx, records)
}

// Retire implements correlate.Retirer.
func (s *storeSink) Retire(ctx context.Context, ids []string) error {
	sink, err := s.get()
	if err != nil {
		return err
	}
	return sink.Retire(ctx, ids)
}

var (
	_ correlate.Sink    = (*storeSink)(nil)
	_ correlate.Retirer = (*storeSink)(nil)
)

// runCorrelation runs the correlation stage until ctx ends, restarting it
// after a failure. It does not wait for ClickHouse: the live state in the
// KV bucket is kept current, and the ClickHouse rows follow.
func (d *Daemon) runCorrelation(ctx context.Context, kv *correlate.KVState, m *metrics.Metrics) {
	backoff := time.Second
	for {
		stage, err := correlate.NewStage(d.js, kv, &storeSink{d: d}, correlate.StageConfig{
			Extractor: &correlate.Extractor{Tickets: d.cfg.Tickets()},
		}, d.log, m)
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
