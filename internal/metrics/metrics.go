// Package metrics is the one wrapper every pipeline stage reports through:
// for each stage, items received, written, failed, and the latency of its
// unit of work, as Prometheus metrics labelled by stage. A nil *Stage is
// valid and records nothing, so stages need no metrics in tests.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidencepipeline/evidence/internal/version"
)

// Metrics holds the stage metrics of one registry.
type Metrics struct {
	reg      prometheus.Registerer
	received *prometheus.CounterVec
	written  *prometheus.CounterVec
	failed   *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// New registers the stage metrics on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		reg: reg,
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evidence_stage_received_total", Help: "Items a stage received.",
		}, []string{"stage"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evidence_stage_written_total", Help: "Items a stage made durable (stored, published or acknowledged).",
		}, []string{"stage"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "evidence_stage_failed_total", Help: "Items a stage refused or could not process, by reason.",
		}, []string{"stage", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "evidence_stage_latency_seconds",
			Help:    "Duration of a stage's unit of work (a request, a batch).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"stage"}),
	}
	v := version.Get()
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "evidence_build_info", Help: "Always 1; the labels say which build of evidenced runs.",
		ConstLabels: prometheus.Labels{"version": v.Version, "revision": v.Commit, "goversion": v.GoVersion},
	})
	build.Set(1)
	reg.MustRegister(m.received, m.written, m.failed, m.latency, build)
	return m
}

// Registerer is where stages register metrics of their own.
func (m *Metrics) Registerer() prometheus.Registerer {
	if m == nil {
		return prometheus.NewRegistry()
	}
	return m.reg
}

// Stage is the metrics of one stage.
type Stage struct {
	name     string
	m        *Metrics
	received prometheus.Counter
	written  prometheus.Counter
	latency  prometheus.Observer
}

// Stage returns the metrics of the named stage. On a nil *Metrics it
// returns nil, which records nothing.
func (m *Metrics) Stage(name string) *Stage {
	if m == nil {
		return nil
	}
	return &Stage{
		name: name, m: m,
		received: m.received.WithLabelValues(name),
		written:  m.written.WithLabelValues(name),
		latency:  m.latency.WithLabelValues(name),
	}
}

// Received counts n items in.
func (s *Stage) Received(n int) {
	if s != nil {
		s.received.Add(float64(n))
	}
}

// Written counts n items made durable.
func (s *Stage) Written(n int) {
	if s != nil {
		s.written.Add(float64(n))
	}
}

// Failed counts n items that failed for a reason (a short, fixed word such
// as "invalid", "unavailable", "dead_letter").
func (s *Stage) Failed(reason string, n int) {
	if s != nil {
		s.m.failed.WithLabelValues(s.name, reason).Add(float64(n))
	}
}

// Since records the latency of a unit of work started at start.
func (s *Stage) Since(start time.Time) {
	if s != nil {
		s.latency.Observe(time.Since(start).Seconds())
	}
}
