package auditorguide_test

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
)

// The scenario: changes of github.com/acme/payments in the first quarter
// of 2026 (the cookbook's period), one per case of the cookbook, plus what
// the queries must leave out: older versions of rows, a retired record, a
// change deployed to staging in the period and to production after it, a
// production deployment before the period, a record altered after it was
// written.
//
//	A  PR 101  ticket approved, reviewed, deployed by the pipeline: passes
//	           (CM-1 failed before its ticket was approved, passes now); an
//	           older version of its record (staging only) is stored too, and
//	           its production deployment was first an unmatched record (R),
//	           retired since.
//	B  PR 102  ticket never approved: CM-1 fails; a review dismissal that
//	           arrived after its verdict was decided would make CM-2 fail
//	           too (late evidence; the verdict stands)
//	C  PR 103  no review: CM-2 fails (waived for a while by EXC-11, failing
//	           again since)
//	D  PR 104  the author approved the ticket: CM-3 fails (self-approval)
//	E  PR 105  emergency ticket approved 4h after the deployment (two
//	           approvers): pending at deployment, passes now
//	F  PR 106  emergency ticket never approved: pending at deployment,
//	           CM-1 failed when the window closed
//	G  PR 107  deployed to production by a person (mallory): CM-7 fails
//	U          a production deployment matching no change (ops-bob): CM-8
//	X  PR 108  CM-4 waived by EXC-8 (expires 2030), CM-5 by EXC-10 (expired
//	           2026-03-15); EXC-07 only requested; deployed by the
//	           workflow's own identity (github-actions:release, triggered
//	           by bob): a pipeline's deployment
//	S  PR 109  staging in February, production in May: not in the period;
//	           CM-1 and CM-3 (its author reviewed it) fail
//	O  PR  99  production in December 2025: not in the period; CM-2 fails
//	H  PR 111  staging only; its stored record was edited after it was
//	           written (record_hash no longer matches)

const (
	repo    = "github.com/acme/payments"
	service = "payments"
	bot     = "github-actions[bot]"
	// pipeline is a workflow's own identity, as evidence emit deploy
	// reports a GitHub Actions deploy step.
	pipeline = "github-actions:release"
)

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func sha(name string) string {
	s := sha1.Sum([]byte(name))
	return hex.EncodeToString(s[:])
}

func id(login string) *correlate.Identity { return &correlate.Identity{Login: login} }

func refs(name string) []correlate.EventRef {
	return []correlate.EventRef{{Source: "https://scenario.example/" + name, ID: name}}
}

type dep struct {
	env, id, deployer string
	start             string
}

type change struct {
	name       string
	pr         int64
	author     string
	reviewers  []string
	tickets    []correlate.Ticket
	deps       []dep
	exceptions []correlate.Exception
}

func (c change) commit() string { return sha(c.name) }
func (c change) id() string     { return repo + "@" + c.commit() }

func ticket(key, typ, system string, approvals ...correlate.Approval) correlate.Ticket {
	return correlate.Ticket{Key: key, FoundIn: []string{"title"}, System: system, Type: typ, Status: "Implement",
		History: []correlate.StatusChange{}, Approvals: approvals, Rejections: []correlate.Approval{}}
}

func approval(login, when string) correlate.Approval {
	return correlate.Approval{By: correlate.Identity{Login: login}, At: at(when), Events: refs("approval-" + login + "-" + when)}
}

func deployment(c change, d dep) correlate.Deployment {
	start := at(d.start)
	out := correlate.Deployment{
		Environment: d.env, Service: service, DeploymentID: d.id, Repository: repo, Commit: c.commit(),
		RunID: "run-" + d.id, Deployer: id(d.deployer), StartedAt: start, FinishedAt: start.Add(5 * time.Minute),
		Outcome: "success", MatchedBy: []string{"commit"}, Events: refs("deploy-" + d.id),
	}
	if d.deployer == pipeline {
		out.System, out.Pipeline, out.Trigger, out.TriggeredBy = "github-actions", "release", "push", id("bob")
		out.Deployer.Type = "service"
	}
	return out
}

