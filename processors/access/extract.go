package access

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// Types lists the event types Extract reads, sorted.
func Types() []string {
	out := []string{TypeProtectionChanged, TypeGrantChanged, TypeBypass, TypeReviewed, TypeRepositoryChanged,
		TypeSnapshot, TypeTicketApproved, TypeTicketRejected, TypeExceptionGranted, TypeExceptionRequested}
	slices.Sort(out)
	return out
}

// Extract returns the access fact of one event, or nil for an event the
// access record does not read (another type; an exception for a control
// other than AC-*, or not scoped to a repository). Data that cannot be
// read is a *ce.Error naming the field ("data/principal/login").
func Extract(e *ce.Event) (*Fact, error) {
	if !slices.Contains(Types(), e.Type) {
		return nil, nil
	}
	if e.DataBase64 || len(e.Data) == 0 {
		return nil, &ce.Error{Field: "data", Message: "required: a JSON object with the " + e.Type + " fields"}
	}
	var f *Fact
	var err error
	switch e.Type {
	case TypeProtectionChanged:
		f, err = protection(e)
	case TypeGrantChanged:
		f, err = grant(e)
	case TypeBypass:
		f, err = bypass(e)
	case TypeReviewed:
		f, err = reviewed(e)
	case TypeRepositoryChanged:
		f, err = repository(e)
	case TypeSnapshot:
		f, err = snapshot(e)
	case TypeTicketApproved, TypeTicketRejected:
		f, err = ticket(e)
	case TypeExceptionGranted, TypeExceptionRequested:
		f, err = exception(e)
	}
	if err != nil || f == nil {
		return nil, err
	}
	f.Event = EventRef{Source: e.Source, ID: e.ID}
	f.seal()
	return f, nil
}

// check collects the first field error of a decoding.
type check struct{ err *ce.Error }

func (c *check) fail(field, msg string) {
	if c.err == nil {
		c.err = &ce.Error{Field: "data/" + field, Message: msg}
	}
}

func (c *check) required(field, v string) string {
	if strings.TrimSpace(v) == "" {
		c.fail(field, "required field is missing")
	}
	return v
}

func (c *check) oneOf(field, v string, allowed ...string) string {
	c.required(field, v)
	if v != "" && !slices.Contains(allowed, v) {
		c.fail(field, fmt.Sprintf("%q: want one of %s", v, strings.Join(allowed, ", ")))
	}
	return v
}

func (c *check) time(field, v string, required bool) time.Time {
	if v == "" {
		if required {
			c.fail(field, "required field is missing")
		}
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		c.fail(field, fmt.Sprintf("%q is not an RFC 3339 date-time", v))
	}
	return t.UTC()
}

func (c *check) repo(field, v string) string {
	c.required(field, v)
	if v != "" && strings.Count(v, "/") < 2 {
		c.fail(field, fmt.Sprintf("%q: want host/owner/name", v))
	}
	return strings.ToLower(v)
}

func (c *check) identity(field string, id *Identity, required bool) *Identity {
	if id == nil {
		if required {
			c.fail(field, "required field is missing")
		}
		return nil
	}
	c.required(field+"/login", id.Login)
	return id
}

func decode(e *ce.Event, v any) error {
	d := json.NewDecoder(bytes.NewReader(e.Data))
	if err := d.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		if ok := asTypeError(err, &te); ok {
			return &ce.Error{Field: "data/" + strings.ReplaceAll(te.Field, ".", "/"), Message: "want " + te.Type.String()}
		}
		return &ce.Error{Field: "data", Message: "not a JSON object: " + err.Error()}
	}
	return nil
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	if ok {
		*te = t
	}
	return ok
}

func settings(c *check, field string, s *Settings) *Settings {
	if s == nil {
		return nil
	}
	if s.RequiredApprovingReviewCount < 0 {
		c.fail(field+"/required_approving_review_count", fmt.Sprintf("%d: want an integer >= 0", s.RequiredApprovingReviewCount))
	}
	out := *s
	out.BypassActors = slices.Clone(s.BypassActors)
	if out.BypassActors == nil {
		out.BypassActors = []string{}
	}
	slices.Sort(out.BypassActors)
	return &out
}

