package dashboards_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// The scenario: "now" (the end of the time range) is T; the range is the
// 30 days before it. Three services of github.com/acme: payments (team
// payments-team) and ledger (team core) by service_teams, web with no
// mapping (team acme, the repository owner).
var T = time.Date(2026, 3, 31, 12, 0, 0, 0, time.UTC)

const (
	pay, led, web = "github.com/acme/payments", "github.com/acme/ledger", "github.com/acme/web"
	unmatchedWeb  = "unmatched:production/web/sha256:abc"
	retiredOld    = "unmatched:production/ledger/sha256:old"
)

func ago(d time.Duration) time.Time { return T.Add(-d) }

const day = 24 * time.Hour

func changeID(repo, sha string) string { return repo + "@" + sha }

type chg struct {
	repo, sha, author, mergedBy, title string
	merged                             time.Time
	approvers, staleApprovers          []string // reviews approved on the final head / made stale
	ticket                             string
	ticketApprovers                    []string
	exceptions                         []correlate.Exception
	retired, unmatched                 bool
	id                                 string // for unmatched records
}

func (c chg) ID() string {
	if c.id != "" {
		return c.id
	}
	return changeID(c.repo, c.sha)
}

func who(login string) *correlate.Identity { return &correlate.Identity{Login: login} }

// record is the change record as the correlator writes it (canonical
// JSON), so the dashboards' parsing of changes.record meets the real shape.
func (c chg) record() correlate.Record {
	r := correlate.Record{ID: c.ID(), Repository: c.repo, Commit: c.sha, Unmatched: c.unmatched, Exceptions: c.exceptions}
	if c.unmatched {
		return r
	}
	pr := &correlate.PullRequest{Number: 1, Title: c.title, Author: who(c.author), HeadCommit: "h-" + c.sha,
		MergeCommit: c.sha, MergedBy: who(c.mergedBy), MergedAt: c.merged}
	for _, a := range c.approvers {
		pr.Reviews = append(pr.Reviews, correlate.Review{Reviewer: correlate.Identity{Login: a}, Decision: "approved", HeadCommit: "h-" + c.sha})
	}
	for _, a := range c.staleApprovers {
		pr.Reviews = append(pr.Reviews, correlate.Review{Reviewer: correlate.Identity{Login: a}, Decision: "approved", HeadCommit: "old-" + c.sha, Stale: true})
	}
	r.PullRequest = pr
	if c.ticket != "" {
		tk := correlate.Ticket{Key: c.ticket, FoundIn: []string{"title"}, System: "jira", Type: "normal", Status: "approved", RequestedBy: &correlate.Identity{Login: "zed", Type: "user"}}
		for _, a := range c.ticketApprovers {
			tk.Approvals = append(tk.Approvals, correlate.Approval{By: correlate.Identity{Login: a}, At: c.merged.Add(-time.Hour)})
		}
		r.Tickets = []correlate.Ticket{tk}
	}
	if c.sha == "c1" {
		r.Runs = []correlate.Run{{Repository: c.repo, RunID: "101", Attempt: 1, Commit: c.sha, Outcome: "success", Actor: who("ci-bot")}}
		r.Tests = []correlate.Test{{TestFact: correlate.TestFact{Repository: c.repo, Commit: c.sha, RunID: "101", Suite: "unit", Outcome: "passed", Tests: 10, Passed: 10}}}
		r.Scans = []correlate.Scan{{ScanFact: correlate.ScanFact{Repository: c.repo, Commit: c.sha, Tool: "trivy", Category: "dependency", Outcome: "passed"}}}
	}
	return r
}

func exc(id, control, status, approver string, expires time.Time) correlate.Exception {
	x := correlate.Exception{ID: id, Control: control, Status: status, Reason: "hotfix", ExpiresAt: expires}
	if approver != "" {
		x.Approver = who(approver)
	}
	return x
}

