package gitlab

import (
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/ci"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

type deploymentPayload struct {
	Status          string   `json:"status"`
	StatusChangedAt string   `json:"status_changed_at"`
	DeploymentID    int64    `json:"deployment_id"`
	DeployableID    int64    `json:"deployable_id"`
	DeployableURL   string   `json:"deployable_url"`
	Environment     string   `json:"environment"`
	Project         *project `json:"project"`
	SHA             string   `json:"sha"`
	ShortSHA        string   `json:"short_sha"`
	CommitURL       string   `json:"commit_url"`
	User            *user    `json:"user"`
}

type jobPayload struct {
	Ref             string   `json:"ref"`
	SHA             string   `json:"sha"`
	BuildID         int64    `json:"build_id"`
	BuildName       string   `json:"build_name"`
	BuildStatus     string   `json:"build_status"`
	BuildCreatedAt  string   `json:"build_created_at"`
	BuildStartedAt  string   `json:"build_started_at"`
	BuildFinishedAt string   `json:"build_finished_at"`
	PipelineID      int64    `json:"pipeline_id"`
	User            *user    `json:"user"`
	Project         *project `json:"project"`
	Repository      struct {
		Homepage   string `json:"homepage"`
		GitHTTPURL string `json:"git_http_url"`
	} `json:"repository"`
	Environment *struct {
		Name   string `json:"name"`
		Action string `json:"action"`
	} `json:"environment"`
}

type deploymentData struct {
	DeploymentID string    `json:"deployment_id,omitempty"`
	Environment  string    `json:"environment"`
	Service      string    `json:"service"`
	Repository   string    `json:"repository,omitempty"`
	Commit       string    `json:"commit,omitempty"`
	RunID        string    `json:"run_id,omitempty"`
	RunURL       string    `json:"run_url,omitempty"`
	Pipeline     string    `json:"pipeline,omitempty"`
	System       string    `json:"system"`
	Deployer     *identity `json:"deployer,omitempty"`
	TriggeredBy  *identity `json:"triggered_by,omitempty"`
	StartedAt    string    `json:"started_at,omitempty"`
	Outcome      string    `json:"outcome,omitempty"`
	FinishedAt   string    `json:"finished_at,omitempty"`
}

// deploymentOutcomes maps the status of a finished deployment or deploy
// job to the catalog outcome.
var deploymentOutcomes = map[string]string{
	"success": "success", "failed": "failure", "canceled": "cancelled",
}

func (p *Provider) deployment(d webhook.Delivery) ([]*ce.Event, error) {
	var m deploymentPayload
	if err := webhook.Decode(d.Body, &m); err != nil {
		return nil, err
	}
	status := strings.TrimSpace(m.Status)
	finished := deploymentOutcomes[status] != ""
	switch {
	case status == "":
		return nil, webhook.FieldError("status", "missing")
	case status != "running" && !finished:
		return nil, &webhook.Ignored{Reason: "deployment status " + status + " is neither a start nor an end"}
	}
	pl, err := locate(m.Project)
	if err != nil {
		return nil, err
	}
	env := strings.TrimSpace(m.Environment)
	if env == "" {
		return nil, webhook.FieldError("environment", "missing")
	}
	commit, err := deployedCommit(m)
	if err != nil {
		return nil, err
	}
	at, err := timestamp("status_changed_at", m.StatusChangedAt)
	if err != nil {
		return nil, err
	}
	data := deploymentData{
		Environment: env, Service: lastSegment(pl.repo), Repository: pl.repo, Commit: commit,
		RunURL: webhook.WebURL(m.DeployableURL), System: ci.GitLabCI, Deployer: ident(m.User),
	}
	// A deployment a CI job made (its deployable) is the pipeline's; the
	// hook's user triggered it. One created through the API for an
	// outside tool has no deployable and stays its user's.
	if m.DeployableID > 0 || strings.TrimSpace(m.DeployableURL) != "" {
		data.Deployer, data.TriggeredBy = pipelineIdentity(""), data.Deployer
	}
	if m.DeploymentID > 0 {
		data.DeploymentID = strconv.FormatInt(m.DeploymentID, 10)
	}
	subject := pl.repo + "/-/environments/" + env
	// The Deployment Hook has one time: that of the status change.
	if status == "running" {
		return p.deploymentEvents(d, pl, subject, status, at, time.Time{}, data)
	}
	return p.deploymentEvents(d, pl, subject, status, time.Time{}, at, data)
}

// deployedCommit is the full SHA when the payload has it (sha, or the end
// of commit_url), else short_sha.
func deployedCommit(m deploymentPayload) (string, error) {
	if m.SHA != "" {
		return webhook.CommitSHA("sha", m.SHA)
	}
	if i := strings.LastIndex(m.CommitURL, "/commit/"); i >= 0 {
		if c, err := webhook.CommitSHA("commit_url", m.CommitURL[i+len("/commit/"):]); err == nil && len(c) >= 40 {
			return c, nil
		}
	}
	c, err := webhook.CommitSHA("short_sha", m.ShortSHA)
	if err != nil {
		return "", err
	}
	if c == "" {
		return "", webhook.FieldError("short_sha", "missing: the deployed commit is required")
	}
	return c, nil
}

func (p *Provider) job(d webhook.Delivery) ([]*ce.Event, error) {
	var m jobPayload
	if err := webhook.Decode(d.Body, &m); err != nil {
		return nil, err
	}
	if m.Environment == nil || strings.TrimSpace(m.Environment.Name) == "" {
		return nil, &webhook.Ignored{Reason: "job without an environment: builds and tests are reported by the Pipeline Hook"}
	}
	if action := m.Environment.Action; action != "" && action != "start" {
		return nil, &webhook.Ignored{Reason: "job with environment action " + action + " does not deploy"}
	}
	status := strings.TrimSpace(m.BuildStatus)
	switch {
	case status == "":
		return nil, webhook.FieldError("build_status", "missing")
	case status != "running" && deploymentOutcomes[status] == "":
		return nil, &webhook.Ignored{Reason: "deploy job status " + status + " is neither a start nor an end"}
	}
	pl, err := locate(m.Project, [2]string{"repository.homepage", m.Repository.Homepage}, [2]string{"repository.git_http_url", m.Repository.GitHTTPURL})
	if err != nil {
		return nil, err
	}
	commit, err := webhook.CommitSHA("sha", m.SHA)
	if err != nil {
		return nil, err
	}
	if commit == "" {
		return nil, webhook.FieldError("sha", "missing: the deployed commit is required")
	}
	if m.BuildID < 1 {
		return nil, webhook.FieldError("build_id", "missing or not a job id")
	}
	created, err := timestamp("build_created_at", m.BuildCreatedAt)
	if err != nil {
		return nil, err
	}
	started, err := timestamp("build_started_at", m.BuildStartedAt)
	if err != nil {
		return nil, err
	}
	finished, err := timestamp("build_finished_at", m.BuildFinishedAt)
	if err != nil {
		return nil, err
	}
	env := strings.TrimSpace(m.Environment.Name)
	// A deploy job is the pipeline's deployment; the hook's user is who
	// started the pipeline (or played the manual job).
	data := deploymentData{
		Environment: env, Service: lastSegment(pl.repo), Repository: pl.repo, Commit: commit,
		Pipeline: m.BuildName, System: ci.GitLabCI, Deployer: pipelineIdentity(m.BuildName), TriggeredBy: ident(m.User),
	}
	if m.PipelineID > 0 {
		data.RunID = strconv.FormatInt(m.PipelineID, 10)
		data.RunURL = webhook.WebURL(pl.source + "/-/pipelines/" + data.RunID)
	}
	subject := pl.repo + "/-/jobs/" + strconv.FormatInt(m.BuildID, 10)
	if status == "running" {
		return p.deploymentEvents(d, pl, subject, status, webhook.FirstTime(started, created), time.Time{}, data)
	}
	return p.deploymentEvents(d, pl, subject, status, started, webhook.FirstTime(finished, started, created), data)
}

// pipelineIdentity is the deploying identity of a GitLab CI job: the
// pipeline itself (login gitlab-ci:JOB, or gitlab-ci when the hook does not
// name the job), type service.
func pipelineIdentity(job string) *identity {
	id := &identity{Login: ci.PipelineLogin(ci.GitLabCI, job), Type: "service"}
	if n := strings.TrimSpace(job); n != "" && len(n) <= 512 {
		id.Name = n
	}
	return id
}

// deploymentEvents emits deployment.started (status running) or
// deployment.finished, and the raw event.
func (p *Provider) deploymentEvents(d webhook.Delivery, pl place, subject, status string, started, finished time.Time, data deploymentData) ([]*ce.Event, error) {
	typ, suffix, at := webhook.TypeDeploymentStarted, "deployment.started", started
	data.StartedAt = webhook.FormatTime(started)
	if status != "running" {
		typ, suffix, at = webhook.TypeDeploymentFinished, "deployment.finished", webhook.FirstTime(finished, started)
		data.Outcome = deploymentOutcomes[status]
		data.FinishedAt = webhook.FormatTime(finished)
	}
	e, err := d.Event(pl.source, suffix, typ, subject, at, data)
	if err != nil {
		return nil, err
	}
	raw, err := d.Raw(pl.source, subject, at)
	if err != nil {
		return nil, err
	}
	return []*ce.Event{e, raw}, nil
}

type pushPayload struct {
	Ref     string   `json:"ref"`
	After   string   `json:"after"`
	Project *project `json:"project"`
	Repo    struct {
		Homepage string `json:"homepage"`
	} `json:"repository"`
}

// push keeps a branch push as raw evidence only: the correlator detects a
// direct push to the default branch from it.
func (p *Provider) push(d webhook.Delivery) ([]*ce.Event, error) {
	var m pushPayload
	if err := webhook.Decode(d.Body, &m); err != nil {
		return nil, err
	}
	if strings.HasPrefix(m.Ref, "refs/tags/") {
		return nil, &webhook.Ignored{Reason: "tag push: no change evidence"}
	}
	if isNullSHA(m.After) {
		return nil, &webhook.Ignored{Reason: "branch deletion: no change evidence"}
	}
	pl, err := locate(m.Project, [2]string{"repository.homepage", m.Repo.Homepage})
	if err != nil {
		return nil, err
	}
	after, err := webhook.CommitSHA("after", m.After)
	if err != nil {
		return nil, err
	}
	subject := pl.repo
	if after != "" {
		subject += "@" + after
	}
	raw, err := d.Raw(pl.source, subject, time.Time{})
	if err != nil {
		return nil, err
	}
	return []*ce.Event{raw}, nil
}
