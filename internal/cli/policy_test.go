package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/cli"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// TestPolicyTestBuiltinAndExample: evidence policy test runs the built-in
// pack's tests without DIR, and the example control's tests with it.
func TestPolicyTestBuiltinAndExample(t *testing.T) {
	r := run(t, nil, "", "policy", "test")
	if r.code != cli.ExitOK || !strings.HasSuffix(r.stdout, "passed, 0 failed, 0 errors\n") || strings.Contains(r.stdout, "PASS ") {
		t.Fatalf("built-in: %+v", r)
	}
	r = run(t, nil, "", "policy", "test", "../../examples/policies", "-v")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "PASS  ../../examples/policies/two_reviewers_test.rego:20 evidence.controls.two_reviewers_test.test_two_approvals_pass (") ||
		!strings.HasSuffix(r.stdout, "7 tests: 7 passed, 0 failed, 0 errors\n") {
		t.Fatalf("example: %+v", r)
	}
	r = run(t, nil, "", "policy", "test", "--run", "stale", "../../examples/policies")
	if r.code != cli.ExitOK || r.stdout != "1 tests: 1 passed, 0 failed, 0 errors\n" {
		t.Fatalf("--run: %+v", r)
	}
}

// TestPolicyTestFailures: a failing test and an error exit 1 naming file
// and line; a syntax error exits 2 naming file and line; no tests exits 1.
func TestPolicyTestFailures(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "x_test.rego")
	os.WriteFile(f, []byte("package x_test\n\ntest_ok if true\n\ntest_bad if {\n\tprint(\"looked at\", 1)\n\t1 == 2\n}\n\ntest_err if {\n\tto_number(\"x\") == 1\n}\n"), 0o644)
	r := run(t, nil, "", "policy", "test", dir)
	if r.code != cli.ExitFail || !strings.Contains(r.stdout, "FAIL  "+f+":5 x_test.test_bad\n") || !strings.Contains(r.stdout, "looked at 1") ||
		!strings.Contains(r.stdout, "ERROR "+f+":10 x_test.test_err\n") || strings.Contains(r.stdout, "test_ok") ||
		!strings.HasSuffix(r.stdout, "3 tests: 1 passed, 1 failed, 1 errors\n") {
		t.Fatalf("failures: %+v", r)
	}
	os.WriteFile(f, []byte("package x_test\n\ntest_ok if {\n\tx := \n}\n"), 0o644)
	r = run(t, nil, "", "policy", "test", dir)
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, f+":5: rego_parse_error") {
		t.Fatalf("syntax error: %+v", r)
	}
	os.Remove(f)
	r = run(t, nil, "", "policy", "test", dir)
	if r.code != cli.ExitFail || !strings.Contains(r.stderr, "no Rego tests") {
		t.Fatalf("no tests: %+v", r)
	}
}

