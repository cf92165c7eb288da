package cli_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/cli"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

var update = flag.Bool("update", false, "rewrite the golden files of internal/cli/testdata/golden")

const (
	fixedTime = "2025-03-03T16:41:05Z"
	imgDigest = "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899"
)

// githubEnv is what GitHub Actions sets in a job of a push workflow.
var githubEnv = map[string]string{
	"CI":                      "true",
	"GITHUB_ACTIONS":          "true",
	"GITHUB_SERVER_URL":       "https://github.com",
	"GITHUB_API_URL":          "https://api.github.com",
	"GITHUB_REPOSITORY":       "Acme/Payments",
	"GITHUB_REPOSITORY_OWNER": "Acme",
	"GITHUB_SHA":              "c0ffee1234567890abcdef1234567890abcdef12",
	"GITHUB_REF":              "refs/heads/main",
	"GITHUB_REF_NAME":         "main",
	"GITHUB_REF_TYPE":         "branch",
	"GITHUB_RUN_ID":           "9876543210",
	"GITHUB_RUN_NUMBER":       "118",
	"GITHUB_RUN_ATTEMPT":      "1",
	"GITHUB_WORKFLOW":         "release",
	"GITHUB_JOB":              "build",
	"GITHUB_ACTOR":            "alice",
	"GITHUB_TRIGGERING_ACTOR": "alice",
	"GITHUB_EVENT_NAME":       "push",
	"GITHUB_WORKSPACE":        "/home/runner/work/payments/payments",
	"RUNNER_OS":               "Linux",
}

// gitlabEnv is what GitLab CI sets in a job of a merge request pipeline on
// a self-hosted instance.
var gitlabEnv = map[string]string{
	"CI":                                  "true",
	"GITLAB_CI":                           "true",
	"CI_SERVER_URL":                       "https://gitlab.example.com",
	"CI_SERVER_HOST":                      "gitlab.example.com",
	"CI_PROJECT_URL":                      "https://gitlab.example.com/platform/payments/api",
	"CI_PROJECT_PATH":                     "platform/payments/api",
	"CI_COMMIT_SHA":                       "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
	"CI_COMMIT_SHORT_SHA":                 "9f2c1e7a",
	"CI_COMMIT_REF_NAME":                  "feature/PAY-123-retries",
	"CI_MERGE_REQUEST_IID":                "17",
	"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/PAY-123-retries",
	"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
	"CI_PIPELINE_ID":                      "1283471",
	"CI_PIPELINE_IID":                     "412",
	"CI_PIPELINE_URL":                     "https://gitlab.example.com/platform/payments/api/-/pipelines/1283471",
	"CI_PIPELINE_SOURCE":                  "merge_request_event",
	"CI_JOB_ID":                           "99887766",
	"CI_JOB_NAME":                         "test",
	"CI_JOB_URL":                          "https://gitlab.example.com/platform/payments/api/-/jobs/99887766",
	"GITLAB_USER_LOGIN":                   "bob",
	"GITLAB_USER_EMAIL":                   "bob@acme.example",
}

// jenkinsEnv is what a Jenkins pipeline job with the Git plugin sets.
var jenkinsEnv = map[string]string{
	"JENKINS_URL":  "https://jenkins.acme.example/",
	"BUILD_URL":    "https://jenkins.acme.example/job/payments/job/main/118/",
	"BUILD_NUMBER": "118",
	"BUILD_TAG":    "jenkins-payments-main-118",
	"JOB_NAME":     "payments/main",
	"BRANCH_NAME":  "main",
	"GIT_URL":      "https://github.com/acme/payments.git",
	"GIT_COMMIT":   "c0ffee1234567890abcdef1234567890abcdef12",
	"GIT_BRANCH":   "origin/main",
}

