// Package evaluate judges change records against the controls: Rego
// policies (the built-in SOX change-management pack CM-1..CM-8 of
// DESIGN.md, plus custom ones) evaluated with OPA, prepared once.
//
// A control is a Rego package under evidence.controls (one file per
// control) with two rules: metadata {id, title, description, risk,
// severity} and result {status, reasons, evidence[, deadline]}. The input
// is {record, now, now_ns, params}. Granted, unexpired exceptions of the
// record (approver not the requester) turn a failing or pending result
// into waived.
package evaluate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

//go:embed policies/*.rego
var builtin embed.FS

// Status is a control's verdict on a change.
type Status string

const (
	Pass    Status = "pass"
	Fail    Status = "fail"
	Pending Status = "pending"
	Waived  Status = "waived"
)

// Control is a control's metadata.
type Control struct {
	ID          string `json:"id"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Risk        string `json:"risk"`
	Severity    string `json:"severity"`
	Package     string `json:"package"` // e.g. data.evidence.controls.cm1
	File        string `json:"file"`    // the policy file that declares it
}

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

type control struct {
	Control
	query rego.PreparedEvalQuery
}

// Engine evaluates a fixed policy bundle. It is safe for concurrent use.
type Engine struct {
	controls []control
	hash     string
	files    []string
}

// New loads the built-in controls.
func New(ctx context.Context) (*Engine, error) { return load(ctx, nil) }

// LoadDir loads the built-in controls and the custom .rego files under dir
// (files ending _test.rego are Rego tests, not loaded). Errors name file
// and line.
func LoadDir(ctx context.Context, dir string) (*Engine, error) {
	custom := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".rego") || strings.HasSuffix(path, "_test.rego") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		custom[path] = string(b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("policies %s: %w", dir, err)
	}
	return load(ctx, custom)
}

func load(ctx context.Context, custom map[string]string) (*Engine, error) {
	files := map[string]string{}
	ents, err := fs.Glob(builtin, "policies/*.rego")
	if err != nil {
		return nil, err
	}
	for _, name := range ents {
		b, err := builtin.ReadFile(name)
		if err != nil {
			return nil, err
		}
		files["builtin/"+strings.TrimPrefix(name, "policies/")] = string(b)
	}
	for name, src := range custom {
		files[name] = src
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)

	modules := map[string]*ast.Module{}
	var errs []error
	for _, n := range names {
		m, err := ast.ParseModuleWithOpts(n, files[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		modules[n] = m
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	comp := ast.NewCompiler().WithEnablePrintStatements(false)
	if comp.Compile(modules); comp.Failed() {
		return nil, comp.Errors
	}

	e := &Engine{hash: bundleHash(names, files), files: names}
	seen := map[string]bool{}
	for _, n := range names {
		pkg := modules[n].Package.Path.String()
		if !strings.HasPrefix(pkg, "data.evidence.controls.") || seen[pkg] {
			continue
		}
		seen[pkg] = true
		c, err := prepare(ctx, comp, pkg, n)
		if err != nil {
			return nil, err
		}
		e.controls = append(e.controls, c)
	}
	ids := map[string]string{}
	for _, c := range e.controls {
		if other, dup := ids[c.ID]; dup {
			return nil, fmt.Errorf("%s: control id %s already declared in %s", c.File, c.ID, other)
		}
		ids[c.ID] = c.File
	}
	slices.SortFunc(e.controls, func(a, b control) int { return strings.Compare(a.ID, b.ID) })
	return e, nil
}

func prepare(ctx context.Context, comp *ast.Compiler, pkg, file string) (control, error) {
	c := control{Control: Control{Package: pkg, File: file}}
	mq, err := rego.New(rego.Compiler(comp), rego.Query(pkg+".metadata")).PrepareForEval(ctx)
	if err != nil {
		return c, fmt.Errorf("%s: %s: %w", file, pkg, err)
	}
	rs, err := mq.Eval(ctx)
	if err != nil {
		return c, fmt.Errorf("%s: %s.metadata: %w", file, pkg, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return c, fmt.Errorf("%s: %s has no metadata rule", file, pkg)
	}
	b, _ := json.Marshal(rs[0].Expressions[0].Value)
	if err := json.Unmarshal(b, &c.Control); err != nil {
		return c, fmt.Errorf("%s: %s.metadata: %w", file, pkg, err)
	}
	c.Package, c.File = pkg, file
	if c.ID == "" || c.Title == "" {
		return c, fmt.Errorf("%s: %s.metadata needs id and title", file, pkg)
	}
	switch c.Severity {
	case "low", "medium", "high", "critical":
	default:
		return c, fmt.Errorf("%s: %s.metadata: severity %q: want low, medium, high or critical", file, pkg, c.Severity)
	}
	if comp.RuleTree.Find(ast.MustParseRef(pkg+".result")) == nil {
		return c, fmt.Errorf("%s: %s has no result rule", file, pkg)
	}
	c.query, err = rego.New(rego.Compiler(comp), rego.Query(pkg+".result")).PrepareForEval(ctx)
	if err != nil {
		return c, fmt.Errorf("%s: %s.result: %w", file, pkg, err)
	}
	return c, nil
}

// bundleHash is the hex SHA-256 over the sorted policy files: for each,
// its name, a NUL, its length and its bytes.
func bundleHash(names []string, files map[string]string) string {
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write([]byte(files[n]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// BundleHash is the policy bundle's hash, stored with every result.
func (e *Engine) BundleHash() string { return e.hash }

// Controls lists the loaded controls, sorted by id.
func (e *Engine) Controls() []Control {
	out := make([]Control, len(e.controls))
	for i, c := range e.controls {
		out[i] = c.Control
	}
	return out
}

// Evaluate judges the record against every control as of at.
func (e *Engine) Evaluate(ctx context.Context, record correlate.Record, at time.Time, params Params) ([]Result, error) {
	at = at.UTC()
	params = params.withDefaults()
	canon := normalize(record).Canonical()
	var buf bytes.Buffer
	buf.Grow(len(canon) + 512)
	buf.WriteString(`{"record":`)
	buf.Write(canon)
	fmt.Fprintf(&buf, `,"now":%q,"now_ns":%d,"params":`, at.Format(time.RFC3339Nano), at.UnixNano())
	pj, err := json.Marshal(params.input())
	if err != nil {
		return nil, err
	}
	buf.Write(pj)
	buf.WriteByte('}')
	input, err := ast.ValueFromReader(&buf)
	if err != nil {
		return nil, fmt.Errorf("input of %s: %w", record.ID, err)
	}
	recHash := record.Hash() // the record as served (its ETag), not the normalized input

	out := make([]Result, 0, len(e.controls))
	for _, c := range e.controls {
		rs, err := c.query.Eval(ctx, rego.EvalParsedInput(input))
		if err != nil {
			return nil, fmt.Errorf("%s (%s) on %s: %w", c.ID, c.File, record.ID, err)
		}
		if len(rs) == 0 || len(rs[0].Expressions) == 0 {
			return nil, fmt.Errorf("%s (%s) on %s: result undefined", c.ID, c.File, record.ID)
		}
		r, err := decode(rs[0].Expressions[0].Value)
		if err != nil {
			return nil, fmt.Errorf("%s (%s) on %s: %w", c.ID, c.File, record.ID, err)
		}
		r.Change, r.RecordHash, r.Control, r.BundleHash, r.EvaluatedAt = record.ID, recHash, c.Control, e.hash, at
		if r.Status == Fail || r.Status == Pending {
			if x := waiver(record, c.ID, at); x != nil {
				r.Reasons = append([]string{fmt.Sprintf("waived by exception %s (approved by %s, expires %s): %s",
					x.ID, x.Approver.Login, x.ExpiresAt.UTC().Format(time.RFC3339), x.Reason)}, prefix(string(r.Status)+": ", r.Reasons)...)
				r.Status, r.Exception, r.Deadline = Waived, x.ID, nil
				for _, ev := range x.Events {
					r.Evidence = append(r.Evidence, ev.String())
				}
				slices.Sort(r.Evidence)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

func prefix(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}

func decode(v any) (Result, error) {
	var r Result
	m, ok := v.(map[string]any)
	if !ok {
		return r, fmt.Errorf("result is %T, want an object", v)
	}
	s, _ := m["status"].(string)
	r.Status = Status(s)
	switch r.Status {
	case Pass, Fail, Pending, Waived:
	default:
		return r, fmt.Errorf("result status %q: want pass, fail, pending or waived", s)
	}
	var err error
	if r.Reasons, err = strs(m["reasons"]); err != nil {
		return r, fmt.Errorf("reasons: %w", err)
	}
	if r.Evidence, err = strs(m["evidence"]); err != nil {
		return r, fmt.Errorf("evidence: %w", err)
	}
	if d, ok := m["deadline"].(string); ok && d != "" {
		t, err := time.Parse(time.RFC3339Nano, d)
		if err != nil {
			return r, fmt.Errorf("deadline: %w", err)
		}
		r.Deadline = &t
	}
	return r, nil
}

func strs(v any) ([]string, error) {
	out := []string{}
	if v == nil {
		return out, nil
	}
	a, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%T, want an array of strings", v)
	}
	for _, x := range a {
		s, ok := x.(string)
		if !ok {
			return nil, fmt.Errorf("%T in array, want string", x)
		}
		out = append(out, s)
	}
	return out, nil
}

// waiver is the exception that waives control on the record at t: granted,
// for that control, approved by someone other than its requester, granted
// by t and not expired at t.
func waiver(r correlate.Record, controlID string, t time.Time) *correlate.Exception {
	for i := range r.Exceptions {
		x := &r.Exceptions[i]
		if !strings.EqualFold(x.Control, controlID) || x.Status != "granted" || x.Approver == nil || x.Approver.Login == "" {
			continue
		}
		if x.RequestedBy != nil && samePerson(*x.RequestedBy, *x.Approver) {
			continue
		}
		if x.ExpiresAt.IsZero() || !t.Before(x.ExpiresAt) {
			continue
		}
		if !x.GrantedAt.IsZero() && t.Before(x.GrantedAt) {
			continue
		}
		return x
	}
	return nil
}

func samePerson(a, b correlate.Identity) bool {
	return a.Login != "" && strings.EqualFold(a.Login, b.Login) ||
		a.Email != "" && strings.EqualFold(a.Email, b.Email)
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
