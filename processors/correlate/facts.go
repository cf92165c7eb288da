package correlate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kind is what a fact asserts.
type Kind string

// The kinds of facts. Each catalog event gives at most one fact.
const (
	KindChangeOpened Kind = "change.opened" // change.opened: author, title, branches, first head
	KindChangeHead   Kind = "change.head"   // change.updated: a new head (or title, branch, draft)
	KindChangeMerged Kind = "change.merged" // change.merged: merge commit, final head, merged by
	KindChangeClosed Kind = "change.closed" // change.closed: closed without merge
	KindReview       Kind = "review"        // review.submitted
	KindTicketState  Kind = "ticket.state"  // ticket.created, ticket.transitioned: status history
	KindTicketAppr   Kind = "ticket.approval"
	KindRun          Kind = "run"        // pipelinerun.started, pipelinerun.finished
	KindArtifact     Kind = "artifact"   // artifact.built
	KindTest         Kind = "test"       // test.reported
	KindScan         Kind = "scan"       // scan.reported
	KindDeployment   Kind = "deployment" // deployment.started, deployment.finished
	KindException    Kind = "exception"  // exception.requested, exception.granted
	KindPush         Kind = "push"       // webhook.received: a push to the default branch
)

// kinds lists every kind, for iteration in a fixed order.
var kinds = []Kind{
	KindChangeOpened, KindChangeHead, KindChangeMerged, KindChangeClosed, KindReview,
	KindTicketState, KindTicketAppr, KindRun, KindArtifact, KindTest, KindScan,
	KindDeployment, KindException, KindPush,
}

// changeKinds are the facts about a pull or merge request.
var changeKinds = []Kind{KindChangeOpened, KindChangeHead, KindChangeMerged, KindChangeClosed, KindReview}

// EventRef names the CloudEvent behind a fact: its source and id, which
// CloudEvents makes unique. In JSON it is the string "<source> <id>" (a
// source is a URI-reference and has no space, so the first space splits).
type EventRef struct {
	Source string
	ID     string
}

func (r EventRef) String() string { return r.Source + " " + r.ID }

// MarshalText encodes "<source> <id>".
func (r EventRef) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText decodes "<source> <id>".
func (r *EventRef) UnmarshalText(b []byte) error {
	s, id, ok := strings.Cut(string(b), " ")
	if !ok || s == "" || id == "" {
		return fmt.Errorf("event ref %q: want \"<source> <id>\"", b)
	}
	r.Source, r.ID = s, id
	return nil
}