func with(base map[string]string, kv ...string) map[string]string {
	m := maps.Clone(base)
	if m == nil {
		m = map[string]string{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// startDaemon runs evidenced in-process and returns it (for its JetStream)
// with its URL. ClickHouse is not needed to accept events: the URL points
// at a port nothing listens on.
func startDaemon(t *testing.T) (*daemon.Daemon, string) {
	t.Helper()
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Parse("evidenced", []string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "d"),
		"--clickhouse-url", "clickhouse://127.0.0.1:" + strconv.Itoa(port) + "/none"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), cfg, nil, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	return d, "http://" + d.Addr()
}

// unreachable returns the URL of a port nothing listens on.
func unreachable(t *testing.T) string {
	t.Helper()
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return "http://127.0.0.1:" + strconv.Itoa(port)
}

// dryRun runs an emit subcommand with --dry-run at a fixed time and decodes
// the printed CloudEvent.
func dryRun(t *testing.T, vars map[string]string, args ...string) (ce map[string]any, data map[string]any, r result) {
	t.Helper()
	args = append(append([]string{"emit"}, args...), "--dry-run", "--time", fixedTime)
	r = run(t, vars, "", args...)
	if r.code != 0 {
		return nil, nil, r
	}
	if err := json.Unmarshal([]byte(r.stdout), &ce); err != nil {
		t.Fatalf("%v: output is not JSON: %v\n%s", args, err, r.stdout)
	}
	data, _ = ce["data"].(map[string]any)
	return ce, data, r
}

// golden compares got with testdata/golden/name, or rewrites it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenAt(t, "golden", name, got)
}

// goldenAt compares got with testdata/dir/name, or rewrites it with
// -update: the golden files of every command's tests.
func goldenAt(t *testing.T, dir, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", dir, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -run %s -update to write it)", err, t.Name())
	}
	if got != string(want) {
		t.Errorf("%s differs from the output (run with -update if the change is intended):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// subcommands are the cases of the golden files, run in each CI
// environment.
var subcommands = []struct {
	name string
	args []string
}{
	{"pipeline-started", []string{"pipeline", "--status", "started"}},
	{"pipeline-success", []string{"pipeline", "--status", "success"}},
	{"artifact-image", []string{"artifact", "--image", "ghcr.io/acme/payments:1.4.2@" + imgDigest}},
	{"artifact-file", []string{"artifact", "--file", "testdata/artifact.txt"}},
	{"test-junit", []string{"test", "--junit", "testdata/junit-failures.xml"}},
	{"scan-sarif", []string{"scan", "--sarif", "testdata/scan.sarif"}},
	{"deploy-success", []string{"deploy", "--env", "production", "--service", "payments", "--digest", imgDigest, "--ticket", "CHG0031234"}},
	{"deploy-started", []string{"deploy", "--env", "production", "--service", "payments", "--image", "ghcr.io/acme/payments:1.4.2@" + imgDigest, "--status", "started"}},
}

var ciEnvs = []struct {
	name string
	vars map[string]string
}{
	{"github", githubEnv},
	{"gitlab", gitlabEnv},
}

// TestEmitGolden compares the events of every subcommand, built from a
// GitHub Actions and a GitLab CI environment, with the golden files; then
// sends each to a real evidenced, which validates them against the
// catalog, stores them under the same id, and stores a re-run once.
func TestEmitGolden(t *testing.T) {
	_, server := startDaemon(t)
	for _, env := range ciEnvs {
		for _, sc := range subcommands {
			t.Run(env.name+"/"+sc.name, func(t *testing.T) {
				ce, _, r := dryRun(t, env.vars, sc.args...)
				if r.code != 0 {
					t.Fatalf("dry run: %+v", r)
				}
				golden(t, env.name+"-"+sc.name+".json", r.stdout)

				vars := with(env.vars, "EVIDENCE_SERVER", server, "EVIDENCE_SPOOL_DIR", t.TempDir())
				args := append(append([]string{"emit"}, sc.args...), "--time", fixedTime)
				r = run(t, vars, "", args...)
				want := "stored: " + ce["type"].(string) + " id=" + ce["id"].(string) + " source=" + ce["source"].(string) + " seq="
				if r.code != 0 || !strings.HasPrefix(r.stdout, want) {
					t.Fatalf("send: %+v, want stdout %q...", r, want)
				}
				r = run(t, vars, "", args[:len(args)-2]...) // the same step again, later
				if r.code != 0 || !strings.HasPrefix(r.stdout, "already "+want) {
					t.Fatalf("re-run: %+v, want already stored", r)
				}
			})
		}
	}
	// Jenkins: no run URL on the repository's host, so a URN source.
	ce, data, r := dryRun(t, jenkinsEnv, "pipeline", "--status", "failure")
	if r.code != 0 {
		t.Fatalf("jenkins: %+v", r)
	}
	golden(t, "jenkins-pipeline-failure.json", r.stdout)
	if ce["source"] != "urn:evidence:ci:jenkins:github.com/acme/payments" || data["run_id"] != "jenkins-payments-main-118" || data["system"] != "jenkins" {
		t.Errorf("jenkins event: %s", r.stdout)
	}
}

func TestEmitFieldsFromCI(t *testing.T) {
	ce, d, r := dryRun(t, githubEnv, "pipeline", "--status", "success")
	if r.code != 0 {
		t.Fatal(r)
	}
	for k, want := range map[string]any{
		"repository": "github.com/acme/payments", "commit": "c0ffee1234567890abcdef1234567890abcdef12", "branch": "main",
		"run_id": "9876543210", "run_attempt": 1.0, "run_url": "https://github.com/Acme/Payments/actions/runs/9876543210",
		"pipeline": "release", "system": "github-actions", "trigger": "push", "outcome": "success", "finished_at": fixedTime,
	} {
		if d[k] != want {
			t.Errorf("github %s = %v, want %v", k, d[k], want)
		}
	}
	if a, _ := d["actor"].(map[string]any); a["login"] != "alice" || a["type"] != "user" {
		t.Errorf("github actor %v", d["actor"])
	}
	if ce["source"] != "https://github.com/acme/payments" || ce["subject"] != "github.com/acme/payments/commit/c0ffee1234567890abcdef1234567890abcdef12" ||
		ce["time"] != fixedTime || ce["type"] != emitter.TypePipelineRunFinished {
		t.Errorf("github attributes: %v", ce)
	}

	ce, d, r = dryRun(t, gitlabEnv, "deploy", "--env", "staging", "--service", "payments-api", "--digest", imgDigest, "--status", "failure")
	if r.code != 0 {
		t.Fatal(r)
	}
	for k, want := range map[string]any{
		"repository": "gitlab.example.com/platform/payments/api", "commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
		"run_id": "1283471", "run_url": "https://gitlab.example.com/platform/payments/api/-/pipelines/1283471",
		"pipeline": "test", "system": "gitlab-ci", "environment": "staging", "service": "payments-api", "digest": imgDigest, "outcome": "failure",
	} {
		if d[k] != want {
			t.Errorf("gitlab %s = %v, want %v", k, d[k], want)
		}
	}
	// In CI the deployer is the pipeline; who triggered the run is kept
	// beside it.
	if a, _ := d["deployer"].(map[string]any); a["login"] != "gitlab-ci:test" || a["type"] != "service" {
		t.Errorf("gitlab deployer %v", d["deployer"])
	}
	if a, _ := d["triggered_by"].(map[string]any); a["login"] != "bob" || a["type"] != "user" || d["trigger"] != "pull_request" {
		t.Errorf("gitlab triggered by %v (%v)", d["triggered_by"], d["trigger"])
	}
	if c, _ := d["change"].(map[string]any); c["number"] != 17.0 {
		t.Errorf("gitlab change %v", d["change"])
	}
	if ce["source"] != "https://gitlab.example.com/platform/payments/api" || ce["subject"] != "payments-api" {
		t.Errorf("gitlab attributes: %v", ce)
	}
	_, d, _ = dryRun(t, gitlabEnv, "pipeline", "--status", "started")
	if d["trigger"] != "pull_request" || d["branch"] != "feature/PAY-123-retries" || d["started_at"] != fixedTime {
		t.Errorf("gitlab pipeline: %v", d)
	}
}

// TestEmitPullRequestHead: on a pull or merge request the CI system may
// report a temporary merge commit; the event carries the change's head.
func TestEmitPullRequestHead(t *testing.T) {
	const head = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
	const merge = "fedcba9876543210fedcba9876543210fedcba98"
	pr := with(githubEnv, "GITHUB_EVENT_NAME", "pull_request", "GITHUB_REF", "refs/pull/42/merge", "GITHUB_REF_NAME", "42/merge",
		"GITHUB_HEAD_REF", "feature/PAY-123-retries", "GITHUB_BASE_REF", "main", "GITHUB_SHA", merge,
		"GITHUB_EVENT_PATH", "testdata/github-pull-request-event.json")
	_, d, r := dryRun(t, pr, "pipeline", "--status", "started")
	if r.code != 0 || d["commit"] != head || d["trigger"] != "pull_request" || d["branch"] != "feature/PAY-123-retries" ||
		d["change"].(map[string]any)["number"] != 42.0 {
		t.Errorf("github pull request: %+v", r)
	}
	_, d, _ = dryRun(t, with(pr, "EVIDENCE_COMMIT", merge), "pipeline", "--status", "started")
	if d["commit"] != merge {
		t.Errorf("EVIDENCE_COMMIT did not win over the event payload: %v", d["commit"])
	}
	_, d, r = dryRun(t, with(pr, "GITHUB_EVENT_PATH", "testdata/missing.json"), "pipeline", "--status", "started")
	if d["commit"] != merge || !strings.Contains(r.stderr, "using GITHUB_SHA (the merge commit)") {
		t.Errorf("unreadable payload: %v %q", d["commit"], r.stderr)
	}
	_, d, _ = dryRun(t, with(gitlabEnv, "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA", head), "test", "--junit", "testdata/junit-unit.xml")
	if d["commit"] != head {
		t.Errorf("gitlab merged results pipeline: commit %v", d["commit"])
	}
}

func TestEmitDeterministicIDs(t *testing.T) {
	first, _, _ := dryRun(t, githubEnv, "test", "--junit", "testdata/junit-unit.xml")
	again, _, _ := dryRun(t, githubEnv, "test", "--junit", "testdata/junit-unit.xml")
	rerun, _, _ := dryRun(t, with(githubEnv, "GITHUB_RUN_ATTEMPT", "2"), "test", "--junit", "testdata/junit-unit.xml")
	other, _, _ := dryRun(t, githubEnv, "test", "--junit", "testdata/junit-failures.xml")
	given, _, _ := dryRun(t, githubEnv, "test", "--junit", "testdata/junit-unit.xml", "--id", "tests-1", "--source", "https://ci.example/acme")
	id := first["id"].(string)
	if len(id) != 64 || again["id"] != id {
		t.Fatalf("ids %v and %v: not deterministic", id, again["id"])
	}
	want := emitter.EventID(emitter.TypeTestReported, "github.com/acme/payments", "c0ffee1234567890abcdef1234567890abcdef12",
		"9876543210", "1", "unit", "3,3,0,0,0", "passed")
	if id != want {
		t.Errorf("id %s is not the documented derivation %s", id, want)
	}
	if rerun["id"] == id || other["id"] == id {
		t.Error("a re-run attempt or another report got the same id")
	}
	if given["id"] != "tests-1" || given["source"] != "https://ci.example/acme" {
		t.Errorf("--id/--source not used: %v %v", given["id"], given["source"])
	}
}

func TestEmitOverridesWin(t *testing.T) {
	const envSHA = "1111111111111111111111111111111111111111"
	const flagSHA = "ABCDEFABCDEFABCDEFABCDEFABCDEFABCDEFABCD"
	vars := with(githubEnv, "EVIDENCE_COMMIT", envSHA, "EVIDENCE_ACTOR", "carol")
	_, d, r := dryRun(t, vars, "pipeline", "--status", "success")
	if r.code != 0 || d["commit"] != envSHA || d["actor"].(map[string]any)["login"] != "carol" {
		t.Fatalf("EVIDENCE_* did not win over detection: %+v", r)
	}
	ce, d, r := dryRun(t, vars, "pipeline", "--status", "success",
		"--repo", "git@gitlab.com:Other/Repo.git", "--commit", flagSHA, "--run-id", "55", "--actor", "dependabot[bot]")
	if r.code != 0 {
		t.Fatal(r)
	}
	if d["repository"] != "gitlab.com/other/repo" || d["commit"] != strings.ToLower(flagSHA) || d["run_id"] != "55" {
		t.Errorf("flags did not win: %v", d)
	}
	if a := d["actor"].(map[string]any); a["login"] != "dependabot[bot]" || a["type"] != "bot" {
		t.Errorf("actor %v", a)
	}
	// The run URL is on github.com, not the repository's host: a URN source.
	if ce["source"] != "urn:evidence:ci:github-actions:gitlab.com/other/repo" {
		t.Errorf("source %v", ce["source"])
	}
	// Outside CI, flags alone are enough.
	ce, d, r = dryRun(t, nil, "scan", "--sarif", "testdata/scan-clean.sarif", "--repo", "https://github.com/acme/payments", "--commit", "c0ffee1")
	if r.code != 0 || d["repository"] != "github.com/acme/payments" || d["system"] != nil || ce["source"] != "urn:evidence:ci:cli:github.com/acme/payments" {
		t.Errorf("outside CI: %+v %v", r, ce)
	}
}

func TestEmitMissingFacts(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		args []string
		want []string
	}{
		{nil, []string{"pipeline", "--status", "success"}, []string{"unknown repository, commit and run id (no CI system detected)", "--commit", "EVIDENCE_COMMIT"}},
		{nil, []string{"test", "--junit", "testdata/junit-unit.xml", "--repo", "github.com/acme/payments"}, []string{"unknown commit (no CI system detected): pass --commit, or set EVIDENCE_COMMIT"}},
		{with(githubEnv, "GITHUB_SHA", ""), []string{"scan", "--sarif", "testdata/scan.sarif"}, []string{"unknown commit (github-actions does not provide it): pass --commit"}},
		{nil, []string{"artifact", "--file", "testdata/artifact.txt", "--repo", "github.com/acme/payments", "--commit", "c0ffee1"}, []string{"unknown run id", "--run-id"}},
		{nil, []string{"deploy", "--env", "production", "--service", "payments"}, []string{"unknown commit", "--commit", "or pass --digest"}},
		{nil, []string{"pipeline", "--status", "success", "--repo", "acme/payments", "--commit", "c0ffee1", "--run-id", "1"}, []string{`repository "acme/payments" is not host/owner/name`}},
		{nil, []string{"pipeline", "--status", "success", "--repo", "github.com/acme/payments", "--commit", "main", "--run-id", "1"}, []string{`commit "main" is not a hex SHA`}},
		{githubEnv, []string{"pipeline"}, []string{"--status required"}},
		{githubEnv, []string{"pipeline", "--status", "done"}, []string{`--status "done"`}},
		{githubEnv, []string{"test"}, []string{"--junit FILE required"}},
		{githubEnv, []string{"test", "--junit", "testdata/nope.xml"}, []string{"nope.xml"}},
		{githubEnv, []string{"test", "--junit", "testdata/scan.sarif"}, []string{"not well-formed XML"}},
		{githubEnv, []string{"scan"}, []string{"--sarif FILE required"}},
		{githubEnv, []string{"scan", "--sarif", "testdata/junit-unit.xml"}, []string{"not JSON"}},
		{githubEnv, []string{"scan", "--sarif", "testdata/scan.sarif", "--fail-on", "severe"}, []string{`unknown severity "severe"`}},
		{githubEnv, []string{"scan", "--sarif", "testdata/scan.sarif", "--category", "misc"}, []string{`--category "misc"`}},
		{githubEnv, []string{"deploy", "--service", "payments"}, []string{"--env required"}},
		{githubEnv, []string{"deploy", "--env", "production", "--service", "payments", "--status", "rolled-back"}, []string{`--status "rolled-back"`}},
		{githubEnv, []string{"pipeline", "--status", "success", "--time", "now"}, []string{"--time: not an RFC 3339 timestamp"}},
		{githubEnv, []string{"pipeline", "--status", "success", "extra"}, []string{`unexpected argument "extra"`}},
	} {
		r := run(t, tc.vars, "", append([]string{"emit"}, tc.args...)...)
		if r.code != cli.ExitUsage {
			t.Errorf("%v: exit %d, want 2: %s", tc.args, r.code, r.stderr)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.stderr, w) {
				t.Errorf("%v: stderr %q lacks %q", tc.args, r.stderr, w)
			}
		}
	}
}

