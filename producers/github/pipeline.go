package github

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

type pipelineData struct {
	Repository string    `json:"repository"`
	Commit     string    `json:"commit"`
	Branch     string    `json:"branch,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	RunID      string    `json:"run_id"`
	RunAttempt int64     `json:"run_attempt,omitempty"`
	RunURL     string    `json:"run_url,omitempty"`
	Pipeline   string    `json:"pipeline,omitempty"`
	System     string    `json:"system,omitempty"`
	Actor      *identity `json:"actor,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Change     *change   `json:"change,omitempty"`
	StartedAt  string    `json:"started_at,omitempty"`
	Outcome    string    `json:"outcome,omitempty"`
	FinishedAt string    `json:"finished_at,omitempty"`
}

// runPull is a pull request as workflow runs and check suites list it.
type runPull struct {
	Number int64  `json:"number"`
	Base   *ghRef `json:"base"`
}

type ghWorkflowRun struct {
	ID              int64     `json:"id"`
	Name            string    `json:"name"`
	Path            string    `json:"path"`
	HeadBranch      string    `json:"head_branch"`
	HeadSHA         string    `json:"head_sha"`
	Event           string    `json:"event"`
	Conclusion      string    `json:"conclusion"`
	RunAttempt      int64     `json:"run_attempt"`
	HTMLURL         string    `json:"html_url"`
	CreatedAt       string    `json:"created_at"`
	UpdatedAt       string    `json:"updated_at"`
	RunStartedAt    string    `json:"run_started_at"`
	Actor           *ghUser   `json:"actor"`
	TriggeringActor *ghUser   `json:"triggering_actor"`
	PullRequests    []runPull `json:"pull_requests"`
}

type workflowRunEvent struct {
	envelope
	WorkflowRun *ghWorkflowRun `json:"workflow_run"`
	Workflow    *struct {
		Name string `json:"name"`
		Path string `json:"path"`
	} `json:"workflow"`
}

// triggers maps a workflow run's event to the catalog's trigger.
var triggers = map[string]string{
	"push":                        "push",
	"pull_request":                "pull_request",
	"pull_request_target":         "pull_request",
	"pull_request_review":         "pull_request",
	"pull_request_review_comment": "pull_request",
	"schedule":                    "schedule",
	"workflow_dispatch":           "manual",
	"repository_dispatch":         "api",
	"workflow_run":                "pipeline",
	"workflow_call":               "pipeline",
	"release":                     "tag",
}

// outcome maps a GitHub conclusion (workflow run, check suite) to the
// catalog's: a step failed is failure; what GitHub could not run or
// decide is error.
func outcome(conclusion string) string {
	switch conclusion {
	case "success":
		return "success"
	case "failure", "timed_out", "startup_failure":
		return "failure"
	case "cancelled":
		return "cancelled"
	default: // neutral, skipped, stale, action_required, none
		return "error"
	}
}

