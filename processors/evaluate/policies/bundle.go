// Package policies is the controls' policy bundle: the built-in SOX
// change-management pack (CM-1..CM-8 and their library lib.rego, embedded
// from this directory together with their Rego tests), custom policy
// directories, compiling and evaluating them with OPA, and running their
// Rego tests.
//
// It depends on OPA and the standard library only, so that the evidence
// CLI (policy test, policy replay) can use it without the daemon's
// packages. processors/evaluate builds the pipeline's Engine on it.
//
// A control is a Rego package under evidence.controls with two rules:
// metadata {id, title, description, risk, severity} and result {status,
// reasons, evidence[, deadline]}. The input is {record, now, now_ns,
// params[, artifact]}. A bundle evaluates every control's result in one query (a
// generated rule gathers them), so what the controls share (the library's
// rules over the record) is computed once per evaluation.
package policies

import (
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

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
)

// FS holds the built-in pack: its policies and its Rego tests (files
// ending _test.rego, never part of a bundle).
//
//go:embed *.rego
var FS embed.FS

// BuiltinPrefix names the built-in files in a bundle ("builtin/cm1.rego").
const BuiltinPrefix = "builtin/"

// Status is a control's verdict on a change.
type Status string

// The statuses of a result.
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

// Outcome is one control's verdict, as the bundle decided it.
type Outcome struct {
	Control   Control
	Status    Status
	Reasons   []string
	Evidence  []string // "<source> <id>" of the events relied on
	Deadline  *time.Time
	Exception string // the waiving exception's id
}

// Bundle is a compiled policy bundle: the built-in pack and custom files.
// It is safe for concurrent use.
type Bundle struct {
	controls []Control
	hash     string
	files    []string
	query    rego.PreparedEvalQuery
}

// IsTestFile reports whether a file name is a Rego test file.
func IsTestFile(name string) bool { return strings.HasSuffix(name, "_test.rego") }

// Builtin returns the built-in pack's files by bundle name (builtin/…);
// with tests, its Rego tests as well.
func Builtin(tests bool) (map[string]string, error) {
	names, err := fs.Glob(FS, "*.rego")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, n := range names {
		if !tests && IsTestFile(n) {
			continue
		}
		b, err := FS.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out[BuiltinPrefix+n] = string(b)
	}
	return out, nil
}

// ReadDir reads the .rego files under dir, recursively: the policies and
// the Rego tests (files ending _test.rego), by path.
func ReadDir(dir string) (policies, tests map[string]string, err error) {
	policies, tests = map[string]string{}, map[string]string{}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".rego") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if IsTestFile(path) {
			tests[path] = string(b)
		} else {
			policies[path] = string(b)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("policies %s: %w", dir, err)
	}
	return policies, tests, nil
}

// Parse parses Rego v1 files by name; the errors name file and line.
func Parse(files map[string]string) (map[string]*ast.Module, error) {
	modules := map[string]*ast.Module{}
	var errs []error
	for _, n := range sortedNames(files) {
		m, err := ast.ParseModuleWithOpts(n, files[n], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		modules[n] = m
	}
	return modules, errors.Join(errs...)
}

func sortedNames(files map[string]string) []string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// gatherPackage is the generated package whose rule gathers every
// control's result: one query evaluates them all.
const gatherPackage = "evidence_engine_gather"

// Load compiles the built-in pack and the custom policy files (by path;
// test files are skipped). Errors name file and line.
func Load(ctx context.Context, custom map[string]string) (*Bundle, error) {
	files, err := Builtin(false)
	if err != nil {
		return nil, err
	}
	for name, src := range custom {
		if !IsTestFile(name) {
			files[name] = src
		}
	}
	names := sortedNames(files)
	modules, err := Parse(files)
	if err != nil {
		return nil, err
	}
	// The controls: each package under evidence.controls, declared in the
	// first file (by name) that names it.
	var pkgs, pkgFiles []string
	for _, n := range names {
		pkg := modules[n].Package.Path.String()
		if strings.HasPrefix(pkg, "data.evidence.controls.") && !slices.Contains(pkgs, pkg) {
			pkgs, pkgFiles = append(pkgs, pkg), append(pkgFiles, n)
		}
	}
	// The gathering rule: results["<package>"] := <package>.result, one
	// per control, compiled with the bundle (not part of its hash). A
	// control without a result rule is reported by metadata.
	var src strings.Builder
	src.WriteString("package " + gatherPackage + "\n\n")
	for _, pkg := range pkgs {
		fmt.Fprintf(&src, "results[%q] := %s.result\n", pkg, pkg)
	}
	gather, err := ast.ParseModuleWithOpts("<gather>", src.String(), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		return nil, fmt.Errorf("gathering the controls' results: %w", err)
	}
	modules["<gather>"] = gather
	comp := ast.NewCompiler().WithEnablePrintStatements(false)
	if comp.Compile(modules); comp.Failed() {
		return nil, comp.Errors
	}

	b := &Bundle{hash: bundleHash(names, files), files: names}
	for i, pkg := range pkgs {
		c, err := metadata(ctx, comp, pkg, pkgFiles[i])
		if err != nil {
			return nil, err
		}
		b.controls = append(b.controls, c)
	}
	ids := map[string]string{}
	for _, c := range b.controls {
		if other, dup := ids[c.ID]; dup {
			return nil, fmt.Errorf("%s: control id %s already declared in %s", c.File, c.ID, other)
		}
		ids[c.ID] = c.File
	}
	slices.SortFunc(b.controls, func(x, y Control) int { return strings.Compare(x.ID, y.ID) })
	b.query, err = rego.New(rego.Compiler(comp), rego.Query("data."+gatherPackage+".results")).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing the controls' query: %w", err)
	}
	return b, nil
}

