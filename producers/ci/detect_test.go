package ci

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// lookup turns a map into a getenv function.
func lookup(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// with returns a copy of base with extra set (an empty value deletes).
func with(base map[string]string, extra map[string]string) map[string]string {
	m := make(map[string]string, len(base)+len(extra))
	for k, v := range base {
		m[k] = v
	}
	for k, v := range extra {
		if v == "" {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	return m
}

const (
	sha  = "8f3a1c9b2d4e6f708192a3b4c5d6e7f809a1b2c3"
	sha2 = "0123456789abcdef0123456789abcdef01234567"
)

// Realistic environments, as each system documents its variables (plus a few
// unrelated variables every runner has).
var (
	githubPush = map[string]string{
		"CI":                       "true",
		"GITHUB_ACTIONS":           "true",
		"GITHUB_SERVER_URL":        "https://github.com",
		"GITHUB_API_URL":           "https://api.github.com",
		"GITHUB_REPOSITORY":        "octo-org/payments-api",
		"GITHUB_SHA":               sha,
		"GITHUB_REF":               "refs/heads/main",
		"GITHUB_REF_NAME":          "main",
		"GITHUB_REF_TYPE":          "branch",
		"GITHUB_HEAD_REF":          "",
		"GITHUB_BASE_REF":          "",
		"GITHUB_RUN_ID":            "9876543210",
		"GITHUB_RUN_NUMBER":        "412",
		"GITHUB_RUN_ATTEMPT":       "2",
		"GITHUB_WORKFLOW":          "release",
		"GITHUB_JOB":               "deploy",
		"GITHUB_ACTOR":             "mona",
		"GITHUB_EVENT_NAME":        "push",
		"RUNNER_OS":                "Linux",
		"GITHUB_WORKSPACE":         "/home/runner/work/payments-api/payments-api",
		"GITHUB_ACTION_REPOSITORY": "",
	}
	githubPR = with(githubPush, map[string]string{
		"GITHUB_REF":         "refs/pull/57/merge",
		"GITHUB_REF_NAME":    "57/merge",
		"GITHUB_HEAD_REF":    "feature/ledger",
		"GITHUB_BASE_REF":    "main",
		"GITHUB_EVENT_NAME":  "pull_request",
		"GITHUB_RUN_ATTEMPT": "1",
	})

	gitlabPush = map[string]string{
		"CI":                 "true",
		"GITLAB_CI":          "true",
		"CI_SERVER_HOST":     "gitlab.example.com",
		"CI_SERVER_URL":      "https://gitlab.example.com",
		"CI_PROJECT_URL":     "https://gitlab.example.com/platform/payments/api",
		"CI_PROJECT_PATH":    "platform/payments/api",
		"CI_REPOSITORY_URL":  "https://gitlab-ci-token:glcbt-64_SECRET@gitlab.example.com/platform/payments/api.git",
		"CI_COMMIT_SHA":      sha,
		"CI_COMMIT_REF_NAME": "main",
		"CI_COMMIT_BRANCH":   "main",
		"CI_PIPELINE_ID":     "1234567",
		"CI_PIPELINE_IID":    "88",
		"CI_PIPELINE_URL":    "https://gitlab.example.com/platform/payments/api/-/pipelines/1234567",
		"CI_JOB_NAME":        "deploy-prod",
		"CI_JOB_ID":          "99887766",
		"GITLAB_USER_LOGIN":  "jdoe",
		"GITLAB_USER_EMAIL":  "jdoe@example.com",
		"CI_PIPELINE_SOURCE": "push",
	}
	gitlabMR = with(gitlabPush, map[string]string{
		"CI_COMMIT_BRANCH":                    "",
		"CI_COMMIT_REF_NAME":                  "feature/ledger",
		"CI_MERGE_REQUEST_IID":                "42",
		"CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature/ledger",
		"CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
		"CI_PIPELINE_SOURCE":                  "merge_request_event",
		"CI_PIPELINE_NAME":                    "MR checks",
		"CI_JOB_NAME":                         "unit",
	})

	jenkinsBranch = map[string]string{
		"JENKINS_URL":     "https://jenkins.example.com/",
		"JENKINS_HOME":    "/var/jenkins_home",
		"GIT_URL":         "https://svc-ci:s3cr3t-t0ken@bitbucket.example.com/scm/pay/api.git",
		"GIT_COMMIT":      sha,
		"GIT_BRANCH":      "origin/main",
		"BUILD_NUMBER":    "217",
		"BUILD_ID":        "217",
		"JOB_NAME":        "payments/api",
		"BUILD_TAG":       "jenkins-payments-api-217",
		"BUILD_URL":       "https://jenkins.example.com/job/payments/job/api/217/",
		"BUILD_USER_ID":   "alice",
		"EXECUTOR_NUMBER": "1",
	}
	jenkinsMultibranchPR = map[string]string{
		"JENKINS_URL":   "https://jenkins.example.com/",
		"GIT_URL":       "git@github.com:octo-org/payments-api.git",
		"GIT_COMMIT":    sha2,
		"GIT_BRANCH":    "PR-57",
		"BRANCH_NAME":   "PR-57",
		"CHANGE_ID":     "57",
		"CHANGE_BRANCH": "feature/ledger",
		"CHANGE_TARGET": "main",
		"BUILD_NUMBER":  "3",
		"JOB_NAME":      "payments-api/PR-57",
		"BUILD_URL":     "https://jenkins.example.com/job/payments-api/job/PR-57/3/",
	}

	circlePush = map[string]string{
		"CI":                      "true",
		"CIRCLECI":                "true",
		"CIRCLE_REPOSITORY_URL":   "git@github.com:octo-org/payments-api.git",
		"CIRCLE_PROJECT_USERNAME": "octo-org",
		"CIRCLE_PROJECT_REPONAME": "payments-api",
		"CIRCLE_SHA1":             sha,
		"CIRCLE_BRANCH":           "main",
		"CIRCLE_WORKFLOW_ID":      "6f1b7c2e-4b5a-4c8e-9f0a-1b2c3d4e5f60",
		"CIRCLE_BUILD_NUM":        "5021",
		"CIRCLE_BUILD_URL":        "https://app.circleci.com/pipelines/github/octo-org/payments-api/812/workflows/6f1b7c2e-4b5a-4c8e-9f0a-1b2c3d4e5f60/jobs/5021",
		"CIRCLE_JOB":              "deploy",
		"CIRCLE_USERNAME":         "mona",
	}
	circlePR = with(circlePush, map[string]string{
		"CIRCLE_BRANCH":        "feature/ledger",
		"CIRCLE_PULL_REQUEST":  "https://github.com/octo-org/payments-api/pull/57",
		"CIRCLE_PULL_REQUESTS": "https://github.com/octo-org/payments-api/pull/57",
	})
	circleForkPR = with(circlePR, map[string]string{
		"CIRCLE_PR_NUMBER":    "58",
		"CIRCLE_PR_USERNAME":  "forker",
		"CIRCLE_PR_REPONAME":  "payments-api",
		"CIRCLE_PULL_REQUEST": "https://github.com/octo-org/payments-api/pull/58",
	})

	azureCI = map[string]string{
		"TF_BUILD":                "True",
		"AGENT_NAME":              "Hosted Agent",
		"BUILD_REPOSITORY_URI":    "https://contoso@dev.azure.com/contoso/Payments/_git/payments-api",
		"BUILD_REPOSITORY_NAME":   "payments-api",
		"BUILD_SOURCEVERSION":     sha,
		"BUILD_SOURCEBRANCH":      "refs/heads/release/2024.06",
		"BUILD_SOURCEBRANCHNAME":  "2024.06",
		"BUILD_BUILDID":           "31337",
		"BUILD_BUILDNUMBER":       "20240601.3",
		"SYSTEM_COLLECTIONURI":    "https://dev.azure.com/contoso/",
		"SYSTEM_TEAMPROJECT":      "Payments Team",
		"BUILD_DEFINITIONNAME":    "payments-api-ci",
		"BUILD_REQUESTEDFOR":      "Jane Doe",
		"BUILD_REQUESTEDFOREMAIL": "jane.doe@contoso.com",
		"BUILD_REASON":            "IndividualCI",
	}
	azurePR = with(azureCI, map[string]string{
		"BUILD_REPOSITORY_URI":                 "https://github.com/octo-org/payments-api",
		"BUILD_SOURCEVERSION":                  sha2,
		"BUILD_SOURCEBRANCH":                   "refs/pull/57/merge",
		"BUILD_SOURCEBRANCHNAME":               "merge",
		"BUILD_REASON":                         "PullRequest",
		"SYSTEM_PULLREQUEST_PULLREQUESTID":     "1876543",
		"SYSTEM_PULLREQUEST_PULLREQUESTNUMBER": "57",
		"SYSTEM_PULLREQUEST_SOURCEBRANCH":      "refs/heads/feature/ledger",
		"SYSTEM_PULLREQUEST_TARGETBRANCH":      "refs/heads/main",
		"BUILD_REQUESTEDFOREMAIL":              "",
	})

	buildkitePush = map[string]string{
		"CI":                            "true",
		"BUILDKITE":                     "true",
		"BUILDKITE_REPO":                "git@github.com:octo-org/payments-api.git",
		"BUILDKITE_COMMIT":              sha,
		"BUILDKITE_BRANCH":              "main",
		"BUILDKITE_BUILD_ID":            "0190b1c2-3d4e-4f50-8a6b-7c8d9e0f1a2b",
		"BUILDKITE_BUILD_NUMBER":        "1514",
		"BUILDKITE_BUILD_URL":           "https://buildkite.com/octo/payments-api/builds/1514",
		"BUILDKITE_PIPELINE_SLUG":       "payments-api",
		"BUILDKITE_BUILD_CREATOR":       "Mona Lisa",
		"BUILDKITE_BUILD_CREATOR_EMAIL": "mona@example.com",
		"BUILDKITE_BUILD_AUTHOR":        "Mona Lisa",
		"BUILDKITE_BUILD_AUTHOR_EMAIL":  "mona@example.com",
		"BUILDKITE_SOURCE":              "webhook",
		"BUILDKITE_PULL_REQUEST":        "false",
	}
	buildkitePR = with(buildkitePush, map[string]string{
		"BUILDKITE_BRANCH":                   "feature/ledger",
		"BUILDKITE_PULL_REQUEST":             "57",
		"BUILDKITE_PULL_REQUEST_BASE_BRANCH": "main",
		"BUILDKITE_BUILD_CREATOR_EMAIL":      "",
	})

	tektonRun = map[string]string{
		"TEKTON_PIPELINE_RUN": "payments-api-release-x7k2p",
		"TEKTON_NAMESPACE":    "ci",
		"TEKTON_PIPELINE":     "payments-api-release",
		"EVIDENCE_REPO":       "https://github.com/octo-org/payments-api.git",
		"EVIDENCE_COMMIT":     sha,
		"HOME":                "/tekton/home",
	}
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Info
	}{
		{
			name: "none",
			env:  map[string]string{"HOME": "/home/dev", "PATH": "/usr/bin", "CI": "true"},
			want: Info{},
		},
		{
			name: "github push",
			env:  githubPush,
			want: Info{
				System: GitHubActions, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "main", RunID: "9876543210", RunAttempt: "2",
				RunURL:   "https://github.com/octo-org/payments-api/actions/runs/9876543210",
				Pipeline: "release", Actor: "mona", Event: "push",
			},
		},
		{
			name: "github pull request",
			env:  githubPR,
			want: Info{
				System: GitHubActions, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "feature/ledger", RunID: "9876543210", RunAttempt: "1",
				RunURL:   "https://github.com/octo-org/payments-api/actions/runs/9876543210",
				Pipeline: "release", Actor: "mona", Event: "pull_request", PullRequest: "57",
			},
		},
		{
			name: "github enterprise tag",
			env: with(githubPush, map[string]string{
				"GITHUB_SERVER_URL": "https://GHE.corp.example/",
				"GITHUB_REF":        "refs/tags/v1.2.3",
				"GITHUB_REF_NAME":   "v1.2.3",
				"GITHUB_REF_TYPE":   "tag",
			}),
			want: Info{
				System: GitHubActions, Repository: "ghe.corp.example/octo-org/payments-api", Commit: sha,
				RunID: "9876543210", RunAttempt: "2",
				RunURL:   "https://GHE.corp.example/octo-org/payments-api/actions/runs/9876543210",
				Pipeline: "release", Actor: "mona", Event: "push",
			},
		},
		{
			// A re-run attempt: GITHUB_ACTOR still names who started the
			// first attempt; the actor is who re-ran it.
			name: "github re-run by another person",
			env:  with(githubPush, map[string]string{"GITHUB_TRIGGERING_ACTOR": "carol"}),
			want: Info{
				System: GitHubActions, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "main", RunID: "9876543210", RunAttempt: "2",
				RunURL:   "https://github.com/octo-org/payments-api/actions/runs/9876543210",
				Pipeline: "release", Actor: "carol", Event: "push",
			},
		},
		{
			name: "gitlab push",
			env:  gitlabPush,
			want: Info{
				System: GitLabCI, Repository: "gitlab.example.com/platform/payments/api", Commit: sha,
				Branch: "main", RunID: "1234567",
				RunURL:   "https://gitlab.example.com/platform/payments/api/-/pipelines/1234567",
				Pipeline: "deploy-prod", Actor: "jdoe", Event: "push",
			},
		},
		{
			name: "gitlab merge request",
			env:  gitlabMR,
			want: Info{
				System: GitLabCI, Repository: "gitlab.example.com/platform/payments/api", Commit: sha,
				Branch: "feature/ledger", RunID: "1234567",
				RunURL:   "https://gitlab.example.com/platform/payments/api/-/pipelines/1234567",
				Pipeline: "MR checks", Actor: "jdoe", Event: "merge_request_event", PullRequest: "42",
			},
		},
		{
			// A "when: manual" deploy job played by hand in a push pipeline.
			name: "gitlab manual job",
			env: with(gitlabPush, map[string]string{
				"CI_JOB_MANUAL": "true", "GITLAB_USER_LOGIN": "mdeploy", "GITLAB_USER_EMAIL": "mdeploy@example.com",
			}),
			want: Info{
				System: GitLabCI, Repository: "gitlab.example.com/platform/payments/api", Commit: sha,
				Branch: "main", RunID: "1234567",
				RunURL:   "https://gitlab.example.com/platform/payments/api/-/pipelines/1234567",
				Pipeline: "deploy-prod", Actor: "mdeploy", Event: "push", ManualJob: true,
			},
		},
		{
			name: "gitlab tag without project url",
			env: with(gitlabPush, map[string]string{
				"CI_PROJECT_URL":     "",
				"CI_COMMIT_BRANCH":   "",
				"CI_COMMIT_TAG":      "v1.0.0",
				"CI_COMMIT_REF_NAME": "v1.0.0",
			}),
			want: Info{
				System: GitLabCI, Repository: "gitlab.example.com/platform/payments/api", Commit: sha,
				RunID:    "1234567",
				RunURL:   "https://gitlab.example.com/platform/payments/api/-/pipelines/1234567",
				Pipeline: "deploy-prod", Actor: "jdoe", Event: "push",
			},
		},
		{
			name: "jenkins branch, credentials in GIT_URL",
			env:  jenkinsBranch,
			want: Info{
				System: Jenkins, Repository: "bitbucket.example.com/scm/pay/api", Commit: sha,
				Branch: "main", RunID: "jenkins-payments-api-217",
				RunURL:   "https://jenkins.example.com/job/payments/job/api/217/",
				Pipeline: "payments/api", Actor: "alice",
			},
		},
		{
			name: "jenkins multibranch pull request",
			env:  jenkinsMultibranchPR,
			want: Info{
				System: Jenkins, Repository: "github.com/octo-org/payments-api", Commit: sha2,
				Branch: "feature/ledger", RunID: "payments-api/PR-57#3",
				RunURL:      "https://jenkins.example.com/job/payments-api/job/PR-57/3/",
				Pipeline:    "payments-api/PR-57",
				PullRequest: "57",
			},
		},
		{
			name: "circleci push",
			env:  circlePush,
			want: Info{
				System: CircleCI, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "main", RunID: "6f1b7c2e-4b5a-4c8e-9f0a-1b2c3d4e5f60",
				RunURL:   circlePush["CIRCLE_BUILD_URL"],
				Pipeline: "deploy", Actor: "mona",
			},
		},
		{
			name: "circleci pull request",
			env:  circlePR,
			want: Info{
				System: CircleCI, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "feature/ledger", RunID: "6f1b7c2e-4b5a-4c8e-9f0a-1b2c3d4e5f60",
				RunURL:   circlePush["CIRCLE_BUILD_URL"],
				Pipeline: "deploy", Actor: "mona", PullRequest: "57",
			},
		},
		{
			name: "circleci fork pull request",
			env:  circleForkPR,
			want: Info{
				System: CircleCI, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "feature/ledger", RunID: "6f1b7c2e-4b5a-4c8e-9f0a-1b2c3d4e5f60",
				RunURL:   circlePush["CIRCLE_BUILD_URL"],
				Pipeline: "deploy", Actor: "mona", PullRequest: "58",
			},
		},
		{
			name: "circleci without repository url or workflow",
			env: with(circlePush, map[string]string{
				"CIRCLE_REPOSITORY_URL": "",
				"CIRCLE_WORKFLOW_ID":    "",
			}),
			want: Info{
				System: CircleCI, Repository: "octo-org/payments-api", Commit: sha,
				Branch: "main", RunID: "5021",
				RunURL:   circlePush["CIRCLE_BUILD_URL"],
				Pipeline: "deploy", Actor: "mona",
			},
		},
		{
			name: "azure pipelines CI, org name as userinfo",
			env:  azureCI,
			want: Info{
				System: AzurePipelines, Repository: "dev.azure.com/contoso/Payments/_git/payments-api", Commit: sha,
				Branch: "release/2024.06", RunID: "31337",
				RunURL:   "https://dev.azure.com/contoso/Payments%20Team/_build/results?buildId=31337",
				Pipeline: "payments-api-ci", Actor: "jane.doe@contoso.com", Event: "IndividualCI",
			},
		},
		{
			name: "azure pipelines GitHub pull request",
			env:  azurePR,
			want: Info{
				System: AzurePipelines, Repository: "github.com/octo-org/payments-api", Commit: sha2,
				Branch: "feature/ledger", RunID: "31337",
				RunURL:   "https://dev.azure.com/contoso/Payments%20Team/_build/results?buildId=31337",
				Pipeline: "payments-api-ci", Actor: "Jane Doe", Event: "PullRequest", PullRequest: "57",
			},
		},
		{
			name: "buildkite push",
			env:  buildkitePush,
			want: Info{
				System: Buildkite, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "main", RunID: "0190b1c2-3d4e-4f50-8a6b-7c8d9e0f1a2b",
				RunURL:   "https://buildkite.com/octo/payments-api/builds/1514",
				Pipeline: "payments-api", Actor: "mona@example.com", Event: "webhook",
			},
		},
		{
			name: "buildkite pull request",
			env:  buildkitePR,
			want: Info{
				System: Buildkite, Repository: "github.com/octo-org/payments-api", Commit: sha,
				Branch: "feature/ledger", RunID: "0190b1c2-3d4e-4f50-8a6b-7c8d9e0f1a2b",
				RunURL:   "https://buildkite.com/octo/payments-api/builds/1514",
				Pipeline: "payments-api", Actor: "Mona Lisa", Event: "webhook", PullRequest: "57",
			},
		},
		{
			name: "buildkite commit not yet resolved",
			env:  with(buildkitePush, map[string]string{"BUILDKITE_COMMIT": "HEAD"}),
			want: Info{
				System: Buildkite, Repository: "github.com/octo-org/payments-api",
				Branch: "main", RunID: "0190b1c2-3d4e-4f50-8a6b-7c8d9e0f1a2b",
				RunURL:   "https://buildkite.com/octo/payments-api/builds/1514",
				Pipeline: "payments-api", Actor: "mona@example.com", Event: "webhook",
			},
		},
		{
			name: "tekton pipeline run with generic variables",
			env:  tektonRun,
			want: Info{
				System: Tekton, Repository: "github.com/octo-org/payments-api", Commit: sha,
				RunID: "ci/payments-api-release-x7k2p", Pipeline: "payments-api-release",
			},
		},
		{
			name: "tekton task run",
			env:  map[string]string{"TEKTON_TASK_RUN": "build-abc12"},
			want: Info{System: Tekton, RunID: "build-abc12"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Detect(lookup(tt.env))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Detect() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPipelineLogin(t *testing.T) {
	for _, tt := range []struct{ system, pipeline, want string }{
		{GitHubActions, "release", "github-actions:release"},
		{Jenkins, " payments/main ", "jenkins:payments/main"},
		{GitLabCI, "", "gitlab-ci"},
		{"", "release", ""},
	} {
		if got := PipelineLogin(tt.system, tt.pipeline); got != tt.want {
			t.Errorf("PipelineLogin(%q, %q) = %q, want %q", tt.system, tt.pipeline, got, tt.want)
		}
	}
	// A long name is cut within the catalog's bound, at a character
	// boundary.
	long := strings.Repeat("é", 300)
	got := PipelineLogin(Buildkite, long)
	if len(got) > MaxLoginLength || !utf8.ValidString(got) || !strings.HasPrefix(got, "buildkite:éé") {
		t.Errorf("PipelineLogin(long) = %q (%d bytes)", got, len(got))
	}
}

func TestDetectNilGetenv(t *testing.T) {
	if got := Detect(nil); got != (Info{}) {
		t.Errorf("Detect(nil) = %+v, want zero Info", got)
	}
}

func TestDetectOverrides(t *testing.T) {
	env := with(githubPush, map[string]string{
		"EVIDENCE_REPO":    "git@gitlab.example.com:mirror/payments-api.git",
		"EVIDENCE_COMMIT":  sha2,
		"EVIDENCE_RUN_ID":  "custom-7",
		"EVIDENCE_RUN_URL": "https://bot:hunter2@ci.example.com/runs/7",
		"EVIDENCE_ACTOR":   "release-bot",
	})
	want := Info{
		System: GitHubActions, Repository: "gitlab.example.com/mirror/payments-api", Commit: sha2,
		Branch: "main", RunID: "custom-7", RunAttempt: "2",
		RunURL:   "https://ci.example.com/runs/7",
		Pipeline: "release", Actor: "release-bot", Event: "push",
	}
	if diff := cmp.Diff(want, Detect(lookup(env))); diff != "" {
		t.Errorf("Detect() mismatch (-want +got):\n%s", diff)
	}

	// Overrides apply without any CI system, and blank ones are ignored.
	got := Detect(lookup(map[string]string{
		"EVIDENCE_REPO":   "https://example.com/team/app",
		"EVIDENCE_COMMIT": "  " + sha + "\n",
		"EVIDENCE_ACTOR":  "   ",
	}))
	want = Info{Repository: "example.com/team/app", Commit: sha}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Detect() without CI mismatch (-want +got):\n%s", diff)
	}
}

// TestDetectNeverLeaksCredentials checks every field of every realistic
// environment once secrets are put in every URL-bearing variable.
func TestDetectNeverLeaksCredentials(t *testing.T) {
	const secret = "ghp_S3cr3tT0k3nValue"
	urlVars := []string{
		"GITHUB_SERVER_URL", "CI_PROJECT_URL", "CI_PIPELINE_URL", "GIT_URL", "BUILD_URL",
		"CIRCLE_REPOSITORY_URL", "CIRCLE_BUILD_URL", "BUILD_REPOSITORY_URI", "SYSTEM_COLLECTIONURI",
		"BUILDKITE_REPO", "BUILDKITE_BUILD_URL", "EVIDENCE_REPO", "EVIDENCE_RUN_URL",
	}
	for _, base := range []map[string]string{githubPush, gitlabPush, jenkinsBranch, circlePush, azureCI, buildkitePush, tektonRun} {
		env := with(base, nil)
		for _, k := range urlVars {
			v := env[k]
			if v == "" {
				v = "https://ci.example.com/x/y"
			}
			if i := strings.Index(v, "://"); i >= 0 {
				v = v[:i+3] + "user:" + secret + "@" + v[i+3:]
			} else {
				v = "x-token:" + secret + "@" + v
			}
			env[k] = v
		}
		info := Detect(lookup(env))
		if info.System == "" && base["TEKTON_PIPELINE_RUN"] == "" {
			t.Fatalf("no system detected for %v", base)
		}
		for name, v := range map[string]string{"Repository": info.Repository, "RunURL": info.RunURL} {
			if strings.Contains(v, secret) || strings.Contains(v, "user") {
				t.Errorf("%s: %s = %q leaks the credential", info.System, name, v)
			}
			if v == "" {
				t.Errorf("%s: %s is empty", info.System, name)
			}
		}
	}
}

// FuzzDetect feeds arbitrary values to every variable of every system.
func FuzzDetect(f *testing.F) {
	f.Add(uint8(0), "https://user:pw@github.com", "octo/app", sha, "refs/pull/1/merge", "7")
	f.Add(uint8(1), "git@host:o/r.git", "https://u:p@ci/x", "HEAD", "refs/heads/main", "false")
	f.Add(uint8(5), "", "", "", "", "")
	f.Fuzz(func(t *testing.T, system uint8, url, path, commit, ref, number string) {
		markers := []map[string]string{
			{"GITHUB_ACTIONS": "true"}, {"GITLAB_CI": "true"}, {"JENKINS_URL": "x"}, {"CIRCLECI": "true"},
			{"TF_BUILD": "True"}, {"BUILDKITE": "true"}, {"TEKTON_PIPELINE_RUN": "r"}, {},
		}
		env := with(markers[int(system)%len(markers)], nil)
		for _, k := range []string{
			"GITHUB_SERVER_URL", "CI_PROJECT_URL", "CI_PIPELINE_URL", "GIT_URL", "BUILD_URL", "CIRCLE_REPOSITORY_URL",
			"CIRCLE_BUILD_URL", "CIRCLE_PULL_REQUEST", "BUILD_REPOSITORY_URI", "SYSTEM_COLLECTIONURI", "BUILDKITE_REPO",
			"BUILDKITE_BUILD_URL", "EVIDENCE_RUN_URL",
		} {
			env[k] = url
		}
		for _, k := range []string{"GITHUB_REPOSITORY", "CI_PROJECT_PATH", "CI_SERVER_HOST", "SYSTEM_TEAMPROJECT", "JOB_NAME"} {
			env[k] = path
		}
		for _, k := range []string{"GITHUB_SHA", "CI_COMMIT_SHA", "GIT_COMMIT", "CIRCLE_SHA1", "BUILD_SOURCEVERSION", "BUILDKITE_COMMIT"} {
			env[k] = commit
		}
		for _, k := range []string{"GITHUB_REF", "GIT_BRANCH", "BUILD_SOURCEBRANCH", "SYSTEM_PULLREQUEST_SOURCEBRANCH"} {
			env[k] = ref
		}
		for _, k := range []string{"GITHUB_RUN_ID", "CI_MERGE_REQUEST_IID", "CHANGE_ID", "CIRCLE_PR_NUMBER", "BUILD_BUILDID",
			"SYSTEM_PULLREQUEST_PULLREQUESTNUMBER", "BUILDKITE_PULL_REQUEST", "BUILD_NUMBER"} {
			env[k] = number
		}
		info := Detect(lookup(env))
		if strings.Contains(info.Repository, "@") {
			t.Errorf("Repository %q keeps '@'", info.Repository)
		}
		if info.Commit != "" && fullSHA(info.Commit) != info.Commit {
			t.Errorf("Commit %q is not a full lower-case SHA", info.Commit)
		}
		if info.PullRequest != "" && digits(info.PullRequest) == "" {
			t.Errorf("PullRequest %q is not a number", info.PullRequest)
		}
		if redactURL(info.RunURL) != info.RunURL {
			t.Errorf("RunURL %q still has credentials", info.RunURL)
		}
		if l := PipelineLogin(info.System, info.Pipeline); len(l) > MaxLoginLength || (info.System != "" && !strings.HasPrefix(l, info.System)) {
			t.Errorf("PipelineLogin(%q, %q) = %q", info.System, info.Pipeline, l)
		}
	})
}
