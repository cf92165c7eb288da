package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
	"github.com/evidencepipeline/evidence/processors/evaluate"
	"github.com/evidencepipeline/evidence/schemas"
)

// The change every case deploys: testdata/gate/compliant.events.json,
// alice's pull request #42 of github.com/acme/payments, approved by bob
// (who also merged it) on its final head, ticket PAY-123 approved by
// carol (712020:carol, carol@acme.example) at 16:00, the merge commit
// built by run 9876543210 into the image identityDigest. Every control
// but CM-3 and CM-7 passes whoever deploys it; those two depend on who or
// what deployed and who triggered the run.
const (
	identityChange = "github.com/acme/payments@" + identityCommit
	identityCommit = "c0ffee1234567890abcdef1234567890abcdef12"
	identityDigest = imgDigest
	// identityDeployAt is after the approval, the merge and the build.
	identityDeployAt = "2025-03-03T17:00:00Z"
)

// The deploy step of each CI system, as each documents its variables,
// building the change's merge commit. The actor (who triggered the run)
// is bob, the reviewer who merged; each case changes what it is about.
var (
	deployGitHub = map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_REPOSITORY": "acme/payments",
		"GITHUB_SHA": identityCommit, "GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch",
		"GITHUB_RUN_ID": "9876543300", "GITHUB_RUN_NUMBER": "119", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_WORKFLOW": "release",
		"GITHUB_JOB": "deploy", "GITHUB_ACTOR": "bob", "GITHUB_TRIGGERING_ACTOR": "bob", "GITHUB_EVENT_NAME": "push",
	}
	deployGitLab = map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_SERVER_HOST": "gitlab.acme.example", "CI_PROJECT_URL": "https://gitlab.acme.example/acme/payments",
		"CI_PROJECT_PATH": "acme/payments", "CI_COMMIT_SHA": identityCommit, "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main",
		"CI_PIPELINE_ID": "1283500", "CI_PIPELINE_URL": "https://gitlab.acme.example/acme/payments/-/pipelines/1283500",
		"CI_PIPELINE_SOURCE": "push", "CI_JOB_NAME": "deploy-production", "CI_JOB_ID": "99887800",
		"GITLAB_USER_LOGIN": "bob", "GITLAB_USER_EMAIL": "bob@acme.example",
	}
	// Jenkins sets BUILD_USER_ID (Build User Vars plugin) only when a
	// person started the build: an SCM-triggered build has no actor.
	deployJenkins = map[string]string{
		"JENKINS_URL": "https://jenkins.acme.example/", "BUILD_URL": "https://jenkins.acme.example/job/payments/job/main/120/",
		"BUILD_NUMBER": "120", "BUILD_TAG": "jenkins-payments-main-120", "JOB_NAME": "payments/main", "BRANCH_NAME": "main",
		"GIT_URL": "https://github.com/acme/payments.git", "GIT_COMMIT": identityCommit, "GIT_BRANCH": "origin/main",
	}
	deployCircleCI = map[string]string{
		"CI": "true", "CIRCLECI": "true", "CIRCLE_REPOSITORY_URL": "git@github.com:acme/payments.git", "CIRCLE_SHA1": identityCommit,
		"CIRCLE_BRANCH": "main", "CIRCLE_WORKFLOW_ID": "6f1b7c2e-4b5a-4c8e-9f0a-1b2c3d4e5f61", "CIRCLE_BUILD_NUM": "5022",
		"CIRCLE_BUILD_URL": "https://app.circleci.com/pipelines/github/acme/payments/813/workflows/6f1b7c2e/jobs/5022",
		"CIRCLE_JOB":       "deploy", "CIRCLE_USERNAME": "bob",
	}
	// Azure Pipelines and Buildkite name the person by e-mail.
	deployAzure = map[string]string{
		"TF_BUILD": "True", "BUILD_REPOSITORY_URI": "https://github.com/acme/payments", "BUILD_SOURCEVERSION": identityCommit,
		"BUILD_SOURCEBRANCH": "refs/heads/main", "BUILD_BUILDID": "31400", "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
		"SYSTEM_TEAMPROJECT": "Payments", "BUILD_DEFINITIONNAME": "payments-release", "BUILD_REQUESTEDFOR": "Bob Chen",
		"BUILD_REQUESTEDFOREMAIL": "bob@acme.example", "BUILD_REASON": "IndividualCI",
	}
	deployBuildkite = map[string]string{
		"CI": "true", "BUILDKITE": "true", "BUILDKITE_REPO": "git@github.com:acme/payments.git", "BUILDKITE_COMMIT": identityCommit,
		"BUILDKITE_BRANCH": "main", "BUILDKITE_BUILD_ID": "0190b1c2-3d4e-4f50-8a6b-7c8d9e0f1a2c",
		"BUILDKITE_BUILD_URL": "https://buildkite.com/acme/payments-deploy/builds/1515", "BUILDKITE_PIPELINE_SLUG": "payments-deploy",
		"BUILDKITE_BUILD_CREATOR": "Bob Chen", "BUILDKITE_BUILD_CREATOR_EMAIL": "bob@acme.example", "BUILDKITE_SOURCE": "webhook",
		"BUILDKITE_PULL_REQUEST": "false",
	}
	// Tekton sets nothing: the Task maps its context (producers/ci).
	deployTekton = map[string]string{
		"TEKTON_PIPELINE_RUN": "payments-deploy-x7k2p", "TEKTON_NAMESPACE": "ci", "TEKTON_PIPELINE": "payments-deploy",
		"EVIDENCE_REPO": "https://github.com/acme/payments.git", "EVIDENCE_COMMIT": identityCommit,
	}
	// A laptop: no CI; the person names themselves.
	deployLaptop = map[string]string{"HOME": "/home/alice", "USER": "alice"}
)

