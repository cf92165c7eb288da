package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
)

const repo = "github.com/acme/payments"

func ev(t *testing.T, id, typ string, data map[string]any) *ce.Event {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return &ce.Event{ID: id, Source: "test", Type: typ, Subject: repo, Data: b}
}

func facts(t *testing.T, es ...*ce.Event) []Fact {
	t.Helper()
	var out []Fact
	for _, e := range es {
		f, err := Extract(e)
		if err != nil {
			t.Fatalf("%s: %v", e.ID, err)
		}
		if f == nil {
			t.Fatalf("%s: no fact", e.ID)
		}
		if !f.Verify() {
			t.Fatalf("%s: fact does not verify", e.ID)
		}
		out = append(out, *f)
	}
	return out
}

var strong = map[string]any{"required_approving_review_count": 2, "dismiss_stale_reviews": true, "require_code_owner_reviews": false,
	"enforce_admins": true, "allow_force_pushes": false, "allow_deletions": false, "bypass_actors": []string{}}

func user(login string) map[string]any { return map[string]any{"login": login, "type": "user"} }

// history is a hand-worked history of one repository:
//
//	09:00 snapshot: alice admin, bob write; main protected (rule 1, 2 approvals)
//	10:00 carol granted write by alice
//	11:00 rule 1 deleted by alice; 12:00 rule 2 created on main by alice
//	13:00 bob removed by alice
//	14:00 snapshot: alice admin, dave write (carol missing: ends 14:00), rule 2
func history(t *testing.T) []*ce.Event {
	return []*ce.Event{
		ev(t, "s1", TypeSnapshot, map[string]any{"repository": repo, "taken_at": "2026-03-01T09:00:00Z",
			"protections": []any{map[string]any{"rule_kind": "branch_protection_rule", "rule_id": "1", "target": "main", "settings": strong}},
			"grants": []any{
				map[string]any{"principal": map[string]any{"kind": "user", "login": "alice"}, "permission": "admin", "platform_permission": "admin"},
				map[string]any{"principal": map[string]any{"kind": "user", "login": "bob"}, "permission": "write", "platform_permission": "push"},
			}}),
		ev(t, "g1", TypeGrantChanged, map[string]any{"scope": "repository", "repository": repo, "action": "granted",
			"principal": map[string]any{"kind": "user", "login": "carol"}, "permission": "write", "actor": user("alice"), "changed_at": "2026-03-01T10:00:00Z"}),
		ev(t, "p1", TypeProtectionChanged, map[string]any{"repository": repo, "action": "deleted", "target": "main",
			"rule_kind": "branch_protection_rule", "rule_id": "1", "actor": user("alice"), "changed_at": "2026-03-01T11:00:00Z"}),
		ev(t, "p2", TypeProtectionChanged, map[string]any{"repository": repo, "action": "created", "target": "main",
			"rule_kind": "branch_protection_rule", "rule_id": "2", "actor": user("alice"), "settings": strong, "changed_at": "2026-03-01T12:00:00Z"}),
		ev(t, "g2", TypeGrantChanged, map[string]any{"scope": "repository", "repository": repo, "action": "removed",
			"principal": map[string]any{"kind": "user", "login": "bob"}, "permission": "none", "actor": user("alice"), "changed_at": "2026-03-01T13:00:00Z"}),
		ev(t, "s2", TypeSnapshot, map[string]any{"repository": repo, "taken_at": "2026-03-01T14:00:00Z",
			"protections": []any{map[string]any{"rule_kind": "branch_protection_rule", "rule_id": "2", "target": "main", "settings": strong}},
			"grants": []any{
				map[string]any{"principal": map[string]any{"kind": "user", "login": "alice"}, "permission": "admin"},
				map[string]any{"principal": map[string]any{"kind": "user", "login": "dave"}, "permission": "write"},
			}}),
		ev(t, "b1", TypeBypass, map[string]any{"repository": repo, "branch": "main", "kind": "force_push", "actor": user("bob"), "pushed_at": "2026-03-01T11:30:00Z"}),
	}
}

func hm(h int) string { return fmt.Sprintf("2026-03-01T%02d:00:00Z", h) }

