// Package access is the built-in access-control pack (AC-1..AC-4, issue
// 17): Rego policies judging one repository's access record
// (processors/access) over one period, embedded from this directory.
//
// It is a second pack beside the change-management one (package
// policies): its controls are packages under evidence.access.controls
// with the same two rules, metadata {id, title, description, risk,
// severity} and result {status, reasons, evidence[, deadline]}, the same
// statuses and the same exceptions (policies.Waiver). The input is
// {record, period {label, from_ns, to_ns, end_ns}, now_ns, params
// {required_reviews, protected_branches, review_deadline_ns}}; see
// lib.rego.
package access

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
)

// FS holds the pack's policies.
//
//go:embed *.rego
var FS embed.FS

// Prefix names the pack's files in its hash ("builtin/access/ac1.rego").
const Prefix = "builtin/access/"

const controlsPrefix = "data.evidence.access.controls."

// Pack is the compiled access pack. It is safe for concurrent use.
type Pack struct {
	controls []policies.Control
	hash     string
	query    rego.PreparedEvalQuery
}

// Load compiles the built-in access pack.
func Load(ctx context.Context) (*Pack, error) {
	names, err := fs.Glob(FS, "*.rego")
	if err != nil {
		return nil, err
	}
	files := map[string]string{}
	for _, n := range names {
		if policies.IsTestFile(n) {
			continue
		}
		b, err := FS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		files[Prefix+n] = string(b)
	}
	modules, err := policies.Parse(files)
	if err != nil {
		return nil, err
	}
	sorted := make([]string, 0, len(files))
	for n := range files {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	var pkgs, pkgFiles []string
	for _, n := range sorted {
		if pkg := modules[n].Package.Path.String(); strings.HasPrefix(pkg, controlsPrefix) && !slices.Contains(pkgs, pkg) {
			pkgs, pkgFiles = append(pkgs, pkg), append(pkgFiles, n)
		}
	}
	var src strings.Builder
	src.WriteString("package evidence_access_gather\n\n")
	for _, pkg := range pkgs {
		fmt.Fprintf(&src, "results[%q] := %s.result\n", pkg, pkg)
		fmt.Fprintf(&src, "metadata[%q] := %s.metadata\n", pkg, pkg)
	}
	gather, err := ast.ParseModuleWithOpts("<gather>", src.String(), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, err
	}
	modules["<gather>"] = gather
	comp := ast.NewCompiler()
	if comp.Compile(modules); comp.Failed() {
		return nil, comp.Errors
	}
	h := sha256.New()
	for _, n := range sorted {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write([]byte(files[n]))
	}
	p := &Pack{hash: hex.EncodeToString(h.Sum(nil))}
	mq, err := rego.New(rego.Compiler(comp), rego.Query("data.evidence_access_gather.metadata")).PrepareForEval(ctx)
	if err != nil {
		return nil, err
	}
	rs, err := mq.Eval(ctx)
	if err != nil || len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, fmt.Errorf("access pack metadata: %v", err)
	}
	md, _ := rs[0].Expressions[0].Value.(map[string]any)
	for i, pkg := range pkgs {
		raw, _ := json.Marshal(md[pkg])
		var c policies.Control
		if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" || c.Title == "" {
			return nil, fmt.Errorf("%s: %s.metadata needs id and title (%v)", pkgFiles[i], pkg, err)
		}
		c.Package, c.File = pkg, pkgFiles[i]
		p.controls = append(p.controls, c)
	}
	slices.SortFunc(p.controls, func(a, b policies.Control) int { return strings.Compare(a.ID, b.ID) })
	if p.query, err = rego.New(rego.Compiler(comp), rego.Query("data.evidence_access_gather.results")).PrepareForEval(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Hash is the hex SHA-256 over the pack's files (names, lengths, bytes),
// stored with every result as bundle_hash.
func (p *Pack) Hash() string { return p.hash }

// Controls lists the pack's controls, sorted by id.
func (p *Pack) Controls() []policies.Control { return slices.Clone(p.controls) }

// Eval judges the input against every control, in the order of Controls.
// An exception waiving a control at at turns a failing or pending result
// into waived, as in the change-management pack.
func (p *Pack) Eval(ctx context.Context, input ast.Value, exceptions []policies.Exception, at time.Time) ([]policies.Outcome, error) {
	rs, err := p.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, err
	}
	var got map[string]any
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		got, _ = rs[0].Expressions[0].Value.(map[string]any)
	}
	out := make([]policies.Outcome, 0, len(p.controls))
	for _, c := range p.controls {
		v, ok := got[c.Package]
		if !ok {
			return nil, fmt.Errorf("%s (%s): result undefined", c.ID, c.File)
		}
		o, err := decode(v)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", c.ID, c.File, err)
		}
		o.Control = c
		if o.Status == policies.Fail || o.Status == policies.Pending {
			if x := policies.Waiver(exceptions, c.ID, at); x != nil {
				reasons := []string{fmt.Sprintf("waived by exception %s (approved by %s, expires %s): %s",
					x.ID, x.Approver.Login, x.ExpiresAt.UTC().Format(time.RFC3339), x.Reason)}
				for _, r := range o.Reasons {
					reasons = append(reasons, string(o.Status)+": "+r)
				}
				o.Reasons, o.Status, o.Exception, o.Deadline = reasons, policies.Waived, x.ID, nil
				o.Evidence = append(o.Evidence, x.Events...)
				slices.Sort(o.Evidence)
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func decode(v any) (policies.Outcome, error) {
	var o policies.Outcome
	m, ok := v.(map[string]any)
	if !ok {
		return o, fmt.Errorf("result is %T, want an object", v)
	}
	s, _ := m["status"].(string)
	o.Status = policies.Status(s)
	switch o.Status {
	case policies.Pass, policies.Fail, policies.Pending:
	default:
		return o, fmt.Errorf("result status %q: want pass, fail or pending", s)
	}
	for _, k := range []string{"reasons", "evidence"} {
		var out []string
		a, _ := m[k].([]any)
		for _, x := range a {
			str, ok := x.(string)
			if !ok {
				return o, fmt.Errorf("%s: %T in array, want string", k, x)
			}
			out = append(out, str)
		}
		if out == nil {
			out = []string{}
		}
		if k == "reasons" {
			o.Reasons = out
		} else {
			o.Evidence = out
		}
	}
	if d, ok := m["deadline"].(string); ok && d != "" {
		t, err := time.Parse(time.RFC3339Nano, d)
		if err != nil {
			return o, fmt.Errorf("deadline: %w", err)
		}
		o.Deadline = &t
	}
	return o, nil
}