// metadata reads a control's metadata and checks it has a result rule.
func metadata(ctx context.Context, comp *ast.Compiler, pkg, file string) (Control, error) {
	c := Control{Package: pkg, File: file}
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
	raw, _ := json.Marshal(rs[0].Expressions[0].Value)
	if err := json.Unmarshal(raw, &c); err != nil {
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
	return c, nil
}

// bundleHash is the hex SHA-256 over the sorted policy files: for each,
// its name, a NUL, its length, a NUL and its bytes.
func bundleHash(names []string, files map[string]string) string {
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write([]byte(files[n]))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Hash is the bundle's hash, stored with every result.
func (b *Bundle) Hash() string { return b.hash }

// Files are the bundle's policy files, sorted.
func (b *Bundle) Files() []string { return slices.Clone(b.files) }

// Controls lists the bundle's controls, sorted by id.
func (b *Bundle) Controls() []Control { return slices.Clone(b.controls) }

// Eval judges the input (see Input) against every control, in the order
// of Controls. Exceptions of the record that waive a control at the
// input's time turn its failing or pending result into waived.
func (b *Bundle) Eval(ctx context.Context, input ast.Value, exceptions []Exception, at time.Time) ([]Outcome, error) {
	rs, err := b.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, err
	}
	var got map[string]any
	if len(rs) > 0 && len(rs[0].Expressions) > 0 {
		got, _ = rs[0].Expressions[0].Value.(map[string]any)
	}
	out := make([]Outcome, 0, len(b.controls))
	for _, c := range b.controls {
		v, ok := got[c.Package]
		if !ok {
			return nil, fmt.Errorf("%s (%s): result undefined", c.ID, c.File)
		}
		o, err := decode(v)
		if err != nil {
			return nil, fmt.Errorf("%s (%s): %w", c.ID, c.File, err)
		}
		o.Control = c
		if o.Status == Fail || o.Status == Pending {
			if x := Waiver(exceptions, c.ID, at); x != nil {
				o.Reasons = append([]string{fmt.Sprintf("waived by exception %s (approved by %s, expires %s): %s",
					x.ID, x.Approver.Login, x.ExpiresAt.UTC().Format(time.RFC3339), x.Reason)}, prefix(string(o.Status)+": ", o.Reasons)...)
				o.Status, o.Exception, o.Deadline = Waived, x.ID, nil
				o.Evidence = append(o.Evidence, x.Events...)
				slices.Sort(o.Evidence)
			}
		}
		out = append(out, o)
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

func decode(v any) (Outcome, error) {
	var o Outcome
	m, ok := v.(map[string]any)
	if !ok {
		return o, fmt.Errorf("result is %T, want an object", v)
	}
	s, _ := m["status"].(string)
	o.Status = Status(s)
	switch o.Status {
	case Pass, Fail, Pending, Waived:
	default:
		return o, fmt.Errorf("result status %q: want pass, fail, pending or waived", s)
	}
	var err error
	if o.Reasons, err = strs(m["reasons"]); err != nil {
		return o, fmt.Errorf("reasons: %w", err)
	}
	if o.Evidence, err = strs(m["evidence"]); err != nil {
		return o, fmt.Errorf("evidence: %w", err)
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
