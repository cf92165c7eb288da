package policies

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"
)

// Test outcomes.
const (
	TestPass  = "PASS"
	TestFail  = "FAIL"
	TestError = "ERROR"
	TestSkip  = "SKIP"
)

// fixtures holds data.evidence.testing: a compliant change record and the
// input around a record, for the built-in tests and custom ones.
const fixtures = "testing_test.rego"

// TestOptions select the Rego tests to run.
type TestOptions struct {
	// Dir holds custom policies and their tests (*_test.rego); empty:
	// none.
	Dir string
	// Builtin runs the built-in pack's own tests as well.
	Builtin bool
	// Run keeps the tests whose name (package.test_rule) matches this
	// regular expression; empty: every test.
	Run string
	// Timeout bounds each test (default 5s).
	Timeout time.Duration
}

// TestResult is one Rego test's outcome.
type TestResult struct {
	Package  string        `json:"package"` // data.evidence.controls.cm1_test
	Name     string        `json:"name"`    // test_compliant_passes
	File     string        `json:"file"`
	Line     int           `json:"line"`
	Outcome  string        `json:"outcome"` // PASS, FAIL, ERROR or SKIP
	Error    string        `json:"error,omitempty"`
	Output   string        `json:"output,omitempty"` // what print() wrote
	Duration time.Duration `json:"duration_ns"`
}

// CompileError is why the tests could not run: the policies or tests do
// not parse or compile, or a control is invalid. Each error names its
// file and line.
type CompileError struct{ Err error }

func (e *CompileError) Error() string { return e.Err.Error() }
func (e *CompileError) Unwrap() error { return e.Err }

// RunTests runs the Rego tests (rules named test_*) of opts.Dir (and of
// the built-in pack with opts.Builtin), compiled together with the
// built-in pack, so that custom tests can use data.evidence.lib and the
// built-in controls. The results are sorted by file and line. Before the
// tests, the bundle of the built-in pack and the custom policies is
// loaded as the daemon would load it: an invalid control is a
// *CompileError.
func RunTests(ctx context.Context, opts TestOptions) ([]TestResult, error) {
	if opts.Run != "" {
		if _, err := regexp.Compile(opts.Run); err != nil {
			return nil, fmt.Errorf("run pattern %q: %w", opts.Run, err)
		}
	}
	files, err := Builtin(opts.Builtin)
	if err != nil {
		return nil, err
	}
	if !opts.Builtin {
		// The fixtures (data.evidence.testing) serve custom tests too.
		b, err := FS.ReadFile(fixtures)
		if err != nil {
			return nil, err
		}
		files[BuiltinPrefix+fixtures] = string(b)
	}
	var custom map[string]string
	if opts.Dir != "" {
		var tests map[string]string
		custom, tests, err = ReadDir(opts.Dir)
		if err != nil {
			return nil, err
		}
		maps.Copy(files, custom)
		maps.Copy(files, tests)
	}
	modules, err := Parse(files)
	if err != nil {
		return nil, &CompileError{err}
	}
	if _, err := Load(ctx, custom); err != nil {
		return nil, &CompileError{err}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Second
	}
	r := tester.NewRunner().
		SetDefaultRegoVersion(ast.RegoV1).
		SetModules(modules).
		SetTimeout(opts.Timeout).
		RaiseBuiltinErrors(true).
		Filter(opts.Run)
	ch, err := r.RunTests(ctx, nil)
	if err != nil {
		var astErrs ast.Errors
		if errors.As(err, &astErrs) {
			return nil, &CompileError{err}
		}
		return nil, err
	}
	var out []TestResult
	for tr := range ch {
		res := TestResult{Package: tr.Package, Name: tr.Name, Outcome: TestPass, Output: string(tr.Output), Duration: tr.Duration}
		if tr.Location != nil {
			res.File, res.Line = tr.Location.File, tr.Location.Row
		}
		switch {
		case tr.Error != nil:
			res.Outcome, res.Error = TestError, tr.Error.Error()
		case tr.Skip:
			res.Outcome = TestSkip
		case tr.Fail:
			res.Outcome = TestFail
		}
		out = append(out, res)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b TestResult) int {
		return cmp.Or(cmp.Compare(a.File, b.File), cmp.Compare(a.Line, b.Line), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}