var (
	c1 = chg{repo: pay, sha: "c1", author: "alice", mergedBy: "alice", title: "Add refunds", merged: ago(5 * time.Hour),
		approvers: []string{"bob"}, staleApprovers: []string{"dan"}, ticket: "CHG-1", ticketApprovers: []string{"carol"}}
	c2 = chg{repo: pay, sha: "c2", author: "dave", mergedBy: "dave", merged: ago(8 * time.Hour), approvers: []string{"bob"},
		exceptions: []correlate.Exception{exc("EXC-1", "CM-1", "granted", "erin", T.Add(10*day))}}
	c3 = chg{repo: led, sha: "c3", author: "frank", mergedBy: "frank", merged: ago(12 * time.Hour), approvers: []string{"grace"}}
	c4 = chg{repo: web, sha: "c4", author: "heidi", mergedBy: "ivan", merged: ago(30 * time.Hour), approvers: []string{"ivan"},
		ticket: "CHG-4", ticketApprovers: []string{"carol", "judy"}}
	c5 = chg{repo: led, sha: "c5", author: "frank", mergedBy: "frank", merged: ago(4 * day),
		exceptions: []correlate.Exception{exc("EXC-2", "CM-2", "granted", "erin", ago(day))}}
	c6 = chg{repo: pay, sha: "c6", author: "alice", mergedBy: "alice", merged: ago(6 * day), approvers: []string{"bob"},
		exceptions: []correlate.Exception{exc("EXC-3", "CM-4", "requested", "", time.Time{})}}
	c7 = chg{repo: web, id: unmatchedWeb, unmatched: true}
	c8 = chg{repo: led, sha: "c8", author: "grace", mergedBy: "grace", merged: ago(28*day + 2*time.Hour), approvers: []string{"frank"}}
	c9 = chg{repo: pay, sha: "c9", author: "bob", mergedBy: "bob", merged: ago(61 * day), approvers: []string{"alice"}}
	r1 = chg{repo: led, id: retiredOld, unmatched: true, retired: true}
)

type dep struct {
	c             chg
	env, svc, key string
	started       time.Time
	outcome       string
	deployer      string
	verdict       string // production only: pass, fail, pending
	failing, pend []string
	waived        []string
}

var deps = []dep{
	{c: c1, env: "production", svc: "payments", key: "id:d1", started: ago(2 * time.Hour), outcome: "success", deployer: "ci-bot", verdict: "pass"},
	{c: c1, env: "staging", svc: "payments", key: "id:d10", started: ago(3 * time.Hour), outcome: "success", deployer: "ci-bot"},
	{c: c2, env: "production", svc: "payments", key: "id:d2", started: ago(5 * time.Hour), outcome: "success", deployer: "ci-bot", verdict: "pass", waived: []string{"CM-1"}},
	{c: c3, env: "production", svc: "ledger", key: "id:d12", started: ago(6 * time.Hour), outcome: "success", deployer: "ci-bot", verdict: "fail", failing: []string{"CM-1"}},
	{c: c3, env: "production", svc: "ledger", key: "id:d3", started: ago(10 * time.Hour), outcome: "failure", deployer: "ci-bot", verdict: "fail", failing: []string{"CM-1", "CM-2"}},
	{c: c4, env: "production", svc: "web", key: "id:d4", started: ago(20 * time.Hour), outcome: "success", deployer: "deploy-bot", verdict: "pass"},
	{c: c5, env: "production", svc: "ledger", key: "id:d5", started: ago(3 * day), outcome: "success", deployer: "ci-bot", verdict: "pass", waived: []string{"CM-2"}},
	{c: c6, env: "production", svc: "payments", key: "id:d6", started: ago(5 * day), outcome: "success", deployer: "ci-bot", verdict: "pending", pend: []string{"CM-4"}},
	{c: c7, env: "production", svc: "web", key: "id:d7", started: ago(20 * day), outcome: "success", deployer: "mallory", verdict: "fail", failing: []string{"CM-1", "CM-2", "CM-6", "CM-8"}},
	{c: c8, env: "production", svc: "ledger", key: "id:d8", started: ago(25 * day), outcome: "success", deployer: "ci-bot", verdict: "pass"},
	// First seen unmatched (r1), later linked to c8: the newest version counts.
	{c: c8, env: "production", svc: "ledger", key: "id:dep-old", started: ago(28 * day), outcome: "success", deployer: "ci-bot"},
	{c: c9, env: "production", svc: "payments", key: "id:d9", started: ago(60 * day), outcome: "success", deployer: "ci-bot", verdict: "pass"},
}