// identityCase is one deploy step and the CM-3 and CM-7 verdicts it
// leads to, worked out by hand from the identity model (docs/evaluation.md).
type identityCase struct {
	name string
	env  map[string]string
	args []string // more flags of emit deploy
	// strict: judged with --manual-trigger-by-author fail.
	strict bool
	// deployer and triggered are the change record's deployment (login,
	// and "login (trigger)" or "").
	deployer, triggered string
	cm3, cm7            evaluate.Status
	// why3 and why7 are substrings of one reason each.
	why3, why7 string
}

var identityCases = []identityCase{
	// Triggered by the merger, automatically: the pipeline deployed; bob
	// reviewed and only triggered it. CM-3 and CM-7 pass on every system.
	{name: "github-actions push by the merger", env: deployGitHub,
		deployer: "github-actions:release", triggered: "bob (push)", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "automated by pipeline identity github-actions:release (run 9876543300), triggered by bob (push)",
		why7: "by pipeline identity github-actions:release (run 9876543300), triggered by bob (push)"},
	{name: "gitlab-ci push by the merger", env: deployGitLab,
		deployer: "gitlab-ci:deploy-production", triggered: "bob (push)", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "automated by pipeline identity gitlab-ci:deploy-production (run 1283500), triggered by bob (push)"},
	{name: "jenkins scm build", env: deployJenkins,
		deployer: "jenkins:payments/main", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "automated by pipeline identity jenkins:payments/main (run jenkins-payments-main-120), trigger not reported",
		why7: "by pipeline identity jenkins:payments/main (run jenkins-payments-main-120), trigger not reported"},
	{name: "circleci by the merger", env: deployCircleCI,
		deployer: "circleci:deploy", triggered: "bob", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "triggered by bob (trigger not reported)"},
	{name: "azure-pipelines CI by the merger", env: deployAzure,
		deployer: "azure-pipelines:payments-release", triggered: "bob@acme.example (<bob@acme.example>) (push)", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "automated by pipeline identity azure-pipelines:payments-release (run 31400), triggered by bob@acme.example (push)"},
	{name: "buildkite webhook by the merger", env: deployBuildkite,
		deployer: "buildkite:payments-deploy", triggered: "bob@acme.example (<bob@acme.example>) (push)", cm3: evaluate.Pass, cm7: evaluate.Pass},
	{name: "tekton pipeline run", env: deployTekton,
		deployer: "tekton:payments-deploy", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "automated by pipeline identity tekton:payments-deploy (run ci/payments-deploy-x7k2p), trigger not reported"},

	// The same deploy from a laptop, no CI: the deployment is the
	// person's. The author deploying their own change fails CM-3; anyone
	// deploying by hand fails CM-7.
	{name: "laptop by the author", env: deployLaptop,
		args:     []string{"--repo", "github.com/acme/payments", "--commit", identityCommit, "--actor", "alice"},
		deployer: "alice", cm3: evaluate.Fail, cm7: evaluate.Fail,
		why3: "author alice is also deployer", why7: "by alice, not a pipeline identity"},
	{name: "laptop by someone else", env: with(deployLaptop, "EVIDENCE_ACTOR", "dave"),
		args:     []string{"--repo", "github.com/acme/payments", "--commit", identityCommit},
		deployer: "dave", cm3: evaluate.Pass, cm7: evaluate.Fail,
		why3: "deployer: dave", why7: "by dave, not a pipeline identity"},
	// A CI job that merely names a person with --actor still deploys as
	// the pipeline: the person is the trigger.
	{name: "github-actions with --actor the author, push", env: deployGitHub, args: []string{"--actor", "alice"},
		deployer: "github-actions:release", triggered: "alice (push)", cm3: evaluate.Pass, cm7: evaluate.Pass, strict: true,
		why3: "triggered by alice (push), the change's author"},

	// The author starts the approved pipeline by hand. The rule
	// (manual_trigger_by_author): allow by default, named in CM-3's
	// reasons; fail when set. CM-7 passes either way: the path is the
	// pipeline's.
	{name: "github-actions workflow_dispatch by the author", env: with(deployGitHub, "GITHUB_EVENT_NAME", "workflow_dispatch",
		"GITHUB_ACTOR", "alice", "GITHUB_TRIGGERING_ACTOR", "alice"),
		deployer: "github-actions:release", triggered: "alice (manual)", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "deployment production/payments  started on demand (manual) by the change's author alice: allowed, pipeline github-actions:release (run 9876543300) deployed the change others approved (manual_trigger_by_author: allow)"},
	{name: "github-actions workflow_dispatch by the author, strict", env: with(deployGitHub, "GITHUB_EVENT_NAME", "workflow_dispatch",
		"GITHUB_ACTOR", "alice", "GITHUB_TRIGGERING_ACTOR", "alice"), strict: true,
		deployer: "github-actions:release", triggered: "alice (manual)", cm3: evaluate.Fail, cm7: evaluate.Pass,
		why3: "deployment production/payments  started on demand (manual) by the change's author alice, through pipeline github-actions:release (run 9876543300) (manual_trigger_by_author: fail)"},
	// A re-run attempt is started by hand by GITHUB_TRIGGERING_ACTOR,
	// whatever the first attempt's event.
	{name: "github-actions re-run by the author, strict", env: with(deployGitHub, "GITHUB_RUN_ATTEMPT", "2",
		"GITHUB_TRIGGERING_ACTOR", "alice"), strict: true,
		deployer: "github-actions:release", triggered: "alice (manual)", cm3: evaluate.Fail, cm7: evaluate.Pass},
	// Publishing a release is a decision to ship: on demand too.
	{name: "github-actions release published by the author, strict", env: with(deployGitHub, "GITHUB_EVENT_NAME", "release",
		"GITHUB_REF", "refs/tags/v1.4.2", "GITHUB_REF_NAME", "v1.4.2", "GITHUB_REF_TYPE", "tag",
		"GITHUB_ACTOR", "alice", "GITHUB_TRIGGERING_ACTOR", "alice"), strict: true,
		deployer: "github-actions:release", triggered: "alice (tag)", cm3: evaluate.Fail, cm7: evaluate.Pass,
		why3: "started on demand (tag) by the change's author alice"},
	// Someone else (a release manager) starting it by hand is no concern.
	{name: "github-actions workflow_dispatch by another person, strict", env: with(deployGitHub, "GITHUB_EVENT_NAME", "workflow_dispatch",
		"GITHUB_ACTOR", "dave", "GITHUB_TRIGGERING_ACTOR", "dave"), strict: true,
		deployer: "github-actions:release", triggered: "dave (manual)", cm3: evaluate.Pass, cm7: evaluate.Pass},
	{name: "gitlab-ci web pipeline by the author", env: with(deployGitLab, "CI_PIPELINE_SOURCE", "web", "GITLAB_USER_LOGIN", "alice"),
		deployer: "gitlab-ci:deploy-production", triggered: "alice (manual)", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "started on demand (manual) by the change's author alice: allowed"},
	{name: "gitlab-ci web pipeline by the author, strict", env: with(deployGitLab, "CI_PIPELINE_SOURCE", "web", "GITLAB_USER_LOGIN", "alice"),
		strict: true, deployer: "gitlab-ci:deploy-production", triggered: "alice (manual)", cm3: evaluate.Fail, cm7: evaluate.Pass},
	// A manual deploy job in a push pipeline, played by the author.
	{name: "gitlab-ci manual job by the author, strict", env: with(deployGitLab, "CI_JOB_MANUAL", "true", "GITLAB_USER_LOGIN", "alice"),
		strict: true, deployer: "gitlab-ci:deploy-production", triggered: "alice (manual)", cm3: evaluate.Fail, cm7: evaluate.Pass},
	{name: "jenkins build started by the author, strict", env: with(deployJenkins, "BUILD_USER_ID", "alice"), strict: true,
		deployer: "jenkins:payments/main", triggered: "alice", cm3: evaluate.Fail, cm7: evaluate.Pass,
		why3: "started on demand (trigger not reported) by the change's author alice"},
	{name: "circleci by the author", env: with(deployCircleCI, "CIRCLE_USERNAME", "alice"),
		deployer: "circleci:deploy", triggered: "alice", cm3: evaluate.Pass, cm7: evaluate.Pass,
		why3: "started on demand (trigger not reported) by the change's author alice: allowed"},
	// The author is matched by e-mail: Azure names alice by hers.
	{name: "azure-pipelines manual run by the author, strict", env: with(deployAzure, "BUILD_REASON", "Manual",
		"BUILD_REQUESTEDFOR", "Alice Martin", "BUILD_REQUESTEDFOREMAIL", "alice@acme.example"), strict: true,
		deployer: "azure-pipelines:payments-release", triggered: "alice@acme.example (<alice@acme.example>) (manual)",
		cm3: evaluate.Fail, cm7: evaluate.Pass,
		why3: "started on demand (manual) by the change's author alice@acme.example"},
	{name: "buildkite build from the UI by the author", env: with(deployBuildkite, "BUILDKITE_SOURCE", "ui",
		"BUILDKITE_BUILD_CREATOR", "Alice Martin", "BUILDKITE_BUILD_CREATOR_EMAIL", "alice@acme.example"),
		deployer: "buildkite:payments-deploy", triggered: "alice@acme.example (<alice@acme.example>) (manual)",
		cm3: evaluate.Pass, cm7: evaluate.Pass, why3: "by the change's author alice@acme.example: allowed"},
	{name: "tekton run the author started, strict", env: with(deployTekton, "EVIDENCE_ACTOR", "alice"), strict: true,
		deployer: "tekton:payments-deploy", triggered: "alice", cm3: evaluate.Fail, cm7: evaluate.Pass},
}

