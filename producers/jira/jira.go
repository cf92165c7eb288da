package jira

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

const (
	providerName = "jira"
	// SecretEnv is the environment variable that holds the webhook secret.
	SecretEnv = "EVIDENCE_JIRA_SECRET"
	// SignatureHeader carries "sha256=<hex HMAC-SHA256 of the body>" when
	// the Jira webhook has a secret.
	SignatureHeader = "X-Hub-Signature"
	// TokenHeader carries the shared secret itself, for senders that cannot
	// sign (Jira Server and Data Center webhooks behind a proxy, Automation
	// for Jira "Send web request").
	TokenHeader = "X-Evidence-Token"
)

// Options configures the provider. The zero value is usable.
type Options struct {
	// Now returns the current time, used for received_at (default
	// time.Now).
	Now func() time.Time
	// BaseURL is the Jira site (https://acme.atlassian.net, or
	// https://jira.acme.example/jira for a server with a context path):
	// the events' source and the base of ticket links. Default: read from
	// the issue's self link (everything before /rest/api/).
	BaseURL string
	// ChangeIssueTypes are the issue types that are change tickets
	// (default "Change", "Change Request"); other issues are ignored.
	ChangeIssueTypes []string
	// ApprovedStatuses are the statuses whose entry approves the ticket
	// (default "Approved").
	ApprovedStatuses []string
	// RejectedStatuses are the statuses whose entry rejects the ticket
	// (default "Rejected", "Declined").
	RejectedStatuses []string
	// TypeField says where the change type (normal, standard, emergency)
	// is: "" or "labels" reads the labels emergency-change,
	// standard-change and normal-change; a field id (customfield_10010)
	// reads that field (a text, a select option or a list of them; a value
	// containing "emergency", "standard" or "normal"). Without either, the
	// ticket is normal, the strictest type.
	TypeField string
	// LinksField is an optional field id (customfield_10050) whose value
	// (text or a list of texts) lists what the ticket covers: repository,
	// merge request, pull request and commit addresses, and commit SHAs.
	LinksField string
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if len(o.ChangeIssueTypes) == 0 {
		o.ChangeIssueTypes = []string{"Change", "Change Request"}
	}
	if len(o.ApprovedStatuses) == 0 {
		o.ApprovedStatuses = []string{"Approved"}
	}
	if len(o.RejectedStatuses) == 0 {
		o.RejectedStatuses = []string{"Rejected", "Declined"}
	}
	o.BaseURL = strings.TrimRight(strings.TrimSpace(o.BaseURL), "/")
	return o
}

// Validate checks the options, naming the field at fault.
func (o Options) Validate() error {
	o = o.withDefaults()
	if o.BaseURL != "" && webhook.WebURL(o.BaseURL) == "" {
		return fmt.Errorf("jira: BaseURL %q is not an http(s) URL", o.BaseURL)
	}
	for _, s := range o.ApprovedStatuses {
		if contains(o.RejectedStatuses, s) {
			return fmt.Errorf("jira: status %q is in both ApprovedStatuses and RejectedStatuses", s)
		}
	}
	return nil
}

// Provider verifies and translates Jira webhook deliveries.
type Provider struct {
	opts Options
}

// New returns a Jira provider.
func New(opts Options) *Provider { return &Provider{opts: opts.withDefaults()} }

// Name is "jira": deliveries are POSTed to /webhooks/jira.
func (p *Provider) Name() string { return providerName }

// SecretEnv names the variable of the secret.
func (p *Provider) SecretEnv() string { return SecretEnv }

