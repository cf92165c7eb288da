package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuiltinRegoTests runs the built-in pack's Rego tests (*_test.rego
// of this directory): every one passes, and each control has some.
func TestBuiltinRegoTests(t *testing.T) {
	res, err := RunTests(context.Background(), TestOptions{Builtin: true})
	if err != nil {
		t.Fatal(err)
	}
	perFile := map[string]int{}
	for _, r := range res {
		if r.Outcome != TestPass {
			t.Errorf("%s:%d %s.%s: %s %s", r.File, r.Line, r.Package, r.Name, r.Outcome, r.Error)
		}
		if r.Line == 0 || !strings.HasPrefix(r.File, BuiltinPrefix) {
			t.Errorf("%s.%s: location %s:%d", r.Package, r.Name, r.File, r.Line)
		}
		perFile[filepath.Base(r.File)]++
	}
	for _, f := range []string{"lib_test.rego", "cm1_test.rego", "cm2_test.rego", "cm3_test.rego", "cm4_test.rego",
		"cm5_test.rego", "cm6_test.rego", "cm7_test.rego", "cm8_test.rego"} {
		if perFile[f] < 2 {
			t.Errorf("%s: %d tests ran, want at least 2", f, perFile[f])
		}
	}
}

// TestBundleLeavesTestsOut: the Rego tests are embedded, but neither
// loaded as policies nor part of the bundle hash.
func TestBundleLeavesTestsOut(t *testing.T) {
	ctx := context.Background()
	all, _ := Builtin(true)
	pols, _ := Builtin(false)
	if len(all) <= len(pols) {
		t.Fatalf("embedded: %d files with tests, %d without", len(all), len(pols))
	}
	b, err := Load(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range b.Files() {
		if IsTestFile(f) {
			t.Errorf("bundle holds test file %s", f)
		}
	}
	if len(b.Files()) != len(pols) || len(b.Controls()) != 8 {
		t.Fatalf("bundle: %d files, %d controls; want %d and 8", len(b.Files()), len(b.Controls()), len(pols))
	}
	dir := t.TempDir()
	write(t, dir, "x_test.rego", "package x_test\n\ntest_x if true\n")
	c, err := Load(ctx, map[string]string{filepath.Join(dir, "x_test.rego"): "package x_test\n\ntest_x if true\n"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash() != b.Hash() {
		t.Fatalf("a custom test file changed the bundle hash")
	}
}

func write(t *testing.T, dir, name, src string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const alwaysPass = `package evidence.controls.always

metadata := {"id": "X-1", "title": "Always", "description": "", "risk": "", "severity": "low"}

result := {"status": "pass", "reasons": ["ok"], "evidence": []}
`

// TestCustomTests: a custom directory's tests run with the built-in pack
// (its controls, the library and the fixtures); failures, errors and the
// filter are reported per test with file and line.
func TestCustomTests(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "always.rego", alwaysPass)
	f := write(t, dir, "always_test.rego", `package evidence.controls.always_test

import data.evidence.controls.always
import data.evidence.controls.cm2
import data.evidence.testing as fx

test_passes if always.result.status == "pass"

test_uses_the_builtin_pack if {
	cm2.result.status == "fail" with input as fx.input_for(fx.with_change({"pull_request": {"reviews": []}}))
}

test_wrong if always.result.status == "fail"

test_error if {
	x := 1 / 0
	x == 1
}
`)
	res, err := RunTests(context.Background(), TestOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]TestResult{}
	for _, r := range res {
		got[r.Name] = r
	}
	if len(res) != 4 {
		t.Fatalf("%d results, want 4 (the custom tests only): %+v", len(res), res)
	}
	want := map[string]string{"test_passes": TestPass, "test_uses_the_builtin_pack": TestPass, "test_wrong": TestFail, "test_error": TestError}
	for name, outcome := range want {
		r := got[name]
		if r.Outcome != outcome || r.File != f || r.Line == 0 {
			t.Errorf("%s: %s at %s:%d, want %s at %s", name, r.Outcome, r.File, r.Line, outcome, f)
		}
	}
	if got["test_wrong"].Line != 13 {
		t.Errorf("test_wrong at line %d, want 13", got["test_wrong"].Line)
	}
	res, err = RunTests(context.Background(), TestOptions{Dir: dir, Run: "builtin_pack$"})
	if err != nil || len(res) != 1 || res[0].Name != "test_uses_the_builtin_pack" {
		t.Fatalf("filtered run: %v %+v", err, res)
	}
}

// TestCompileErrorsNameFileAndLine: a syntax error, an unsafe variable in
// a test, and an invalid control are *CompileError naming file and line
// (or file).
func TestCompileErrorsNameFileAndLine(t *testing.T) {
	cases := []struct {
		name, file, src, want string
	}{
		{"syntax", "bad_test.rego", "package bad_test\n\ntest_x if {\n\tx := \n}\n", "bad_test.rego:5"},
		{"unsafe", "unsafe_test.rego", "package unsafe_test\n\ntest_x if {\n\tinput.x == y\n}\n", "unsafe_test.rego:4"},
		{"no severity", "ctl.rego", "package evidence.controls.ctl\n\nmetadata := {\"id\": \"X\", \"title\": \"T\"}\n\nresult := {}\n", "ctl.rego"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, c.file, c.src)
			_, err := RunTests(context.Background(), TestOptions{Dir: dir})
			var ce *CompileError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), filepath.Join(dir, c.want)) {
				t.Fatalf("error %v, want a *CompileError naming %s", err, filepath.Join(dir, c.want))
			}
		})
	}
	if _, err := RunTests(context.Background(), TestOptions{Run: "("}); err == nil || !strings.Contains(err.Error(), `run pattern "("`) {
		t.Fatalf("bad pattern: %v", err)
	}
}

// TestNormalizeRecord: null lists of the record become empty, wherever
// they are; what is absent or not a list is left alone.
func TestNormalizeRecord(t *testing.T) {
	in := `{"id":"x","pull_request":{"number":1,"heads":null,"reviews":[],"events":null,"author":null},"tickets":[{"key":"A","approvals":null,"found_in":null}],` +
		`"deployments":[{"matched_by":null,"events":[],"deployer":null}],"pushes":null,"big":12345678901234567890}`
	out, err := NormalizeRecord([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"big":12345678901234567890,"deployments":[{"deployer":null,"events":[],"matched_by":[]}],"id":"x",` +
		`"pull_request":{"author":null,"events":[],"heads":[],"number":1,"reviews":[]},"pushes":[],"tickets":[{"approvals":[],"found_in":[],"key":"A"}]}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
	if _, err := NormalizeRecord([]byte("null")); err == nil {
		t.Fatal("null record accepted")
	}
}