func TestEmitTestJUnit(t *testing.T) {
	_, d, r := dryRun(t, githubEnv, "test", "--junit", "testdata/junit-failures.xml")
	if r.code != 0 {
		t.Fatal(r)
	}
	for k, want := range map[string]any{
		"suite": "junit-failures", "tests": 6.0, "passed": 3.0, "failed": 1.0, "errors": 1.0, "skipped": 1.0,
		"outcome": "failed", "report_format": "junit", "duration_seconds": 4.21,
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	failures, _ := d["failures"].([]any)
	if len(failures) != 2 ||
		failures[0].(map[string]any)["name"] != "payments.capture.CaptureTest.retries_on_timeout" ||
		failures[0].(map[string]any)["message"] != "expected 2 attempts, got 1" ||
		failures[1].(map[string]any)["name"] != "payments.refund.RefundTest.talks_to_ledger" {
		t.Errorf("failures %v", d["failures"])
	}
	if !strings.Contains(r.stderr, "6 run, 3 passed, 1 failed, 1 errors, 1 skipped: failed") {
		t.Errorf("stderr %q", r.stderr)
	}

	// Reports are summed; --suite names the whole.
	_, d, _ = dryRun(t, githubEnv, "test", "--junit", "testdata/junit-failures.xml", "--junit", "testdata/junit-unit.xml", "--suite", "ci")
	if d["suite"] != "ci" || d["tests"] != 9.0 || d["passed"] != 6.0 || d["outcome"] != "failed" {
		t.Errorf("summed: %v", d)
	}
	// Files after the flags are more reports (a shell glob).
	r = run(t, githubEnv, "", "emit", "test", "--dry-run", "--suite", "ci", "--junit", "testdata/junit-failures.xml", "testdata/junit-unit.xml")
	if r.code != 0 || !strings.Contains(r.stdout, `"tests": 9,`) {
		t.Errorf("glob: %+v", r)
	}
	// One suite: its name; all passed.
	_, d, _ = dryRun(t, gitlabEnv, "test", "--junit", "testdata/junit-unit.xml")
	if d["suite"] != "unit" || d["tests"] != 3.0 || d["passed"] != 3.0 || d["failed"] != 0.0 || d["errors"] != 0.0 || d["outcome"] != "passed" || d["failures"] != nil {
		t.Errorf("passing suite: %v", d)
	}
}

func TestEmitScanSARIF(t *testing.T) {
	_, d, r := dryRun(t, githubEnv, "scan", "--sarif", "testdata/scan.sarif")
	if r.code != 0 {
		t.Fatal(r)
	}
	f, _ := d["findings"].(map[string]any)
	for sev, want := range map[string]float64{"critical": 1, "high": 1, "medium": 2, "low": 1, "none": 0} {
		if f[sev] != want {
			t.Errorf("findings %s = %v, want %v (suppressed results excluded)", sev, f[sev], want)
		}
	}
	if d["tool"] != "semgrep" || d["category"] != "sast" || d["outcome"] != "failed" || d["report_format"] != "sarif" {
		t.Errorf("scan %v", d)
	}
	// A threshold of critical: still failed (one critical); none below it.
	_, d, _ = dryRun(t, githubEnv, "scan", "--sarif", "testdata/scan.sarif", "--fail-on", "critical", "--category", "dependency")
	if d != nil {
		t.Fatal("--fail-on critical with a critical finding exited 0")
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--fail-on", "high"}, cli.ExitFail, "2 finding(s) at or above high (--fail-on high); the scan was recorded"},
		{[]string{"--fail-on", "CRITICAL"}, cli.ExitFail, "1 finding(s) at or above critical"},
		{[]string{"--fail-on", "low"}, cli.ExitFail, "5 finding(s) at or above low"},
		{nil, cli.ExitOK, ""},
	} {
		args := append([]string{"emit", "scan", "--sarif", "testdata/scan.sarif", "--dry-run"}, tc.args...)
		r := run(t, githubEnv, "", args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stdout, `"outcome": "`) {
			t.Errorf("%v: %+v, want exit %d and %q", tc.args, r, tc.code, tc.want)
		}
	}
	// A clean scan passes whatever the threshold; gitleaks is a secrets scanner.
	_, d, r = dryRun(t, githubEnv, "scan", "--sarif", "testdata/scan-clean.sarif", "--fail-on", "none")
	if r.code != 0 || d["outcome"] != "passed" || d["category"] != "secrets" || d["tool"] != "gitleaks" {
		t.Errorf("clean scan: %+v %v", r, d)
	}
}

func TestEmitArtifactImage(t *testing.T) {
	const hexd = "4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899"
	for _, tc := range []struct {
		ref, name, tag, err string
	}{
		{ref: "localhost:5000/acme/app:1.2@sha256:" + hexd, name: "localhost:5000/acme/app", tag: "1.2"},
		{ref: "localhost:5000/app@sha256:" + hexd, name: "localhost:5000/app"},
		{ref: "ghcr.io/acme/payments@sha256:" + hexd, name: "ghcr.io/acme/payments"},
		{ref: "ghcr.io/acme/payments:1.4.2@sha256:" + strings.ToUpper(hexd), name: "ghcr.io/acme/payments", tag: "1.4.2"},
		{ref: "registry.example.com:8443/team/sub/app:v1@sha256:" + hexd, name: "registry.example.com:8443/team/sub/app", tag: "v1"},
		{ref: "nginx:1.27@sha256:" + hexd, name: "nginx", tag: "1.27"},
		{ref: "ghcr.io/acme/payments:1.4.2", err: `"ghcr.io/acme/payments:1.4.2" has no digest: pass the digest`},
		{ref: "localhost:5000/app", err: "has no digest"},
		{ref: "ghcr.io/acme/payments:1.4.2", err: "resolving a tag needs the registry"},
		{ref: "ghcr.io/acme/payments@sha256:abc", err: "is not a sha256 digest"},
		{ref: "ghcr.io/acme/payments@md5:" + hexd, err: "is not a sha256 digest"},
		{ref: "ghcr.io/acme/payments:@sha256:" + hexd, err: "empty tag"},
		{ref: "@sha256:" + hexd, err: "is not an image reference"},
	} {
		_, d, r := dryRun(t, githubEnv, "artifact", "--image", tc.ref)
		if tc.err != "" {
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.err) {
				t.Errorf("%s: %+v, want exit 2 and %q", tc.ref, r, tc.err)
			}
			continue
		}
		if r.code != 0 {
			t.Errorf("%s: %+v", tc.ref, r)
			continue
		}
		var tags []any
		if tc.tag != "" {
			tags = []any{tc.tag}
		}
		got, _ := d["tags"].([]any)
		if d["name"] != tc.name || d["digest"] != "sha256:"+hexd || len(got) != len(tags) || (len(tags) == 1 && got[0] != tags[0]) {
			t.Errorf("%s: name %v digest %v tags %v, want %s, %s", tc.ref, d["name"], d["digest"], d["tags"], tc.name, tc.tag)
		}
	}
	// --name wins over the reference's; --digest needs --name; one source only.
	_, d, _ := dryRun(t, githubEnv, "artifact", "--image", "ghcr.io/acme/payments@"+imgDigest, "--name", "payments")
	if d["name"] != "payments" {
		t.Errorf("--name: %v", d["name"])
	}
	_, d, _ = dryRun(t, githubEnv, "artifact", "--digest", strings.ToUpper("SHA256:"+imgDigest[7:]), "--name", "payments.tar")
	if d["digest"] != imgDigest || d["name"] != "payments.tar" {
		t.Errorf("--digest: %v", d)
	}
	for args, want := range map[string]string{
		"--digest " + imgDigest:                                   "--name required with --digest",
		"--digest sha256:12 --name x":                             "--digest: \"sha256:12\" is not a sha256 digest",
		"--digest " + imgDigest + " --file testdata/artifact.txt": "give one of --digest, --image and --file",
		"--name x":                    "give --digest (with --name), --image or --file",
		"--file testdata":             "is a directory",
		"--file testdata/missing.bin": "no such file",
		"--image ghcr.io/a/b@" + imgDigest + " --digest " + imgDigest: "give one of",
	} {
		r := run(t, githubEnv, "", append([]string{"emit", "artifact", "--dry-run"}, strings.Fields(args)...)...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, want) {
			t.Errorf("%s: %+v, want exit 2 and %q", args, r, want)
		}
	}
}