// Verify checks X-Hub-Signature (HMAC-SHA256 of the body keyed by
// secret) when present, else X-Evidence-Token (the secret itself), both in
// constant time.
func (p *Provider) Verify(h http.Header, body []byte, secret string) error {
	if sig := strings.TrimSpace(h.Get(SignatureHeader)); sig != "" {
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		got, err := hex.DecodeString(hexSig)
		if !ok || err != nil || len(got) != sha256.Size {
			return fmt.Errorf("%w: %s is not sha256=<64 hex digits>", webhook.ErrBadSignature, SignatureHeader)
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
	return fmt.Errorf("%w: neither %s nor %s is present (give the Jira webhook the secret of %s)", webhook.ErrBadSignature, SignatureHeader, TokenHeader, SecretEnv)
}

// equalSecret compares two secrets in constant time, lengths included.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

type jiraUser struct {
	Self         string `json:"self"`
	AccountID    string `json:"accountId"`
	AccountType  string `json:"accountType"`
	Name         string `json:"name"`
	Key          string `json:"key"`
	DisplayName  string `json:"displayName"`
	EmailAddress string `json:"emailAddress"`
}

type payload struct {
	WebhookEvent string    `json:"webhookEvent"`
	Timestamp    *int64    `json:"timestamp"`
	User         *jiraUser `json:"user"`
	Issue        *struct {
		Self   string                     `json:"self"`
		Key    string                     `json:"key"`
		Fields map[string]json.RawMessage `json:"fields"`
	} `json:"issue"`
	Changelog *struct {
		Items []struct {
			Field      string `json:"field"`
			FieldID    string `json:"fieldId"`
			FromString string `json:"fromString"`
			ToString   string `json:"toString"`
		} `json:"items"`
	} `json:"changelog"`
}

type identity struct {
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"`
}

// ident is the identity of a Jira user: login is the accountId (Cloud) or
// the user name (Server, Data Center; id is then the user key).
func ident(u *jiraUser) *identity {
	if u == nil {
		return nil
	}
	id := &identity{Login: strings.TrimSpace(u.AccountID), Name: u.DisplayName, Type: "user"}
	if id.Login == "" {
		id.Login = strings.TrimSpace(u.Name)
		if u.Key != "" && u.Key != id.Login {
			id.ID = u.Key
		}
	}
	if id.Login == "" {
		id.Login = strings.TrimSpace(u.Key)
	}
	if id.Login == "" {
		return nil
	}
	if strings.Contains(u.EmailAddress, "@") {
		id.Email = u.EmailAddress
	}
	if u.AccountType == "app" {
		id.Type = "bot"
	}
	return id
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
	CreatedAt      string    `json:"created_at,omitempty"`
	PreviousStatus string    `json:"previous_status,omitempty"`
	TransitionedBy *identity `json:"transitioned_by,omitempty"`
	TransitionedAt string    `json:"transitioned_at,omitempty"`
	Approver       *identity `json:"approver,omitempty"`
	ApprovedAt     string    `json:"approved_at,omitempty"`
	RejectedAt     string    `json:"rejected_at,omitempty"`
}

// Translate turns one delivery into events. It must only be called for a
// delivery that Verify accepted: the raw event records signature_verified.
func (p *Provider) Translate(h http.Header, body []byte) ([]*ce.Event, error) {
	var m payload
	if err := webhook.Decode(body, &m); err != nil {
		return nil, err
	}
	event := strings.TrimSpace(m.WebhookEvent)
	switch event {
	case "":
		return nil, webhook.FieldError("webhookEvent", "missing: not a Jira webhook payload")
	case "jira:issue_created", "jira:issue_updated":
	default:
		return nil, &webhook.Ignored{Reason: "Jira " + event + " carries no change ticket evidence"}
	}
	if m.Issue == nil {
		return nil, webhook.FieldError("issue", "missing")
	}
	key := strings.TrimSpace(m.Issue.Key)
	if key == "" || strings.ContainsAny(key, " \t\n\f\r") {
		return nil, webhook.FieldError("issue.key", "missing or not an issue key: %q", m.Issue.Key)
	}
	f := fields(m.Issue.Fields)
	var issueType struct {
		Name string `json:"name"`
	}
	if err := f.get("issuetype", &issueType); err != nil {
		return nil, err
	}
	if !contains(p.opts.ChangeIssueTypes, issueType.Name) {
		return nil, &webhook.Ignored{Reason: fmt.Sprintf("issue type %q is not a change ticket type", issueType.Name)}
	}
	// Which update is it? Only status changes are evidence.
	var from, to string
	transition := false
	if event == "jira:issue_updated" {
		if m.Changelog != nil {
			for _, it := range m.Changelog.Items {
				if it.FieldID == "status" || (it.FieldID == "" && strings.EqualFold(it.Field, "status")) {
					from, to, transition = it.FromString, it.ToString, true
				}
			}
		}
		if !transition {
			return nil, &webhook.Ignored{Reason: "issue update without a status change"}
		}
	}
	source, err := p.site(m.Issue.Self)
	if err != nil {
		return nil, err
	}
	var status struct {
		Name string `json:"name"`
	}
	if err := f.get("status", &status); err != nil {
		return nil, err
	}
	var summary, created string
	if err := f.get("summary", &summary); err != nil {
		return nil, err
	}
	if err := f.get("created", &created); err != nil {
		return nil, err
	}
	createdAt, err := timestamp("issue.fields.created", created)
	if err != nil {
		return nil, err
	}
	var reporter, creator *jiraUser
	if err := f.get("reporter", &reporter); err != nil {
		return nil, err
	}
	if err := f.get("creator", &creator); err != nil {
		return nil, err
	}
	ticketType, err := p.ticketType(f)
	if err != nil {
		return nil, err
	}
	at, err := eventTime(m.Timestamp)
	if err != nil {
		return nil, err
	}
	base := ticketData{
		Key: key, System: "jira", TicketType: ticketType, RawType: issueType.Name, Status: status.Name,
		Summary: summary, URL: webhook.WebURL(source + "/browse/" + url.PathEscape(key)),
		RequestedBy: firstIdent(reporter, creator), Links: p.links(f),
	}
	d := newDelivery(h, body, event, p.opts.Now())
	var events []*ce.Event
	add := func(suffix, typ string, t time.Time, data ticketData) error {
		e, err := d.Event(source, suffix, typ, key, t, data)
		if err == nil {
			events = append(events, e)
		}
		return err
	}
	var factTime time.Time
	if !transition {
		factTime = webhook.FirstTime(createdAt, at, d.ReceivedAt)
		c := base
		c.CreatedAt = webhook.FormatTime(createdAt)
		if err := add("ticket.created", webhook.TypeTicketCreated, factTime, c); err != nil {
			return nil, err
		}
	} else {
		// The moment of the transition is the webhook's timestamp; without
		// one, the time it was received.
		factTime = webhook.FirstTime(at, d.ReceivedAt)
		if strings.TrimSpace(to) == "" {
			to = status.Name
		}
		if strings.TrimSpace(to) == "" {
			return nil, webhook.FieldError("changelog.items.toString", "missing: the new status is required")
		}
		actor := ident(m.User)
		c := base
		c.Status, c.PreviousStatus, c.TransitionedBy, c.TransitionedAt = to, from, actor, webhook.FormatTime(factTime)
		if err := add("ticket.transitioned", webhook.TypeTicketTransitioned, factTime, c); err != nil {
			return nil, err
		}
		approved, rejected := contains(p.opts.ApprovedStatuses, to), contains(p.opts.RejectedStatuses, to)
		if (approved || rejected) && actor == nil {
			return nil, webhook.FieldError("user", "missing: the approver (the user who made the transition) is required")
		}
		switch {
		case approved:
			a := base
			a.Status, a.Approver, a.ApprovedAt = to, actor, webhook.FormatTime(factTime)
			if err := add("ticket.approved", webhook.TypeTicketApproved, factTime, a); err != nil {
				return nil, err
			}
		case rejected:
			r := base
			r.Status, r.Approver, r.RejectedAt = to, actor, webhook.FormatTime(factTime)
			if err := add("ticket.rejected", webhook.TypeTicketRejected, factTime, r); err != nil {
				return nil, err
			}
		}
	}
	raw, err := d.Raw(source, key, factTime)
	if err != nil {
		return nil, err
	}
	return append(events, raw), nil
}

// site is the Jira site: Options.BaseURL, else the issue's self link up to
// /rest/.
func (p *Provider) site(self string) (string, error) {
	if p.opts.BaseURL != "" {
		if webhook.WebURL(p.opts.BaseURL) == "" {
			return "", fmt.Errorf("jira: Options.BaseURL %q is not an http(s) URL", p.opts.BaseURL)
		}
		return lowerHost(p.opts.BaseURL), nil
	}
	i := strings.Index(self, "/rest/")
	if i < 0 || webhook.WebURL(self[:i]) == "" {
		return "", webhook.FieldError("issue.self", "%q does not name the Jira site (set the site's address in the Jira provider's BaseURL)", self)
	}
	return lowerHost(self[:i]), nil
}

// lowerHost lower-cases the scheme and host of an http(s) URL, keeping a
// context path as it is.
func lowerHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Scheme, p.Host = strings.ToLower(p.Scheme), strings.ToLower(p.Host)
	return strings.TrimRight(p.String(), "/")
}

// eventTime is the webhook's timestamp (Unix milliseconds).
func eventTime(ms *int64) (time.Time, error) {
	if ms == nil || *ms == 0 {
		return time.Time{}, nil
	}
	t := time.UnixMilli(*ms).UTC()
	if t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, webhook.FieldError("timestamp", "%d is out of range", *ms)
	}
	return t, nil
}

