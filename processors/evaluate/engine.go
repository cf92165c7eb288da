// Package evaluate judges change records against the controls: Rego
// policies (the built-in SOX change-management pack CM-1..CM-8 of
// DESIGN.md, plus custom ones) evaluated with OPA, prepared once.
//
// A control is a Rego package under evidence.controls (one file per
// control) with two rules: metadata {id, title, description, risk,
// severity} and result {status, reasons, evidence[, deadline]}. The input
// is {record, now, now_ns, params[, artifact]}. Granted, unexpired exceptions of the
// record (approver not the requester) turn a failing or pending result
// into waived.
package evaluate

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
	"github.com/open-policy-agent/opa/v1/ast"
)

// Status is a control's verdict on a change.
type Status = policies.Status

// The statuses of a result.
const (
	Pass    = policies.Pass
	Fail    = policies.Fail
	Pending = policies.Pending
	Waived  = policies.Waived
)

// Control is a control's metadata.
type Control = policies.Control

// Result is one control's verdict on one change.
type Result struct {
	Change      string     `json:"change"`
	RecordHash  string     `json:"record_hash"`
	Control     Control    `json:"control"`
	Status      Status     `json:"status"`
	Reasons     []string   `json:"reasons"`
	Evidence    []string   `json:"evidence"` // "<source> <id>" of the events relied on
	Deadline    *time.Time `json:"deadline,omitempty"`
	Exception   string     `json:"exception,omitempty"` // the waiving exception's id
	BundleHash  string     `json:"bundle_hash"`
	EvaluatedAt time.Time  `json:"evaluated_at"`
}

// Engine evaluates a fixed policy bundle. It is safe for concurrent use.
//
// It keeps the parsed input of the records it judged last (by record
// hash) and of the params: judging the same record again (the gate asked
// twice, a pending deadline) parses nothing.
type Engine struct {
	bundle  *policies.Bundle
	records *valueCache
	params  *valueCache
}

// recordCacheSize bounds the parsed records kept.
const recordCacheSize = 256

// New loads the built-in controls.
func New(ctx context.Context) (*Engine, error) { return load(ctx, nil) }

// LoadDir loads the built-in controls and the custom .rego files under dir
// (files ending _test.rego are Rego tests, not loaded). Errors name file
// and line.
func LoadDir(ctx context.Context, dir string) (*Engine, error) {
	custom, _, err := policies.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	return load(ctx, custom)
}

func load(ctx context.Context, custom map[string]string) (*Engine, error) {
	b, err := policies.Load(ctx, custom)
	if err != nil {
		return nil, err
	}
	return &Engine{bundle: b, records: newValueCache(recordCacheSize), params: newValueCache(16)}, nil
}

// Bundle is the engine's policy bundle.
func (e *Engine) Bundle() *policies.Bundle { return e.bundle }

// BundleHash is the policy bundle's hash, stored with every result.
func (e *Engine) BundleHash() string { return e.bundle.Hash() }

// Controls lists the loaded controls, sorted by id.
func (e *Engine) Controls() []Control { return e.bundle.Controls() }

// Evaluate judges the record against every control as of at: the change
// as a whole (every production deployment of it; none yet, as if it were
// deployed at at).
func (e *Engine) Evaluate(ctx context.Context, record correlate.Record, at time.Time, params Params) ([]Result, error) {
	return e.EvaluateArtifact(ctx, record, at, params, "")
}

// EvaluateArtifact is Evaluate judging one artifact of the change, its
// digest (or purl): the one the gate is asked about, or the one a
// deployment deployed when that deployment's verdict is decided. Its
// provenance is judged, not that of the change's other artifacts
// (policies.InputFor). An empty artifact is Evaluate.
func (e *Engine) EvaluateArtifact(ctx context.Context, record correlate.Record, at time.Time, params Params, artifact string) ([]Result, error) {
	// The record as served (its ETag) names the result, not the
	// normalized input.
	sum := sha256.Sum256(record.Canonical())
	return e.evaluateHashed(ctx, record, hex.EncodeToString(sum[:]), at, params, artifact)
}

