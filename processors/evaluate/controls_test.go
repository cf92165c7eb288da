package evaluate

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
)

const (
	repo     = "github.com/acme/payments"
	head1    = "1111111111111111111111111111111111111111"
	head2    = "2222222222222222222222222222222222222222"
	merge    = "cccccccccccccccccccccccccccccccccccccccc"
	digest   = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	botLogin = "github-actions[bot]"
)

var (
	t0    = time.Date(2025, 3, 3, 9, 0, 0, 0, time.UTC)
	alice = correlate.Identity{Login: "alice", Email: "alice@acme.example", Type: "user"}
	bob   = correlate.Identity{Login: "bob", Email: "bob@acme.example", Type: "user"}
	carol = correlate.Identity{Login: "712020:carol", Email: "carol@acme.example", Type: "user"}
	bot   = correlate.Identity{Login: botLogin, Type: "service"}
	// deployAt is the production deployment; later is well past every deadline.
	deployAt = t0.Add(24 * time.Hour)
	later    = deployAt.Add(72 * time.Hour)
)

func ref(id string) []correlate.EventRef          { return []correlate.EventRef{{Source: "test", ID: id}} }
func id(i correlate.Identity) *correlate.Identity { return &i }

// compliant is a change every control passes: alice's pull request, pushed
// twice (tests failed on the first head), approved by bob on the final
// head, ticket approved by carol before the deployment, built and deployed
// by the pipeline.
func compliant() correlate.Record {
	return correlate.Record{
		ID: repo + "@" + merge, Repository: repo, Commit: merge,
		PullRequest: &correlate.PullRequest{
			Number: 42, Author: id(alice), TargetBranch: "main", HeadCommit: head2, MergeCommit: merge,
			MergedBy: id(bob), MergedAt: t0.Add(8 * time.Hour),
			Heads: []correlate.Head{
				{Commit: head1, Via: "opened", By: id(alice), At: t0, Events: ref("opened")},
				{Commit: head2, Previous: head1, Via: "updated", By: id(alice), At: t0.Add(2 * time.Hour), Events: ref("updated")},
				{Commit: head2, Via: "merged", By: id(bob), At: t0.Add(8 * time.Hour), Events: ref("merged")},
			},
			Reviews: []correlate.Review{{Reviewer: bob, Decision: "approved", HeadCommit: head2, At: t0.Add(7 * time.Hour), Events: ref("review-bob")}},
		},
		Tickets: []correlate.Ticket{{
			Key: "PAY-123", System: "jira", Type: "normal", Status: "Approved", RequestedBy: id(alice),
			Approvals: []correlate.Approval{{By: carol, At: t0.Add(6 * time.Hour), Status: "Approved", Events: ref("ticket-approved")}},
		}},
		Runs: []correlate.Run{{Repository: repo, RunID: "100", Attempt: 1, Commit: merge, Branch: "main", Pipeline: "release",
			Actor: id(bob), StartedAt: t0.Add(8 * time.Hour), FinishedAt: t0.Add(9 * time.Hour), Outcome: "success", Events: ref("run-100")}},
		Artifacts: []correlate.Artifact{{ArtifactFact: correlate.ArtifactFact{Digest: digest, Name: "ghcr.io/acme/payments", Repository: repo,
			Commit: merge, RunID: "100", Builder: id(bot)}, At: t0.Add(8*time.Hour + 30*time.Minute), Events: ref("artifact")}},
		Tests: []correlate.Test{
			{TestFact: correlate.TestFact{Repository: repo, Commit: head1, Suite: "unit", Outcome: "failed", Tests: 10, Passed: 8, Failed: 2}, At: t0.Add(time.Hour), Events: ref("test-head1")},
			{TestFact: correlate.TestFact{Repository: repo, Commit: merge, Suite: "unit", Outcome: "passed", Tests: 10, Passed: 10}, At: t0.Add(8*time.Hour + 20*time.Minute), Events: ref("test-merge")},
		},
		Scans: []correlate.Scan{
			{ScanFact: correlate.ScanFact{Repository: repo, Commit: merge, Tool: "semgrep", Category: "sast", Findings: correlate.Findings{Medium: 3}}, At: t0.Add(8*time.Hour + 10*time.Minute), Events: ref("sast")},
			{ScanFact: correlate.ScanFact{Repository: repo, Commit: merge, Tool: "grype", Category: "dependency", Findings: correlate.Findings{Low: 2}}, At: t0.Add(8*time.Hour + 10*time.Minute), Events: ref("deps")},
		},
		Deployments: []correlate.Deployment{{Environment: "production", Service: "payments", DeploymentID: "d-1", Digest: digest,
			Repository: repo, RunID: "200", Deployer: id(bot), StartedAt: deployAt, FinishedAt: deployAt.Add(5 * time.Minute),
			Outcome: "success", MatchedBy: []string{"artifact"}, Events: ref("deploy")}},
	}
}

