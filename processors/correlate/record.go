package correlate

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Record is a change record: one merged commit of one repository (or one
// direct push to its default branch, or one deployment that matches no
// change) with everything known about it. It is derived from the facts;
// every list is sorted, so json.Marshal of a Record is its canonical form:
// equal records encode to the same bytes.
//
// Times are the facts' own (event) times, so "before" and "after" can be
// judged whatever order the evidence arrived in.
type Record struct {
	// ID is <repository>@<merge commit> for a merged pull request,
	// <repository>@<pushed head> for a direct push, and
	// unmatched:<environment>/<service>/<digest, purl or repository@commit>
	// for deployments that match no change.
	ID          string       `json:"id"`
	Repository  string       `json:"repository,omitempty"`
	Commit      string       `json:"commit,omitempty"`
	DirectPush  bool         `json:"direct_push"`
	Unmatched   bool         `json:"unmatched"`
	PullRequest *PullRequest `json:"pull_request"`
	Pushes      []Push       `json:"pushes"`
	Commits     []Commit     `json:"commits"`
	Tickets     []Ticket     `json:"tickets"`
	Runs        []Run        `json:"runs"`
	Artifacts   []Artifact   `json:"artifacts"`
	Tests       []Test       `json:"tests"`
	Scans       []Scan       `json:"scans"`
	Deployments []Deployment `json:"deployments"`
	Exceptions  []Exception  `json:"exceptions"`
}

// Commit is a commit of the change and the roles it plays: merge_commit,
// final_head (the head the pull request was merged at), head (a head it
// had), reviewed (a head a review was given on), change_commit (listed by
// the merge), pushed_head and pushed (a direct push), deployed and built
// (an unmatched deployment's commit and its artifact's).
type Commit struct {
	SHA   string   `json:"sha"`
	Roles []string `json:"roles"`
}

// PullRequest is the pull or merge request that merged the change.
type PullRequest struct {
	Number           int64      `json:"number"`
	URL              string     `json:"url,omitempty"`
	Title            string     `json:"title,omitempty"`
	Author           *Identity  `json:"author"`
	SourceBranch     string     `json:"source_branch,omitempty"`
	SourceRepository string     `json:"source_repository,omitempty"`
	TargetBranch     string     `json:"target_branch,omitempty"`
	BaseCommit       string     `json:"base_commit,omitempty"`
	OpenedAt         time.Time  `json:"opened_at,omitzero"`
	HeadCommit       string     `json:"head_commit"` // the final head: what reviews must have approved
	Heads            []Head     `json:"heads"`
	MergeCommit      string     `json:"merge_commit"`
	Method           string     `json:"method,omitempty"`
	MergedBy         *Identity  `json:"merged_by"`
	MergedAt         time.Time  `json:"merged_at,omitzero"`
	Reviews          []Review   `json:"reviews"`
	Events           []EventRef `json:"events"`
}

// Head is a head commit the pull request had, and how it is known.
type Head struct {
	Commit   string     `json:"commit"`
	Previous string     `json:"previous,omitempty"`
	Via      string     `json:"via"` // opened, updated, merged, closed
	By       *Identity  `json:"by,omitempty"`
	At       time.Time  `json:"at,omitzero"`
	Events   []EventRef `json:"events"`
}

// Review is one review. Stale: it was given on another head than the
// final one (a later push came after it). Dismissed: a later dismissal
// names it (by review id) or withdraws the reviewer's earlier approvals.
// Superseded: an approval or request for changes that the same
// reviewer's later approval or request for changes replaces (comments
// replace nothing); the reviewer's standing review is their one decisive
// review that is not superseded. Superseded is left out of the JSON when
// false, so a record whose reviews none supersedes keeps the hash it had
// before the field existed.
type Review struct {
	Reviewer    Identity   `json:"reviewer"`
	Decision    string     `json:"decision"`
	HeadCommit  string     `json:"head_commit"`
	Stale       bool       `json:"stale"`
	Dismissed   bool       `json:"dismissed"`
	Superseded  bool       `json:"superseded,omitempty"`
	At          time.Time  `json:"at,omitzero"`
	ReviewID    string     `json:"review_id,omitempty"`
	URL         string     `json:"url,omitempty"`
	DismissedBy *Identity  `json:"dismissed_by,omitempty"`
	Events      []EventRef `json:"events"`
}

// Push is a push to the default branch.
type Push struct {
	PushFact
	At     time.Time  `json:"at,omitzero"`
	Events []EventRef `json:"events"`
}

// Ticket is a change ticket of the change and how it was found: in the
// pull request's ticket_keys, title or branch, a commit message, a link
// from the ticket to the change or a commit (ticket_link), or a
// deployment's ticket_keys (deployment). A ticket known only by its key
// (its own events not seen yet) has no system, status or history.
type Ticket struct {
	Key           string         `json:"key"`
	FoundIn       []string       `json:"found_in"`
	System        string         `json:"system,omitempty"`
	Type          string         `json:"type,omitempty"`
	RawType       string         `json:"raw_type,omitempty"`
	Status        string         `json:"status,omitempty"`
	Summary       string         `json:"summary,omitempty"`
	URL           string         `json:"url,omitempty"`
	RequestedBy   *Identity      `json:"requested_by,omitempty"`
	PlannedWindow *Window        `json:"planned_window,omitempty"`
	CreatedAt     time.Time      `json:"created_at,omitzero"`
	History       []StatusChange `json:"history"`
	Approvals     []Approval     `json:"approvals"`
	Rejections    []Approval     `json:"rejections"`
}

// StatusChange is a ticket's creation or transition.
type StatusChange struct {
	Action   string     `json:"action"` // created, transitioned
	Status   string     `json:"status,omitempty"`
	Previous string     `json:"previous,omitempty"`
	By       *Identity  `json:"by,omitempty"`
	At       time.Time  `json:"at,omitzero"`
	Events   []EventRef `json:"events"`
}

// Approval is a ticket's approval or rejection by one approver.
type Approval struct {
	By      Identity   `json:"by"`
	At      time.Time  `json:"at,omitzero"`
	Group   string     `json:"group,omitempty"`
	Status  string     `json:"status,omitempty"`
	Comment string     `json:"comment,omitempty"`
	Reason  string     `json:"reason,omitempty"`
	Events  []EventRef `json:"events"`
}

// Run is one attempt of a pipeline run on a commit of the change (or the
// run that built one of its artifacts).
type Run struct {
	Repository string     `json:"repository"`
	RunID      string     `json:"run_id"`
	Attempt    int        `json:"attempt"`
	Commit     string     `json:"commit"`
	Branch     string     `json:"branch,omitempty"`
	Tag        string     `json:"tag,omitempty"`
	URL        string     `json:"run_url,omitempty"`
	Pipeline   string     `json:"pipeline,omitempty"`
	System     string     `json:"system,omitempty"`
	Trigger    string     `json:"trigger,omitempty"`
	Actor      *Identity  `json:"actor,omitempty"`
	Change     int64      `json:"change,omitempty"`
	StartedAt  time.Time  `json:"started_at,omitzero"`
	FinishedAt time.Time  `json:"finished_at,omitzero"`
	Outcome    string     `json:"outcome,omitempty"` // empty while running
	Events     []EventRef `json:"events"`
}

// Artifact is an artifact built from a commit of the change.
type Artifact struct {
	ArtifactFact
	At     time.Time  `json:"at,omitzero"`
	Events []EventRef `json:"events"`
}

// Test is a test suite's result on a commit of the change (Commit says
// which: tests may fail on an early head and pass on the merge commit).
type Test struct {
	TestFact
	At     time.Time  `json:"at,omitzero"`
	Events []EventRef `json:"events"`
}

// Scan is a security scan of a commit of the change.
type Scan struct {
	ScanFact
	At     time.Time  `json:"at,omitzero"`
	Events []EventRef `json:"events"`
}

// Deployment is one deployment (its started and finished events together)
// of the change: of one of its commits, or of an artifact built from one.
// MatchedBy says which: commit, artifact. Deployer is who or what deployed:
// in a CI run the pipeline's own identity (type service), outside CI the
// person; TriggeredBy is who started the deploying run and Trigger how
// (manual, push, ...), kept beside it (absent when not reported).
type Deployment struct {
	Environment  string     `json:"environment"`
	Service      string     `json:"service"`
	DeploymentID string     `json:"deployment_id,omitempty"`
	Digest       string     `json:"digest,omitempty"`
	Purl         string     `json:"purl,omitempty"`
	Artifact     string     `json:"artifact,omitempty"`
	Repository   string     `json:"repository,omitempty"`
	Commit       string     `json:"commit,omitempty"`
	RunID        string     `json:"run_id,omitempty"`
	RunURL       string     `json:"run_url,omitempty"`
	Pipeline     string     `json:"pipeline,omitempty"`
	System       string     `json:"system,omitempty"`
	Deployer     *Identity  `json:"deployer"`
	TriggeredBy  *Identity  `json:"triggered_by,omitempty"`
	Trigger      string     `json:"trigger,omitempty"`
	TicketKeys   []string   `json:"ticket_keys,omitempty"`
	Change       int64      `json:"change,omitempty"`
	StartedAt    time.Time  `json:"started_at,omitzero"`
	FinishedAt   time.Time  `json:"finished_at,omitzero"`
	Outcome      string     `json:"outcome,omitempty"` // empty while in progress
	MatchedBy    []string   `json:"matched_by"`
	Events       []EventRef `json:"events"`
}

// Exception is a control exception whose scope covers the change.
type Exception struct {
	ID          string         `json:"id"`
	Control     string         `json:"control"`
	Status      string         `json:"status"` // requested, granted
	Scope       ExceptionScope `json:"scope"`
	Reason      string         `json:"reason,omitempty"`
	RequestedBy *Identity      `json:"requested_by,omitempty"`
	RequestedAt time.Time      `json:"requested_at,omitzero"`
	TicketKey   string         `json:"ticket_key,omitempty"`
	Approver    *Identity      `json:"approver,omitempty"`
	GrantedAt   time.Time      `json:"granted_at,omitzero"`
	ExpiresAt   time.Time      `json:"expires_at,omitzero"`
	Events      []EventRef     `json:"events"`
}

// Canonical is the record's canonical JSON (json.Marshal: every list is
// sorted, there are no maps), the same bytes for the same record.
func (r Record) Canonical() []byte { return []byte(canonical(r)) }

// Hash is the hex SHA-256 of the record's canonical JSON: what a control
// result names as its input.
func (r Record) Hash() string {
	sum := sha256.Sum256(r.Canonical())
	return hex.EncodeToString(sum[:])
}