func translateWorkflowRun(d *delivery) (result, error) {
	var ev workflowRunEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	var typ, suffix string
	switch ev.Action {
	case "requested", "in_progress":
		typ, suffix = webhook.TypePipelineStarted, "pipelinerun.started"
	case "completed":
		typ, suffix = webhook.TypePipelineFinished, "pipelinerun.finished"
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("workflow_run." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	run := ev.WorkflowRun
	if run == nil {
		return result{}, missing("workflow_run")
	}
	if run.ID < 1 {
		return result{}, missing("workflow_run.id")
	}
	data := pipelineData{
		Repository: r.key,
		RunID:      strconv.FormatInt(run.ID, 10),
		RunURL:     webURL(run.HTMLURL),
		Pipeline:   run.Name,
		System:     "github-actions",
		Trigger:    triggers[run.Event],
		StartedAt:  rfc3339(run.RunStartedAt),
	}
	if data.Commit, err = requiredSHA(run.HeadSHA, "workflow_run.head_sha"); err != nil {
		return result{}, err
	}
	if run.RunAttempt > 0 {
		data.RunAttempt = run.RunAttempt
	}
	if data.Trigger == "" && run.Event != "" {
		data.Trigger = "other"
	}
	if data.Trigger == "tag" {
		data.Tag = run.HeadBranch // a release's run: head_branch is the tag
	} else {
		data.Branch = run.HeadBranch
	}
	if data.Pipeline == "" && ev.Workflow != nil {
		data.Pipeline = ev.Workflow.Name
	}
	if data.Pipeline == "" {
		data.Pipeline = run.Path
	}
	data.Actor = identityOf(run.TriggeringActor)
	if data.Actor == nil {
		data.Actor = identityOf(run.Actor)
	}
	if data.Trigger == "pull_request" {
		data.Change = changeOfRun(r, ev.Repository, run.PullRequests)
	}
	at := factTime(d.ReceivedAt, run.RunStartedAt, run.CreatedAt)
	if typ == webhook.TypePipelineFinished {
		data.Outcome = outcome(run.Conclusion)
		at = factTime(d.ReceivedAt, run.UpdatedAt)
		data.FinishedAt = at.Format(timeLayout)
	}
	subject := r.key + "/commit/" + data.Commit
	return result{
		repo:    r,
		subject: subject,
		facts:   []fact{{typ: typ, suffix: suffix, subject: subject, time: at, data: data}},
	}, nil
}

// changeOfRun is the pull request a run is for: the first listed that
// targets the run's repository (a run lists the pull requests whose head
// is its commit).
func changeOfRun(r repo, gr *ghRepo, pulls []runPull) *change {
	for _, p := range pulls {
		if p.Number < 1 {
			continue
		}
		if p.Base != nil && p.Base.Repo != nil && gr != nil && p.Base.Repo.ID != 0 && gr.ID != 0 && p.Base.Repo.ID != gr.ID {
			continue
		}
		return &change{Number: p.Number, URL: r.pullURL(p.Number)}
	}
	return nil
}

type checkSuiteEvent struct {
	envelope
	CheckSuite *struct {
		ID           int64     `json:"id"`
		HeadBranch   string    `json:"head_branch"`
		HeadSHA      string    `json:"head_sha"`
		Conclusion   string    `json:"conclusion"`
		CreatedAt    string    `json:"created_at"`
		UpdatedAt    string    `json:"updated_at"`
		PullRequests []runPull `json:"pull_requests"`
		App          *struct {
			Slug string `json:"slug"`
			Name string `json:"name"`
		} `json:"app"`
	} `json:"check_suite"`
}

// translateCheckSuite reports the completed suites of CI apps other than
// GitHub Actions (whose suites duplicate workflow_run).
func translateCheckSuite(d *delivery) (result, error) {
	var ev checkSuiteEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "completed":
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("check_suite." + ev.Action)
	}
	cs := ev.CheckSuite
	if cs == nil {
		return result{}, missing("check_suite")
	}
	var slug, name string
	if cs.App != nil {
		slug, name = cs.App.Slug, cs.App.Name
	}
	if slug == "github-actions" {
		return result{}, &webhook.Ignored{Reason: "check_suite of GitHub Actions duplicates workflow_run"}
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	if cs.ID < 1 {
		return result{}, missing("check_suite.id")
	}
	system := systemSlug(slug)
	if system == "" {
		system = systemSlug(name)
	}
	if system == "" {
		system = "github-checks"
	}
	data := pipelineData{
		Repository: r.key,
		Branch:     cs.HeadBranch,
		RunID:      "check_suite/" + strconv.FormatInt(cs.ID, 10),
		Pipeline:   name,
		System:     system,
		Change:     changeOfRun(r, ev.Repository, cs.PullRequests),
		StartedAt:  rfc3339(cs.CreatedAt),
		Outcome:    outcome(cs.Conclusion),
	}
	if data.Commit, err = requiredSHA(cs.HeadSHA, "check_suite.head_sha"); err != nil {
		return result{}, err
	}
	if data.Change != nil {
		data.Trigger = "pull_request"
	}
	at := factTime(d.ReceivedAt, cs.UpdatedAt)
	data.FinishedAt = at.Format(timeLayout)
	subject := r.key + "/commit/" + data.Commit
	return result{
		repo:    r,
		subject: subject,
		facts:   []fact{{typ: webhook.TypePipelineFinished, suffix: "pipelinerun.finished", subject: subject, time: at, data: data}},
	}, nil
}

// systemSlug makes a ci_system slug (^[a-z0-9][a-z0-9-]*$) of an app's
// slug or name, "" when nothing is left.
func systemSlug(s string) string {
	var b strings.Builder
	dash := false
	for _, c := range strings.ToLower(s) {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(c)
			dash = false
		default:
			dash = true
		}
	}
	return b.String()
}

type statusEvent struct {
	envelope
	SHA       string `json:"sha"`
	State     string `json:"state"`
	Context   string `json:"context"`
	TargetURL string `json:"target_url"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	Branches  []struct {
		Name string `json:"name"`
	} `json:"branches"`
}

// translateStatus reports commit statuses (the API older CI systems
// report through): pending starts a run, the other states finish it. The
// run is identified by the status context and the commit, so that pending
// and its final state pair.
func translateStatus(d *delivery) (result, error) {
	var ev statusEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	var typ, suffix, out string
	switch ev.State {
	case "pending":
		typ, suffix = webhook.TypePipelineStarted, "pipelinerun.started"
	case "success":
		typ, suffix, out = webhook.TypePipelineFinished, "pipelinerun.finished", "success"
	case "failure":
		typ, suffix, out = webhook.TypePipelineFinished, "pipelinerun.finished", "failure"
	case "error":
		typ, suffix, out = webhook.TypePipelineFinished, "pipelinerun.finished", "error"
	case "":
		return result{}, missing("state")
	default:
		return result{}, fmt.Errorf("state: %q is not a commit status state", ev.State)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	commit, err := requiredSHA(ev.SHA, "sha")
	if err != nil {
		return result{}, err
	}
	ctx := strings.TrimSpace(ev.Context)
	if ctx == "" {
		ctx = "default"
	}
	data := pipelineData{
		Repository: r.key,
		Commit:     commit,
		RunID:      "status:" + ctx + "@" + commit,
		RunURL:     webURL(ev.TargetURL),
		Pipeline:   ctx,
		Outcome:    out,
	}
	if len(ev.Branches) == 1 {
		data.Branch = ev.Branches[0].Name
	}
	at := factTime(d.ReceivedAt, ev.UpdatedAt, ev.CreatedAt)
	if typ == webhook.TypePipelineStarted {
		data.StartedAt = at.Format(timeLayout)
	} else {
		data.FinishedAt = at.Format(timeLayout)
	}
	subject := r.key + "/commit/" + commit
	return result{
		repo:    r,
		subject: subject,
		facts:   []fact{{typ: typ, suffix: suffix, subject: subject, time: at, data: data}},
	}, nil
}
