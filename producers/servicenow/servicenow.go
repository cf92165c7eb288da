package servicenow

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

const (
	providerName = "servicenow"
	// SecretEnv is the environment variable that holds the webhook secret.
	SecretEnv = "EVIDENCE_SERVICENOW_SECRET"
	// SignatureHeader carries "sha256=<HMAC-SHA256 of the body>", the MAC
	// in hex or in base64 (what GlideCertificateEncryption.generateMac
	// returns).
	SignatureHeader = "X-Evidence-Signature"
	// TokenHeader carries the shared secret itself, for a sender that
	// cannot sign (a Flow Designer REST step).
	TokenHeader = "X-Evidence-Token"
)

// Options configures the provider. The zero value is usable.
type Options struct {
	// Now returns the current time, used for received_at (default
	// time.Now).
	Now func() time.Time
}

// Provider verifies and translates the change request notifications a
// ServiceNow business rule or flow posts (the body is documented in
// docs/webhooks.md and by [Body]).
type Provider struct {
	now func() time.Time
}

// New returns a ServiceNow provider.
func New(opts Options) *Provider {
	p := &Provider{now: opts.Now}
	if p.now == nil {
		p.now = time.Now
	}
	return p
}

// Name is "servicenow": deliveries are POSTed to /webhooks/servicenow.
func (p *Provider) Name() string { return providerName }

// SecretEnv names the variable of the secret.
func (p *Provider) SecretEnv() string { return SecretEnv }

// Verify checks X-Evidence-Signature (HMAC-SHA256 of the body keyed by
// secret, hex or base64) when present, else X-Evidence-Token (the secret
// itself), both in constant time.
func (p *Provider) Verify(h http.Header, body []byte, secret string) error {
	if sig := strings.TrimSpace(h.Get(SignatureHeader)); sig != "" {
		enc, ok := strings.CutPrefix(sig, "sha256=")
		got, err := decodeMAC(enc)
		if !ok || err != nil {
			return fmt.Errorf("%w: %s is not sha256=<HMAC-SHA256 in hex or base64>", webhook.ErrBadSignature, SignatureHeader)
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		if secret == "" || !hmac.Equal(got, mac.Sum(nil)) {
			return fmt.Errorf("%w: %s does not match the body signed with %s", webhook.ErrBadSignature, SignatureHeader, SecretEnv)
		}
		return nil
	}
	if tok := h.Get(TokenHeader); tok != "" {
		if secret == "" || !equalSecret(tok, secret) {
			return fmt.Errorf("%w: the %s header does not match %s", webhook.ErrBadSignature, TokenHeader, SecretEnv)
		}
		return nil
	}
	return fmt.Errorf("%w: neither %s nor %s is present (see docs/webhooks.md for the business rule that signs the body with %s)", webhook.ErrBadSignature, SignatureHeader, TokenHeader, SecretEnv)
}

// decodeMAC reads a SHA-256 MAC written in hex (64 digits) or base64 (44
// characters).
func decodeMAC(s string) ([]byte, error) {
	var b []byte
	var err error
	if len(s) == 2*sha256.Size {
		b, err = hex.DecodeString(s)
	} else {
		b, err = base64.StdEncoding.DecodeString(s)
	}
	if err == nil && len(b) != sha256.Size {
		err = fmt.Errorf("%d bytes", len(b))
	}
	return b, err
}

// equalSecret compares two secrets in constant time, lengths included.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// Body is the JSON a ServiceNow business rule or flow posts for a change
// request (docs/webhooks.md). Timestamps are GlideDateTime values
// ("2025-03-03 17:00:00", UTC, what getValue returns) or RFC 3339.
type Body struct {
	// Event names the notification for the raw record (default
	// "<table>.<operation>").
	Event string `json:"event"`
	// Operation is current.operation(): insert or update.
	Operation string `json:"operation"`
	// Table must be change_request; other tables are ignored.
	Table  string `json:"table"`
	SysID  string `json:"sys_id"`
	Number string `json:"number"`
	// Type is normal, standard or emergency.
	Type string `json:"type"`
	// State and PreviousState are labels (Authorize) or the numbers of
	// the default state model (-3), as strings or numbers.
	State            json.RawMessage `json:"state"`
	PreviousState    json.RawMessage `json:"previous_state"`
	Approval         string          `json:"approval"`
	PreviousApproval string          `json:"previous_approval"`
	Approvers        []Approver      `json:"approvers"`
	RequestedBy      *User           `json:"requested_by"`
	StartDate        string          `json:"start_date"`
	EndDate          string          `json:"end_date"`
	ShortDescription string          `json:"short_description"`
	SysCreatedOn     string          `json:"sys_created_on"`
	SysUpdatedOn     string          `json:"sys_updated_on"`
	SysUpdatedBy     string          `json:"sys_updated_by"`
	// Instance is the instance's address (https://acme.service-now.com):
	// the events' source.
	Instance string `json:"instance"`
	Links    *Links `json:"links"`
}

// User is a sys_user.
type User struct {
	UserName string `json:"user_name"`
	Name     string `json:"name"`
	Email    string `json:"email"`
}

// Approver is one sysapproval_approver record of the change.
type Approver struct {
	User
	// State is the approval's state: requested, approved, rejected, ...
	State        string `json:"state"`
	SysUpdatedOn string `json:"sys_updated_on"`
	// Group is the approval group (CAB) the approver acted for.
	Group    string `json:"group"`
	Comments string `json:"comments"`
}

// Links is what the change says it covers.
type Links struct {
	Repositories []string `json:"repositories"`
	Commits      []string `json:"commits"`
	Changes      []struct {
		Repository string `json:"repository"`
		Number     int64  `json:"number"`
		URL        string `json:"url"`
	} `json:"changes"`
}

// stateLabels are the states of the default change_request state model
// and the task states change_request inherits.
var stateLabels = map[int]string{
	-5: "New", -4: "Assess", -3: "Authorize", -2: "Scheduled", -1: "Implement", 0: "Review",
	1: "Open", 2: "Work in Progress", 3: "Closed", 4: "Canceled", 7: "Closed Skipped",
}

// stateLabel reads a state given as a label or as a number (a JSON number
// or a string of digits).
func stateLabel(field string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			return "", webhook.FieldError(field, "must be a state label or number")
		}
		s = n.String()
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return "", nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		label, ok := stateLabels[n]
		if !ok {
			return "", webhook.FieldError(field, "%d is not a state of the default change model", n)
		}
		return label, nil
	}
	if strings.ContainsAny(s, "0123456789") && strings.Trim(s, "+-.0123456789eE") == "" {
		return "", webhook.FieldError(field, "%q is not a state of the default change model", s)
	}
	for _, label := range stateLabels {
		if strings.EqualFold(label, s) {
			return label, nil
		}
	}
	return s, nil
}

