package evaluate

import (
	"slices"
	"time"
)

// LiveSubject is the core NATS subject (not a stream) on which the
// evaluation stage announces each evaluation that changed a verdict, as a
// JSON Verdict: the live page's feed. ClickHouse keeps the record of them
// (control_results, deployment_verdicts); a subscriber that misses a
// message reads the current state from there or from the gate.
const LiveSubject = "evidence.live.verdicts"

// Evaluation triggers (control_results.trigger).
const (
	TriggerUpdate   = "update"   // the change record was updated with new evidence
	TriggerDeadline = "deadline" // a pending control's deadline passed
	TriggerBundle   = "bundle"   // evidenced started with another policy bundle
)

// Verdict is one evaluation of a change, as announced on LiveSubject.
type Verdict struct {
	Change       string    `json:"change"`
	Repository   string    `json:"repository"`
	Title        string    `json:"title,omitempty"` // the pull request's title, if any
	Commit       string    `json:"commit,omitempty"`
	Environments []string  `json:"environments"`
	Services     []string  `json:"services"`
	Status       Status    `json:"status"` // Overall of Results
	Trigger      string    `json:"trigger"`
	Results      []Result  `json:"results"`
	Changed      []string  `json:"changed"` // ids of the controls whose status changed
	EvaluatedAt  time.Time `json:"evaluated_at"`
	// Deployments are the production deployments judged for the first
	// time by this evaluation (their verdict at the moment of deployment).
	Deployments []DeploymentVerdict `json:"deployments,omitempty"`
	// Late is the late evidence this evaluation noted beside decided
	// verdicts (which stand): the live page shows it.
	Late []LateNote `json:"late,omitempty"`
}

// LateNote is late evidence noted beside one deployment's verdict, as
// announced on LiveSubject.
type LateNote struct {
	Environment   string    `json:"environment"`
	Service       string    `json:"service"`
	DeploymentKey string    `json:"deployment_key"`
	DeployedAt    time.Time `json:"deployed_at"`
	Verdict       Status    `json:"verdict"` // as decided; it stands
	ArrivedBy     time.Time `json:"arrived_by"`
	LateEvidence
}

// DeploymentVerdict is the verdict in force at the moment of a production
// deployment: decided once, on the evidence that had arrived by the
// deployment's arrival plus the verdict delay, and never changed (a row
// of deployment_verdicts).
type DeploymentVerdict struct {
	Environment   string    `json:"environment"`
	Service       string    `json:"service"`
	DeploymentKey string    `json:"deployment_key"`
	DeploymentID  string    `json:"deployment_id,omitempty"`
	Change        string    `json:"change"`
	Repository    string    `json:"repository"`
	Commit        string    `json:"commit,omitempty"`
	Deployer      string    `json:"deployer,omitempty"`
	DeployedAt    time.Time `json:"deployed_at"`
	Verdict       Status    `json:"verdict"` // pass, fail or pending (Overall)
	Failing       []string  `json:"failing"`
	Pending       []string  `json:"pending"`
	Waived        []string  `json:"waived"`
	Results       []Result  `json:"results"`
	RecordHash    string    `json:"record_hash"`
	BundleHash    string    `json:"bundle_hash"`
	DecidedAt     time.Time `json:"decided_at"`
	// ArrivedBy is the arrival cutoff, in stream time, of the evidence
	// judged: the deployment's first arrival plus the verdict delay.
	ArrivedBy time.Time `json:"arrived_by,omitzero"`
}

// Overall is the verdict of a set of results: fail when one fails,
// pending when none fails and one is pending, else pass (every control
// passed or was waived). No results at all is not a pass: it is fail.
func Overall(rs []Result) Status {
	if len(rs) == 0 {
		return Fail
	}
	st := Pass
	for _, r := range rs {
		switch r.Status {
		case Fail:
			return Fail
		case Pending:
			st = Pending
		}
	}
	return st
}

// ByStatus lists the sorted ids of the controls with status s.
func ByStatus(rs []Result, s Status) []string {
	out := []string{}
	for _, r := range rs {
		if r.Status == s {
			out = append(out, r.Control.ID)
		}
	}
	slices.Sort(out)
	return out
}

// LateEvidence is evidence that arrived after a deployment's verdict was
// decided and would change it: the record judged again, still as of the
// deployment, with everything that arrived since. It is kept beside the
// verdict (in the verdicts bucket and deployment_late_evidence), which
// stays as decided.
type LateEvidence struct {
	Change     string        `json:"change"`
	Controls   []LateControl `json:"controls"`
	Events     []string      `json:"events"` // the record's events that arrived after the verdict's cutoff, "<source> <id>"
	RecordHash string        `json:"record_hash"`
	NotedAt    time.Time     `json:"noted_at"`
}

// LateControl is one control whose result the late evidence changes.
type LateControl struct {
	Control string   `json:"control"`
	Decided Status   `json:"decided"` // in the decided verdict
	Late    Status   `json:"late"`    // with the late evidence
	Reasons []string `json:"reasons"`
}