type res struct {
	c                 chg
	control, status   string
	at                time.Time
	deadline          time.Time
	exception, reason string
}

var results = []res{
	{c: c1, control: "CM-1", status: "pass", at: ago(2 * time.Hour)}, {c: c1, control: "CM-2", status: "pass", at: ago(2 * time.Hour)},
	{c: c1, control: "CM-3", status: "pass", at: ago(2 * time.Hour), reason: "author, reviewers, approver and deployer are distinct"},
	{c: c2, control: "CM-1", status: "waived", at: ago(5 * time.Hour), exception: "EXC-1"}, {c: c2, control: "CM-2", status: "pass", at: ago(5 * time.Hour)},
	{c: c2, control: "CM-3", status: "pass", at: ago(5 * time.Hour)},
	{c: c3, control: "CM-1", status: "fail", at: ago(10 * time.Hour), reason: "no approved change ticket"},
	{c: c3, control: "CM-2", status: "fail", at: ago(10 * time.Hour), reason: "the approval is stale"},
	{c: c3, control: "CM-2", status: "pass", at: ago(time.Hour)},
	{c: c3, control: "CM-3", status: "pass", at: ago(10 * time.Hour)},
	{c: c4, control: "CM-1", status: "pass", at: ago(20 * time.Hour)}, {c: c4, control: "CM-2", status: "pass", at: ago(20 * time.Hour)},
	{c: c4, control: "CM-3", status: "pass", at: ago(20 * time.Hour)},
	{c: c5, control: "CM-1", status: "pass", at: ago(3 * day)}, {c: c5, control: "CM-2", status: "waived", at: ago(3 * day), exception: "EXC-2"},
	{c: c5, control: "CM-5", status: "pending", at: ago(3 * day), deadline: T.Add(30 * time.Hour)},
	{c: c6, control: "CM-4", status: "pending", at: ago(5 * day), deadline: T.Add(2 * time.Hour)},
	{c: c7, control: "CM-8", status: "fail", at: ago(20 * day), reason: "the deployment matches no change"},
	{c: r1, control: "CM-8", status: "fail", at: ago(40 * day), reason: "the deployment matches no change"},
	{c: c8, control: "CM-1", status: "pass", at: ago(25 * day)},
	{c: c9, control: "CM-1", status: "pass", at: ago(60 * day)},
	// Evaluated after the end of the range: not in force at T.
	{c: c9, control: "CM-2", status: "fail", at: T.Add(time.Hour), reason: "from the future"},
}