// evaluateHashed is EvaluateArtifact with the record's hash (its Hash)
// already known: the stage hashes each record it judges once, however
// many times it judges it (now, as of a deployment, for late evidence).
func (e *Engine) evaluateHashed(ctx context.Context, record correlate.Record, recHash string, at time.Time, params Params, artifact string) ([]Result, error) {
	at = at.UTC()
	params = params.WithDefaults()
	rv, ok := e.records.get(recHash)
	if !ok {
		v, err := policies.ValueOf(normalize(record).Canonical())
		if err != nil {
			return nil, fmt.Errorf("input of %s: %w", record.ID, err)
		}
		rv = e.records.put(recHash, v)
	}
	pj, err := json.Marshal(params.Input())
	if err != nil {
		return nil, err
	}
	pv, ok := e.params.get(string(pj))
	if !ok {
		v, err := policies.ValueOf(pj)
		if err != nil {
			return nil, fmt.Errorf("params: %w", err)
		}
		pv = e.params.put(string(pj), v)
	}
	outs, err := e.bundle.Eval(ctx, policies.InputFor(rv, at, pv, artifact), exceptions(record), at)
	if err != nil {
		return nil, fmt.Errorf("on %s: %w", record.ID, err)
	}
	out := make([]Result, len(outs))
	for i, o := range outs {
		out[i] = Result{Change: record.ID, RecordHash: recHash, Control: o.Control, Status: o.Status,
			Reasons: o.Reasons, Evidence: o.Evidence, Deadline: o.Deadline, Exception: o.Exception,
			BundleHash: e.bundle.Hash(), EvaluatedAt: at}
	}
	return out, nil
}

// exceptions are the record's exceptions as the bundle reads them.
func exceptions(r correlate.Record) []policies.Exception {
	if len(r.Exceptions) == 0 {
		return nil
	}
	out := make([]policies.Exception, len(r.Exceptions))
	for i, x := range r.Exceptions {
		out[i] = policies.Exception{ID: x.ID, Control: x.Control, Status: x.Status, Reason: x.Reason,
			RequestedBy: identity(x.RequestedBy), Approver: identity(x.Approver),
			GrantedAt: x.GrantedAt, ExpiresAt: x.ExpiresAt}
		for _, ev := range x.Events {
			out[i].Events = append(out[i].Events, ev.String())
		}
	}
	return out
}

func identity(id *correlate.Identity) *policies.Identity {
	if id == nil {
		return nil
	}
	return &policies.Identity{Login: id.Login, Email: id.Email}
}

// valueCache keeps parsed input values by key, the oldest forgotten
// first. The values are never modified once parsed: evaluations share
// them.
type valueCache struct {
	mu    sync.Mutex
	m     map[string]ast.Value
	order []string
	max   int
}

func newValueCache(max int) *valueCache {
	return &valueCache{m: make(map[string]ast.Value, max), max: max}
}

func (c *valueCache) get(k string) (ast.Value, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[k]
	return v, ok
}

// put keeps v under k and returns the value kept (another caller's, when
// it got there first).
func (c *valueCache) put(k string, v ast.Value) ast.Value {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok {
		return old
	}
	if len(c.order) >= c.max {
		delete(c.m, c.order[0])
		c.order = slices.Delete(c.order, 0, 1)
	}
	c.m[k] = v
	c.order = append(c.order, k)
	return v
}

// normalize gives every nil list of the record an empty one, so the
// policies never see null where they expect a list (a null would make a
// "count(...) == 0" guard undefined, and a control pass vacuously).
func normalize(r correlate.Record) correlate.Record {
	r.Pushes = orEmpty(r.Pushes)
	r.Commits = orEmpty(r.Commits)
	r.Tickets = orEmpty(r.Tickets)
	r.Runs = orEmpty(r.Runs)
	r.Artifacts = orEmpty(r.Artifacts)
	r.Tests = orEmpty(r.Tests)
	r.Scans = orEmpty(r.Scans)
	r.Deployments = orEmpty(r.Deployments)
	r.Exceptions = orEmpty(r.Exceptions)
	if r.PullRequest != nil {
		pr := *r.PullRequest
		pr.Heads, pr.Reviews, pr.Events = orEmpty(pr.Heads), orEmpty(pr.Reviews), orEmpty(pr.Events)
		r.PullRequest = &pr
	}
	if len(r.Tickets) > 0 {
		ts := slices.Clone(r.Tickets)
		for i := range ts {
			ts[i].FoundIn, ts[i].History = orEmpty(ts[i].FoundIn), orEmpty(ts[i].History)
			ts[i].Approvals, ts[i].Rejections = orEmpty(ts[i].Approvals), orEmpty(ts[i].Rejections)
		}
		r.Tickets = ts
	}
	if len(r.Deployments) > 0 {
		ds := slices.Clone(r.Deployments)
		for i := range ds {
			ds[i].MatchedBy, ds[i].Events = orEmpty(ds[i].MatchedBy), orEmpty(ds[i].Events)
		}
		r.Deployments = ds
	}
	return r
}

func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