func (c change) record() correlate.Record {
	r := correlate.Record{ID: c.id(), Repository: repo, Commit: c.commit(),
		Commits: []correlate.Commit{{SHA: c.commit(), Roles: []string{"merge_commit"}}},
		Tickets: c.tickets, Exceptions: c.exceptions}
	pr := &correlate.PullRequest{Number: c.pr, Title: fmt.Sprintf("Change %s (#%d)", c.name, c.pr), Author: id(c.author),
		TargetBranch: "main", HeadCommit: sha(c.name + "-head"), MergeCommit: c.commit(), MergedBy: id(c.author),
		MergedAt: at("2026-01-05T10:00:00Z"), Events: refs("pr-" + c.name)}
	for _, rv := range c.reviewers {
		pr.Reviews = append(pr.Reviews, correlate.Review{Reviewer: correlate.Identity{Login: rv}, Decision: "approved",
			HeadCommit: pr.HeadCommit, Events: refs("review-" + c.name + "-" + rv)})
	}
	r.PullRequest = pr
	for _, d := range c.deps {
		r.Deployments = append(r.Deployments, deployment(c, d))
	}
	return r
}

func result(change, control, status, when string, reasons ...string) store.ControlResultRow {
	return store.ControlResultRow{ChangeID: change, ControlID: control, ControlTitle: control, Severity: "high", Status: status,
		Reasons: reasons, Repository: repo, Environments: []string{"production"}, Services: []string{service},
		BundleHash: "bundle", Trigger: "update", EvaluatedNs: at(when).UnixNano()}
}

func waived(change, control, exception, when string) store.ControlResultRow {
	r := result(change, control, "waived", when, "waived by exception "+exception)
	r.ExceptionID = exception
	return r
}

func verdict(c change, d dep, v string, failing, pending, waived []string) store.DeploymentVerdictRow {
	return store.DeploymentVerdictRow{Environment: d.env, Service: service, DeploymentKey: "id:" + d.id, DeploymentID: d.id,
		ChangeID: c.id(), Repository: repo, Commit: c.commit(), Deployer: d.deployer, DeployedNs: at(d.start).UnixNano(),
		Verdict: v, Failing: failing, Pending: pending, Waived: waived, Results: "[]", BundleHash: "bundle",
		DecidedAt: at(d.start)}
}

// scenario is what the cookbook's expectations are built from.
type scenario struct {
	changes     map[string]change
	hashes      map[string]string // change name -> record_hash of its newest version
	tampered    store.ChangeRow
	unmatchedID string
}

var (
	depA  = dep{"production", "dep-a", bot, "2026-02-10T09:00:00Z"}
	depB  = dep{"production", "dep-b", bot, "2026-02-11T10:00:00Z"}
	depC  = dep{"production", "dep-c", bot, "2026-02-12T10:00:00Z"}
	depD  = dep{"production", "dep-d", bot, "2026-02-14T10:00:00Z"}
	depE  = dep{"production", "dep-e", bot, "2026-02-20T10:00:00Z"}
	depF  = dep{"production", "dep-f", bot, "2026-03-01T10:00:00Z"}
	depG  = dep{"production", "dep-g", "mallory", "2026-03-05T10:00:00Z"}
	depU  = dep{"production", "dep-u", "ops-bob", "2026-03-10T22:00:00Z"}
	depX  = dep{"production", "dep-x", pipeline, "2026-03-12T10:00:00Z"}
	depS1 = dep{"staging", "dep-s-stg", "dave", "2026-02-15T10:00:00Z"}
	depS2 = dep{"production", "dep-s-prd", bot, "2026-05-02T10:00:00Z"}
	depO  = dep{"production", "dep-o", bot, "2025-12-15T10:00:00Z"}
)

