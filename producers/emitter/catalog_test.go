package emitter_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/producers/emitter"
	"github.com/evidencepipeline/evidence/schemas"
)

const (
	repo   = "github.com/acme/payments"
	sha    = "c0ffee1234567890abcdef1234567890abcdef12"
	digest = "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899"
)

var at = time.Date(2025, 3, 3, 16, 41, 5, 0, time.UTC)

func meta() emitter.Meta { return emitter.Meta{Source: "https://github.com/acme/payments", Time: at} }

// validate checks an event's attributes and its data against the catalog
// schema of its type.
func validate(t *testing.T, name string, ev event.Event, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	cat, lerr := schemas.Load()
	if lerr != nil {
		t.Fatal(lerr)
	}
	if !cat.Has(ev.Type()) {
		t.Fatalf("%s: type %s is not in the catalog", name, ev.Type())
	}
	if verr := ev.Validate(); verr != nil {
		t.Fatalf("%s: %v", name, verr)
	}
	if ev.ID() == "" || ev.Source() == "" || ev.Subject() == "" || ev.Time().IsZero() || ev.DataContentType() != "application/json" {
		t.Fatalf("%s: attributes not all set: %s", name, ev)
	}
	if verr := cat.Validate(ev.Type(), ev.Data()); verr != nil {
		t.Fatalf("%s: %v\ndata: %s", name, verr, ev.Data())
	}
}

func TestConstructorsMatchTheSchemas(t *testing.T) {
	alice := emitter.LoginIdentity("alice")
	bot := emitter.LoginIdentity("github-actions[bot]")
	full := emitter.PipelineRun{
		Repository: repo, Commit: sha, Branch: "main", RunID: "9876543210", RunAttempt: 2,
		RunURL: "https://github.com/acme/payments/actions/runs/9876543210", Pipeline: "release", System: "github-actions",
		Actor: alice, Trigger: "pull_request", Change: &emitter.Change{Number: 42, URL: "https://github.com/acme/payments/pull/42"},
		StartedAt: at.Add(-10 * time.Minute),
	}
	minimal := emitter.PipelineRun{Repository: "gitlab.example.com/platform/payments/api", Commit: "9f2c1e7", RunID: "4242"}
	for name, d := range map[string]emitter.PipelineRun{"full": full, "minimal": minimal} {
		ev, err := emitter.PipelineRunStarted(meta(), d)
		validate(t, "started "+name, ev, err)
		for _, outcome := range []string{"success", "failure", "cancelled", "error"} {
			f := d
			f.Outcome, f.FinishedAt = outcome, at
			ev, err := emitter.PipelineRunFinished(meta(), f)
			validate(t, "finished "+name+" "+outcome, ev, err)
		}
	}

	for name, a := range map[string]emitter.Artifact{
		"image": {Digest: digest, Name: "ghcr.io/acme/payments", Tags: []string{"1.4.2"}, Repository: repo, Commit: sha,
			RunID: "9876543210", RunURL: "https://github.com/acme/payments/actions/runs/9876543210", Pipeline: "release",
			System: "github-actions", Builder: bot, BuiltAt: at},
		"file": {Digest: digest, Name: "payments-linux-amd64.tar.gz", Repository: repo, Commit: sha, RunID: "jenkins-payments-main-118", System: "jenkins"},
	} {
		ev, err := emitter.ArtifactBuilt(meta(), a)
		validate(t, "artifact "+name, ev, err)
		if ev.Subject() != digest {
			t.Errorf("artifact %s: subject %q, want the digest", name, ev.Subject())
		}
	}

	for name, r := range map[string]emitter.TestReport{
		"passed": {Repository: repo, Commit: sha, RunID: "1", System: "github-actions", Suite: "unit", Tests: 120, Passed: 118, Skipped: 2,
			Outcome: "passed", DurationSeconds: 12.5, ReportFormat: "junit", FinishedAt: at},
		"failed": {Repository: repo, Commit: sha, Suite: "integration", Tests: 20, Passed: 17, Failed: 2, Errors: 1, Outcome: "failed",
			ReportFormat: "junit", Failures: []emitter.TestFailure{{Name: "CaptureTest.retries_on_timeout", Message: "expected 2 attempts, got 1"}, {Name: "CaptureTest.refund"}}},
		"empty": {Repository: repo, Commit: sha, Suite: "e2e", Outcome: "passed"},
	} {
		ev, err := emitter.TestReported(meta(), r)
		validate(t, "test "+name, ev, err)
	}

	for name, s := range map[string]emitter.ScanReport{
		"sast": {Repository: repo, Commit: sha, RunID: "1", System: "gitlab-ci", Tool: "semgrep", Category: "sast",
			Findings: emitter.Findings{High: 1, Medium: 3}, Outcome: "failed", ReportFormat: "sarif", FinishedAt: at},
		"container": {Repository: repo, Commit: sha, Tool: "trivy", ToolVersion: "0.58.1", Category: "container",
			Findings: emitter.Findings{Medium: 2, Low: 7}, Outcome: "passed", Target: "ghcr.io/acme/payments:1.4.2", Digest: digest},
		"clean": {Repository: repo, Commit: sha, Tool: "gitleaks", Category: "secrets"},
	} {
		ev, err := emitter.ScanReported(meta(), s)
		validate(t, "scan "+name, ev, err)
	}

	for name, d := range map[string]emitter.Deployment{
		"pipeline": {Environment: "production", Service: "payments", Digest: digest, Artifact: "ghcr.io/acme/payments:1.4.2",
			Repository: repo, Commit: sha, RunID: "9876543299", RunURL: "https://github.com/acme/payments/actions/runs/9876543299",
			Pipeline: "deploy", System: "github-actions", Deployer: bot, TicketKeys: []string{"CHG0031234"},
			Change: &emitter.Change{Number: 42}},
		"pipeline triggered by hand": {Environment: "production", Service: "payments", Digest: digest, Repository: repo,
			Commit: sha, RunID: "9876543300", Pipeline: "release", System: "github-actions",
			Deployer: emitter.PipelineIdentity("github-actions", "release"), TriggeredBy: alice, Trigger: "manual"},
		"digest only": {Environment: "staging", Service: "payments", Digest: digest},
		"commit only": {Environment: "prod-eu", Service: "payments", Commit: sha, Deployer: alice},
	} {
		s := d
		s.StartedAt = at
		ev, err := emitter.DeploymentStarted(meta(), s)
		validate(t, "deployment started "+name, ev, err)
		for _, outcome := range []string{"success", "failure", "cancelled"} {
			f := d
			f.Outcome, f.FinishedAt = outcome, at
			ev, err := emitter.DeploymentFinished(meta(), f)
			validate(t, "deployment finished "+name+" "+outcome, ev, err)
			if ev.Subject() != "payments" {
				t.Errorf("deployment subject %q, want the service", ev.Subject())
			}
		}
	}
}