func fill(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	var changes []store.ChangeRow
	envs := map[string][]string{}
	svcs := map[string][]string{}
	for _, d := range deps {
		envs[d.c.ID()] = appendNew(envs[d.c.ID()], d.env)
		svcs[d.c.ID()] = appendNew(svcs[d.c.ID()], d.svc)
	}
	hashes := map[string]string{}
	for _, c := range []chg{c1, c2, c3, c4, c5, c6, c7, c8, c9, r1} {
		rec := c.record()
		hashes[c.ID()] = rec.Hash()
		row := store.ChangeRow{ChangeID: c.ID(), Repository: c.repo, Commit: c.sha, PRTitle: c.title, Author: c.author,
			MergedBy: c.mergedBy, Unmatched: c.unmatched, Retired: c.retired, Environments: envs[c.ID()], Services: svcs[c.ID()],
			Record: string(rec.Canonical()), RecordHash: rec.Hash(), EventCount: 12, Version: 2<<62 | 12<<32, UpdatedAt: T}
		if !c.unmatched {
			row.PRNumber, row.MergedNs = 1, c.merged.UnixNano()
		}
		if c.ticket != "" {
			row.TicketKeys = []string{c.ticket}
		}
		// An older version with other content: FINAL must hide it.
		old := row
		old.Version, old.PRTitle, old.Author = 1, "old title", "nobody"
		changes = append(changes, old, row)
	}
	if err := st.InsertChanges(ctx, changes); err != nil {
		t.Fatal(err)
	}

	var dr []store.DeploymentRow
	var vr []store.DeploymentVerdictRow
	for _, d := range deps {
		row := store.DeploymentRow{Environment: d.env, Service: d.svc, DeploymentKey: d.key, ChangeID: d.c.ID(), Unmatched: d.c.unmatched,
			Repository: d.c.repo, Commit: d.c.sha, Deployer: d.deployer, Outcome: d.outcome,
			StartedNs: d.started.UnixNano(), FinishedNs: d.started.Add(10 * time.Minute).UnixNano(), Version: 2<<62 | 12<<32, UpdatedAt: T}
		if !d.c.unmatched {
			row.MatchedBy = []string{"commit"}
		}
		if d.key == "id:dep-old" {
			old := row
			old.ChangeID, old.Unmatched, old.MatchedBy, old.Version = retiredOld, true, nil, 1
			dr = append(dr, old)
		}
		dr = append(dr, row)
		if d.verdict != "" {
			vr = append(vr, store.DeploymentVerdictRow{Environment: d.env, Service: d.svc, DeploymentKey: d.key, ChangeID: d.c.ID(),
				Repository: d.c.repo, Commit: d.c.sha, Deployer: d.deployer, DeployedNs: d.started.UnixNano(), Verdict: d.verdict,
				Failing: d.failing, Pending: d.pend, Waived: d.waived, Results: "[]", RecordHash: hashes[d.c.ID()], DecidedAt: T})
		}
	}
	if err := st.InsertDeployments(ctx, dr); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertDeploymentVerdicts(ctx, vr); err != nil {
		t.Fatal(err)
	}

	titles := map[string]string{"CM-1": "Approved change ticket", "CM-2": "Peer review", "CM-3": "Segregation of duties",
		"CM-4": "Tests passed", "CM-5": "Security scans", "CM-8": "No unauthorized change"}
	var cr []store.ControlResultRow
	for _, r := range results {
		row := store.ControlResultRow{ChangeID: r.c.ID(), ControlID: r.control, ControlTitle: titles[r.control], Severity: "high",
			Status: r.status, ExceptionID: r.exception, Repository: r.c.repo, Environments: envs[r.c.ID()], Services: svcs[r.c.ID()],
			RecordHash: hashes[r.c.ID()], BundleHash: "b", Trigger: "update", EvaluatedNs: r.at.UnixNano()}
		if r.reason != "" {
			row.Reasons = []string{r.reason}
		}
		if !r.deadline.IsZero() {
			row.DeadlineNs = r.deadline.UnixNano()
		}
		if r.c.ID() == retiredOld {
			row.Environments, row.Services = []string{"production"}, []string{"ledger"}
		}
		cr = append(cr, row)
	}
	if err := st.InsertControlResults(ctx, cr); err != nil {
		t.Fatal(err)
	}

	// The team mapping: payments and ledger; web is left to its owner.
	b, err := st.Conn().PrepareBatch(ctx, "INSERT INTO service_teams (service, team)")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][2]string{{"payments", "old-team"}, {"ledger", "core"}} {
		if err := b.Append(m[0], m[1]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	// payments moves to payments-team: the later row wins.
	later, err := st.Conn().PrepareBatch(ctx, "INSERT INTO service_teams (service, team, updated_at)")
	if err != nil {
		t.Fatal(err)
	}
	if err := later.Append("payments", "payments-team", time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := later.Send(); err != nil {
		t.Fatal(err)
	}
}

func appendNew(ss []string, s string) []string {
	for _, x := range ss {
		if x == s {
			return ss
		}
	}
	return append(ss, s)
}

func rows(rs ...[]string) [][]string { return rs }
func r(vs ...any) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = fmt.Sprint(v)
	}
	return out
}

func ts(t time.Time) string { return t.UTC().Format(time.DateTime) }

// expectation is what one panel shows for one selection of variables.
type expectation struct {
	sel  map[string]selection
	rows [][]string
}

func all() selection               { return selection{all: true} }
func one(v ...string) selection    { return selection{values: v} }
func dayOf(d time.Duration) string { return ts(ago(d).Truncate(day)) }

