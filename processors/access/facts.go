package access

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Catalog event types of the access contract (docs/events.md), and the
// ticket and exception types the access record also reads.
const (
	TypeProtectionChanged  = "dev.evidencepipeline.access.protection.changed.v1"
	TypeGrantChanged       = "dev.evidencepipeline.access.grant.changed.v1"
	TypeBypass             = "dev.evidencepipeline.access.bypass.v1"
	TypeReviewed           = "dev.evidencepipeline.access.reviewed.v1"
	TypeRepositoryChanged  = "dev.evidencepipeline.access.repository.changed.v1"
	TypeSnapshot           = "dev.evidencepipeline.access.snapshot.v1"
	TypeTicketApproved     = "dev.evidencepipeline.ticket.approved.v1"
	TypeTicketRejected     = "dev.evidencepipeline.ticket.rejected.v1"
	TypeExceptionGranted   = "dev.evidencepipeline.exception.granted.v1"
	TypeExceptionRequested = "dev.evidencepipeline.exception.requested.v1"
)

// Kind is what a fact states.
type Kind string

// The kinds of facts. Their rank orders facts of the same instant: a
// snapshot first (it resets), then what changes the state, then what is
// judged against it.
const (
	KindSnapshot   Kind = "snapshot"
	KindProtection Kind = "protection"
	KindGrant      Kind = "grant"
	KindRepository Kind = "repository"
	KindBypass     Kind = "bypass"
	KindReview     Kind = "review"
	KindTicket     Kind = "ticket"
	KindException  Kind = "exception"
)

var kindRank = map[Kind]int{KindSnapshot: 0, KindProtection: 1, KindGrant: 2, KindRepository: 3, KindBypass: 4, KindReview: 5, KindTicket: 6, KindException: 7}

// EventRef names the CloudEvent behind a fact.
type EventRef struct {
	Source string `json:"source"`
	ID     string `json:"id"`
}

// String is "<source> <id>", as control results name their evidence.
func (r EventRef) String() string { return r.Source + " " + r.ID }

// Identity is the catalog's identity object.
type Identity struct {
	Login string `json:"login,omitempty"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"` // user, bot, service
}

// Principal is who a grant is given to.
type Principal struct {
	Kind  string `json:"kind"` // user, team, deploy_key
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Settings are the protection settings of a rule.
type Settings struct {
	RequiredApprovingReviewCount int      `json:"required_approving_review_count"`
	DismissStaleReviews          bool     `json:"dismiss_stale_reviews"`
	RequireCodeOwnerReviews      bool     `json:"require_code_owner_reviews"`
	EnforceAdmins                bool     `json:"enforce_admins"`
	AllowForcePushes             bool     `json:"allow_force_pushes"`
	AllowDeletions               bool     `json:"allow_deletions"`
	BypassActors                 []string `json:"bypass_actors"`
}

// ProtectionFact is an access.protection.changed event.
type ProtectionFact struct {
	Action        string    `json:"action"` // created, edited, deleted, snapshot
	Target        string    `json:"target"`
	RuleKind      string    `json:"rule_kind"`
	RuleID        string    `json:"rule_id"`
	Actor         *Identity `json:"actor,omitempty"`
	Settings      *Settings `json:"settings,omitempty"`
	ChangedFields []string  `json:"changed_fields,omitempty"`
	Ticket        string    `json:"ticket,omitempty"` // optional extension of the contract
}

// GrantFact is an access.grant.changed event.
type GrantFact struct {
	Action             string    `json:"action"` // granted, changed, removed, snapshot
	Principal          Principal `json:"principal"`
	Permission         string    `json:"permission"`
	PlatformPermission string    `json:"platform_permission,omitempty"`
	PreviousPermission string    `json:"previous_permission,omitempty"`
	Actor              *Identity `json:"actor,omitempty"`
	Approver           *Identity `json:"approver,omitempty"`
	Ticket             string    `json:"ticket,omitempty"`
}

// BypassFact is an access.bypass event.
type BypassFact struct {
	Branch string   `json:"branch"`
	Kind   string   `json:"kind"` // force_push, direct_push, rule_bypass
	Actor  Identity `json:"actor"`
	Before string   `json:"before,omitempty"`
	After  string   `json:"after,omitempty"`
}

// ReviewFact is an access.reviewed event.
type ReviewFact struct {
	Reviewer       Identity  `json:"reviewer"`
	PeriodFrom     time.Time `json:"period_from"`
	PeriodTo       time.Time `json:"period_to"`
	Outcome        string    `json:"outcome"` // approved, changes_required
	Notes          string    `json:"notes,omitempty"`
	GrantsReviewed *int      `json:"grants_reviewed,omitempty"`
}

// RepositoryFact is an access.repository.changed event.
type RepositoryFact struct {
	Action string    `json:"action"`
	Actor  *Identity `json:"actor,omitempty"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
}

// SnapshotGrant is one grant of a snapshot.
type SnapshotGrant struct {
	Principal          Principal `json:"principal"`
	Permission         string    `json:"permission"`
	PlatformPermission string    `json:"platform_permission,omitempty"`
}

// SnapshotProtection is one protection rule of a snapshot.
type SnapshotProtection struct {
	RuleKind string   `json:"rule_kind"`
	RuleID   string   `json:"rule_id"`
	Target   string   `json:"target"`
	Settings Settings `json:"settings"`
}

// SnapshotFact is an access.snapshot event: the whole state at its time.
type SnapshotFact struct {
	Protections []SnapshotProtection `json:"protections"`
	Grants      []SnapshotGrant      `json:"grants"`
}

// TicketFact is a ticket approval or rejection.
type TicketFact struct {
	Key   string   `json:"key"`
	Phase string   `json:"phase"` // approved, rejected
	By    Identity `json:"by"`
}

// ExceptionFact is an exception requested or granted for an AC control
// scoped to a repository.
type ExceptionFact struct {
	ID          string    `json:"id"`
	Control     string    `json:"control"`
	Phase       string    `json:"phase"` // requested, granted
	Reason      string    `json:"reason,omitempty"`
	RequestedBy *Identity `json:"requested_by,omitempty"`
	Approver    *Identity `json:"approver,omitempty"`
	GrantedAt   time.Time `json:"granted_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
}

// Fact is what one event states about one subject.
type Fact struct {
	ID         string          `json:"id"` // hex SHA-256 of the canonical JSON with ID empty
	Kind       Kind            `json:"kind"`
	Subject    string          `json:"subject"` // repository, org:<host>/<org>, or ticket:<KEY>
	Time       time.Time       `json:"time"`
	Event      EventRef        `json:"event"`
	Provider   string          `json:"provider,omitempty"`
	Protection *ProtectionFact `json:"protection,omitempty"`
	Grant      *GrantFact      `json:"grant,omitempty"`
	Bypass     *BypassFact     `json:"bypass,omitempty"`
	Review     *ReviewFact     `json:"review,omitempty"`
	Repository *RepositoryFact `json:"repository,omitempty"`
	Snapshot   *SnapshotFact   `json:"snapshot,omitempty"`
	Ticket     *TicketFact     `json:"ticket,omitempty"`
	Exception  *ExceptionFact  `json:"exception,omitempty"`
}

// seal sets the fact's ID from its content.
func (f *Fact) seal() {
	f.Time = f.Time.UTC()
	f.ID = ""
	b, _ := json.Marshal(f)
	sum := sha256.Sum256(b)
	f.ID = hex.EncodeToString(sum[:])
}

// Verify reports whether the fact's ID matches its content.
func (f Fact) Verify() bool {
	id := f.ID
	f.seal()
	return f.ID == id
}