func TestPipelineIdentity(t *testing.T) {
	b, _ := json.Marshal(emitter.PipelineIdentity("gitlab-ci", "deploy-prod"))
	if string(b) != `{"login":"gitlab-ci:deploy-prod","name":"deploy-prod","type":"service"}` {
		t.Errorf("pipeline identity JSON %s", b)
	}
	if id := emitter.PipelineIdentity("tekton", ""); id == nil || id.Login != "tekton" || id.Name != "" {
		t.Errorf("unnamed pipeline: %+v", id)
	}
	if emitter.PipelineIdentity("", "release") != nil {
		t.Error("a pipeline without a system gave an identity")
	}
	_, err := emitter.DeploymentFinished(meta(), emitter.Deployment{Environment: "production", Service: "payments", Digest: digest,
		Outcome: "success", Trigger: "workflow_dispatch"})
	if err == nil || !strings.Contains(err.Error(), "trigger") {
		t.Errorf("a trigger outside the catalog's: %v", err)
	}
}

func TestConstructorsRefuseIncompleteData(t *testing.T) {
	for name, tc := range map[string]struct {
		build func() (event.Event, error)
		want  string
	}{
		"no source": {func() (event.Event, error) {
			return emitter.PipelineRunStarted(emitter.Meta{}, emitter.PipelineRun{Repository: repo, Commit: sha, RunID: "1"})
		}, "source is required"},
		"no commit": {func() (event.Event, error) {
			return emitter.PipelineRunStarted(meta(), emitter.PipelineRun{Repository: repo, RunID: "1"})
		}, "commit required"},
		"started with outcome": {func() (event.Event, error) {
			return emitter.PipelineRunStarted(meta(), emitter.PipelineRun{Repository: repo, Commit: sha, RunID: "1", Outcome: "success"})
		}, "outcome and finished_at belong to"},
		"bad outcome": {func() (event.Event, error) {
			return emitter.PipelineRunFinished(meta(), emitter.PipelineRun{Repository: repo, Commit: sha, RunID: "1", Outcome: "ok"})
		}, `outcome "ok"`},
		"artifact without run": {func() (event.Event, error) {
			return emitter.ArtifactBuilt(meta(), emitter.Artifact{Digest: digest, Name: "x", Repository: repo, Commit: sha})
		}, "run_id required"},
		"passed with failures": {func() (event.Event, error) {
			return emitter.TestReported(meta(), emitter.TestReport{Repository: repo, Commit: sha, Suite: "u", Tests: 1, Failed: 1, Outcome: "passed"})
		}, "outcome passed with 1 failed"},
		"scan category": {func() (event.Event, error) {
			return emitter.ScanReported(meta(), emitter.ScanReport{Repository: repo, Commit: sha, Tool: "x", Category: "misc"})
		}, `category "misc"`},
		"deployment of nothing": {func() (event.Event, error) {
			return emitter.DeploymentFinished(meta(), emitter.Deployment{Environment: "production", Service: "payments", Outcome: "success"})
		}, "commit or digest is required"},
	} {
		_, err := tc.build()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}

func TestDefaultIDs(t *testing.T) {
	run := emitter.PipelineRun{Repository: repo, Commit: sha, RunID: "77", Pipeline: "ci", Outcome: "success"}
	id := func(m emitter.Meta, d emitter.PipelineRun) string {
		t.Helper()
		ev, err := emitter.PipelineRunFinished(m, d)
		if err != nil {
			t.Fatal(err)
		}
		return ev.ID()
	}
	first := id(meta(), run)
	later := meta()
	later.Time = at.Add(time.Hour)
	if id(later, run) != first {
		t.Error("the same facts at another time got another id")
	}
	if first != emitter.EventID(emitter.TypePipelineRunFinished, repo, sha, "77", "", "ci", "success") {
		t.Error("the default id is not EventID of the documented parts")
	}
	attempt := run
	attempt.RunAttempt = 2
	failed := run
	failed.Outcome = "failure"
	if id(meta(), attempt) == first || id(meta(), failed) == first {
		t.Error("another attempt or outcome got the same id")
	}
	m := meta()
	m.ID = "given"
	if id(m, run) != "given" {
		t.Error("Meta.ID was not used")
	}
	// The run attempt of Meta keys types whose data has none.
	a := emitter.Artifact{Digest: digest, Name: "x", Repository: repo, Commit: sha, RunID: "77"}
	e1, _ := emitter.ArtifactBuilt(meta(), a)
	m2 := meta()
	m2.RunAttempt = 2
	e2, _ := emitter.ArtifactBuilt(m2, a)
	if e1.ID() == e2.ID() {
		t.Error("a re-run attempt of an artifact got the same id")
	}
	// Without a run id there is nothing to key on: ids are random.
	d := emitter.Deployment{Environment: "production", Service: "payments", Digest: digest, Outcome: "success"}
	d1, _ := emitter.DeploymentFinished(meta(), d)
	d2, _ := emitter.DeploymentFinished(meta(), d)
	if d1.ID() == d2.ID() || d1.ID() == "" {
		t.Errorf("deployments outside a run got ids %q and %q", d1.ID(), d2.ID())
	}
	// EventID does not confuse part boundaries.
	if emitter.EventID("t", "ab", "c") == emitter.EventID("t", "a", "bc") {
		t.Error("EventID is ambiguous")
	}
}

func TestLoginIdentity(t *testing.T) {
	for login, want := range map[string]string{
		"alice": "user", "dependabot[bot]": "bot", "github-actions[bot]": "service", "alice@acme.example": "user",
	} {
		id := emitter.LoginIdentity(login)
		if id == nil || id.Login != login || id.Type != want {
			t.Errorf("%s: %+v, want type %s", login, id, want)
		}
	}
	if id := emitter.LoginIdentity("jane.doe@contoso.com"); id.Email != "jane.doe@contoso.com" {
		t.Errorf("an e-mail login is not the identity's email: %+v", id)
	}
	for _, login := range []string{"alice", "svc@deploy", "a b@c.d", "@acme.example"} {
		if id := emitter.LoginIdentity(login); id.Email != "" {
			t.Errorf("%q: email %q, want none", login, id.Email)
		}
	}
	if emitter.LoginIdentity(" ") != nil {
		t.Error("an empty login gave an identity")
	}
	b, _ := json.Marshal(emitter.LoginIdentity("alice"))
	if string(b) != `{"login":"alice","type":"user"}` {
		t.Errorf("identity JSON %s", b)
	}
}