// expected is, per dashboard uid and panel title, what each panel shows
// for the scenario, worked out by hand from the tables above.
func expected() map[string]map[string][]expectation {
	c1id := c1.ID()
	return map[string]map[string][]expectation{
		"evidence-posture": {
			// 24 h: d1, d2 pass; d12, d3 fail; d4 pass: 3 of 5.
			"Passing, last 24 h": {{rows: rows(r(60))}, {sel: map[string]selection{"service": one("payments")}, rows: rows(r(100))},
				{sel: map[string]selection{"team": one("core")}, rows: rows(r(0))}},
			// 7 d adds d5 pass and d6 pending: 4 of 7.
			"Passing, last 7 days": {{rows: rows(r(57.1))}},
			// 30 d adds d7 fail and d8 pass: 5 of 9.
			"Passing, last 30 days": {{rows: rows(r(55.6))}, {sel: map[string]selection{"repository": one(web)}, rows: rows(r(50))}},
			// Quarter (from 2026-01-01) adds d9 pass: 6 of 10.
			"Passing, quarter to date": {{rows: rows(r(60))}},
			// c3 CM-1 and the unmatched web deployment's CM-8; c3's CM-2 passed
			// later; the retired record's CM-8 does not count.
			"Open violations": {{rows: rows(r(2))}, {sel: map[string]selection{"team": one("acme")}, rows: rows(r(1))}},
			// d7; dep-old was unmatched but is now c8's.
			"Unmatched production deployments": {{rows: rows(r(1))}},
			// c6 CM-4 due in 2 h; c5 CM-5 due in 30 h is not near.
			"Pending controls nearing their deadline": {{rows: rows(r(c6.ID(), "CM-4", ts(T.Add(2*time.Hour)), 2))}},
			"Passing share per day": {{rows: rows(
				r(dayOf(25*day), 100), r(dayOf(20*day), 0), r(dayOf(5*day), 0), r(dayOf(3*day), 100),
				r(dayOf(20*time.Hour), 100), r(dayOf(2*time.Hour), 50))}},
		},
		"evidence-controls": {
			"Control ${control} at deployment, per day": {{rows: rows(
				r(dayOf(25*day), 1, 0, 0, 0), r(dayOf(20*day), 0, 1, 0, 0), r(dayOf(5*day), 1, 0, 0, 0),
				r(dayOf(3*day), 1, 0, 0, 0), r(dayOf(20*time.Hour), 1, 0, 0, 0), r(dayOf(2*time.Hour), 1, 2, 0, 1))},
				{sel: map[string]selection{"control": one("CM-2")}, rows: rows(
					r(dayOf(25*day), 1, 0, 0, 0), r(dayOf(20*day), 0, 1, 0, 0), r(dayOf(5*day), 1, 0, 0, 0),
					r(dayOf(3*day), 0, 0, 0, 1), r(dayOf(20*time.Hour), 1, 0, 0, 0), r(dayOf(2*time.Hour), 3, 1, 0, 0))}},
			"Verdicts in force per control": {{rows: rows(
				r("CM-1", "Approved change ticket", 5, 1, 0, 1), r("CM-2", "Peer review", 4, 0, 0, 1),
				r("CM-3", "Segregation of duties", 4, 0, 0, 0), r("CM-4", "Tests passed", 0, 0, 1, 0),
				r("CM-5", "Security scans", 0, 0, 1, 0), r("CM-8", "No unauthorized change", 0, 1, 0, 0))},
				// Staging: only c1 was deployed there.
				{sel: map[string]selection{"environment": one("staging")}, rows: rows(
					r("CM-1", "Approved change ticket", 1, 0, 0, 0), r("CM-2", "Peer review", 1, 0, 0, 0), r("CM-3", "Segregation of duties", 1, 0, 0, 0))}},
			"Top failing services": {{rows: rows(r("ledger", 2, 4), r("web", 1, 2))}},
			"Top failing teams":    {{rows: rows(r("core", 2, 4), r("acme", 1, 2))}, {sel: map[string]selection{"service": one("payments")}, rows: nil}},
			"Failing changes": {{rows: rows(r(c3.ID(), "CM-1", led, "no approved change ticket"),
				r(unmatchedWeb, "CM-8", web, "the deployment matches no change"))}},
		},
		"evidence-change-trace": {
			"Change": {{sel: map[string]selection{"change": one(c1id)}, rows: rows(r(c1id, pay, "c1", 1, "Add refunds", "alice", "alice",
				ts(c1.merged), "CHG-1", 0, 0, 0, 12, c1.record().Hash()))}},
			"Reviews": {{sel: map[string]selection{"change": one(c1id)}, rows: rows(r("bob", "approved", "h-c1", "false"), r("dan", "approved", "old-c1", "true"))}},
			"Tickets and approvals": {{sel: map[string]selection{"change": one(c1id)}, rows: rows(r("CHG-1", "normal", "approved", "carol"))},
				{sel: map[string]selection{"change": one(c4.ID())}, rows: rows(r("CHG-4", "normal", "approved", "carol, judy"))}},
			"Builds, tests and scans": {{sel: map[string]selection{"change": one(c1id)}, rows: rows(
				r("build", "101", "success"), r("scan", "trivy dependency", "passed"), r("test", "unit", "passed"))}},
			"Deployments": {{sel: map[string]selection{"change": one(c1id)}, rows: rows(
				r("staging", "payments", "id:d10", "ci-bot", "success", ts(ago(3*time.Hour)), ts(ago(3*time.Hour).Add(10*time.Minute)), "commit"),
				r("production", "payments", "id:d1", "ci-bot", "success", ts(ago(2*time.Hour)), ts(ago(2*time.Hour).Add(10*time.Minute)), "commit"))}},
			"Controls in force": {{sel: map[string]selection{"change": one(c3.ID())}, rows: rows(
				r("CM-1", "fail", "no approved change ticket", ""), r("CM-2", "pass", "", ""), r("CM-3", "pass", "", ""))}},
			"Verdicts at deployment": {{sel: map[string]selection{"change": one(c3.ID())}, rows: rows(
				r(ts(ago(10*time.Hour)), "production", "ledger", "fail", "CM-1, CM-2", "", "", "ci-bot"),
				r(ts(ago(6*time.Hour)), "production", "ledger", "fail", "CM-1", "", "", "ci-bot"))}},
		},
		"evidence-segregation": {
			"Who approved what": {{rows: rows(
				r(c3.ID(), "frank", "grace", "", "frank", "ci-bot", "pass"),
				r(c5.ID(), "frank", "", "", "frank", "ci-bot", ""),
				r(c8.ID(), "grace", "frank", "", "grace", "ci-bot", ""),
				r(c1.ID(), "alice", "bob, dan", "carol", "alice", "ci-bot", "pass"),
				r(c2.ID(), "dave", "bob", "", "dave", "ci-bot", "pass"),
				r(c6.ID(), "alice", "bob", "", "alice", "ci-bot", ""),
				r(c4.ID(), "heidi", "ivan", "carol, judy", "ivan", "deploy-bot", "pass"),
				r(unmatchedWeb, "", "", "", "", "mallory", ""))}},
			"Exceptions": {{rows: rows(
				r("EXC-1", "CM-1", "active", "erin", ts(T.Add(10*day)), c2.ID()),
				r("EXC-2", "CM-2", "expired", "erin", ts(ago(day)), c5.ID()),
				r("EXC-3", "CM-4", "requested", "", "1970-01-01 00:00:00", c6.ID()))}},
			"Active exceptions":  {{rows: rows(r(1))}, {sel: map[string]selection{"service": one("ledger")}, rows: rows(r(0))}},
			"Expired exceptions": {{rows: rows(r(1))}},
		},
		"evidence-delivery": {
			// 9 successful production deployments finished in 30 days.
			"Deployment frequency": {{rows: rows(r(0.3))}},
			// Lead times (h): c1 3, c2 3, c3 2, c4 10, c5 24, c6 24, c8 2 -> median 3.
			"Lead time for changes": {{rows: rows(r(3))}},
			// d3 failed of 10 finished.
			"Change failure rate": {{rows: rows(r(10))}},
			// d3 failed at T-9h50, d12 succeeded at T-5h50.
			"Time to restore": {{rows: rows(r(4))}},
			"Deployments per day": {{rows: rows(
				r(dayOf(28*day), 1, 0), r(dayOf(25*day), 1, 0), r(dayOf(20*day), 1, 0), r(dayOf(5*day), 1, 0),
				r(dayOf(3*day), 1, 0), r(dayOf(20*time.Hour), 1, 0), r(dayOf(2*time.Hour), 3, 1))}},
		},
	}
}