type identity struct {
	Login string `json:"login"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"`
}

func ident(u *User) *identity {
	if u == nil || strings.TrimSpace(u.UserName) == "" {
		return nil
	}
	id := &identity{Login: strings.TrimSpace(u.UserName), Name: u.Name, Type: "user"}
	if id.Login == "system" {
		// The platform itself (a workflow, a scheduled job, an approval rule).
		id.Type = "service"
	}
	if strings.Contains(u.Email, "@") {
		id.Email = u.Email
	}
	return id
}

type window struct {
	Start string `json:"start,omitempty"`
	End   string `json:"end,omitempty"`
}

type links struct {
	Repositories []string    `json:"repositories,omitempty"`
	Commits      []string    `json:"commits,omitempty"`
	Changes      []changeRef `json:"changes,omitempty"`
}

type changeRef struct {
	Repository string `json:"repository"`
	Number     int64  `json:"number"`
	URL        string `json:"url,omitempty"`
}

// ticketData holds the fields of the ticket.* types; each translation sets
// those of its type.
type ticketData struct {
	Key            string    `json:"key"`
	System         string    `json:"system"`
	TicketType     string    `json:"ticket_type,omitempty"`
	RawType        string    `json:"raw_type,omitempty"`
	Status         string    `json:"status,omitempty"`
	Summary        string    `json:"summary,omitempty"`
	URL            string    `json:"url,omitempty"`
	RequestedBy    *identity `json:"requested_by,omitempty"`
	Links          *links    `json:"links,omitempty"`
	PlannedWindow  *window   `json:"planned_window,omitempty"`
	CreatedAt      string    `json:"created_at,omitempty"`
	PreviousStatus string    `json:"previous_status,omitempty"`
	TransitionedBy *identity `json:"transitioned_by,omitempty"`
	TransitionedAt string    `json:"transitioned_at,omitempty"`
	Approver       *identity `json:"approver,omitempty"`
	ApprovedAt     string    `json:"approved_at,omitempty"`
	RejectedAt     string    `json:"rejected_at,omitempty"`
	ApprovalGroup  string    `json:"approval_group,omitempty"`
	Comment        string    `json:"comment,omitempty"`
	Reason         string    `json:"reason,omitempty"`
}

