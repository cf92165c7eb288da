package github

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/ci"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

type deploymentData struct {
	DeploymentID string    `json:"deployment_id,omitempty"`
	Environment  string    `json:"environment"`
	Service      string    `json:"service"`
	Digest       string    `json:"digest,omitempty"`
	Artifact     string    `json:"artifact,omitempty"`
	Repository   string    `json:"repository,omitempty"`
	Commit       string    `json:"commit,omitempty"`
	RunID        string    `json:"run_id,omitempty"`
	RunURL       string    `json:"run_url,omitempty"`
	Pipeline     string    `json:"pipeline,omitempty"`
	System       string    `json:"system,omitempty"`
	Deployer     *identity `json:"deployer,omitempty"`
	TriggeredBy  *identity `json:"triggered_by,omitempty"`
	Trigger      string    `json:"trigger,omitempty"`
	TicketKeys   []string  `json:"ticket_keys,omitempty"`
	StartedAt    string    `json:"started_at,omitempty"`
	Outcome      string    `json:"outcome,omitempty"`
	FinishedAt   string    `json:"finished_at,omitempty"`
}

type ghDeployment struct {
	ID          int64           `json:"id"`
	SHA         string          `json:"sha"`
	Environment string          `json:"environment"`
	Description string          `json:"description"`
	Payload     json.RawMessage `json:"payload"` // an object, or a string of JSON
	Creator     *ghUser         `json:"creator"`
	CreatedAt   string          `json:"created_at"`
	// PerformedVia is the GitHub App that created the deployment, when
	// one did (github-actions: a workflow's GITHUB_TOKEN).
	PerformedVia *struct {
		Slug string `json:"slug"`
	} `json:"performed_via_github_app"`
}

type deploymentEvent struct {
	envelope
	Deployment       *ghDeployment `json:"deployment"`
	DeploymentStatus *struct {
		State       string `json:"state"`
		Environment string `json:"environment"`
		CreatedAt   string `json:"created_at"`
		UpdatedAt   string `json:"updated_at"`
	} `json:"deployment_status"`
	// WorkflowRun is the run whose job made the deployment (a job with an
	// environment), when a workflow did.
	WorkflowRun *ghWorkflowRun `json:"workflow_run"`
}

// translateDeployment reads deployment.created. GitHub Enterprise Server
// 3.1 to 3.5 send deployment and deployment_status payloads without an
// action field (octokit/webhooks, payload-examples/ghes-31 to ghes-35):
// those events had one action only, created, so a payload without one is
// read as created. This holds for these two events only; elsewhere a
// missing action is refused.
func translateDeployment(d *delivery) (result, error) {
	var ev deploymentEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "created", "": // "": GitHub Enterprise Server 3.1 to 3.5
	default:
		return result{}, ignored("deployment." + ev.Action)
	}
	r, data, err := d.deploymentOf(&ev)
	if err != nil {
		return result{}, err
	}
	at := factTime(d.ReceivedAt, ev.Deployment.CreatedAt)
	return result{
		repo:    r,
		subject: data.Service,
		facts:   []fact{{typ: webhook.TypeDeploymentStarted, suffix: "deployment.started", subject: data.Service, time: at, data: data}},
	}, nil
}