func compareRefs(a, b EventRef) int {
	if c := strings.Compare(a.Source, b.Source); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// Identity is a person or machine account as the reporting system knows
// it (the catalog's identity).
type Identity struct {
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"`
}

// Fact is one assertion extracted from one event: what it is about (Keys),
// when it happened (Time: the data's own *_at when the event has one, else
// the CloudEvent's time; never the arrival time), the event behind it, and
// the typed assertion of its kind (exactly one of the pointer fields).
//
// A fact's ID is the SHA-256 of its canonical JSON (every field but ID and
// Arrived, as encoding/json writes the struct: fixed member order, sorted
// slices, UTC times), so the same event seen twice gives one fact.
//
// Arrived is when its event arrived in the stream (the JetStream message's
// timestamp), not part of what the fact asserts: two copies of one fact
// keep the earliest ([earlierArrival]); zero is unknown (a fact stored by
// an earlier version, or not read from the stream) and counts as the
// earliest of all, so an arrival cutoff always includes it.
type Fact struct {
	ID      string    `json:"id,omitempty"`
	Kind    Kind      `json:"kind"`
	Keys    []Key     `json:"keys"`
	Time    time.Time `json:"time,omitzero"`
	Event   EventRef  `json:"event"`
	Arrived time.Time `json:"arrived,omitzero"`

	Change     *ChangeFact     `json:"change,omitempty"`
	Review     *ReviewFact     `json:"review,omitempty"`
	Ticket     *TicketFact     `json:"ticket,omitempty"`
	Run        *RunFact        `json:"run,omitempty"`
	Artifact   *ArtifactFact   `json:"artifact,omitempty"`
	Test       *TestFact       `json:"test,omitempty"`
	Scan       *ScanFact       `json:"scan,omitempty"`
	Deployment *DeploymentFact `json:"deployment,omitempty"`
	Exception  *ExceptionFact  `json:"exception,omitempty"`
	Push       *PushFact       `json:"push,omitempty"`
}

// Mention is a ticket key a change or commit refers to, and where it was
// found: "ticket_keys" (given by the producer), "title", "branch",
// "commit_message".
type Mention struct {
	Key string   `json:"key"`
	In  []string `json:"in"`
}

// ChangeFact is a pull or merge request as a change.* event states it.
type ChangeFact struct {
	Repository       string    `json:"repository"`
	Number           int64     `json:"number"`
	URL              string    `json:"url,omitempty"`
	Title            string    `json:"title,omitempty"`
	Author           *Identity `json:"author,omitempty"`
	SourceBranch     string    `json:"source_branch,omitempty"`
	SourceRepository string    `json:"source_repository,omitempty"`
	TargetBranch     string    `json:"target_branch,omitempty"`
	HeadCommit       string    `json:"head_commit,omitempty"`
	PreviousHead     string    `json:"previous_head_commit,omitempty"`
	BaseCommit       string    `json:"base_commit,omitempty"`
	Draft            *bool     `json:"draft,omitempty"`
	Tickets          []Mention `json:"tickets,omitempty"`
	Actor            *Identity `json:"actor,omitempty"`
	MergeCommit      string    `json:"merge_commit,omitempty"`
	Method           string    `json:"method,omitempty"`
	MergedBy         *Identity `json:"merged_by,omitempty"`
	Commits          []string  `json:"commits,omitempty"`
	ClosedBy         *Identity `json:"closed_by,omitempty"`
}

// commits is every commit the fact names as part of the change (not the
// base commit, which is the target branch's).
func (c *ChangeFact) commits() []string {
	out := make([]string, 0, 3+len(c.Commits))
	for _, s := range []string{c.HeadCommit, c.PreviousHead, c.MergeCommit} {
		if s != "" {
			out = append(out, s)
		}
	}
	return append(out, c.Commits...)
}

// ReviewFact is a review.submitted.
type ReviewFact struct {
	Repository  string    `json:"repository"`
	Number      int64     `json:"number"`
	Reviewer    Identity  `json:"reviewer"`
	Decision    string    `json:"decision"`
	HeadCommit  string    `json:"head_commit"`
	ReviewID    string    `json:"review_id,omitempty"`
	ReviewURL   string    `json:"review_url,omitempty"`
	Author      *Identity `json:"author,omitempty"`
	DismissedBy *Identity `json:"dismissed_by,omitempty"`
}

// TicketFact is a ticket.* event: Action is created, transitioned,
// approved or rejected.
type TicketFact struct {
	Key            string       `json:"key"`
	System         string       `json:"system"`
	Action         string       `json:"action"`
	Type           string       `json:"ticket_type,omitempty"`
	RawType        string       `json:"raw_type,omitempty"`
	Status         string       `json:"status,omitempty"`
	PreviousStatus string       `json:"previous_status,omitempty"`
	Summary        string       `json:"summary,omitempty"`
	URL            string       `json:"url,omitempty"`
	RequestedBy    *Identity    `json:"requested_by,omitempty"`
	Links          *TicketLinks `json:"links,omitempty"`
	PlannedWindow  *Window      `json:"planned_window,omitempty"`
	By             *Identity    `json:"by,omitempty"` // transitioned_by, or the approver
	ApprovalGroup  string       `json:"approval_group,omitempty"`
	Comment        string       `json:"comment,omitempty"`
	Reason         string       `json:"reason,omitempty"`
}

// TicketLinks is what a ticket says it covers.
type TicketLinks struct {
	Repositories []string    `json:"repositories,omitempty"`
	Commits      []string    `json:"commits,omitempty"`
	Changes      []ChangeRef `json:"changes,omitempty"`
}

// ChangeRef is a pull or merge request of a repository.
type ChangeRef struct {
	Repository string `json:"repository"`
	Number     int64  `json:"number"`
}

// Window is a planned implementation window.
type Window struct {
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// RunFact is a pipelinerun.* event: Phase is started or finished.
type RunFact struct {
	Phase      string    `json:"phase"`
	Repository string    `json:"repository"`
	RunID      string    `json:"run_id"`
	Attempt    int       `json:"attempt"` // 1 when the system gives none
	Commit     string    `json:"commit"`
	Branch     string    `json:"branch,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	URL        string    `json:"run_url,omitempty"`
	Pipeline   string    `json:"pipeline,omitempty"`
	System     string    `json:"system,omitempty"`
	Actor      *Identity `json:"actor,omitempty"`
	Trigger    string    `json:"trigger,omitempty"`
	Change     int64     `json:"change,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	Outcome    string    `json:"outcome,omitempty"`
}

// ArtifactFact is an artifact.built.
type ArtifactFact struct {
	Digest         string    `json:"digest"`
	Purl           string    `json:"purl,omitempty"`
	Name           string    `json:"name"`
	Tags           []string  `json:"tags,omitempty"`
	Repository     string    `json:"repository"`
	Commit         string    `json:"commit"`
	RunID          string    `json:"run_id"`
	RunURL         string    `json:"run_url,omitempty"`
	Pipeline       string    `json:"pipeline,omitempty"`
	System         string    `json:"system,omitempty"`
	Builder        *Identity `json:"builder,omitempty"`
	BuiltAt        time.Time `json:"built_at,omitzero"`
	AttestationURL string    `json:"attestation_url,omitempty"`
}

// TestFact is a test.reported.
type TestFact struct {
	Repository      string        `json:"repository"`
	Commit          string        `json:"commit"`
	RunID           string        `json:"run_id,omitempty"`
	RunURL          string        `json:"run_url,omitempty"`
	Pipeline        string        `json:"pipeline,omitempty"`
	System          string        `json:"system,omitempty"`
	Suite           string        `json:"suite"`
	Outcome         string        `json:"outcome"`
	Tests           int64         `json:"tests"`
	Passed          int64         `json:"passed"`
	Failed          int64         `json:"failed"`
	Errors          int64         `json:"errors"`
	Skipped         int64         `json:"skipped"`
	DurationSeconds float64       `json:"duration_seconds,omitempty"`
	ReportFormat    string        `json:"report_format,omitempty"`
	Failures        []TestFailure `json:"failures,omitempty"`
	FinishedAt      time.Time     `json:"finished_at,omitzero"`
}

// TestFailure is one failed test as reported.
type TestFailure struct {
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

// ScanFact is a scan.reported.
type ScanFact struct {
	Repository   string    `json:"repository"`
	Commit       string    `json:"commit"`
	RunID        string    `json:"run_id,omitempty"`
	RunURL       string    `json:"run_url,omitempty"`
	Pipeline     string    `json:"pipeline,omitempty"`
	System       string    `json:"system,omitempty"`
	Tool         string    `json:"tool"`
	ToolVersion  string    `json:"tool_version,omitempty"`
	Category     string    `json:"category"`
	Findings     Findings  `json:"findings"`
	Outcome      string    `json:"outcome,omitempty"`
	ReportFormat string    `json:"report_format,omitempty"`
	ReportURL    string    `json:"report_url,omitempty"`
	Target       string    `json:"target,omitempty"`
	Digest       string    `json:"digest,omitempty"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
}

// Findings are open findings by severity.
type Findings struct {
	Critical int64 `json:"critical"`
	High     int64 `json:"high"`
	Medium   int64 `json:"medium"`
	Low      int64 `json:"low"`
	None     int64 `json:"none"`
}

// DeploymentFact is a deployment.* event: Phase is started or finished.
// Deployer is who or what deployed (in CI the pipeline's own identity);
// TriggeredBy and Trigger say who started the deploying run and how.
type DeploymentFact struct {
	Phase        string    `json:"phase"`
	DeploymentID string    `json:"deployment_id,omitempty"`
	Environment  string    `json:"environment"`
	Service      string    `json:"service"`
	Digest       string    `json:"digest,omitempty"`
	Artifact     string    `json:"artifact,omitempty"`
	Purl         string    `json:"purl,omitempty"`
	Repository   string    `json:"repository,omitempty"`
	Commit       string    `json:"commit,omitempty"`
	RunID        string    `json:"run_id,omitempty"`
	RunURL       string    `json:"run_url,omitempty"`
	Pipeline     string    `json:"pipeline,omitempty"`
	System       string    `json:"system,omitempty"`
	Deployer     *Identity `json:"deployer,omitempty"`
	TriggeredBy  *Identity `json:"triggered_by,omitempty"`
	Trigger      string    `json:"trigger,omitempty"`
	TicketKeys   []string  `json:"ticket_keys,omitempty"`
	Change       int64     `json:"change,omitempty"`
	StartedAt    time.Time `json:"started_at,omitzero"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
	Outcome      string    `json:"outcome,omitempty"`
}

// target is what the deployment says it deployed, in order of preference:
// the digest, the purl, repository@commit, the bare commit. The second
// result ranks it (lower is better).
func (d *DeploymentFact) target() (string, int) {
	switch {
	case d.Digest != "":
		return d.Digest, 0
	case d.Purl != "":
		return d.Purl, 1
	case d.Commit != "" && d.Repository != "":
		return d.Repository + "@" + d.Commit, 2
	case d.Commit != "":
		return d.Commit, 3
	}
	return "unknown", 4
}

// artifacts are the digest and the purl the deployment names, those it
// has.
func (d *DeploymentFact) artifacts() []string {
	var out []string
	for _, a := range []string{d.Digest, d.Purl} {
		if a != "" {
			out = append(out, a)
		}
	}
	return out
}

// pairKey files the started and finished facts of one deployment
// together: by deployment_id, else by the run that deployed; "" when the
// fact stands alone.
func (d *DeploymentFact) pairKey() Key {
	switch {
	case d.DeploymentID != "":
		return Key(KeyDeployment + ":" + d.Environment + "/" + d.Service + "/id:" + d.DeploymentID)
	case d.RunID != "":
		return Key(KeyDeployment + ":" + d.Environment + "/" + d.Service + "/run:" + d.Repository + "#" + d.RunID)
	}
	return ""
}

// ExceptionFact is an exception.* event: Phase is requested or granted.
type ExceptionFact struct {
	Phase       string         `json:"phase"`
	ID          string         `json:"id"`
	Control     string         `json:"control"`
	Scope       ExceptionScope `json:"scope"`
	Reason      string         `json:"reason,omitempty"`
	RequestedBy *Identity      `json:"requested_by,omitempty"`
	RequestedAt time.Time      `json:"requested_at,omitzero"`
	TicketKey   string         `json:"ticket_key,omitempty"`
	Approver    *Identity      `json:"approver,omitempty"`
	GrantedAt   time.Time      `json:"granted_at,omitzero"`
	ExpiresAt   time.Time      `json:"expires_at,omitzero"`
}

// ExceptionScope is what an exception covers; every given field must match.
type ExceptionScope struct {
	Repository  string `json:"repository,omitempty"`
	Service     string `json:"service,omitempty"`
	Environment string `json:"environment,omitempty"`
	Change      int64  `json:"change,omitempty"`
	Commit      string `json:"commit,omitempty"`
	TicketKey   string `json:"ticket_key,omitempty"`
}

// PushFact is a push to a repository's default branch, read from a raw
// webhook.received (GitHub push, GitLab Push Hook).
type PushFact struct {
	Provider      string       `json:"provider"`
	Repository    string       `json:"repository"`
	Ref           string       `json:"ref"`
	DefaultBranch string       `json:"default_branch"`
	Before        string       `json:"before,omitempty"`
	After         string       `json:"after"`
	Forced        bool         `json:"forced,omitempty"`
	Pusher        *Identity    `json:"pusher,omitempty"`
	Commits       []PushCommit `json:"commits,omitempty"`
	DeliveryID    string       `json:"delivery_id,omitempty"`
	PayloadSHA256 string       `json:"payload_sha256,omitempty"`
}

// PushCommit is one commit of a push.
type PushCommit struct {
	SHA        string    `json:"sha"`
	Message    string    `json:"message,omitempty"`
	Author     *Identity `json:"author,omitempty"`
	Timestamp  time.Time `json:"timestamp,omitzero"`
	TicketKeys []string  `json:"ticket_keys,omitempty"`
}

// commits is after and every commit of the push.
func (p *PushFact) commits() []string {
	out := []string{p.After}
	for _, c := range p.Commits {
		out = append(out, c.SHA)
	}
	return out
}

// Canonical is the fact's canonical JSON: every field but ID and Arrived.
func (f *Fact) Canonical() []byte {
	g := *f
	g.ID, g.Arrived = "", time.Time{}
	b, err := json.Marshal(&g)
	if err != nil {
		// Only strings, numbers, booleans and UTC times: cannot fail.
		panic("correlate: encoding a fact: " + err.Error())
	}
	return b
}

// ComputeID returns the SHA-256 (hex) of the fact's canonical JSON.
func (f *Fact) ComputeID() string {
	sum := sha256.Sum256(f.Canonical())
	return hex.EncodeToString(sum[:])
}

// Verify checks that the fact's ID is the hash of its content: a fact read
// back from storage was not altered.
func (f *Fact) Verify() error {
	if want := f.ComputeID(); f.ID != want {
		return fmt.Errorf("correlate: fact %s: id does not match its content (want %s)", f.ID, want)
	}
	return nil
}

// seal normalizes the keys (sorted, distinct) and sets the ID.
func (f *Fact) seal() {
	slices.Sort(f.Keys)
	f.Keys = slices.Compact(f.Keys)
	f.Time = f.Time.UTC()
	f.ID = f.ComputeID()
}

// compareFacts orders facts by time, then by ID: the deterministic order
// in which derivation folds them ("the latest fact that states it").
func compareFacts(a, b *Fact) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return strings.Compare(a.ID, b.ID)
}

// earlierArrival orders two copies of one fact by arrival: unknown (zero)
// first, then the earliest. Where copies meet, the first is kept.
func earlierArrival(a, b *Fact) int { return a.Arrived.Compare(b.Arrived) }