// fillScenario writes the scenario through the store's inserts, as the
// correlator's sink and the evaluation stage write.
func fillScenario(t *testing.T, st *store.Store) scenario {
	t.Helper()
	ctx := context.Background()
	now := at("2026-04-02T00:00:00Z")
	sc := scenario{changes: map[string]change{}, hashes: map[string]string{}}
	add := func(c change) change { sc.changes[c.name] = c; return c }

	a := add(change{name: "A", pr: 101, author: "alice", reviewers: []string{"bob"},
		tickets: []correlate.Ticket{ticket("CHG-101", "normal", "servicenow", approval("carol", "2026-02-09T15:00:00Z"))},
		deps:    []dep{{"staging", "dep-a-stg", bot, "2026-02-09T13:00:00Z"}, depA}})
	b := add(change{name: "B", pr: 102, author: "alice", reviewers: []string{"bob"},
		tickets: []correlate.Ticket{ticket("CHG-102", "normal", "servicenow")}, deps: []dep{depB}})
	c := add(change{name: "C", pr: 103, author: "dave",
		tickets: []correlate.Ticket{ticket("CHG-103", "normal", "servicenow", approval("carol", "2026-02-11T16:00:00Z"))}, deps: []dep{depC}})
	d := add(change{name: "D", pr: 104, author: "erin", reviewers: []string{"frank"},
		tickets: []correlate.Ticket{ticket("CHG-104", "normal", "servicenow", approval("erin", "2026-02-13T10:00:00Z"))}, deps: []dep{depD}})
	e := add(change{name: "E", pr: 105, author: "alice", reviewers: []string{"bob"},
		tickets: []correlate.Ticket{ticket("CHG-105", "emergency", "servicenow", approval("carol", "2026-02-20T14:00:00Z"), approval("dan", "2026-02-20T15:00:00Z"))},
		deps:    []dep{depE}})
	f := add(change{name: "F", pr: 106, author: "dave", reviewers: []string{"bob"},
		tickets: []correlate.Ticket{ticket("CHG-106", "emergency", "jira")}, deps: []dep{depF}})
	g := add(change{name: "G", pr: 107, author: "bob", reviewers: []string{"alice"},
		tickets: []correlate.Ticket{ticket("CHG-107", "normal", "servicenow", approval("carol", "2026-03-04T10:00:00Z"))}, deps: []dep{depG}})
	x := add(change{name: "X", pr: 108, author: "alice", reviewers: []string{"bob"},
		tickets: []correlate.Ticket{ticket("CHG-108", "normal", "servicenow", approval("carol", "2026-03-11T10:00:00Z"))}, deps: []dep{depX},
		exceptions: []correlate.Exception{
			{ID: "EXC-07", Control: "CM-6", Status: "requested", Scope: correlate.ExceptionScope{Repository: repo, Change: 108},
				Reason: "provenance attestation being set up", RequestedBy: id("alice"), RequestedAt: at("2026-03-11T09:00:00Z"), Events: refs("exc-07")},
			{ID: "EXC-10", Control: "CM-5", Status: "granted", Scope: correlate.ExceptionScope{Repository: repo, Change: 108},
				Reason: "scanner outage", RequestedBy: id("alice"), RequestedAt: at("2026-03-11T09:00:00Z"), Approver: id("carol"),
				GrantedAt: at("2026-03-11T12:00:00Z"), ExpiresAt: at("2026-03-15T00:00:00Z"), Events: refs("exc-10")},
			{ID: "EXC-8", Control: "CM-4", Status: "granted", Scope: correlate.ExceptionScope{Repository: repo, Change: 108},
				Reason: "flaky suite quarantined", RequestedBy: id("alice"), RequestedAt: at("2026-03-11T09:00:00Z"), Approver: id("carol"),
				GrantedAt: at("2026-03-11T12:00:00Z"), ExpiresAt: at("2030-12-31T00:00:00Z"), Events: refs("exc-8")},
		}})
	s := add(change{name: "S", pr: 109, author: "dave", reviewers: []string{"dave"},
		tickets: []correlate.Ticket{ticket("CHG-109", "normal", "servicenow")}, deps: []dep{depS1, depS2}})
	o := add(change{name: "O", pr: 99, author: "alice", tickets: []correlate.Ticket{ticket("CHG-99", "normal", "servicenow", approval("carol", "2025-12-14T10:00:00Z"))},
		deps: []dep{depO}})
	h := add(change{name: "H", pr: 111, author: "alice", reviewers: []string{"bob"}, deps: []dep{{"staging", "dep-h", bot, "2026-03-20T10:00:00Z"}}})

	var changeRows []store.ChangeRow
	var depRows []store.DeploymentRow
	write := func(r correlate.Record) store.ChangeRow {
		cr, dr, err := chsink.Rows(r, now)
		if err != nil {
			t.Fatal(err)
		}
		changeRows = append(changeRows, cr)
		depRows = append(depRows, dr...)
		return cr
	}

	// R: A's production deployment first matched no change; then it was
	// linked to A and R retired (a last row with the tombstone version).
	ra := a.record()
	rec := correlate.Record{ID: "unmatched:production/payments/" + repo + "@" + a.commit(), Repository: repo, Commit: a.commit(), Unmatched: true,
		Commits: []correlate.Commit{{SHA: a.commit(), Roles: []string{"deployed"}}}, Deployments: []correlate.Deployment{deployment(a, depA)}}
	rec.Deployments[0].MatchedBy = []string{}
	retired := write(rec)
	retired.Retired, retired.Version = true, chsink.Tombstone(chsink.ClassOf(rec))
	changeRows = append(changeRows, retired)
	// A's older version: before its production deployment.
	older := ra
	older.Deployments = older.Deployments[:1]
	write(older)

	for _, c := range []change{a, b, c, d, e, f, g, x, s, o, h} {
		cr := write(c.record())
		sc.hashes[c.name] = cr.RecordHash
	}
	// U: a production deployment that matches no change.
	digest := "sha256:" + strings.Repeat("5e", 32)
	u := correlate.Record{ID: "unmatched:production/payments/" + digest, Unmatched: true,
		Deployments: []correlate.Deployment{{Environment: "production", Service: service, DeploymentID: depU.id, Digest: digest,
			Deployer: id(depU.deployer), StartedAt: at(depU.start), FinishedAt: at(depU.start).Add(time.Minute), Outcome: "success",
			MatchedBy: []string{}, Events: refs("deploy-dep-u")}}}
	sc.unmatchedID = u.ID
	sc.hashes["U"] = write(u).RecordHash

	// H's newest row is edited after it was written: its record no longer
	// hashes to record_hash.
	for i := range changeRows {
		if changeRows[i].ChangeID == h.id() {
			changeRows[i].Record = strings.Replace(changeRows[i].Record, "Change H (#111)", "Change H (#111), edited", 1)
			sc.tampered = changeRows[i]
		}
	}
	if sc.tampered.ChangeID == "" {
		t.Fatal("H not written")
	}
	if err := st.InsertChanges(ctx, changeRows); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertDeployments(ctx, depRows); err != nil {
		t.Fatal(err)
	}

	uID := u.ID
	results := []store.ControlResultRow{
		result(a.id(), "CM-1", "fail", "2026-02-08T10:00:00Z", "ticket CHG-101 has no approval"),
		result(a.id(), "CM-1", "pass", "2026-02-10T09:00:00Z", "ticket CHG-101 approved by carol at 2026-02-09T15:00:00Z (deployment at 2026-02-10T09:00:00Z)"),
		result(a.id(), "CM-2", "pass", "2026-02-10T09:00:00Z", "approved by bob on the final head"),
		result(a.id(), "CM-3", "pass", "2026-02-10T09:00:00Z", "author: alice", "reviewer: bob"),
		result(b.id(), "CM-1", "fail", "2026-02-11T10:00:00Z", "ticket CHG-102 has no approval"),
		result(b.id(), "CM-2", "pass", "2026-02-11T10:00:00Z", "approved by bob on the final head"),
		result(c.id(), "CM-1", "pass", "2026-02-12T10:00:00Z", "ticket CHG-103 approved by carol at 2026-02-11T16:00:00Z (deployment at 2026-02-12T10:00:00Z)"),
		result(c.id(), "CM-2", "fail", "2026-02-12T10:00:00Z", "pull request #103 has no approving review"),
		waived(c.id(), "CM-2", "EXC-11", "2026-02-13T09:00:00Z"),
		result(c.id(), "CM-2", "fail", "2026-03-01T00:00:00Z", "pull request #103 has no approving review"),
		result(d.id(), "CM-3", "fail", "2026-02-14T10:00:00Z", "author erin is also ticket CHG-104 approver"),
		result(e.id(), "CM-1", "pending", "2026-02-20T10:00:00Z", "emergency change deployed at 2026-02-20T10:00:00Z: ticket approval expected by 2026-02-21T10:00:00Z"),
		result(e.id(), "CM-1", "pass", "2026-02-20T14:00:00Z", "emergency ticket CHG-105 approved by carol at 2026-02-20T14:00:00Z, within 24h0m0s of the deployment at 2026-02-20T10:00:00Z"),
		result(f.id(), "CM-1", "pending", "2026-03-01T10:00:00Z", "emergency change deployed at 2026-03-01T10:00:00Z: ticket approval expected by 2026-03-02T10:00:00Z"),
		result(f.id(), "CM-1", "fail", "2026-03-02T10:00:01Z", "emergency ticket CHG-106 not approved within 24h0m0s after the deployment at 2026-03-01T10:00:00Z"),
		result(g.id(), "CM-3", "pass", "2026-03-05T10:00:00Z", "author: bob", "reviewer: alice", "deployer: mallory"),
		result(g.id(), "CM-7", "fail", "2026-03-05T10:00:00Z", "deployment production/payments dep-g by mallory, not a pipeline identity"),
		result(uID, "CM-1", "fail", "2026-03-10T22:00:00Z", "no change ticket linked to the change"),
		result(uID, "CM-2", "fail", "2026-03-10T22:00:00Z", "deployment matches no change record: no review"),
		result(uID, "CM-3", "fail", "2026-03-10T22:00:00Z", "no approval by anyone other than the author (review or ticket)"),
		result(uID, "CM-7", "fail", "2026-03-10T22:00:00Z", "deployment matches no change record: path unknown"),
		result(uID, "CM-8", "fail", "2026-03-10T22:00:00Z", "production deployment production/payments dep-u matches no change record"),
		result(x.id(), "CM-1", "pass", "2026-03-12T10:00:00Z", "ticket CHG-108 approved by carol at 2026-03-11T10:00:00Z (deployment at 2026-03-12T10:00:00Z)"),
		waived(x.id(), "CM-4", "EXC-8", "2026-03-12T10:00:00Z"),
		waived(x.id(), "CM-5", "EXC-10", "2026-03-12T10:00:00Z"),
		result(s.id(), "CM-1", "fail", "2026-05-02T10:00:00Z", "ticket CHG-109 has no approval"),
		result(s.id(), "CM-3", "fail", "2026-05-02T10:00:00Z", "author dave is also reviewer"),
		result(o.id(), "CM-2", "fail", "2025-12-15T10:00:00Z", "pull request #99 has no approving review"),
	}
	if err := st.InsertControlResults(ctx, results); err != nil {
		t.Fatal(err)
	}

	uc := change{name: "U"}
	verdicts := []store.DeploymentVerdictRow{
		verdict(a, depA, "pass", nil, nil, nil),
		verdict(b, depB, "fail", []string{"CM-1"}, nil, nil),
		verdict(b, depB, "fail", []string{"CM-1"}, nil, nil), // judged twice (a crash between deciding and writing): FINAL folds them
		verdict(c, depC, "fail", []string{"CM-2"}, nil, nil),
		verdict(d, depD, "fail", []string{"CM-3"}, nil, nil),
		verdict(e, depE, "pending", nil, []string{"CM-1"}, nil),
		verdict(f, depF, "pending", nil, []string{"CM-1"}, nil),
		verdict(g, depG, "fail", []string{"CM-7"}, nil, nil),
		verdict(uc, depU, "fail", []string{"CM-1", "CM-2", "CM-3", "CM-7", "CM-8"}, nil, nil),
		verdict(x, depX, "pass", nil, nil, []string{"CM-4", "CM-5"}),
		verdict(s, depS2, "fail", []string{"CM-1", "CM-3"}, nil, nil),
		verdict(o, depO, "fail", []string{"CM-2"}, nil, nil),
	}
	for i := range verdicts {
		if verdicts[i].DeploymentID == depU.id {
			verdicts[i].ChangeID, verdicts[i].Repository, verdicts[i].Commit = uID, "", ""
		}
	}
	if err := st.InsertDeploymentVerdicts(ctx, verdicts); err != nil {
		t.Fatal(err)
	}

	// Late evidence beside the verdicts: B's review dismissal arrived after
	// its verdict was decided and would make CM-2 fail too (written twice:
	// at-least-once); X's late test report made CM-4 fail, then its rerun
	// brought it back to its decided status (no longer a change); S's is
	// outside the period.
	late := func(c change, d dep, control, decided, status, noted, event string) store.LateEvidenceRow {
		return store.LateEvidenceRow{Environment: d.env, Service: service, DeploymentKey: "id:" + d.id, ChangeID: c.id(),
			ControlID: control, DecidedStatus: decided, LateStatus: status, LateEvents: []string{"https://scenario.example/" + event + " " + event},
			ArrivedByNs: at(d.start).Add(2 * time.Minute).UnixNano(), RecordHash: sc.hashes[c.name], BundleHash: "bundle",
			NotedNs: at(noted).UnixNano()}
	}
	lateB := late(b, depB, "CM-2", "pass", "fail", "2026-02-12T09:00:00Z", "dismissal-b")
	lateB.LateReasons = []string{"pull request #102 has no approving review"}
	if err := st.InsertLateEvidence(ctx, []store.LateEvidenceRow{lateB, lateB,
		late(x, depX, "CM-1", "pass", "fail", "2026-03-13T10:00:00Z", "tests-x"),
		late(x, depX, "CM-1", "pass", "pass", "2026-03-14T10:00:00Z", "rerun-x"),
		late(s, depS2, "CM-3", "fail", "pass", "2026-05-03T10:00:00Z", "review-s"),
	}); err != nil {
		t.Fatal(err)
	}

	// The archived ticket approvals, as the Jira and ServiceNow webhooks
	// give them (catalog type ticket.approved).
	approvals := []struct{ key, login, at string }{
		{"CHG-101", "carol", "2026-02-09T15:00:00Z"},
		{"CHG-103", "carol", "2026-02-11T16:00:00Z"},
		{"CHG-104", "erin", "2026-02-13T10:00:00Z"},
		{"CHG-105", "carol", "2026-02-20T14:00:00Z"},
		{"CHG-105", "dan", "2026-02-20T15:00:00Z"},
		{"CHG-107", "carol", "2026-03-04T10:00:00Z"},
		{"CHG-108", "carol", "2026-03-11T10:00:00Z"},
	}
	var events []store.EventRow
	for i, ap := range approvals {
		data := fmt.Sprintf(`{"key":%q,"system":"servicenow","ticket_type":"normal","status":"Authorize","approver":{"login":%q,"name":"","type":"user"},"approved_at":%q}`, ap.key, ap.login, ap.at)
		events = append(events, store.EventRow{StreamSeq: uint64(i + 1), EventID: fmt.Sprintf("appr-%d", i+1), Source: "https://acme.service-now.com",
			Type: "dev.evidencepipeline.ticket.approved.v1", ReceivedNs: at("2026-03-20T00:00:00Z").UnixNano(), DataContentType: "application/json",
			Extensions: "{}", Data: []byte(data), PrevHash: fmt.Sprintf("h%d", i), Hash: fmt.Sprintf("h%d", i+1)})
	}
	events = append(events, store.EventRow{StreamSeq: uint64(len(events) + 1), EventID: "run-1", Source: "https://ci.example/acme",
		Type: "dev.evidencepipeline.pipelinerun.finished.v1", ReceivedNs: at("2026-03-20T00:00:00Z").UnixNano(),
		Extensions: "{}", Data: []byte(`{"repository":"github.com/acme/payments","commit":"4f2a9c1","run_id":"1","outcome":"success"}`)})
	if err := st.InsertEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	return sc
}
