package github

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"

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
	WorkflowRun *struct {
		ID      int64  `json:"id"`
		Name    string `json:"name"`
		HTMLURL string `json:"html_url"`
	} `json:"workflow_run"`
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
		data.System = "github-actions"
	}
	return r, data, nil
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