func TestDeriveHandWorked(t *testing.T) {
	r := Derive(repo, facts(t, history(t)...))
	// principal, from, to ("" open), end action, grant event
	type line struct{ who, perm, from, to, end, ev string }
	want := []line{
		{"alice", "admin", hm(9), "", "", "test s1"},
		{"bob", "write", hm(9), hm(13), "removed", "test s1"},
		{"carol", "write", hm(10), hm(14), "snapshot", "test g1"},
		{"dave", "write", hm(14), "", "", "test s2"},
	}
	if len(r.Grants) != len(want) {
		t.Fatalf("grants: %d, want %d: %+v", len(r.Grants), len(want), r.Grants)
	}
	for i, w := range want {
		g := r.Grants[i]
		to := ""
		if g.To != nil {
			to = g.To.Format(time.RFC3339)
		}
		got := line{g.Principal.Login, g.Permission, g.From.Format(time.RFC3339), to, g.EndAction, g.GrantEvent}
		if got != w {
			t.Errorf("grant %d: %+v, want %+v", i, got, w)
		}
	}
	if g := r.Grants[2]; g.GrantedBy == nil || g.GrantedBy.Login != "alice" {
		t.Errorf("carol's grant: granted_by %+v, want alice", g.GrantedBy)
	}
	// rule 1: 09-11 in force, 11- deleted (stays open: the rule never came
	// back); rule 2: 12- in force (the 14:00 snapshot states the same).
	type rule struct {
		id, from, to string
		deleted      bool
	}
	wantRules := []rule{{"1", hm(9), hm(11), false}, {"1", hm(11), "", true}, {"2", hm(12), "", false}}
	if len(r.Protections) != len(wantRules) {
		t.Fatalf("protections: %+v", r.Protections)
	}
	for i, w := range wantRules {
		p := r.Protections[i]
		to := ""
		if p.To != nil {
			to = p.To.Format(time.RFC3339)
		}
		got := rule{p.RuleID, p.From.Format(time.RFC3339), to, p.Settings == nil}
		if got != w {
			t.Errorf("protection %d: %+v, want %+v", i, got, w)
		}
	}
	if len(r.Bypasses) != 1 || r.Bypasses[0].Actor.Login != "bob" || len(r.Snapshots) != 2 || len(r.Events) != 7 {
		t.Errorf("bypasses %+v snapshots %d events %d", r.Bypasses, len(r.Snapshots), len(r.Events))
	}
}

// TestDeriveOrderIndependent: a generated history delivered shuffled and
// with duplicates gives byte-identical records.
func TestDeriveOrderIndependent(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 17))
	var es []*ce.Event
	logins := []string{"ann", "ben", "cid", "dee", "eve"}
	perms := []string{"read", "write", "maintain", "admin"}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 300 {
		at := base.Add(time.Duration(rng.IntN(1000)) * time.Minute).Format(time.RFC3339)
		id := fmt.Sprintf("e%d", i)
		switch rng.IntN(5) {
		case 0, 1:
			action := []string{"granted", "changed", "removed"}[rng.IntN(3)]
			es = append(es, ev(t, id, TypeGrantChanged, map[string]any{"scope": "repository", "repository": repo, "action": action,
				"principal": map[string]any{"kind": "user", "login": logins[rng.IntN(5)]}, "permission": perms[rng.IntN(4)],
				"actor": user(logins[rng.IntN(5)]), "changed_at": at}))
		case 2:
			s := map[string]any{"required_approving_review_count": rng.IntN(3), "dismiss_stale_reviews": rng.IntN(2) == 0, "enforce_admins": true}
			action := []string{"created", "edited", "deleted"}[rng.IntN(3)]
			d := map[string]any{"repository": repo, "action": action, "target": "main", "rule_kind": "branch_protection_rule",
				"rule_id": fmt.Sprint(rng.IntN(2)), "actor": user("ann"), "changed_at": at}
			if action != "deleted" {
				d["settings"] = s
			}
			es = append(es, ev(t, id, TypeProtectionChanged, d))
		case 3:
			es = append(es, ev(t, id, TypeSnapshot, map[string]any{"repository": repo, "taken_at": at, "protections": []any{},
				"grants": []any{map[string]any{"principal": map[string]any{"kind": "user", "login": logins[rng.IntN(5)]}, "permission": "write"}}}))
		case 4:
			es = append(es, ev(t, id, TypeBypass, map[string]any{"repository": repo, "branch": "main", "kind": "force_push", "actor": user("eve"), "pushed_at": at}))
		}
	}
	fs := facts(t, es...)
	want := Derive(repo, fs).Canonical()
	for round := range 20 {
		shuffled := append([]Fact(nil), fs...)
		shuffled = append(shuffled, fs[:rng.IntN(len(fs))]...) // duplicates
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := Derive(repo, shuffled).Canonical(); !bytes.Equal(got, want) {
			t.Fatalf("round %d: the shuffled history derives another record", round)
		}
	}
}

func TestExtractErrorsNameTheField(t *testing.T) {
	cases := []struct {
		typ   string
		data  map[string]any
		field string
	}{
		{TypeGrantChanged, map[string]any{"scope": "repository", "repository": repo, "action": "granted", "permission": "write", "changed_at": hm(9)}, "data/principal"},
		{TypeGrantChanged, map[string]any{"scope": "repository", "repository": repo, "action": "granted", "principal": map[string]any{"kind": "user", "login": "x"}, "permission": "push", "changed_at": hm(9)}, "data/permission"},
		{TypeProtectionChanged, map[string]any{"repository": repo, "action": "edited", "target": "main", "changed_at": hm(9)}, "data/settings"},
		{TypeBypass, map[string]any{"repository": repo, "branch": "main", "kind": "force_push", "pushed_at": hm(9)}, "data/actor"},
		{TypeReviewed, map[string]any{"repository": repo, "reviewer": user("r"), "period_from": hm(9), "period_to": hm(8), "signed_at": hm(9), "outcome": "approved"}, "data/period_to"},
		{TypeSnapshot, map[string]any{"repository": "payments", "taken_at": hm(9), "protections": []any{}, "grants": []any{}}, "data/repository"},
	}
	for _, c := range cases {
		_, err := Extract(ev(t, "x", c.typ, c.data))
		var ce *ce.Error
		if !errors.As(err, &ce) || ce.Field != c.field {
			t.Errorf("%s %v: error %v, want one naming %s", c.typ, c.data, err, c.field)
		}
	}
}

func mustNS(s string) int64 {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UnixNano()
}