func translateDeploymentStatus(d *delivery) (result, error) {
	var ev deploymentEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "created", "": // "": GitHub Enterprise Server 3.1 to 3.5 (see translateDeployment)
	default:
		return result{}, ignored("deployment_status." + ev.Action)
	}
	st := ev.DeploymentStatus
	if st == nil {
		return result{}, missing("deployment_status")
	}
	typ, suffix, out := webhook.TypeDeploymentFinished, "deployment.finished", ""
	switch st.State {
	case "success":
		out = "success"
	case "failure", "error":
		out = "failure"
	case "in_progress":
		typ, suffix = webhook.TypeDeploymentStarted, "deployment.started"
	case "":
		return result{}, missing("deployment_status.state")
	default:
		// queued, pending, waiting: not started yet; inactive: GitHub
		// retires an earlier deployment when a later one succeeds, and
		// the earlier one had already finished.
		return result{}, ignored("deployment_status " + st.State)
	}
	r, data, err := d.deploymentOf(&ev)
	if err != nil {
		return result{}, err
	}
	at := factTime(d.ReceivedAt, st.CreatedAt, st.UpdatedAt)
	if typ == webhook.TypeDeploymentFinished {
		data.Outcome = out
		data.FinishedAt = at.Format(timeLayout)
	}
	return result{
		repo:    r,
		subject: data.Service,
		facts:   []fact{{typ: typ, suffix: suffix, subject: data.Service, time: at, data: data}},
	}, nil
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// deploymentOf fills what deployment.started and deployment.finished say
// of a GitHub deployment.
func (d *delivery) deploymentOf(ev *deploymentEvent) (repo, deploymentData, error) {
	r, err := repoOf(ev.Repository)
	if err != nil {
		return repo{}, deploymentData{}, err
	}
	dep := ev.Deployment
	if dep == nil {
		return repo{}, deploymentData{}, missing("deployment")
	}
	data := deploymentData{
		Environment: strings.TrimSpace(dep.Environment),
		Repository:  r.key,
		Deployer:    identityOf(dep.Creator),
		TicketKeys:  d.p.tickets.Find(dep.Description),
		StartedAt:   rfc3339(dep.CreatedAt),
	}
	if len(data.TicketKeys) > maxTicketKeys {
		data.TicketKeys = data.TicketKeys[:maxTicketKeys]
	}
	if dep.ID > 0 {
		data.DeploymentID = strconv.FormatInt(dep.ID, 10)
	}
	if data.Environment == "" && ev.DeploymentStatus != nil {
		data.Environment = strings.TrimSpace(ev.DeploymentStatus.Environment)
	}
	if data.Environment == "" {
		return repo{}, deploymentData{}, missing("deployment.environment")
	}
	if data.Commit, err = requiredSHA(dep.SHA, "deployment.sha"); err != nil {
		return repo{}, deploymentData{}, err
	}
	extra := deployerPayload(dep.Payload)
	data.Service = extra["service"]
	if data.Service == "" {
		data.Service = r.name
	}
	if digestRE.MatchString(extra["digest"]) {
		data.Digest = extra["digest"]
	}
	data.Artifact = extra["artifact"]
	if wr := ev.WorkflowRun; wr != nil && wr.ID > 0 {
		data.RunID = strconv.FormatInt(wr.ID, 10)
		data.RunURL = webURL(wr.HTMLURL)
		data.Pipeline = wr.Name
		data.System = ci.GitHubActions
	}
	pipelineDeployer(&data, ev)
	return r, data, nil
}

// pipelineDeployer makes a deployment that GitHub Actions made the
// pipeline's: the deployer is the workflow (login github-actions:WORKFLOW,
// type service) when a workflow run made it (GitHub then names as its
// creator the person who triggered the run, who becomes triggered_by), or
// github-actions[bot] when the GitHub Actions app created it through the
// API without a run in the payload. A deployment a person or another app
// created keeps its creator as the deployer.
func pipelineDeployer(data *deploymentData, ev *deploymentEvent) {
	dep, wr := ev.Deployment, ev.WorkflowRun
	creator := data.Deployer
	byActionsBot := creator != nil && creator.Login == "github-actions[bot]"
	person := creator
	if byActionsBot {
		person = nil // the token of the run, not who triggered it
	}
	switch {
	case wr != nil && wr.ID > 0:
		data.Deployer = &identity{Login: ci.PipelineLogin(ci.GitHubActions, wr.Name), Type: "service"}
		if n := strings.TrimSpace(wr.Name); n != "" && len(n) <= 512 {
			data.Deployer.Name = n
		}
		data.TriggeredBy = identityOf(wr.TriggeringActor)
		if data.TriggeredBy == nil {
			data.TriggeredBy = identityOf(wr.Actor)
		}
		if data.TriggeredBy == nil {
			data.TriggeredBy = person
		}
		data.Trigger = triggers[wr.Event]
		if data.Trigger == "" && wr.Event != "" {
			data.Trigger = "other"
		}
		if wr.RunAttempt > 1 {
			data.Trigger = "manual" // a re-run, by its triggering actor
		}
	case byActionsBot || (dep.PerformedVia != nil && dep.PerformedVia.Slug == "github-actions"):
		data.Deployer = &identity{Login: "github-actions[bot]", Type: "service"}
		if byActionsBot {
			data.Deployer = creator
		}
		data.TriggeredBy = person
	}
}

// deployerPayload reads the string members of deployment.payload, the
// deployer's own data: a JSON object, or a string holding one.
func deployerPayload(raw json.RawMessage) map[string]string {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return nil
		}
		raw = []byte(s)
	}
	var m map[string]any
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	out := map[string]string{}
	for _, k := range []string{"service", "digest", "artifact"} {
		if s, ok := m[k].(string); ok && strings.TrimSpace(s) != "" {
			out[k] = strings.TrimSpace(s)
		}
	}
	return out
}
