package ci

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// System names reported in [Info.System].
const (
	GitHubActions  = "github-actions"
	GitLabCI       = "gitlab-ci"
	Jenkins        = "jenkins"
	CircleCI       = "circleci"
	AzurePipelines = "azure-pipelines"
	Buildkite      = "buildkite"
	Tekton         = "tekton"
)

// Info is what a CI system tells about the running job. A field is empty when
// the system does not say.
type Info struct {
	// System is one of the system constants (GitHubActions, ...), or empty
	// when no CI system was detected.
	System string
	// Repository is normalized by NormalizeRepository ("github.com/octo/app")
	// when the system gives a URL; otherwise it is what the system gives
	// (for example "octo/app").
	Repository string
	// Commit is the full SHA of the commit the run builds. Symbolic values
	// some systems report before checkout (Buildkite's "HEAD") are dropped.
	Commit string
	// Branch is the branch name without refs/heads/; for a pull request run
	// it is the source branch. Empty for tag builds.
	Branch string
	// RunID identifies the run, unique within the system.
	RunID string
	// RunAttempt is the attempt number of RunID, where the system has one.
	RunAttempt string
	// RunURL links to the run. Credentials are never kept.
	RunURL string
	// Pipeline is the workflow, pipeline or job name.
	Pipeline string
	// Actor is who (or what) triggered the run: for a re-run attempt,
	// who re-ran it (GitHub Actions GITHUB_TRIGGERING_ACTOR); for a GitLab
	// manual job, who started the job. It is the run's trigger, never the
	// deploying identity: in CI that is the pipeline (see PipelineLogin).
	Actor string
	// Event is the trigger as the system names it (push, pull_request,
	// merge_request_event, IndividualCI, webhook, ...).
	Event string
	// ManualJob: the job was started by hand inside a run that something
	// else started (GitLab CI_JOB_MANUAL: a "when: manual" job played from
	// the pipeline page). Event stays the run's.
	ManualJob bool
	// PullRequest is the pull or merge request number when the run is for
	// one.
	PullRequest string
}

// Detect reports the CI system and job described by the environment, read
// through getenv (os.Getenv in a program, a map lookup in tests; nil means an
// empty environment). The EVIDENCE_* overrides are applied last.
func Detect(getenv func(string) string) Info {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	e := env(getenv)
	var info Info
	switch {
	case e.get("GITHUB_ACTIONS") == "true":
		info = githubActions(e)
	case e.get("GITLAB_CI") == "true":
		info = gitlabCI(e)
	case e.get("BUILDKITE") == "true":
		info = buildkite(e)
	case e.get("CIRCLECI") == "true":
		info = circleCI(e)
	case strings.EqualFold(e.get("TF_BUILD"), "true"):
		info = azurePipelines(e)
	case e.get("TEKTON_PIPELINE_RUN") != "" || e.get("TEKTON_TASK_RUN") != "":
		info = tekton(e)
	case e.get("JENKINS_URL") != "":
		// Last: JENKINS_URL is a plain variable that may leak into other
		// systems' environments.
		info = jenkins(e)
	}
	info.Commit = fullSHA(info.Commit)
	info.RunURL = redactURL(info.RunURL)
	return info.override(e)
}

// MaxLoginLength is the catalog's bound on an identity's login.
const MaxLoginLength = 256

// PipelineLogin is the login of a pipeline's own identity, the deploying
// identity of a deploy step in CI: "SYSTEM:PIPELINE" (github-actions:release,
// jenkins:payments/main), or SYSTEM alone when the pipeline's name is not
// known. It names the pipeline, not a run: the run is beside it in the
// evidence (run_id, run_url). The name is cut at a character boundary so
// that the login stays within MaxLoginLength bytes. "" without a system.
func PipelineLogin(system, pipeline string) string {
	system, pipeline = strings.TrimSpace(system), strings.TrimSpace(pipeline)
	if system == "" {
		return ""
	}
	if pipeline == "" {
		return system
	}
	login := system + ":" + pipeline
	for len(login) > MaxLoginLength {
		_, size := utf8.DecodeLastRuneInString(login)
		login = login[:len(login)-size]
	}
	return login
}

// override applies the EVIDENCE_* variables, which win over detected values.
func (i Info) override(e env) Info {
	if v := e.get("EVIDENCE_REPO"); v != "" {
		i.Repository = NormalizeRepository(v)
	}
	if v := e.get("EVIDENCE_COMMIT"); v != "" {
		i.Commit = v
	}
	if v := e.get("EVIDENCE_RUN_ID"); v != "" {
		i.RunID = v
	}
	if v := e.get("EVIDENCE_RUN_URL"); v != "" {
		i.RunURL = redactURL(v)
	}
	if v := e.get("EVIDENCE_ACTOR"); v != "" {
		i.Actor = v
	}
	return i
}

// env reads variables, trimming surrounding white space.
type env func(string) string

func (e env) get(key string) string { return strings.TrimSpace(e(key)) }

// first returns the first non-empty variable among keys.
func (e env) first(keys ...string) string {
	for _, k := range keys {
		if v := e.get(k); v != "" {
			return v
		}
	}
	return ""
}

// branchFromRef returns the branch of a git ref: "refs/heads/x" gives "x",
// other refs (tags, pull request refs) give "", and a bare name is returned as
// is.
func branchFromRef(ref string) string {
	if b, ok := strings.CutPrefix(ref, "refs/heads/"); ok {
		return b
	}
	if strings.HasPrefix(ref, "refs/") {
		return ""
	}
	return ref
}

// fullSHA returns s when it is a full SHA-1 or SHA-256 hex object name, and ""
// otherwise (symbolic names such as "HEAD" say nothing about the commit).
func fullSHA(s string) string {
	if len(s) != 40 && len(s) != 64 {
		return ""
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return ""
		}
	}
	return strings.ToLower(s)
}

// digits returns s when it is a non-empty decimal number, and "" otherwise.
func digits(s string) string {
	if s == "" {
		return ""
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return ""
		}
	}
	return s
}

// redactURL removes credentials from a URL. A string that contains '@' but
// does not parse as a URL is dropped rather than risk leaking a secret.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.Contains(s, "@") {
			return ""
		}
		return s
	}
	if u.User == nil {
		return s
	}
	u.User = nil
	return u.String()
}