type tc struct {
	name   string
	mut    func(r *correlate.Record)
	at     time.Time // zero: later
	want   Status
	reason string // a substring of one reason
}

func check(t *testing.T, control string, cases []tc) {
	t.Helper()
	e := engine(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := compliant()
			if c.mut != nil {
				c.mut(&r)
			}
			at := c.at
			if at.IsZero() {
				at = later
			}
			res, err := e.Evaluate(context.Background(), r, at, Params{})
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range res {
				if x.Control.ID != control {
					continue
				}
				if x.Status != c.want {
					t.Fatalf("%s: status %s, want %s; reasons %q", control, x.Status, c.want, x.Reasons)
				}
				if c.reason != "" && !strings.Contains(strings.Join(x.Reasons, "\n"), c.reason) {
					t.Fatalf("%s: reasons %q, want one containing %q", control, x.Reasons, c.reason)
				}
				if x.BundleHash != e.BundleHash() || x.Change != r.ID || x.RecordHash != r.Hash() {
					t.Fatalf("result identity: %+v", x)
				}
				if x.Status == Pass && len(x.Evidence) == 0 && c.name != "unmatched staging deployment is not production" {
					t.Fatalf("pass without evidence")
				}
				return
			}
			t.Fatalf("no result for %s", control)
		})
	}
}

