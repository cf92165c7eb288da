package gitlab

import (
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

type pipelinePayload struct {
	User    *user    `json:"user"`
	Project *project `json:"project"`
	Attrs   struct {
		ID         int64  `json:"id"`
		Name       string `json:"name"`
		Ref        string `json:"ref"`
		Tag        bool   `json:"tag"`
		SHA        string `json:"sha"`
		Source     string `json:"source"`
		Status     string `json:"status"`
		CreatedAt  string `json:"created_at"`
		FinishedAt string `json:"finished_at"`
		URL        string `json:"url"`
	} `json:"object_attributes"`
	MergeRequest *struct {
		IID int64  `json:"iid"`
		URL string `json:"url"`
	} `json:"merge_request"`
}

type pipelineData struct {
	Repository string     `json:"repository"`
	Commit     string     `json:"commit"`
	Branch     string     `json:"branch,omitempty"`
	Tag        string     `json:"tag,omitempty"`
	RunID      string     `json:"run_id"`
	RunURL     string     `json:"run_url,omitempty"`
	Pipeline   string     `json:"pipeline,omitempty"`
	System     string     `json:"system"`
	Actor      *identity  `json:"actor,omitempty"`
	Trigger    string     `json:"trigger,omitempty"`
	Change     *changeRef `json:"change,omitempty"`
	StartedAt  string     `json:"started_at,omitempty"`
	Outcome    string     `json:"outcome,omitempty"`
	FinishedAt string     `json:"finished_at,omitempty"`
}

// pipelineOutcomes maps a finished pipeline's status to the catalog outcome.
var pipelineOutcomes = map[string]string{
	"success": "success", "failed": "failure", "canceled": "cancelled", "canceling": "cancelled",
}

// triggers maps a pipeline's source to the catalog trigger.
var triggers = map[string]string{
	"push": "push", "merge_request_event": "pull_request", "external_pull_request_event": "pull_request",
	"web": "manual", "schedule": "schedule", "api": "api", "trigger": "api", "chat": "manual",
	"pipeline": "pipeline", "parent_pipeline": "pipeline", "webide": "manual",
}

func (p *Provider) pipeline(d webhook.Delivery) ([]*ce.Event, error) {
	var m pipelinePayload
	if err := webhook.Decode(d.Body, &m); err != nil {
		return nil, err
	}
	a := &m.Attrs
	status := strings.TrimSpace(a.Status)
	var typ, suffix string
	switch {
	case status == "pending" || status == "running":
		typ, suffix = webhook.TypePipelineStarted, "pipelinerun.started"
	case pipelineOutcomes[status] != "":
		typ, suffix = webhook.TypePipelineFinished, "pipelinerun.finished"
	case status == "":
		return nil, webhook.FieldError("object_attributes.status", "missing")
	default:
		return nil, &webhook.Ignored{Reason: "pipeline status " + status + " is neither a start nor an end"}
	}
	pl, err := locate(m.Project)
	if err != nil {
		return nil, err
	}
	if a.ID < 1 {
		return nil, webhook.FieldError("object_attributes.id", "missing or not a pipeline id")
	}
	commit, err := webhook.CommitSHA("object_attributes.sha", a.SHA)
	if err != nil {
		return nil, err
	}
	if commit == "" {
		return nil, webhook.FieldError("object_attributes.sha", "missing: the pipeline's commit is required")
	}
	created, err := timestamp("object_attributes.created_at", a.CreatedAt)
	if err != nil {
		return nil, err
	}
	finished, err := timestamp("object_attributes.finished_at", a.FinishedAt)
	if err != nil {
		return nil, err
	}
	runID := strconv.FormatInt(a.ID, 10)
	data := pipelineData{
		Repository: pl.repo, Commit: commit, RunID: runID, Pipeline: a.Name,
		System: "gitlab-ci", Actor: ident(m.User), StartedAt: webhook.FormatTime(created),
	}
	data.RunURL = webhook.WebURL(a.URL)
	if data.RunURL == "" {
		data.RunURL = webhook.WebURL(pl.source + "/-/pipelines/" + runID)
	}
	ref := strings.TrimSpace(a.Ref)
	switch {
	case a.Tag:
		data.Tag = strings.TrimPrefix(ref, "refs/tags/")
	case strings.HasPrefix(ref, "refs/heads/"):
		data.Branch = strings.TrimPrefix(ref, "refs/heads/")
	case !strings.HasPrefix(ref, "refs/"):
		data.Branch = ref
	}
	data.Trigger = triggers[a.Source]
	if a.Tag && a.Source == "push" {
		data.Trigger = "tag"
	}
	if data.Trigger == "" && a.Source != "" {
		data.Trigger = "other"
	}
	if m.MergeRequest != nil && m.MergeRequest.IID >= 1 {
		data.Change = &changeRef{Number: m.MergeRequest.IID, URL: webhook.WebURL(m.MergeRequest.URL)}
	}
	at := created
	if typ == webhook.TypePipelineFinished {
		data.Outcome = pipelineOutcomes[status]
		data.FinishedAt = webhook.FormatTime(finished)
		at = webhook.FirstTime(finished, created)
	}
	subject := pl.repo + "/-/pipelines/" + runID
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
