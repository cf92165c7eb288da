package access

import (
	"cmp"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"time"
)

// Record is the access record of one subject (a repository, or an
// organisation "org:host/org"). Every list is sorted; json.Marshal of a
// Record is its canonical form.
type Record struct {
	Subject           string             `json:"subject"`
	Grants            []Grant            `json:"grants"`
	Protections       []Protection       `json:"protections"`
	Bypasses          []Bypass           `json:"bypasses"`
	Reviews           []Review           `json:"reviews"`
	RepositoryChanges []RepositoryChange `json:"repository_changes"`
	Snapshots         []Snapshot         `json:"snapshots"`
	Tickets           []Ticket           `json:"tickets"`    // approvals and rejections of the tickets its facts name
	Exceptions        []Exception        `json:"exceptions"` // AC exceptions scoped to the repository
	Events            []string           `json:"events"`     // "<source> <id>" of every event behind it
}

// Grant is one period during which a principal held one permission.
type Grant struct {
	Principal          Principal  `json:"principal"`
	Permission         string     `json:"permission"`
	PlatformPermission string     `json:"platform_permission,omitempty"`
	From               time.Time  `json:"from"`
	To                 *time.Time `json:"to,omitempty"` // absent: still held
	Action             string     `json:"action"`       // granted, changed, snapshot
	GrantedBy          *Identity  `json:"granted_by,omitempty"`
	Approver           *Identity  `json:"approver,omitempty"`
	Ticket             string     `json:"ticket,omitempty"`
	GrantEvent         string     `json:"grant_event"`
	EndAction          string     `json:"end_action,omitempty"` // removed, changed, snapshot
	EndedBy            *Identity  `json:"ended_by,omitempty"`
	EndEvent           string     `json:"end_event,omitempty"`
}

// Protection is one period of one rule's settings (repository, rule_kind,
// rule_id, target). Settings absent: the rule was deleted.
type Protection struct {
	RuleKind      string     `json:"rule_kind"`
	RuleID        string     `json:"rule_id"`
	Target        string     `json:"target"`
	Settings      *Settings  `json:"settings,omitempty"`
	From          time.Time  `json:"from"`
	To            *time.Time `json:"to,omitempty"`
	Action        string     `json:"action"` // created, edited, snapshot, deleted
	ChangedBy     *Identity  `json:"changed_by,omitempty"`
	ChangedFields []string   `json:"changed_fields,omitempty"`
	Ticket        string     `json:"ticket,omitempty"`
	Event         string     `json:"event"`
	EndAction     string     `json:"end_action,omitempty"` // created, edited, deleted, snapshot
	EndedBy       *Identity  `json:"ended_by,omitempty"`
	EndEvent      string     `json:"end_event,omitempty"`
}

// Bypass is a push that skipped protection.
type Bypass struct {
	Branch string    `json:"branch"`
	Kind   string    `json:"kind"`
	Actor  Identity  `json:"actor"`
	Before string    `json:"before,omitempty"`
	After  string    `json:"after,omitempty"`
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
}

// Review is a sign-off of the access list.
type Review struct {
	Reviewer       Identity  `json:"reviewer"`
	PeriodFrom     time.Time `json:"period_from"`
	PeriodTo       time.Time `json:"period_to"`
	Outcome        string    `json:"outcome"`
	Notes          string    `json:"notes,omitempty"`
	GrantsReviewed *int      `json:"grants_reviewed,omitempty"`
	SignedAt       time.Time `json:"signed_at"`
	Event          string    `json:"event"`
}

// RepositoryChange is a visibility change, transfer, rename, archive or
// deletion.
type RepositoryChange struct {
	Action string    `json:"action"`
	Actor  *Identity `json:"actor,omitempty"`
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
}

// Snapshot is a reset of the state to what the platform said at TakenAt.
type Snapshot struct {
	TakenAt     time.Time `json:"taken_at"`
	Grants      int       `json:"grants"`
	Protections int       `json:"protections"`
	Event       string    `json:"event"`
}

// Ticket is an approval or rejection of a change ticket.
type Ticket struct {
	Key   string    `json:"key"`
	Phase string    `json:"phase"` // approved, rejected
	By    Identity  `json:"by"`
	At    time.Time `json:"at"`
	Event string    `json:"event"`
}