func TestEmitArtifactFile(t *testing.T) {
	b, err := os.ReadFile("testdata/artifact.txt")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if path, err := exec.LookPath("sha256sum"); err == nil {
		out, err := exec.Command(path, "testdata/artifact.txt").Output()
		if err != nil {
			t.Fatal(err)
		}
		if f := strings.Fields(string(out)); len(f) == 0 || "sha256:"+f[0] != want {
			t.Fatalf("sha256sum says %s, crypto/sha256 %s", out, want)
		}
	}
	ce, d, r := dryRun(t, githubEnv, "artifact", "--file", "testdata/artifact.txt")
	if r.code != 0 || d["digest"] != want || d["name"] != "artifact.txt" || ce["subject"] != want || d["built_at"] != fixedTime {
		t.Fatalf("--file: %+v %v", r, d)
	}
	_, d, _ = dryRun(t, githubEnv, "artifact", "--file", "testdata/artifact.txt", "--name", "payments-1.4.2.txt")
	if d["name"] != "payments-1.4.2.txt" || d["digest"] != want {
		t.Fatalf("--file --name: %v", d)
	}
}

// TestEmitSpoolAndFlush: evidenced unreachable, the events are spooled
// (exit 0, and stderr says how to flush); --no-spool fails instead;
// --flush against a real evidenced sends the spool in order and empties it.
func TestEmitSpoolAndFlush(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool")
	down := with(githubEnv, "EVIDENCE_SERVER", unreachable(t), "EVIDENCE_SPOOL_DIR", spool)
	var ids []string
	for _, args := range [][]string{
		{"pipeline", "--status", "success"},
		{"test", "--junit", "testdata/junit-failures.xml"},
	} {
		ce, _, _ := dryRun(t, githubEnv, args...)
		ids = append(ids, ce["id"].(string))
		r := run(t, down, "", append(append([]string{"emit"}, args...), "--attempts", "1", "--time", fixedTime)...)
		if r.code != 0 || !strings.Contains(r.stderr, "could not deliver the event to http://127.0.0.1:") ||
			!strings.Contains(r.stderr, "spooled "+ce["type"].(string)+" id="+ce["id"].(string)+" to "+spool+"/") ||
			!strings.Contains(r.stderr, "send it later with: evidence emit --flush --spool-dir "+spool) || r.stdout != "" {
			t.Fatalf("%v while evidenced is down: %+v", args, r)
		}
	}
	// The scan's --fail-on still fails the step when spooled.
	r := run(t, down, "", "emit", "scan", "--sarif", "testdata/scan.sarif", "--fail-on", "high", "--attempts", "1", "--time", fixedTime)
	if r.code != cli.ExitFail || !strings.Contains(r.stderr, "spooled") || !strings.Contains(r.stderr, "the scan was recorded") {
		t.Fatalf("scan --fail-on while down: %+v", r)
	}
	ce, _, _ := dryRun(t, githubEnv, "scan", "--sarif", "testdata/scan.sarif")
	ids = append(ids, ce["id"].(string))

	r = run(t, down, "", "emit", "deploy", "--env", "production", "--service", "payments", "--digest", imgDigest, "--attempts", "1", "--no-spool")
	if r.code != cli.ExitFail || !strings.Contains(r.stderr, "not spooled: --no-spool") {
		t.Fatalf("--no-spool: %+v", r)
	}
	pending, err := emitter.Spool{Dir: spool}.Pending()
	if err != nil || len(pending) != 3 {
		t.Fatalf("spool holds %v (%v), want 3 files", pending, err)
	}
	// Still down: --flush keeps everything and exits 1.
	r = run(t, down, "", "emit", "--flush", "--attempts", "1")
	if r.code != cli.ExitFail || !strings.Contains(r.stdout, "flushed "+spool+": sent 0, kept 3, refused 0") || !strings.Contains(r.stderr, "run evidence emit --flush again later") {
		t.Fatalf("flush while down: %+v", r)
	}

	d, server := startDaemon(t)
	r = run(t, nil, "", "emit", "--flush", "--server", server, "--spool-dir", spool)
	if r.code != 0 || strings.Count(r.stdout, "sent: ") != 3 || !strings.Contains(r.stdout, "(1 event(s): 1 stored, 0 already stored)") ||
		!strings.HasSuffix(r.stdout, "flushed "+spool+": sent 3, kept 0, refused 0\n") {
		t.Fatalf("flush: %+v", r)
	}
	entries, err := os.ReadDir(spool)
	if err != nil || len(entries) != 0 {
		t.Fatalf("spool not empty after the flush: %v %v", entries, err)
	}
	// The stream holds the spooled events, in the order they were emitted,
	// as the CLI built them.
	ctx := context.Background()
	st, err := d.JetStream().Stream(ctx, bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		m, err := st.GetMsg(ctx, uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		var got struct {
			ID     string `json:"id"`
			Source string `json:"source"`
			Time   string `json:"time"`
			Data   struct {
				Repository string `json:"repository"`
				Commit     string `json:"commit"`
				RunID      string `json:"run_id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Data, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != id || got.Source != "https://github.com/acme/payments" || got.Time != fixedTime ||
			got.Data.Repository != "github.com/acme/payments" || got.Data.Commit != githubEnv["GITHUB_SHA"] || got.Data.RunID != "9876543210" {
			t.Errorf("stream message %d: %s", i+1, m.Data)
		}
	}
	// Nothing left: a second flush sends nothing and succeeds.
	r = run(t, nil, "", "emit", "--flush", "--server", server, "--spool-dir", spool)
	if r.code != 0 || r.stdout != "flushed "+spool+": sent 0, kept 0, refused 0\n" {
		t.Fatalf("empty flush: %+v", r)
	}
}

// TestFlushRefused: a spooled event evidenced refuses is moved to
// refused/ with the reason, the next one is still sent, and the exit is 1.
func TestFlushRefused(t *testing.T) {
	_, server := startDaemon(t)
	spool := t.TempDir()
	sp := emitter.Spool{Dir: spool}
	// An event that passes the CLI but not the catalog: no outcome.
	bad, err := emitter.PipelineRunStarted(emitter.Meta{Source: "https://github.com/acme/payments", ID: "bad-1"},
		emitter.PipelineRun{Repository: "github.com/acme/payments", Commit: githubEnv["GITHUB_SHA"], RunID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	bad.SetType(emitter.TypePipelineRunFinished)
	badPath, err := sp.Put(bad)
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, with(githubEnv, "EVIDENCE_SERVER", unreachable(t), "EVIDENCE_SPOOL_DIR", spool), "",
		"emit", "pipeline", "--status", "success", "--attempts", "1")
	if r.code != 0 {
		t.Fatalf("spool: %+v", r)
	}
	r = run(t, map[string]string{"EVIDENCE_SERVER": server, "EVIDENCE_SPOOL_DIR": spool}, "", "emit", "-flush")
	name := filepath.Base(badPath)
	refused := filepath.Join(spool, "refused", name)
	if r.code != cli.ExitFail || !strings.Contains(r.stdout, "refused: "+name+" -> "+refused+": refused by evidenced (400 Bad Request)") ||
		!strings.Contains(r.stdout, "flushed "+spool+": sent 1, kept 0, refused 1") || !strings.Contains(r.stderr, "1 file(s) refused by evidenced") {
		t.Fatalf("flush: %+v", r)
	}
	if _, err := os.Stat(refused); err != nil {
		t.Fatalf("refused event not kept: %v", err)
	}
	reason, err := os.ReadFile(refused + ".reason")
	if err != nil || !strings.Contains(string(reason), "data/outcome: required property is missing") {
		t.Fatalf("reason %q, %v", reason, err)
	}
	if p, _ := sp.Pending(); len(p) != 0 {
		t.Fatalf("left in the spool: %v", p)
	}
	// Flag handling: --flush with emit's own flags is a usage error.
	r = run(t, nil, "", "emit", "--flush", "--type", "x")
	if r.code != cli.ExitUsage {
		t.Fatalf("--flush --type: %+v", r)
	}
}