// TestDeployIdentities runs evidence emit deploy in each CI system's
// documented environment (and outside CI), adds the deployment it emits
// to the change's evidence, and judges the change as the evaluation stage
// judges a deployment (as of it): CM-3 and CM-7 as worked out by hand.
// Each event is also sent to a real evidenced, which accepts it, and the
// change record, as evidence changes show prints it, shows the deployer
// and the trigger.
func TestDeployIdentities(t *testing.T) {
	_, server := startDaemon(t)
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	engine, err := evaluate.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	base := correlatetest.Facts(t, correlatetest.Events(t, "testdata/gate/compliant.events.json", 0)...)
	at, _ := time.Parse(time.RFC3339, identityDeployAt)

	for _, tc := range identityCases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"emit", "deploy", "--env", "production", "--service", "payments", "--digest", identityDigest,
				"--time", identityDeployAt}, tc.args...)
			r := run(t, tc.env, "", append(args, "--dry-run")...)
			if r.code != 0 {
				t.Fatalf("emit deploy: %+v", r)
			}
			ev, err := ce.ParseJSON([]byte(r.stdout))
			if err != nil {
				t.Fatal(err)
			}
			if err := cat.Validate(ev.Type, ev.Data); err != nil {
				t.Fatalf("the catalog refuses the event: %v\n%s", err, r.stdout)
			}

			// evidenced accepts it.
			vars := with(tc.env, "EVIDENCE_SERVER", server, "EVIDENCE_SPOOL_DIR", t.TempDir())
			sent := run(t, vars, "", append(args, "--id", "identity-"+strings.ReplaceAll(t.Name(), " ", "-"))...)
			if sent.code != 0 || !strings.HasPrefix(sent.stdout, "stored: ") {
				t.Fatalf("send: %+v", sent)
			}

			st := correlate.NewState()
			st.Add(base...)
			st.Add(correlatetest.Facts(t, ev)...)
			rec, ok := st.Record(identityChange)
			if !ok || len(rec.Deployments) != 1 {
				t.Fatalf("record %s: found %v, %d deployments", identityChange, ok, len(rec.Deployments))
			}
			d := rec.Deployments[0]
			if d.Deployer == nil || d.Deployer.Login != tc.deployer {
				t.Errorf("deployer %+v, want %s", d.Deployer, tc.deployer)
			}
			if tc.triggered == "" && d.TriggeredBy != nil {
				t.Errorf("triggered by %+v, want no one", d.TriggeredBy)
			}

			params := evaluate.Params{}
			if tc.strict {
				params.ManualTriggerByAuthor = "fail"
			}
			results, err := engine.Evaluate(context.Background(), rec, at, params)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range results {
				want, why := evaluate.Status(""), ""
				switch x.Control.ID {
				case "CM-3":
					want, why = tc.cm3, tc.why3
				case "CM-7":
					want, why = tc.cm7, tc.why7
				default:
					want = evaluate.Pass
				}
				if x.Status != want {
					t.Errorf("%s %s, want %s: %q", x.Control.ID, x.Status, want, x.Reasons)
				}
				if why != "" && !strings.Contains(strings.Join(x.Reasons, "\n"), why) {
					t.Errorf("%s reasons %q, want one containing %q", x.Control.ID, x.Reasons, why)
				}
			}

			// evidence changes show: the deployer and, beside it, the
			// trigger.
			show := run(t, map[string]string{"EVIDENCE_SERVER": changesAPI(t, st, nil)}, "", "changes", "show", identityChange)
			if show.code != 0 {
				t.Fatalf("changes show: %+v", show)
			}
			if !strings.Contains(show.stdout, "    deployer      "+tc.deployer) {
				t.Errorf("changes show does not name the deployer %s:\n%s", tc.deployer, show.stdout)
			}
			if got := strings.Contains(show.stdout, "triggered by"); got != (tc.triggered != "") ||
				tc.triggered != "" && !strings.Contains(show.stdout, "    triggered by  "+tc.triggered+"\n") {
				t.Errorf("changes show, want triggered by %q:\n%s", tc.triggered, show.stdout)
			}
			if tc.name == "github-actions workflow_dispatch by the author" {
				changesGolden(t, "deploy_manual_by_author.text.golden", show.stdout)
			}
		})
	}
}