// Exception is an exception to an AC control scoped to the repository.
type Exception struct {
	ID          string    `json:"id"`
	Control     string    `json:"control"`
	Status      string    `json:"status"` // requested, granted
	Reason      string    `json:"reason,omitempty"`
	RequestedBy *Identity `json:"requested_by,omitempty"`
	Approver    *Identity `json:"approver,omitempty"`
	GrantedAt   time.Time `json:"granted_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	Events      []string  `json:"events"`
}

// Canonical is the record's canonical JSON.
func (r Record) Canonical() []byte {
	b, _ := json.Marshal(r)
	return b
}

// TicketsNamed are the ticket keys the facts name (protection changes and
// grants), sorted: their approvals belong in the record.
func TicketsNamed(facts []Fact) []string {
	var out []string
	for _, f := range facts {
		switch {
		case f.Protection != nil && f.Protection.Ticket != "":
			out = append(out, f.Protection.Ticket)
		case f.Grant != nil && f.Grant.Ticket != "":
			out = append(out, f.Grant.Ticket)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Derive derives the record of subject from a set of facts: those filed
// under it, and the ticket facts of the tickets they name (others are
// ignored). It is a pure function of the set: order and duplicates do not
// matter.
func Derive(subject string, facts []Fact) Record {
	fs := slices.Clone(facts)
	slices.SortFunc(fs, func(a, b Fact) int {
		return cmp.Or(a.Time.Compare(b.Time), cmp.Compare(kindRank[a.Kind], kindRank[b.Kind]), strings.Compare(a.ID, b.ID))
	})
	fs = slices.CompactFunc(fs, func(a, b Fact) bool { return a.ID == b.ID })
	named := TicketsNamed(fs)

	r := Record{Subject: subject, Grants: []Grant{}, Protections: []Protection{}, Bypasses: []Bypass{}, Reviews: []Review{},
		RepositoryChanges: []RepositoryChange{}, Snapshots: []Snapshot{}, Tickets: []Ticket{}, Exceptions: []Exception{}, Events: []string{}}
	openGrant := map[string]int{} // principal key -> index in r.Grants
	openRule := map[string]int{}  // rule key -> index in r.Protections
	exceptions := map[string]*Exception{}

	endGrant := func(k string, at time.Time, action string, by *Identity, ev string) {
		i, ok := openGrant[k]
		if !ok {
			return
		}
		t := at
		g := &r.Grants[i]
		g.To, g.EndAction, g.EndedBy, g.EndEvent = &t, action, by, ev
		delete(openGrant, k)
	}
	setGrant := func(p Principal, perm, platform, action string, by, approver *Identity, ticket string, at time.Time, ev string) {
		k := principalKey(p)
		if i, ok := openGrant[k]; ok {
			if r.Grants[i].Permission == perm {
				return
			}
			endGrant(k, at, "changed", by, ev)
		}
		if perm == "none" {
			return
		}
		r.Grants = append(r.Grants, Grant{Principal: p, Permission: perm, PlatformPermission: platform, From: at, Action: action,
			GrantedBy: by, Approver: approver, Ticket: ticket, GrantEvent: ev})
		openGrant[k] = len(r.Grants) - 1
	}
	endRule := func(k string, at time.Time, action string, by *Identity, ev string) {
		i, ok := openRule[k]
		if !ok {
			return
		}
		t := at
		p := &r.Protections[i]
		p.To, p.EndAction, p.EndedBy, p.EndEvent = &t, action, by, ev
		delete(openRule, k)
	}
	setRule := func(kind, id, target string, s *Settings, action string, by *Identity, fields []string, ticket string, at time.Time, ev string) {
		k := ruleKey(kind, id, target)
		if i, ok := openRule[k]; ok {
			cur := r.Protections[i].Settings
			if (cur == nil) == (s == nil) && (s == nil || reflect.DeepEqual(*cur, *s)) {
				return
			}
			endRule(k, at, action, by, ev)
		}
		r.Protections = append(r.Protections, Protection{RuleKind: kind, RuleID: id, Target: target, Settings: s, From: at, Action: action,
			ChangedBy: by, ChangedFields: fields, Ticket: ticket, Event: ev})
		openRule[k] = len(r.Protections) - 1
	}

	for _, f := range fs {
		if f.Kind == KindTicket {
			if f.Ticket == nil || !slices.Contains(named, f.Ticket.Key) {
				continue
			}
		} else if f.Subject != subject {
			continue
		}
		ev := f.Event.String()
		r.Events = append(r.Events, ev)
		switch f.Kind {
		case KindSnapshot:
			s := f.Snapshot
			inSnap := map[string]bool{}
			for _, g := range s.Grants {
				inSnap[principalKey(g.Principal)] = true
			}
			for _, k := range sortedKeys(openGrant) {
				if !inSnap[k] {
					endGrant(k, f.Time, "snapshot", nil, ev)
				}
			}
			inSnap = map[string]bool{}
			for _, p := range s.Protections {
				inSnap[ruleKey(p.RuleKind, p.RuleID, p.Target)] = true
			}
			for _, k := range sortedKeys(openRule) {
				if !inSnap[k] && r.Protections[openRule[k]].Settings != nil {
					endRule(k, f.Time, "snapshot", nil, ev)
				}
			}
			for _, g := range s.Grants {
				setGrant(g.Principal, g.Permission, g.PlatformPermission, "snapshot", nil, nil, "", f.Time, ev)
			}
			for _, p := range s.Protections {
				st := p.Settings
				setRule(p.RuleKind, p.RuleID, p.Target, &st, "snapshot", nil, nil, "", f.Time, ev)
			}
			r.Snapshots = append(r.Snapshots, Snapshot{TakenAt: f.Time, Grants: len(s.Grants), Protections: len(s.Protections), Event: ev})
		case KindProtection:
			p := f.Protection
			if p.Action == "deleted" {
				setRule(p.RuleKind, p.RuleID, p.Target, nil, "deleted", p.Actor, p.ChangedFields, p.Ticket, f.Time, ev)
			} else {
				setRule(p.RuleKind, p.RuleID, p.Target, p.Settings, p.Action, p.Actor, p.ChangedFields, p.Ticket, f.Time, ev)
			}
		case KindGrant:
			g := f.Grant
			if g.Action == "removed" {
				endGrant(principalKey(g.Principal), f.Time, "removed", g.Actor, ev)
			} else {
				setGrant(g.Principal, g.Permission, g.PlatformPermission, g.Action, g.Actor, g.Approver, g.Ticket, f.Time, ev)
			}
		case KindBypass:
			b := f.Bypass
			r.Bypasses = append(r.Bypasses, Bypass{Branch: b.Branch, Kind: b.Kind, Actor: b.Actor, Before: b.Before, After: b.After, At: f.Time, Event: ev})
		case KindReview:
			v := f.Review
			r.Reviews = append(r.Reviews, Review{Reviewer: v.Reviewer, PeriodFrom: v.PeriodFrom, PeriodTo: v.PeriodTo, Outcome: v.Outcome,
				Notes: v.Notes, GrantsReviewed: v.GrantsReviewed, SignedAt: f.Time, Event: ev})
		case KindRepository:
			v := f.Repository
			r.RepositoryChanges = append(r.RepositoryChanges, RepositoryChange{Action: v.Action, Actor: v.Actor, From: v.From, To: v.To, At: f.Time, Event: ev})
		case KindTicket:
			r.Tickets = append(r.Tickets, Ticket{Key: f.Ticket.Key, Phase: f.Ticket.Phase, By: f.Ticket.By, At: f.Time, Event: ev})
		case KindException:
			x := f.Exception
			e := exceptions[x.ID]
			if e == nil {
				e = &Exception{ID: x.ID, Control: x.Control, Status: "requested", Events: []string{}}
				exceptions[x.ID] = e
			}
			e.Events = append(e.Events, ev)
			if x.Reason != "" {
				e.Reason = x.Reason
			}
			if x.RequestedBy != nil {
				e.RequestedBy = x.RequestedBy
			}
			if x.Phase == "granted" {
				e.Status, e.Approver, e.GrantedAt, e.ExpiresAt = "granted", x.Approver, x.GrantedAt, x.ExpiresAt
			}
		}
	}
	for _, k := range sortedKeys(exceptions) {
		e := exceptions[k]
		slices.Sort(e.Events)
		r.Exceptions = append(r.Exceptions, *e)
	}
	slices.SortStableFunc(r.Grants, func(a, b Grant) int {
		return cmp.Or(strings.Compare(principalKey(a.Principal), principalKey(b.Principal)), a.From.Compare(b.From), strings.Compare(a.GrantEvent, b.GrantEvent))
	})
	slices.SortStableFunc(r.Protections, func(a, b Protection) int {
		return cmp.Or(strings.Compare(a.Target, b.Target), strings.Compare(ruleKey(a.RuleKind, a.RuleID, a.Target), ruleKey(b.RuleKind, b.RuleID, b.Target)), a.From.Compare(b.From), strings.Compare(a.Event, b.Event))
	})
	slices.Sort(r.Events)
	r.Events = slices.Compact(r.Events)
	return r
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
