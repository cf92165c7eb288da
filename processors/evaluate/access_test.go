package evaluate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/processors/access"
)

// The access controls' table tests (issue 17, "What must be shown"). Each
// case is a hand-written access record of github.com/acme/payments judged
// over 2026-Q4 ([2026-10-01, 2027-01-01)) as of 2027-02-15, with the
// expected status and reasons worked out by hand from the control's text.

const acRepo = "github.com/acme/payments"

func acAt(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func atp(s string) *time.Time { t := acAt(s); return &t }

func who(l string) *access.Identity { return &access.Identity{Login: l} }

var strong = &access.Settings{RequiredApprovingReviewCount: 1, DismissStaleReviews: true, EnforceAdmins: true, BypassActors: []string{}}

func emptyRecord() access.Record {
	return access.Record{Subject: acRepo, Grants: []access.Grant{}, Protections: []access.Protection{}, Bypasses: []access.Bypass{},
		Reviews: []access.Review{}, RepositoryChanges: []access.RepositoryChange{}, Snapshots: []access.Snapshot{},
		Tickets: []access.Ticket{}, Exceptions: []access.Exception{}, Events: []string{}}
}

// protectedAllQuarter: main protected by a strong rule from before the
// quarter, never changed.
func protectedAllQuarter() access.Record {
	r := emptyRecord()
	r.Protections = []access.Protection{{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", Settings: strong,
		From: acAt("2026-09-01T00:00:00Z"), Action: "snapshot", Event: "gh p0"}}
	return r
}

type acCase struct {
	name    string
	record  func() access.Record
	control string
	status  Status
	reasons []string // every reason, exactly
}

var q4 = AccessPeriod{Label: "2026-Q4", From: acAt("2026-10-01T00:00:00Z"), To: acAt("2027-01-01T00:00:00Z")}

var acNow = acAt("2027-02-15T00:00:00Z")

var acParams = AccessParams{RequiredReviews: 1, ProtectedBranches: []string{"main", "master"}, ReviewDeadline: 30 * 24 * time.Hour}

func acCases() []acCase {
	return []acCase{
		{name: "AC-1 protection in force all period passes", control: "AC-1", status: Pass, record: protectedAllQuarter,
			reasons: []string{"branch_protection_rule rule 1 on main: 1 approving reviews, stale approvals dismissed, administrators included, from 2026-10-01T00:00:00Z through the end of the period judged (2027-01-01T00:00:00Z)"}},
		{name: "AC-1 deleted then restored fails between the two instants only", control: "AC-1", status: Fail,
			record: func() access.Record {
				r := emptyRecord()
				r.Protections = []access.Protection{
					{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", Settings: strong, From: acAt("2026-09-01T00:00:00Z"),
						To: atp("2026-11-03T10:00:00Z"), Action: "snapshot", Event: "gh p0", EndAction: "deleted", EndEvent: "gh p1"},
					{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", From: acAt("2026-11-03T10:00:00Z"), To: atp("2026-11-05T16:30:00Z"),
						Action: "deleted", ChangedBy: who("mallory"), Event: "gh p1", EndAction: "created", EndEvent: "gh p2"},
					{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", Settings: strong, From: acAt("2026-11-05T16:30:00Z"),
						Action: "created", ChangedBy: who("alice"), Event: "gh p2"},
				}
				return r
			},
			reasons: []string{"branch_protection_rule rule 1 on main: the rule was deleted (deleted by mallory at 2026-11-03T10:00:00Z) from 2026-11-03T10:00:00Z until 2026-11-05T16:30:00Z"}},
		{name: "AC-1 weakened under an approved ticket passes", control: "AC-1", status: Pass,
			record: func() access.Record {
				r := emptyRecord()
				weak := *strong
				weak.EnforceAdmins = false
				r.Protections = []access.Protection{
					{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", Settings: strong, From: acAt("2026-09-01T00:00:00Z"),
						To: atp("2026-12-01T09:00:00Z"), Action: "snapshot", Event: "gh p0", EndAction: "edited", EndEvent: "gh p1"},
					{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", Settings: &weak, From: acAt("2026-12-01T09:00:00Z"),
						To: atp("2026-12-01T12:00:00Z"), Action: "edited", ChangedBy: who("alice"), Ticket: "CHG-7", Event: "gh p1", EndAction: "edited", EndEvent: "gh p2"},
					{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", Settings: strong, From: acAt("2026-12-01T12:00:00Z"),
						Action: "edited", ChangedBy: who("alice"), Event: "gh p2"},
				}
				r.Tickets = []access.Ticket{{Key: "CHG-7", Phase: "approved", By: access.Identity{Login: "carol"}, At: acAt("2026-11-30T17:00:00Z"), Event: "jira t1"}}
				return r
			},
			reasons: []string{
				"branch_protection_rule rule 1 on main: 1 approving reviews, stale approvals dismissed, administrators included, from 2026-10-01T00:00:00Z until 2026-12-01T09:00:00Z",
				"branch_protection_rule rule 1 on main: 1 approving reviews, stale approvals dismissed, administrators included, from 2026-12-01T12:00:00Z through the end of the period judged (2027-01-01T00:00:00Z)",
				"branch_protection_rule rule 1 on main: administrators exempt (edited by alice) from 2026-12-01T09:00:00Z until 2026-12-01T12:00:00Z under approved ticket CHG-7 (approved by carol at 2026-11-30T17:00:00Z)",
			}},
		{name: "AC-1 weakened with the ticket approved only afterwards fails", control: "AC-1", status: Fail,
			record: func() access.Record {
				r := emptyRecord()
				weak := *strong
				weak.RequiredApprovingReviewCount = 0
				r.Protections = []access.Protection{
					{RuleKind: "branch_protection_rule", RuleID: "1", Target: "main", Settings: &weak, From: acAt("2026-12-01T09:00:00Z"),
						Action: "edited", ChangedBy: who("alice"), Ticket: "CHG-8", Event: "gh p1"},
				}
				r.Tickets = []access.Ticket{{Key: "CHG-8", Phase: "approved", By: access.Identity{Login: "carol"}, At: acAt("2026-12-02T00:00:00Z"), Event: "jira t1"}}
				return r
			},
			reasons: []string{"branch_protection_rule rule 1 on main: 0 approving reviews required, 1 needed (edited by alice at 2026-12-01T09:00:00Z) from 2026-12-01T09:00:00Z through the end of the period judged (2027-01-01T00:00:00Z)"}},
		{name: "AC-1 no protection at all fails", control: "AC-1", status: Fail, record: emptyRecord,
			reasons: []string{"no branch protection known on the protected branches (main, master) during the period"}},

		{name: "AC-2 forced push to main fails naming who and when", control: "AC-2", status: Fail,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Bypasses = []access.Bypass{{Branch: "main", Kind: "force_push", Actor: access.Identity{Login: "mallory"},
					Before: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", After: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", At: acAt("2026-11-20T08:15:00Z"), Event: "gh push1"}}
				return r
			},
			reasons: []string{"force push to main by mallory at 2026-11-20T08:15:00Z (aaaaaaaaaaaa..bbbbbbbbbbbb) while branch protection was in force"}},
		{name: "AC-2 forced push to an unprotected feature branch passes", control: "AC-2", status: Pass,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Bypasses = []access.Bypass{{Branch: "feature/x", Kind: "force_push", Actor: access.Identity{Login: "bob"}, At: acAt("2026-11-20T08:15:00Z"), Event: "gh push2"}}
				return r
			},
			reasons: []string{"force push to feature/x by bob at 2026-11-20T08:15:00Z: the branch was not protected then"}},
		{name: "AC-2 no bypass passes", control: "AC-2", status: Pass, record: protectedAllQuarter,
			reasons: []string{"no push bypassed branch protection during the period"}},

		{name: "AC-3 self-grant fails", control: "AC-3", status: Fail,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Grants = []access.Grant{{Principal: access.Principal{Kind: "user", Login: "mallory"}, Permission: "admin",
					From: acAt("2026-10-12T13:00:00Z"), Action: "granted", GrantedBy: who("Mallory"), GrantEvent: "gh g1"}}
				return r
			},
			reasons: []string{"self-grant: admin to user mallory by Mallory at 2026-10-12T13:00:00Z"}},
		{name: "AC-3 grant approved by another admin passes", control: "AC-3", status: Pass,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Grants = []access.Grant{{Principal: access.Principal{Kind: "user", Login: "bob"}, Permission: "write",
					From: acAt("2026-10-12T13:00:00Z"), Action: "granted", GrantedBy: who("alice"), Approver: who("dave"), GrantEvent: "gh g2"}}
				return r
			},
			reasons: []string{"grant of write to user bob by alice at 2026-10-12T13:00:00Z approved by dave"}},
		{name: "AC-3 grant approved by the grantor only fails", control: "AC-3", status: Fail,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Grants = []access.Grant{{Principal: access.Principal{Kind: "user", Login: "bob"}, Permission: "maintain",
					From: acAt("2026-10-12T13:00:00Z"), Action: "granted", GrantedBy: who("alice"), Approver: who("alice"), GrantEvent: "gh g3"},
					{Principal: access.Principal{Kind: "user", Login: "erin"}, Permission: "read",
						From: acAt("2026-10-13T13:00:00Z"), Action: "granted", GrantedBy: who("alice"), GrantEvent: "gh g4"}}
				return r
			},
			reasons: []string{"grant of maintain to user bob by alice at 2026-10-12T13:00:00Z: no approver other than the grantee and the grantor"}},
		{name: "AC-3 grant under an approved access ticket passes", control: "AC-3", status: Pass,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Grants = []access.Grant{{Principal: access.Principal{Kind: "team", Login: "payments-devs"}, Permission: "write",
					From: acAt("2026-10-12T13:00:00Z"), Action: "granted", GrantedBy: who("alice"), Ticket: "ACC-3", GrantEvent: "gh g5"}}
				r.Tickets = []access.Ticket{{Key: "ACC-3", Phase: "approved", By: access.Identity{Login: "dave"}, At: acAt("2026-10-11T00:00:00Z"), Event: "jira a3"}}
				return r
			},
			reasons: []string{"grant of write to team payments-devs by alice at 2026-10-12T13:00:00Z approved by dave (ticket ACC-3)"}},

		{name: "AC-4 access list never signed off fails", control: "AC-4", status: Fail, record: protectedAllQuarter,
			reasons: []string{"the access list was never signed off for 2026-Q4 (due by 2027-01-31T00:00:00Z)"}},
		{name: "AC-4 signed off passes", control: "AC-4", status: Pass,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Reviews = []access.Review{{Reviewer: access.Identity{Login: "rita"}, PeriodFrom: acAt("2026-10-01T00:00:00Z"), PeriodTo: acAt("2026-12-31T23:59:59Z"),
					Outcome: "approved", SignedAt: acAt("2027-01-10T10:00:00Z"), Event: "cli r1"}}
				return r
			},
			reasons: []string{"access list signed off by rita at 2027-01-10T10:00:00Z for 2026-10-01T00:00:00Z..2026-12-31T23:59:59Z"}},
		{name: "AC-4 changes required does not count", control: "AC-4", status: Fail,
			record: func() access.Record {
				r := protectedAllQuarter()
				r.Reviews = []access.Review{{Reviewer: access.Identity{Login: "rita"}, PeriodFrom: acAt("2026-10-01T00:00:00Z"), PeriodTo: acAt("2027-01-01T00:00:00Z"),
					Outcome: "changes_required", SignedAt: acAt("2027-01-10T10:00:00Z"), Event: "cli r2"}}
				return r
			},
			reasons: []string{"the access list was never signed off for 2026-Q4 (changes required by rita) (due by 2027-01-31T00:00:00Z)"}},
	}
}

func TestAccessControls(t *testing.T) {
	e, err := NewAccessEngine(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ids := fmt.Sprint(controlIDs(e.Controls())); ids != "[AC-1 AC-2 AC-3 AC-4]" {
		t.Fatalf("controls %s", ids)
	}
	for _, c := range acCases() {
		t.Run(c.name, func(t *testing.T) {
			res, err := e.Judge(context.Background(), c.record(), acParams, q4, acNow)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(res, func(r Result) bool { return r.Control.ID == c.control })
			r := res[i]
			if r.Status != c.status || !slices.Equal(r.Reasons, c.reasons) {
				t.Errorf("%s: %s\n  %s\nwant %s\n  %s", c.control, r.Status, strings.Join(r.Reasons, "\n  "), c.status, strings.Join(c.reasons, "\n  "))
			}
			if r.Change != "access:"+acRepo+"@2026-Q4" {
				t.Errorf("subject %q", r.Change)
			}
		})
	}
}

func controlIDs(cs []Control) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.ID)
	}
	return out
}