// ticketType reads the change type from the labels or from TypeField.
func (p *Provider) ticketType(f fields) (string, error) {
	if p.opts.TypeField == "" || strings.EqualFold(p.opts.TypeField, "labels") {
		var labels []string
		if err := f.get("labels", &labels); err != nil {
			return "", err
		}
		for _, want := range []string{"emergency", "standard", "normal"} {
			for _, l := range labels {
				if strings.EqualFold(l, want+"-change") {
					return want, nil
				}
			}
		}
		return "normal", nil
	}
	for _, v := range f.texts(p.opts.TypeField) {
		v = strings.ToLower(v)
		for _, t := range []string{"emergency", "standard", "normal"} {
			if strings.Contains(v, t) {
				return t, nil
			}
		}
	}
	return "normal", nil
}

// links reads LinksField; a value of another shape is skipped.
func (p *Provider) links(f fields) *links {
	if p.opts.LinksField == "" {
		return nil
	}
	return parseLinks(f.texts(p.opts.LinksField)...)
}

// fields are an issue's fields, decoded one at a time so that an error names
// the field.
type fields map[string]json.RawMessage

// get decodes one field into v; an absent or null field leaves v as is.
func (f fields) get(name string, v any) error {
	raw, ok := f[name]
	if !ok {
		return nil
	}
	if err := json.Unmarshal(raw, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			path := "issue.fields." + name
			if te.Field != "" {
				path += "." + te.Field
			}
			return webhook.FieldError(path, "must be %s, got a JSON %s", webhook.JSONKind(te.Type), te.Value)
		}
		return webhook.FieldError("issue.fields."+name, "%v", err)
	}
	return nil
}

// texts reads a field holding text: a string, a select option ({"value"}
// or {"name"}), or a list of them. Other shapes give nothing.
func (f fields) texts(name string) []string {
	raw, ok := f[name]
	if !ok {
		return nil
	}
	var one any
	if json.Unmarshal(raw, &one) != nil {
		return nil
	}
	var out []string
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			for _, k := range []string{"value", "name"} {
				if s, ok := x[k].(string); ok {
					out = append(out, s)
					return
				}
			}
		case []any:
			if depth > 0 {
				return
			}
			for _, e := range x {
				walk(e, depth+1)
			}
		}
	}
	walk(one, 0)
	return out
}

func firstIdent(us ...*jiraUser) *identity {
	for _, u := range us {
		if id := ident(u); id != nil {
			return id
		}
	}
	return nil
}

// contains reports whether list holds s, ignoring case and surrounding
// space.
func contains(list []string, s string) bool {
	s = strings.TrimSpace(s)
	for _, l := range list {
		if strings.EqualFold(strings.TrimSpace(l), s) {
			return true
		}
	}
	return false
}

// Interface guard.
var _ webhook.Provider = (*Provider)(nil)
