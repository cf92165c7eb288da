package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// controlParams are the built-in controls' parameters from the flags.
func (d *Daemon) controlParams() evaluate.Params {
	c := d.cfg
	return evaluate.Params{
		ProductionEnvironments: c.ProductionEnvironments,
		EmergencyWindow:        c.EmergencyWindow,
		ScanSeverityThreshold:  c.ScanSeverityThreshold,
		RequiredScanCategories: c.RequiredScanCategories,
		PipelineIdentities:     c.PipelineIdentities,
		PipelineSystems:        c.PipelineSystems,
		ManualTriggerByAuthor:  c.ManualTriggerByAuthor,
		ProtectedBranches:      c.ProtectedBranches,
		PendingDeadline:        c.PendingDeadline,
	}
}

// runEvaluation runs the evaluation stage until ctx ends, restarting it
// after a failure. Its results wait in NATS while ClickHouse is away.
func (d *Daemon) runEvaluation(ctx context.Context, engine *evaluate.Engine, reader correlate.Reader, m *metrics.Metrics) {
	publish := func(v evaluate.Verdict) {
		b, err := json.Marshal(v)
		if err == nil {
			err = d.nc.Publish(evaluate.LiveSubject, b)
		}
		if err != nil && ctx.Err() == nil {
			d.log.Warn("evaluate: announcing a verdict on the live feed failed", "change", v.Change, "err", err)
		}
	}
	backoff := time.Second
	for {
		// One replica evaluates at a time (the lease); the others stand by.
		err := evaluate.RunLeased(ctx, d.js, evaluate.Lease{}, d.log, func(ctx context.Context) error {
			stage, err := evaluate.NewStage(ctx, d.js, engine, reader, evaluate.StoreWriter{Get: d.Store}, evaluate.StageConfig{
				Params: d.controlParams(), Publish: publish, VerdictDelay: d.cfg.VerdictDelay,
				// Updates within the hold are judged together, once.
				Hold: d.cfg.EvaluateHold,
				// Verdicts are decided in stream terms: once the correlation
				// stage has taken in every event that arrived by each
				// deployment's arrival plus the delay.
				Watermark: correlate.StreamWatermark{JS: d.js},
			}, d.log, m)
			if err != nil {
				return err
			}
			return stage.Run(ctx)
		})
		if ctx.Err() != nil {
			return
		}
		d.log.Error("evaluation stopped; restarting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}