// approvalValue normalizes an approval value: lower case, spaces for
// underscores (not_requested and "not requested" are the same).
func approvalValue(s string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", " ")
}

// Translate turns one delivery into events. It must only be called for a
// delivery that Verify accepted: the raw event records signature_verified.
func (p *Provider) Translate(h http.Header, body []byte) ([]*ce.Event, error) {
	var b Body
	if err := webhook.Decode(body, &b); err != nil {
		return nil, err
	}
	table := strings.TrimSpace(b.Table)
	switch {
	case table == "":
		return nil, webhook.FieldError("table", "missing: not a change request notification (see docs/webhooks.md)")
	case table != "change_request":
		return nil, &webhook.Ignored{Reason: "table " + table + " holds no change tickets"}
	}
	key := strings.TrimSpace(b.Number)
	if key == "" || strings.ContainsAny(key, " \t\n\f\r") {
		return nil, webhook.FieldError("number", "missing or not a change number: %q", b.Number)
	}
	instance := strings.TrimRight(strings.TrimSpace(b.Instance), "/")
	if webhook.WebURL(instance) == "" {
		return nil, webhook.FieldError("instance", "missing or not the instance's address (https://<name>.service-now.com): %q", b.Instance)
	}
	source := lowerHost(instance)
	state, err := stateLabel("state", b.State)
	if err != nil {
		return nil, err
	}
	previous, err := stateLabel("previous_state", b.PreviousState)
	if err != nil {
		return nil, err
	}
	updated, err := timestamp("sys_updated_on", b.SysUpdatedOn)
	if err != nil {
		return nil, err
	}
	created, err := timestamp("sys_created_on", b.SysCreatedOn)
	if err != nil {
		return nil, err
	}
	start, err := timestamp("start_date", b.StartDate)
	if err != nil {
		return nil, err
	}
	end, err := timestamp("end_date", b.EndDate)
	if err != nil {
		return nil, err
	}
	lk, err := b.Links.normalize()
	if err != nil {
		return nil, err
	}
	base := ticketData{
		Key: key, System: "servicenow", Status: state, Summary: b.ShortDescription,
		RequestedBy: ident(b.RequestedBy), Links: lk,
	}
	if t := strings.ToLower(strings.TrimSpace(b.Type)); t == "normal" || t == "standard" || t == "emergency" {
		base.TicketType = t
	}
	base.RawType = strings.TrimSpace(b.Type)
	if sys := strings.TrimSpace(b.SysID); sys != "" {
		base.URL = webhook.WebURL(source + "/change_request.do?sys_id=" + url.QueryEscape(sys))
	}
	if !start.IsZero() || !end.IsZero() {
		base.PlannedWindow = &window{Start: webhook.FormatTime(start), End: webhook.FormatTime(end)}
	}
	operation := strings.ToLower(strings.TrimSpace(b.Operation))
	event := strings.TrimSpace(b.Event)
	if event == "" {
		op := operation
		if op == "" {
			op = "update"
		}
		event = table + "." + op
	}
	// ServiceNow gives no delivery id: a retry sends the same body, whose
	// SHA-256 keys the events.
	d := webhook.NewDelivery(providerName, event, h, keptHeaders, body, p.now())
	var events []*ce.Event
	add := func(suffix, typ string, t time.Time, data ticketData) error {
		e, err := d.Event(source, suffix, typ, key, t, data)
		if err == nil {
			events = append(events, e)
		}
		return err
	}
	factTime := webhook.FirstTime(updated, created, d.ReceivedAt)

	isCreated := operation == "insert" ||
		(operation == "" && previous == "" && !created.IsZero() && created.Equal(updated))
	if isCreated {
		c := base
		c.CreatedAt = webhook.FormatTime(webhook.FirstTime(created, updated))
		if err := add("ticket.created", webhook.TypeTicketCreated, webhook.FirstTime(created, factTime), c); err != nil {
			return nil, err
		}
	}
	if previous != "" && state != "" && previous != state {
		c := base
		c.PreviousStatus = previous
		c.TransitionedBy = ident(&User{UserName: b.SysUpdatedBy})
		c.TransitionedAt = webhook.FormatTime(factTime)
		if err := add("ticket.transitioned", webhook.TypeTicketTransitioned, factTime, c); err != nil {
			return nil, err
		}
	}
	approval := approvalValue(b.Approval)
	if (approval == "approved" || approval == "rejected") && approvalValue(b.PreviousApproval) != approval {
		seen := map[string]bool{}
		for i, a := range b.Approvers {
			if approvalValue(a.State) != approval {
				continue
			}
			field := fmt.Sprintf("approvers[%d]", i)
			who := ident(&a.User)
			if who == nil {
				return nil, webhook.FieldError(field+".user_name", "missing: the approver is required")
			}
			when, err := timestamp(field+".sys_updated_on", a.SysUpdatedOn)
			if err != nil {
				return nil, err
			}
			when = webhook.FirstTime(when, factTime)
			// One event per approval: the approver's login names it, with
			// the approval's index when one person approved twice (for two
			// groups).
			suffix := who.Login
			if seen[suffix] {
				suffix += "/" + strconv.Itoa(i)
			}
			seen[who.Login] = true
			c := base
			c.Approver, c.ApprovalGroup = who, a.Group
			if approval == "approved" {
				c.ApprovedAt, c.Comment = webhook.FormatTime(when), a.Comments
				err = add("ticket.approved/"+suffix, webhook.TypeTicketApproved, when, c)
			} else {
				c.RejectedAt, c.Reason = webhook.FormatTime(when), a.Comments
				err = add("ticket.rejected/"+suffix, webhook.TypeTicketRejected, when, c)
			}
			if err != nil {
				return nil, err
			}
		}
	}
	if len(events) == 0 {
		return nil, &webhook.Ignored{Reason: "change request update without creation, state change or approval"}
	}
	raw, err := d.Raw(source, key, events[0].Time)
	if err != nil {
		return nil, err
	}
	return append(events, raw), nil
}

