package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

// runArchive runs the archive and its checkpoint signer while this replica
// holds the archive lease, until ctx ends: any number of replicas may run
// with --archive; one writes the chain and signs it, the others stand by
// and take over when it stops (at once) or dies (within
// --archive-lease-ttl). Every INSERT is fenced by the lease.
func (d *Daemon) runArchive(ctx context.Context, m *metrics.Metrics, opts Options) {
	lease := bus.Lease{Bucket: bus.ArchiveLeaseBucket, Key: "archive", TTL: d.cfg.ArchiveLeaseTTL,
		Standby: opts.ArchiveStandby, Acquired: opts.ArchiveAcquired}
	backoff := time.Second
	for {
		err := bus.RunLeased(ctx, d.js, lease, d.log, func(ctx context.Context, held *bus.Held) error {
			return d.archiveHeld(ctx, m, opts, held)
		})
		if ctx.Err() != nil {
			return
		}
		d.log.Error("archive stopped; restarting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}

// archiveHeld is one hold of the archive lease: the checkpointer signs the
// chain as the archive commits it; when the hold ends it signs the head
// and flushes, once the archive has stopped.
func (d *Daemon) archiveHeld(ctx context.Context, m *metrics.Metrics, opts Options, held *bus.Held) error {
	cp := checkpoint.New(d.js, d.Store(), d.signer, checkpoint.Config{Every: uint64(d.cfg.CheckpointEvery), Interval: d.cfg.CheckpointInterval}, d.log)
	cpDone := make(chan struct{})
	go func() { defer close(cpDone); cp.Run(ctx) }()
	defer func() {
		<-cpDone
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := cp.Stop(sctx); err != nil {
			d.log.Warn("checkpoint at stop", "err", err)
		}
	}()
	hooks := opts.ArchiveHooks
	hooks.Committed = cp.Hook(opts.ArchiveHooks.Committed)
	backoff := time.Second
	for {
		a := archive.New(d.js, d.Store(), archive.Config{BatchSize: d.cfg.ArchiveBatchSize, FlushInterval: d.cfg.ArchiveFlushInterval, Fence: held.Valid}, d.log, m, hooks)
		err := a.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, bus.ErrLeaseLost) {
			return err // not the writer any more: stand by again
		}
		d.log.Error("archive stopped; restarting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}