// TestPanelsShowScenario runs every panel's query, expanded as Grafana and
// the plugin expand it, against ClickHouse filled with the scenario, and
// compares what it returns with what the panel must show. A panel with no
// expectation fails the test.
func TestPanelsShowScenario(t *testing.T) {
	st := testenv.Store(t)
	fill(t, st)
	ctx := context.Background()
	from := T.Add(-30 * day)
	want := expected()

	for _, p := range parse(t) {
		exp, ok := want[p.file.UID]
		if !ok {
			t.Errorf("dashboard %s has no expectations", p.file.UID)
			continue
		}
		vars := map[string]dashboard.VariableModel{}
		defaults := map[string]selection{}
		for _, v := range p.model.Templating.List {
			vars[v.Name] = v
			switch {
			case v.Type == dashboard.VariableTypeTextbox:
				defaults[v.Name] = one("")
			case deref(v.IncludeAll) && v.Current != nil && reflect.DeepEqual(v.Current.Value.ArrayOfString, []string{"$__all"}):
				defaults[v.Name] = all()
			case v.Current != nil && v.Current.Value.String != nil:
				defaults[v.Name] = one(*v.Current.Value.String)
			default:
				t.Fatalf("%s: variable %s has no usable default", p.file.File, v.Name)
			}
			if v.Type == dashboard.VariableTypeQuery {
				opts, err := variableOptions(ctx, st, v)
				if err != nil {
					t.Fatalf("%s: %v", p.file.File, err)
				}
				if wantOpts := variableWant[v.Name]; !reflect.DeepEqual(opts, wantOpts) {
					t.Errorf("%s: variable %s offers %q, want %q", p.file.File, v.Name, opts, wantOpts)
				}
				if d := defaults[v.Name]; !d.all && !contains(opts, d.values[0]) {
					t.Errorf("%s: variable %s defaults to %q, not among its options", p.file.File, v.Name, d.values[0])
				}
			}
		}
		seen := map[string]bool{}
		for _, pn := range p.panels {
			cases := exp[pn.title]
			seen[pn.title] = true
			if len(cases) == 0 {
				t.Errorf("%s: panel %q has no assertion", p.file.File, pn.title)
				continue
			}
			for _, c := range cases {
				sel := map[string]selection{}
				for k, v := range defaults {
					sel[k] = v
				}
				for k, v := range c.sel {
					if _, ok := vars[k]; !ok {
						t.Fatalf("%s panel %q: expectation selects unknown variable %s", p.file.File, pn.title, k)
					}
					sel[k] = v
				}
				sql, err := expandVariables(pn.query.RawSQL, vars, sel)
				if err == nil {
					sql, err = expandMacros(sql, from, T)
				}
				if err != nil {
					t.Errorf("%s panel %q: %v", p.file.File, pn.title, err)
					continue
				}
				got, cols, err := run(ctx, st, sql)
				if err != nil {
					t.Errorf("%s panel %q (%v): %v\n%s", p.file.File, pn.title, c.sel, err, sql)
					continue
				}
				if pn.kind == "timeseries" && (len(cols) == 0 || cols[0] != "time") {
					t.Errorf("%s panel %q: a time series needs a first column named time, got %q", p.file.File, pn.title, cols)
				}
				if contains(cols, "change_id") && pn.kind == "table" && p.file.UID != traceUID && len(pn.links) == 0 {
					t.Errorf("%s panel %q shows change ids without a link to the change trace", p.file.File, pn.title)
				}
				if !reflect.DeepEqual(got, c.rows) && !(len(got) == 0 && len(c.rows) == 0) {
					t.Errorf("%s panel %q (%v) shows\n  %q (%s)\nwant\n  %q", p.file.File, pn.title, c.sel, got, strings.Join(cols, ", "), c.rows)
				}
			}
		}
		for title := range exp {
			if !seen[title] {
				t.Errorf("%s: expectation for panel %q, which does not exist", p.file.File, title)
			}
		}
	}
}

var variableWant = map[string][]string{
	"service":     {"ledger", "payments", "web"},
	"repository":  {led, pay, web},
	"team":        {"acme", "core", "payments-team"},
	"environment": {"production", "staging"},
	"control":     {"CM-1", "CM-2", "CM-3", "CM-4", "CM-5", "CM-8"},
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