// TestPolicyReplayReadOnly: evidence policy replay reports the custom control that v2 of the policies turns
// from pass to fail, in text and JSON, and writes nothing.
func TestPolicyReplayReadOnly(t *testing.T) {
	ctx := context.Background()
	// The read-only open (store.OpenReadOnly, no CREATE DATABASE) is what
	// the auditor needs; the auditor user itself is not used here: the
	// test server's auditor support (chlocal) is still being built.
	url := testenv.DatabaseURL(t)
	st := testenv.StoreAt(t, url)
	rec := deployedChange(t)
	at := time.Date(2025, 3, 3, 19, 0, 0, 0, time.UTC)
	v1, err := evaluate.LoadDir(ctx, "../replay/testdata/v1")
	if err != nil {
		t.Fatal(err)
	}
	row, _, err := chsink.Rows(rec, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	res, err := v1.Evaluate(ctx, rec, at, evaluate.Params{})
	if err != nil {
		t.Fatal(err)
	}
	var rows []store.ControlResultRow
	for _, x := range res {
		rows = append(rows, store.ControlResultRow{ChangeID: rec.ID, ControlID: x.Control.ID, ControlTitle: x.Control.Title, Severity: x.Control.Severity,
			Status: string(x.Status), Reasons: x.Reasons, Evidence: x.Evidence, Repository: rec.Repository, RecordHash: x.RecordHash,
			BundleHash: x.BundleHash, Trigger: evaluate.TriggerUpdate, EvaluatedNs: at.UnixNano()})
	}
	if err := st.InsertChanges(ctx, []store.ChangeRow{row}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertControlResults(ctx, rows); err != nil {
		t.Fatal(err)
	}
	count := func() string {
		var c, r uint64
		st.Conn().QueryRow(ctx, "SELECT count() FROM changes").Scan(&c)
		st.Conn().QueryRow(ctx, "SELECT count() FROM control_results").Scan(&r)
		return fmt.Sprintf("changes=%d control_results=%d", c, r)
	}
	before := count()
	vars := map[string]string{"EVIDENCE_CLICKHOUSE_URL": url}

	r := run(t, vars, "", "policy", "replay", "--policies", "../replay/testdata/v2", "--from", "2025-03-01", "--to", "2025-03-31")
	want := []string{
		rec.ID + " (as of 2025-03-03T19:00:00Z)\n",
		"  CUST-1 Approving reviews: pass -> fail\n      now: 1 approving reviews, 2 required\n      was: 1 approving reviews (1 required)\n",
		"  CUST-2 Ticketed: not recorded -> pass\n",
		"bundles recorded: " + v1.BundleHash() + "\n",
		"1 changes replayed, 1 would differ; 1 controls differ in status; new controls: CUST-2; removed controls: none\n",
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w) {
			t.Fatalf("replay text: want %q in\n%s\n%s", w, r.stdout, r.stderr)
		}
	}
	if r.code != cli.ExitFail {
		t.Fatalf("replay with differences exited %d, want 1", r.code)
	}
	r = run(t, vars, "", "policy", "replay", "--policies", "../replay/testdata/v2", "--from", "2025-03-01T00:00:00Z", "--to", "2025-04-01T00:00:00Z", "--format", "json")
	var rep struct {
		Changes, Differing int
		Diffs              []struct {
			Change   string
			Controls []struct{ Control, Recorded, Replayed string }
		}
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || rep.Changes != 1 || rep.Differing != 1 || rep.Diffs[0].Controls[0].Replayed != "fail" {
		t.Fatalf("replay json: %v %+v\n%s", err, rep, r.stdout)
	}
	// The same policies as recorded: nothing differs, exit 0.
	r = run(t, vars, "", "policy", "replay", "--policies", "../replay/testdata/v1", "--from", "2025-03-01", "--to", "2025-03-31")
	if r.code != cli.ExitOK || !strings.Contains(r.stdout, "1 changes replayed, 0 would differ") {
		t.Fatalf("replay under v1: %+v", r)
	}
	// The same bundle with other parameters: the change was merged into
	// main, which is no longer a protected branch, so CM-7 would fail.
	r = run(t, vars, "", "policy", "replay", "--policies", "../replay/testdata/v1", "--from", "2025-03-01", "--to", "2025-03-31",
		"--protected-branches", "release")
	if r.code != cli.ExitFail || !strings.Contains(r.stdout, "CM-7") || !strings.Contains(r.stdout, "pass -> fail") {
		t.Fatalf("replay under v1 with --protected-branches release: %+v", r)
	}
	if after := count(); after != before {
		t.Fatalf("replay wrote: %s before, %s after", before, after)
	}
	// Usage errors name the flag.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", "2025-03-01", "--to", "2025-03-31"}, "--policies is required"},
		{[]string{"--policies", "../replay/testdata/v2", "--from", "March", "--to", "2025-03-31"}, `--from: "March" is neither`},
		{[]string{"--policies", "../replay/testdata/v2", "--from", "2025-03-01", "--to", "2025-03-31", "--format", "xml"}, `--format "xml"`},
		{[]string{"--policies", "../replay/testdata/v2", "--from", "2025-03-01", "--to", "2025-03-31", "--scan-severity-threshold", "severe"}, `--scan-severity-threshold "severe"`},
		{[]string{"--policies", "../replay/testdata/v2", "--from", "2025-03-01", "--to", "2025-03-31", "--production-environments", "none"}, `--production-environments: give at least one`},
		{[]string{"--policies", "../replay/testdata/v2", "--from", "2025-03-01", "--to", "2025-03-31", "--manual-trigger-by-author", "warn"}, `--manual-trigger-by-author "warn": want allow or fail`},
		{[]string{"--policies", "../replay/testdata/v2", "--from", "2025-03-01", "--to", "2025-03-31", "--clickhouse-url", "clickhouse://127.0.0.1:1/evidence"}, `--clickhouse-url clickhouse://127.0.0.1:1/evidence`},
	} {
		r = run(t, vars, "", append([]string{"policy", "replay"}, c.args...)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Fatalf("%v: %+v, want exit 2 and %q", c.args, r, c.want)
		}
	}
}

// deployedChange is the compliant pull request of the gate fixture,
// deployed to production by the pipeline on 2025-03-03, derived from its
// events.
func deployedChange(t *testing.T) correlate.Record {
	t.Helper()
	st := correlatetest.State(t, correlatetest.Events(t, "testdata/gate/compliant.events.json", 0)...)
	add := func(e *ce.Event) { st.Add(correlatetest.Facts(t, e)...) }
	add(&ce.Event{ID: "deploy-1", Source: "https://github.com/acme", Type: "dev.evidencepipeline.deployment.finished.v1",
		Time: time.Date(2025, 3, 3, 17, 0, 0, 0, time.UTC), Data: []byte(`{"deployment_id":"d-1","environment":"production","service":"payments",` +
			`"digest":"sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899","repository":"github.com/acme/payments",` +
			`"commit":"c0ffee1234567890abcdef1234567890abcdef12","run_id":"9876543211","deployer":{"login":"github-actions[bot]","type":"service"},` +
			`"started_at":"2025-03-03T16:55:00Z","finished_at":"2025-03-03T17:00:00Z","outcome":"success"}`)})
	rec, ok := st.Record("github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12")
	if !ok {
		t.Fatal("no change record for the fixture's merge")
	}
	return rec
}