func TestCompliantPassesAll(t *testing.T) {
	res, err := engine(t).Evaluate(context.Background(), compliant(), later, Params{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 8 {
		t.Fatalf("%d results", len(res))
	}
	for _, x := range res {
		if x.Status != Pass {
			t.Errorf("%s: %s %q", x.Control.ID, x.Status, x.Reasons)
		}
	}
}

func TestCM1Ticket(t *testing.T) {
	emergency := func(approvedAt time.Time) func(r *correlate.Record) {
		return func(r *correlate.Record) {
			r.Tickets[0].Type = "emergency"
			r.Tickets[0].Approvals[0].At = approvedAt
		}
	}
	check(t, "CM-1", []tc{
		{name: "approved before deploy", want: Pass, reason: "PAY-123 approved by 712020:carol"},
		{name: "no ticket", mut: func(r *correlate.Record) { r.Tickets = nil }, want: Fail, reason: "no change ticket"},
		{name: "no ticket, recent deploy: pending", mut: func(r *correlate.Record) { r.Tickets = nil }, at: deployAt.Add(10 * time.Minute), want: Pending, reason: "until 2025-03-04T10:00:00Z"},
		{name: "ticket not approved", mut: func(r *correlate.Record) { r.Tickets[0].Approvals = nil }, want: Fail, reason: "has no approval"},
		{name: "ticket approved after deploy", mut: func(r *correlate.Record) { r.Tickets[0].Approvals[0].At = deployAt.Add(time.Hour) }, want: Fail, reason: "after the deployment"},
		{name: "ticket rejected before deploy", mut: func(r *correlate.Record) {
			r.Tickets[0].Rejections = []correlate.Approval{{By: carol, At: deployAt.Add(-time.Hour), Events: ref("rej")}}
		}, want: Fail, reason: "rejected"},
		{name: "emergency approved inside window", mut: emergency(deployAt.Add(20 * time.Hour)), want: Pass, reason: "within 24h0m0s"},
		{name: "emergency approved outside window", mut: emergency(deployAt.Add(30 * time.Hour)), want: Fail, reason: "outside the 24h0m0s window"},
		{name: "emergency not yet approved inside window", mut: func(r *correlate.Record) {
			r.Tickets[0].Type = "emergency"
			r.Tickets[0].Approvals = nil
		}, at: deployAt.Add(3 * time.Hour), want: Pending, reason: "expected by 2025-03-05T09:00:00Z"},
		{name: "emergency never approved", mut: func(r *correlate.Record) {
			r.Tickets[0].Type = "emergency"
			r.Tickets[0].Approvals = nil
		}, want: Fail, reason: "not approved within"},
		{name: "deployment known only by its finish: judged as of the finish", mut: func(r *correlate.Record) {
			// Finished at deployAt+5m; approved at deployAt+10m: after it.
			r.Deployments[0].StartedAt = time.Time{}
			r.Tickets[0].Approvals[0].At = deployAt.Add(10 * time.Minute)
		}, want: Fail, reason: "ticket PAY-123 approved at 2025-03-04T09:10:00Z, after the deployment at 2025-03-04T09:05:00Z"},
		{name: "ticket approved by a bot only", mut: func(r *correlate.Record) {
			r.Tickets[0].Approvals[0].By = correlate.Identity{Login: "automation-for-jira", Type: "bot"}
		}, want: Fail, reason: "ticket PAY-123 approval by automation-for-jira does not count: automation-for-jira is a bot account, not a ticket approver"},
		{name: "emergency ticket approved by a service account only", mut: func(r *correlate.Record) {
			r.Tickets[0].Type = "emergency"
			r.Tickets[0].Approvals[0].By = correlate.Identity{Login: "system", Type: "service"}
		}, want: Fail, reason: "not approved within"},
		{name: "prospective emergency without approval is not a pass", mut: func(r *correlate.Record) {
			r.Tickets[0].Type = "emergency"
			r.Tickets[0].Approvals = nil
			r.Deployments = nil
		}, at: deployAt, want: Pending, reason: "has no approval"},
	})
}

func TestCM2Review(t *testing.T) {
	check(t, "CM-2", []tc{
		{name: "approved by peer on final head", want: Pass, reason: "approved by bob"},
		{name: "no approvals at all", mut: func(r *correlate.Record) { r.PullRequest.Reviews = nil }, want: Fail, reason: "no approving review"},
		{name: "no approvals, recent: pending not pass", mut: func(r *correlate.Record) { r.PullRequest.Reviews = nil }, at: deployAt, want: Pending},
		{name: "self-approved", mut: func(r *correlate.Record) { r.PullRequest.Reviews[0].Reviewer = alice }, want: Fail, reason: "author's own"},
		{name: "self-approved by email identity", mut: func(r *correlate.Record) {
			r.PullRequest.Reviews[0].Reviewer = correlate.Identity{Login: "alice-work", Email: "ALICE@acme.example"}
		}, want: Fail, reason: "author's own"},
		{name: "stale after later push", mut: func(r *correlate.Record) {
			r.PullRequest.Reviews[0].HeadCommit, r.PullRequest.Reviews[0].Stale = head1, true
		}, want: Fail, reason: "is stale"},
		{name: "dismissed", mut: func(r *correlate.Record) { r.PullRequest.Reviews[0].Dismissed = true }, want: Fail, reason: "dismissed"},
		{name: "changes requested only", mut: func(r *correlate.Record) { r.PullRequest.Reviews[0].Decision = "changes_requested" }, want: Fail, reason: "no approving review"},
		{name: "direct push", mut: func(r *correlate.Record) { r.PullRequest, r.DirectPush = nil, true }, want: Fail, reason: "direct push"},
		{name: "stale plus fresh approval", mut: func(r *correlate.Record) {
			r.PullRequest.Reviews = append(r.PullRequest.Reviews, correlate.Review{Reviewer: carol, Decision: "approved", HeadCommit: head1, Stale: true, At: t0.Add(time.Hour)})
		}, want: Pass},
		{name: "approval superseded by the reviewer's request for changes", mut: func(r *correlate.Record) {
			r.PullRequest.Reviews[0].Superseded = true
			r.PullRequest.Reviews = append(r.PullRequest.Reviews, correlate.Review{Reviewer: bob, Decision: "changes_requested", HeadCommit: head2, At: t0.Add(7*time.Hour + 30*time.Minute)})
		}, want: Fail, reason: "approval by bob at 2025-03-03T16:00:00Z was withdrawn: bob requested changes at 2025-03-03T16:30:00Z"},
		{name: "approval by a bot", mut: func(r *correlate.Record) {
			r.PullRequest.Reviews[0].Reviewer = correlate.Identity{Login: "dependabot[bot]", ID: "49699333", Type: "bot"}
		}, want: Fail, reason: "dependabot[bot] is a bot account, not a peer reviewer"},
		{name: "approval by a service account", mut: func(r *correlate.Record) {
			r.PullRequest.Reviews[0].Reviewer = correlate.Identity{Login: "release-svc", Type: "service"}
		}, want: Fail, reason: "release-svc is a service account, not a peer reviewer"},
		{name: "approval by the pipeline identity", mut: func(r *correlate.Record) { r.PullRequest.Reviews[0].Reviewer = bot }, want: Fail,
			reason: "github-actions[bot] is a pipeline identity (--pipeline-identities), not a peer reviewer"},
	})
}

// TestCM2PipelineIdentities: a login listed in --pipeline-identities is a
// machine whatever type its events give it, and the default list no
// longer applies once the list is set.
func TestCM2PipelineIdentities(t *testing.T) {
	e := engine(t)
	r := compliant()
	r.PullRequest.Reviews[0].Reviewer = correlate.Identity{Login: "Deploy-Bot", Type: "user"}
	for _, c := range []struct {
		params Params
		want   Status
	}{
		{Params{}, Pass},
		{Params{PipelineIdentities: []string{"deploy-bot"}}, Fail},
	} {
		res, err := e.Evaluate(context.Background(), r, later, c.params)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range res {
			if x.Control.ID == "CM-2" && x.Status != c.want {
				t.Errorf("pipeline identities %q: CM-2 %s %q, want %s", c.params.PipelineIdentities, x.Status, x.Reasons, c.want)
			}
		}
	}
}

func TestCM3Segregation(t *testing.T) {
	check(t, "CM-3", []tc{
		{name: "distinct people, automated deploy", want: Pass, reason: "automated by pipeline identity"},
		{name: "ticket approver is the author", mut: func(r *correlate.Record) {
			r.Tickets[0].Approvals[0].By = correlate.Identity{Login: "712020:alice", Email: "alice@acme.example"}
		}, want: Fail, reason: "author alice is also ticket PAY-123 approver"},
		{name: "deployer is the author", mut: func(r *correlate.Record) { r.Deployments[0].Deployer = id(alice) }, want: Fail, reason: "is also deployer"},
		{name: "deployer is the reviewer", mut: func(r *correlate.Record) { r.Deployments[0].Deployer = id(bob) }, want: Fail, reason: "deployer bob is also reviewer"},
		{name: "reviewer is ticket approver", mut: func(r *correlate.Record) { r.Tickets[0].Approvals[0].By = bob }, want: Fail, reason: "reviewer bob is also ticket"},
		{name: "self-approved", mut: func(r *correlate.Record) { r.PullRequest.Reviews[0].Reviewer = alice }, want: Fail, reason: "author alice is also reviewer"},
		{name: "human deployer distinct", mut: func(r *correlate.Record) {
			r.Deployments[0].Deployer = &correlate.Identity{Login: "dave"}
		}, want: Pass, reason: "deployer: dave"},
		{name: "nobody but the author approved (vacuous)", mut: func(r *correlate.Record) {
			r.PullRequest.Reviews, r.Tickets = nil, nil
		}, want: Fail, reason: "no approval by anyone other than the author"},
		{name: "deployer unknown", mut: func(r *correlate.Record) { r.Deployments[0].Deployer = nil }, want: Fail, reason: "no known deployer"},
		{name: "pipeline deploy triggered by the reviewer", mut: ciDeploy(bob, "push"), want: Pass,
			reason: "automated by pipeline identity github-actions:release (run 200), triggered by bob (push)"},
		{name: "pipeline deploy started by hand by the author: allowed, named", mut: ciDeploy(alice, "manual"), want: Pass,
			reason: "started on demand (manual) by the change's author alice: allowed"},
		{name: "the author deploying from outside CI", mut: func(r *correlate.Record) {
			r.Deployments[0].Deployer, r.Deployments[0].RunID = id(alice), ""
		}, want: Fail, reason: "author alice is also deployer"},
	})
}

// ciDeploy makes the deployment a pipeline's, as evidence emit deploy
// reports one from a GitHub Actions job, triggered by who with trigger.
func ciDeploy(who correlate.Identity, trigger string) func(r *correlate.Record) {
	return func(r *correlate.Record) {
		d := &r.Deployments[0]
		d.System, d.Pipeline, d.Trigger, d.TriggeredBy = "github-actions", "release", trigger, id(who)
		d.Deployer = &correlate.Identity{Login: "github-actions:release", Name: "release", Type: "service"}
	}
}

// TestManualTriggerByAuthorParam: the parameter reaches the policy, and
// a pipeline of a system outside PipelineSystems is no pipeline.
func TestManualTriggerByAuthorParam(t *testing.T) {
	e := engine(t)
	status := func(r correlate.Record, p Params) map[string]Status {
		res, err := e.Evaluate(context.Background(), r, later, p)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Status{}
		for _, x := range res {
			out[x.Control.ID] = x.Status
		}
		return out
	}
	r := compliant()
	ciDeploy(alice, "manual")(&r)
	if got := status(r, Params{}); got["CM-3"] != Pass || got["CM-7"] != Pass {
		t.Errorf("default params: CM-3 %s, CM-7 %s; want pass, pass", got["CM-3"], got["CM-7"])
	}
	if got := status(r, Params{ManualTriggerByAuthor: "fail"}); got["CM-3"] != Fail || got["CM-7"] != Pass {
		t.Errorf("manual_trigger_by_author fail: CM-3 %s, CM-7 %s; want fail, pass", got["CM-3"], got["CM-7"])
	}
	if got := status(r, Params{PipelineSystems: []string{"jenkins"}}); got["CM-7"] != Fail || got["CM-3"] != Pass {
		t.Errorf("github-actions not a pipeline system: CM-3 %s, CM-7 %s; want pass (a distinct deployer), fail", got["CM-3"], got["CM-7"])
	}
}

func TestCM4Tests(t *testing.T) {
	check(t, "CM-4", []tc{
		{name: "failed on earlier head, passed on deployed commit", want: Pass, reason: "passed on the deployed commit"},
		{name: "failed on deployed commit", mut: func(r *correlate.Record) { r.Tests[1].Outcome, r.Tests[1].Failed = "failed", 1 }, want: Fail, reason: "suite unit failed"},
		{name: "re-run passes after failure on deployed commit", mut: func(r *correlate.Record) {
			x := r.Tests[1]
			x.Outcome, x.At = "failed", x.At.Add(-time.Minute)
			r.Tests = append(r.Tests, x)
		}, want: Pass},
		{name: "second suite failed", mut: func(r *correlate.Record) {
			x := r.Tests[1]
			x.Suite, x.Outcome = "integration", "failed"
			r.Tests = append(r.Tests, x)
		}, want: Fail, reason: "integration failed"},
		{name: "no tests on deployed commit (only the head)", mut: func(r *correlate.Record) { r.Tests = r.Tests[:1] }, want: Fail, reason: "no test results"},
		{name: "no tests, recent: pending", mut: func(r *correlate.Record) { r.Tests = nil }, at: deployAt.Add(time.Minute), want: Pending},
	})
}

func TestCM5Scans(t *testing.T) {
	check(t, "CM-5", []tc{
		{name: "sast and dependency clean", want: Pass},
		{name: "critical finding", mut: func(r *correlate.Record) { r.Scans[1].Findings.Critical = 1 }, want: Fail, reason: "1 open findings at or above high"},
		{name: "high finding", mut: func(r *correlate.Record) { r.Scans[0].Findings.High = 2 }, want: Fail, reason: "semgrep (sast)"},
		{name: "critical container scan of the deployed digest", mut: func(r *correlate.Record) {
			r.Scans = append(r.Scans, correlate.Scan{ScanFact: correlate.ScanFact{Repository: repo, Commit: merge, Tool: "trivy", Category: "container", Digest: digest, Findings: correlate.Findings{Critical: 1}}, At: t0.Add(9 * time.Hour)})
		}, want: Fail, reason: "trivy (container)"},
		{name: "rescan after fix", mut: func(r *correlate.Record) {
			x := r.Scans[1]
			x.Findings.Critical, x.At = 4, x.At.Add(-time.Minute)
			r.Scans = append(r.Scans, x)
		}, want: Pass},
		{name: "no dependency scan", mut: func(r *correlate.Record) { r.Scans = r.Scans[:1] }, want: Fail, reason: "no dependency scan"},
		{name: "scan of another commit only", mut: func(r *correlate.Record) { r.Scans[0].Commit = head1 }, want: Fail, reason: "no sast scan"},
	})
}

func TestCM6Provenance(t *testing.T) {
	check(t, "CM-6", []tc{
		{name: "built by pipeline from merged commit", want: Pass, reason: "built by run 100"},
		{name: "built outside the pipeline", mut: func(r *correlate.Record) {
			r.Artifacts[0].RunID, r.Artifacts[0].Builder = "", id(alice)
		}, want: Fail, reason: "built outside a pipeline"},
		{name: "built by a person", mut: func(r *correlate.Record) { r.Artifacts[0].Builder = id(alice) }, want: Fail, reason: "built outside a pipeline"},
		{name: "built from a branch head", mut: func(r *correlate.Record) { r.Artifacts[0].Commit = head2 }, want: Fail, reason: "not the merged commit"},
		{name: "run built another commit", mut: func(r *correlate.Record) { r.Runs[0].Commit = head1 }, want: Fail, reason: "run 100 built commit"},
		{name: "deployed artifact unknown", mut: func(r *correlate.Record) { r.Artifacts = nil }, want: Fail, reason: "not known"},
		{name: "deployment names no artifact", mut: func(r *correlate.Record) { r.Deployments[0].Digest, r.Deployments[0].Commit = "", merge }, want: Fail, reason: "names no artifact"},
	})
}

func TestCM7Path(t *testing.T) {
	check(t, "CM-7", []tc{
		{name: "pipeline deploy from protected branch", want: Pass},
		{name: "manual deploy", mut: func(r *correlate.Record) { r.Deployments[0].Deployer = id(bob) }, want: Fail, reason: "by bob, not a pipeline identity"},
		{name: "pipeline deploy from a CI system", mut: ciDeploy(carol, "push"), want: Pass,
			reason: "by pipeline identity github-actions:release (run 200), triggered by 712020:carol (push)"},
		{name: "a person, though reported from CI", mut: func(r *correlate.Record) {
			r.Deployments[0].System, r.Deployments[0].Deployer = "github-actions", id(carol)
		}, want: Fail, reason: "by 712020:carol, not a pipeline identity"},
		{name: "unprotected target branch", mut: func(r *correlate.Record) { r.PullRequest.TargetBranch = "release-hotfix" }, want: Fail, reason: "not a protected branch"},
		{name: "direct push", mut: func(r *correlate.Record) { r.PullRequest, r.DirectPush = nil, true }, want: Fail, reason: "direct push"},
	})
}

func TestCM8Unauthorized(t *testing.T) {
	unmatched := func(r *correlate.Record) {
		d := r.Deployments[0]
		d.MatchedBy = []string{}
		*r = correlate.Record{ID: "unmatched:production/payments/" + digest, Unmatched: true, Deployments: []correlate.Deployment{d}}
	}
	check(t, "CM-8", []tc{
		{name: "matches a change record", want: Pass},
		{name: "deployment with no change record", mut: unmatched, want: Fail, reason: "matches no change record"},
		{name: "unmatched fails immediately, never pending", mut: unmatched, at: deployAt, want: Fail},
		{name: "direct push", mut: func(r *correlate.Record) {
			r.PullRequest, r.DirectPush = nil, true
			r.Pushes = []correlate.Push{{PushFact: correlate.PushFact{Repository: repo, Ref: "refs/heads/main", After: merge, Pusher: id(alice)}, At: t0, Events: ref("push")}}
		}, want: Fail, reason: "direct push to refs/heads/main by alice"},
		{name: "unmatched staging deployment is not production", mut: func(r *correlate.Record) {
			unmatched(r)
			r.Deployments[0].Environment = "staging"
		}, want: Pass},
	})
}

func TestExceptions(t *testing.T) {
	noTests := func(r *correlate.Record) { r.Tests = nil }
	exc := func(mod func(x *correlate.Exception)) func(r *correlate.Record) {
		return func(r *correlate.Record) {
			noTests(r)
			x := correlate.Exception{ID: "EXC-1", Control: "CM-4", Status: "granted", RequestedBy: id(alice), Approver: id(carol),
				GrantedAt: t0, ExpiresAt: later.Add(time.Hour), Reason: "test infra down", Events: ref("exc")}
			if mod != nil {
				mod(&x)
			}
			r.Exceptions = []correlate.Exception{x}
		}
	}
	check(t, "CM-4", []tc{
		{name: "granted exception waives", mut: exc(nil), want: Waived, reason: "waived by exception EXC-1"},
		{name: "expired exception", mut: exc(func(x *correlate.Exception) { x.ExpiresAt = later.Add(-time.Hour) }), want: Fail},
		{name: "self-approved exception", mut: exc(func(x *correlate.Exception) { x.Approver = id(alice) }), want: Fail},
		{name: "requested, not granted", mut: exc(func(x *correlate.Exception) { x.Status = "requested" }), want: Fail},
		{name: "other control", mut: exc(func(x *correlate.Exception) { x.Control = "CM-5" }), want: Fail},
	})
}

func TestBundleHashStable(t *testing.T) {
	a, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a.BundleHash() != b.BundleHash() || len(a.BundleHash()) != 64 {
		t.Fatalf("hash %s vs %s", a.BundleHash(), b.BundleHash())
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "x1.rego"), []byte(`package evidence.controls.x1

metadata := {"id": "X-1", "title": "Always", "description": "", "risk": "", "severity": "low"}

result := {"status": "pass", "reasons": ["ok"], "evidence": []}
`), 0o644)
	c, err := LoadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.BundleHash() == a.BundleHash() {
		t.Fatal("custom policy did not change the bundle hash")
	}
	if n := len(c.Controls()); n != 9 {
		t.Fatalf("%d controls, want 9", n)
	}
	res, err := c.Evaluate(context.Background(), compliant(), later, Params{})
	if err != nil || len(res) != 9 {
		t.Fatalf("%v %d", err, len(res))
	}
}

func TestLoadDirSyntaxError(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "bad.rego")
	os.WriteFile(f, []byte("package evidence.controls.bad\n\nresult := {\"status\" \"pass\"}\n\nmetadata := {}\n"), 0o644)
	_, err := LoadDir(context.Background(), dir)
	if err == nil || !strings.Contains(err.Error(), f+":3") {
		t.Fatalf("error %v, want one naming %s:3", err, f)
	}
	t.Log(err)
	os.WriteFile(f, []byte("package evidence.controls.bad\n\nresult := {\"status\": \"pass\"} if {\n\tinput.x == y\n}\n"), 0o644)
	if _, err = LoadDir(context.Background(), dir); err == nil || !strings.Contains(err.Error(), f+":4") {
		t.Fatalf("error %v, want one naming %s:4", err, f)
	}
	t.Log(err)
}

func BenchmarkEvaluate(b *testing.B) {
	e := engine(b)
	r := compliant()
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.Evaluate(ctx, r, later, Params{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
}