var ruleKinds = []string{"branch_protection_rule", "repository_ruleset", "protected_branch"}

func protection(e *ce.Event) (*Fact, error) {
	var d struct {
		Repository    string    `json:"repository"`
		Action        string    `json:"action"`
		Target        string    `json:"target"`
		RuleKind      string    `json:"rule_kind"`
		RuleID        string    `json:"rule_id"`
		Actor         *Identity `json:"actor"`
		Settings      *Settings `json:"settings"`
		ChangedFields []string  `json:"changed_fields"`
		ChangedAt     string    `json:"changed_at"`
		Ticket        string    `json:"ticket"`
		Provider      string    `json:"provider"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	p := &ProtectionFact{
		Action:        c.oneOf("action", d.Action, "created", "edited", "deleted", "snapshot"),
		Target:        c.required("target", d.Target),
		RuleKind:      d.RuleKind,
		RuleID:        d.RuleID,
		Actor:         c.identity("actor", d.Actor, false),
		Settings:      settings(&c, "settings", d.Settings),
		ChangedFields: slices.Sorted(slices.Values(d.ChangedFields)),
		Ticket:        strings.ToUpper(strings.TrimSpace(d.Ticket)),
	}
	if p.RuleKind != "" && !slices.Contains(ruleKinds, p.RuleKind) {
		c.fail("rule_kind", fmt.Sprintf("%q: want one of %s", p.RuleKind, strings.Join(ruleKinds, ", ")))
	}
	if p.Action != "deleted" && p.Settings == nil && p.Action != "" {
		c.fail("settings", "required unless action is deleted")
	}
	if p.Action == "deleted" {
		p.Settings = nil
	}
	f := &Fact{Kind: KindProtection, Subject: c.repo("repository", d.Repository), Time: c.time("changed_at", d.ChangedAt, true), Provider: d.Provider, Protection: p}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}

var repoPermissions = []string{"none", "read", "triage", "write", "maintain", "admin"}

func grant(e *ce.Event) (*Fact, error) {
	var d struct {
		Scope              string     `json:"scope"`
		Repository         string     `json:"repository"`
		Organization       string     `json:"organization"`
		Action             string     `json:"action"`
		Principal          *Principal `json:"principal"`
		Permission         string     `json:"permission"`
		PlatformPermission string     `json:"platform_permission"`
		PreviousPermission string     `json:"previous_permission"`
		Actor              *Identity  `json:"actor"`
		Approver           *Identity  `json:"approver"`
		Ticket             string     `json:"ticket"`
		ChangedAt          string     `json:"changed_at"`
		Provider           string     `json:"provider"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	g := &GrantFact{
		Action:             c.oneOf("action", d.Action, "granted", "changed", "removed", "snapshot"),
		PlatformPermission: d.PlatformPermission,
		PreviousPermission: d.PreviousPermission,
		Actor:              c.identity("actor", d.Actor, false),
		Approver:           c.identity("approver", d.Approver, false),
		Ticket:             strings.ToUpper(strings.TrimSpace(d.Ticket)),
	}
	if d.Principal == nil {
		c.fail("principal", "required field is missing")
	} else {
		g.Principal = *d.Principal
		c.oneOf("principal/kind", g.Principal.Kind, "user", "team", "deploy_key")
		c.required("principal/login", g.Principal.Login)
	}
	f := &Fact{Kind: KindGrant, Time: c.time("changed_at", d.ChangedAt, true), Provider: d.Provider, Grant: g}
	switch c.oneOf("scope", d.Scope, "repository", "organization") {
	case "repository":
		f.Subject = c.repo("repository", d.Repository)
		g.Permission = c.oneOf("permission", d.Permission, repoPermissions...)
	case "organization":
		org := strings.ToLower(c.required("organization", d.Organization))
		if org != "" && strings.Count(org, "/") != 1 {
			c.fail("organization", fmt.Sprintf("%q: want host/org", d.Organization))
		}
		f.Subject = "org:" + org
		g.Permission = c.oneOf("permission", d.Permission, "none", "member", "admin")
	}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}

func bypass(e *ce.Event) (*Fact, error) {
	var d struct {
		Repository string    `json:"repository"`
		Branch     string    `json:"branch"`
		Kind       string    `json:"kind"`
		Actor      *Identity `json:"actor"`
		Before     string    `json:"before"`
		After      string    `json:"after"`
		PushedAt   string    `json:"pushed_at"`
		Provider   string    `json:"provider"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	b := &BypassFact{
		Branch: c.required("branch", d.Branch),
		Kind:   c.oneOf("kind", d.Kind, "force_push", "direct_push", "rule_bypass"),
		Before: strings.ToLower(d.Before), After: strings.ToLower(d.After),
	}
	if a := c.identity("actor", d.Actor, true); a != nil {
		b.Actor = *a
	}
	f := &Fact{Kind: KindBypass, Subject: c.repo("repository", d.Repository), Time: c.time("pushed_at", d.PushedAt, true), Provider: d.Provider, Bypass: b}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}

func reviewed(e *ce.Event) (*Fact, error) {
	var d struct {
		Repository     string    `json:"repository"`
		Reviewer       *Identity `json:"reviewer"`
		PeriodFrom     string    `json:"period_from"`
		PeriodTo       string    `json:"period_to"`
		SignedAt       string    `json:"signed_at"`
		Outcome        string    `json:"outcome"`
		Notes          string    `json:"notes"`
		GrantsReviewed *int      `json:"grants_reviewed"`
		Provider       string    `json:"provider"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	r := &ReviewFact{
		PeriodFrom: c.time("period_from", d.PeriodFrom, true),
		PeriodTo:   c.time("period_to", d.PeriodTo, true),
		Outcome:    c.oneOf("outcome", d.Outcome, "approved", "changes_required"),
		Notes:      d.Notes, GrantsReviewed: d.GrantsReviewed,
	}
	if a := c.identity("reviewer", d.Reviewer, true); a != nil {
		r.Reviewer = *a
	}
	if !r.PeriodFrom.IsZero() && !r.PeriodTo.IsZero() && !r.PeriodFrom.Before(r.PeriodTo) {
		c.fail("period_to", "must be after period_from")
	}
	f := &Fact{Kind: KindReview, Subject: c.repo("repository", d.Repository), Time: c.time("signed_at", d.SignedAt, true), Provider: d.Provider, Review: r}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}

func repository(e *ce.Event) (*Fact, error) {
	var d struct {
		Repository string    `json:"repository"`
		Action     string    `json:"action"`
		Actor      *Identity `json:"actor"`
		From       string    `json:"from"`
		To         string    `json:"to"`
		ChangedAt  string    `json:"changed_at"`
		Provider   string    `json:"provider"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	r := &RepositoryFact{
		Action: c.oneOf("action", d.Action, "created", "deleted", "archived", "unarchived", "publicized", "privatized", "transferred", "renamed", "visibility_changed"),
		Actor:  c.identity("actor", d.Actor, false), From: d.From, To: d.To,
	}
	f := &Fact{Kind: KindRepository, Subject: c.repo("repository", d.Repository), Time: c.time("changed_at", d.ChangedAt, true), Provider: d.Provider, Repository: r}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}

func snapshot(e *ce.Event) (*Fact, error) {
	var d struct {
		Repository  string `json:"repository"`
		TakenAt     string `json:"taken_at"`
		Protections []struct {
			RuleKind string    `json:"rule_kind"`
			RuleID   string    `json:"rule_id"`
			Target   string    `json:"target"`
			Settings *Settings `json:"settings"`
		} `json:"protections"`
		Grants   []SnapshotGrant `json:"grants"`
		Provider string          `json:"provider"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	s := &SnapshotFact{Protections: []SnapshotProtection{}, Grants: []SnapshotGrant{}}
	if d.Protections == nil {
		c.fail("protections", "required field is missing")
	}
	if d.Grants == nil {
		c.fail("grants", "required field is missing")
	}
	for i, p := range d.Protections {
		field := fmt.Sprintf("protections/%d", i)
		c.required(field+"/target", p.Target)
		st := settings(&c, field+"/settings", p.Settings)
		if st == nil {
			c.fail(field+"/settings", "required field is missing")
			continue
		}
		s.Protections = append(s.Protections, SnapshotProtection{RuleKind: p.RuleKind, RuleID: p.RuleID, Target: p.Target, Settings: *st})
	}
	for i, g := range d.Grants {
		field := fmt.Sprintf("grants/%d", i)
		c.oneOf(field+"/principal/kind", g.Principal.Kind, "user", "team", "deploy_key")
		c.required(field+"/principal/login", g.Principal.Login)
		c.oneOf(field+"/permission", g.Permission, repoPermissions...)
		s.Grants = append(s.Grants, g)
	}
	slices.SortFunc(s.Protections, func(a, b SnapshotProtection) int {
		return strings.Compare(ruleKey(a.RuleKind, a.RuleID, a.Target), ruleKey(b.RuleKind, b.RuleID, b.Target))
	})
	slices.SortFunc(s.Grants, func(a, b SnapshotGrant) int {
		return strings.Compare(principalKey(a.Principal), principalKey(b.Principal))
	})
	f := &Fact{Kind: KindSnapshot, Subject: c.repo("repository", d.Repository), Time: c.time("taken_at", d.TakenAt, true), Provider: d.Provider, Snapshot: s}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}

func ticket(e *ce.Event) (*Fact, error) {
	var d struct {
		Key        string    `json:"key"`
		Approver   *Identity `json:"approver"`
		ApprovedAt string    `json:"approved_at"`
		RejectedAt string    `json:"rejected_at"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	t := &TicketFact{Key: strings.ToUpper(strings.TrimSpace(c.required("key", d.Key)))}
	f := &Fact{Kind: KindTicket, Ticket: t}
	if e.Type == TypeTicketApproved {
		t.Phase = "approved"
		f.Time = c.time("approved_at", d.ApprovedAt, true)
	} else {
		t.Phase = "rejected"
		f.Time = c.time("rejected_at", d.RejectedAt, true)
	}
	if a := c.identity("approver", d.Approver, t.Phase == "approved"); a != nil {
		t.By = *a
	}
	if c.err != nil {
		return nil, c.err
	}
	f.Subject = "ticket:" + t.Key
	return f, nil
}

func exception(e *ce.Event) (*Fact, error) {
	var d struct {
		ID      string `json:"id"`
		Control string `json:"control"`
		Scope   *struct {
			Repository string `json:"repository"`
		} `json:"scope"`
		Reason      string    `json:"reason"`
		RequestedBy *Identity `json:"requested_by"`
		RequestedAt string    `json:"requested_at"`
		Approver    *Identity `json:"approver"`
		GrantedAt   string    `json:"granted_at"`
		ExpiresAt   string    `json:"expires_at"`
	}
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	// Only exceptions of the access controls, scoped to a repository,
	// belong to an access record; the change records read the others.
	if !strings.HasPrefix(strings.ToUpper(d.Control), "AC-") || d.Scope == nil || d.Scope.Repository == "" {
		return nil, nil
	}
	var c check
	granted := e.Type == TypeExceptionGranted
	x := &ExceptionFact{
		ID: c.required("id", d.ID), Control: strings.ToUpper(d.Control), Reason: d.Reason,
		RequestedBy: c.identity("requested_by", d.RequestedBy, false),
		Approver:    c.identity("approver", d.Approver, granted),
		ExpiresAt:   c.time("expires_at", d.ExpiresAt, granted),
	}
	f := &Fact{Kind: KindException, Subject: c.repo("scope/repository", d.Scope.Repository), Exception: x}
	if granted {
		x.Phase = "granted"
		x.GrantedAt = c.time("granted_at", d.GrantedAt, true)
		f.Time = x.GrantedAt
	} else {
		x.Phase = "requested"
		f.Time = c.time("requested_at", d.RequestedAt, true)
	}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}

func ruleKey(kind, id, target string) string { return kind + "\x00" + id + "\x00" + target }

func principalKey(p Principal) string { return p.Kind + "\x00" + strings.ToLower(p.Login) }