// normalize checks the links against the catalog, naming the field at
// fault.
func (l *Links) normalize() (*links, error) {
	if l == nil {
		return nil, nil
	}
	out := &links{}
	if len(l.Repositories) > 100 || len(l.Commits) > 1000 || len(l.Changes) > 100 {
		return nil, webhook.FieldError("links", "too many entries (at most 100 repositories, 1000 commits, 100 changes)")
	}
	for i, r := range l.Repositories {
		repo, err := webhook.Repository(fmt.Sprintf("links.repositories[%d]", i), r)
		if err != nil {
			return nil, err
		}
		out.Repositories = append(out.Repositories, repo)
	}
	for i, c := range l.Commits {
		s, err := webhook.CommitSHA(fmt.Sprintf("links.commits[%d]", i), c)
		if err != nil {
			return nil, err
		}
		if s == "" {
			return nil, webhook.FieldError(fmt.Sprintf("links.commits[%d]", i), "empty")
		}
		out.Commits = append(out.Commits, s)
	}
	for i, c := range l.Changes {
		field := fmt.Sprintf("links.changes[%d]", i)
		repo, err := webhook.Repository(field+".repository", c.Repository)
		if err != nil {
			return nil, err
		}
		if c.Number < 1 {
			return nil, webhook.FieldError(field+".number", "must be a pull or merge request number ≥ 1")
		}
		out.Changes = append(out.Changes, changeRef{Repository: repo, Number: c.Number, URL: webhook.WebURL(c.URL)})
	}
	if len(out.Repositories) == 0 && len(out.Commits) == 0 && len(out.Changes) == 0 {
		return nil, nil
	}
	return out, nil
}

// lowerHost lower-cases the scheme and host of an http(s) URL.
func lowerHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Scheme, p.Host = strings.ToLower(p.Scheme), strings.ToLower(p.Host)
	return strings.TrimRight(p.String(), "/")
}

// Interface guard.
var _ webhook.Provider = (*Provider)(nil)
