package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
	"github.com/evidencepipeline/evidence/schemas"
)

// The history of TestGateJudgesTheArtifactAskedAbout: three pull requests
// of github.com/acme/payments merged three ways, their builds, a build of
// a branch no change holds, a build made outside a pipeline, deployments,
// a rollback and a roll-forward.
//
//	A  #51 merge commit  head a1…, merged as a2…  run 5101 on the head (the
//	                     pull request's pipeline) built DAH; run 5102 on
//	                     a2… (main) built DA; DA deployed 05-05 (run 5103)
//	B  #52 squash        head b1…, squashed as b2…  run 5202 built DB;
//	                     DB deployed 05-12 (run 5203)
//	   rollback          05-13: run 6001, a rollback workflow started on
//	                     main's head b2…, deploys DA: its event names the
//	                     commit it ran on (b2…) and the digest it deployed
//	   roll-forward      05-14: run 6002 deploys DB again
//	C  #53 rebase        head c1…, rebased onto main as c2… (the commit
//	                     that landed)  run 5302 built DC; alice built DM
//	                     from c2… on her laptop; DR names a build run 7777
//	                     no pipelinerun event reports
//	X  branch            run 5401 on e1… (branch experiment/cache, in no
//	                     pull request) built DX
//	DU                   a digest nothing reported
var (
	headA, mergeA = hex40("a1"), hex40("a2")
	headB, mergeB = hex40("b1"), hex40("b2")
	headC, mergeC = hex40("c1"), hex40("c2")
	branchX       = hex40("e1")

	digestA, digestAHead = digest("a2"), digest("a1")
	digestB, digestC     = digest("b2"), digest("c2")
	digestManual         = digest("d0")
	digestNoRun          = digest("d1")
	digestBranch         = digest("e1")
	digestUnknown        = digest("f0")
)

func hex40(pair string) string  { return strings.Repeat(pair, 20) }
func digest(pair string) string { return "sha256:" + strings.Repeat(pair, 32) }
func short(sha string) string   { return sha[:12] }

// history builds the events of the fixture, each checked as the door
// checks it (a CloudEvent, a catalog type, data valid against its schema).
type history struct {
	t      *testing.T
	cat    *schemas.Catalog
	seq    int
	events []*ce.Event
}

var (
	alice    = map[string]any{"login": "alice", "id": "1001", "name": "Alice Martin", "email": "alice@acme.example", "type": "user"}
	bob      = map[string]any{"login": "bob", "id": "1002", "name": "Bob Chen", "email": "bob@acme.example", "type": "user"}
	aliceJi  = map[string]any{"login": "712020:alice", "name": "Alice Martin", "email": "alice@acme.example", "type": "user"}
	carolJi  = map[string]any{"login": "712020:carol", "name": "Carol Jones", "email": "carol@acme.example", "type": "user"}
	pipeline = map[string]any{"login": "github-actions[bot]", "id": "41898282", "type": "service"}
)

const (
	githubSource = "https://github.com/acme/payments"
	ciSource     = "/ci/github-actions/acme/payments"
	jiraSource   = "https://acme.atlassian.net"
)

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func (h *history) add(source, typ, subject string, at time.Time, data map[string]any) {
	h.t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		h.t.Fatal(err)
	}
	h.seq++
	e := &ce.Event{ID: fmt.Sprintf("ev-%03d", h.seq), Source: source, Type: "dev.evidencepipeline." + typ + ".v1", Subject: subject,
		Time: at.UTC(), DataContentType: "application/json", Data: b}
	if err := e.Validate(); err != nil {
		h.t.Fatalf("%s: %v", e.Type, err)
	}
	if err := h.cat.Validate(e.Type, e.Data); err != nil {
		h.t.Fatalf("%s: %v\n%s", e.Type, err, e.Data)
	}
	h.events = append(h.events, e)
}

// change adds a pull request that every control passes on: ticket key
// created and approved by carol, opened by alice, approved by bob on its
// final head, merged by bob at merged into main with method.
func (h *history) change(number int, key, head, merge, method string, merged time.Time) {
	h.t.Helper()
	pr := map[string]any{"number": number, "url": fmt.Sprintf("%s/pull/%d", githubSource, number)}
	subject := fmt.Sprintf("github.com/acme/payments/pull/%d", number)
	title := key + " Change " + fmt.Sprint(number)
	branch := "feature/" + key
	h.add(jiraSource, "ticket.created", key, merged.Add(-8*time.Hour), map[string]any{"key": key, "system": "jira",
		"ticket_type": "normal", "raw_type": "Change", "summary": title, "status": "Open", "requested_by": aliceJi,
		"created_at": ts(merged.Add(-8 * time.Hour))})
	h.add(githubSource, "change.opened", subject, merged.Add(-7*time.Hour), map[string]any{"repository": gateRepo,
		"change": pr, "title": title, "author": alice, "source_branch": branch, "target_branch": "main",
		"head_commit": head, "base_commit": hex40("00"), "ticket_keys": []string{key}, "draft": false,
		"opened_at": ts(merged.Add(-7 * time.Hour))})
	h.add(githubSource, "review.submitted", subject, merged.Add(-2*time.Hour), map[string]any{"repository": gateRepo,
		"change": pr, "reviewer": bob, "decision": "approved", "head_commit": head, "submitted_at": ts(merged.Add(-2 * time.Hour)),
		"review_id": fmt.Sprint(9000 + number), "author": alice})
	h.add(jiraSource, "ticket.approved", key, merged.Add(-time.Hour), map[string]any{"key": key, "system": "jira",
		"ticket_type": "normal", "status": "Approved", "approver": carolJi, "approved_at": ts(merged.Add(-time.Hour)),
		"approval_group": "Payments CAB"})
	h.add(githubSource, "change.merged", subject, merged, map[string]any{"repository": gateRepo, "change": pr,
		"title": title, "author": alice, "source_branch": branch, "target_branch": "main", "head_commit": head,
		"base_commit": hex40("00"), "merge_commit": merge, "method": method, "merged_by": bob, "merged_at": ts(merged),
		"commits": []string{head}, "ticket_keys": []string{key}})
}

// build adds a successful pipeline run on commit (of branch) with passing
// tests and clean SAST and dependency scans, which builds dig.
func (h *history) build(run, commit, branch, dig string, at time.Time) {
	h.t.Helper()
	subject := "github.com/acme/payments/commit/" + commit
	runData := func(extra map[string]any) map[string]any {
		m := map[string]any{"repository": gateRepo, "commit": commit, "branch": branch, "run_id": run, "run_attempt": 1,
			"pipeline": "build", "system": "github-actions", "trigger": "push", "actor": bob, "started_at": ts(at)}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	h.add(ciSource, "pipelinerun.started", subject, at, runData(nil))
	h.add(ciSource, "test.reported", subject, at.Add(2*time.Minute), map[string]any{"repository": gateRepo, "commit": commit,
		"run_id": run, "system": "github-actions", "suite": "unit", "tests": 100, "passed": 100, "failed": 0, "errors": 0,
		"skipped": 0, "outcome": "passed", "finished_at": ts(at.Add(2 * time.Minute))})
	for _, s := range [][2]string{{"semgrep", "sast"}, {"grype", "dependency"}} {
		h.add(ciSource, "scan.reported", subject, at.Add(3*time.Minute), map[string]any{"repository": gateRepo, "commit": commit,
			"run_id": run, "system": "github-actions", "tool": s[0], "category": s[1],
			"findings": map[string]any{"critical": 0, "high": 0, "medium": 1, "low": 0, "none": 0},
			"outcome":  "passed", "finished_at": ts(at.Add(3 * time.Minute))})
	}
	h.add(ciSource, "artifact.built", dig, at.Add(4*time.Minute), map[string]any{"digest": dig, "name": "ghcr.io/acme/payments",
		"repository": gateRepo, "commit": commit, "run_id": run, "pipeline": "build", "system": "github-actions",
		"builder": pipeline, "built_at": ts(at.Add(4 * time.Minute))})
	h.add(ciSource, "pipelinerun.finished", subject, at.Add(5*time.Minute), runData(map[string]any{"outcome": "success",
		"finished_at": ts(at.Add(5 * time.Minute))}))
}

// deploy adds a production deployment of dig by the pipeline, by run,
// whose event names commit (the commit the deploying run ran on).
func (h *history) deploy(run, commit, dig string, at time.Time) {
	h.t.Helper()
	h.add(ciSource, "deployment.finished", "production/payments", at.Add(3*time.Minute), map[string]any{"environment": "production",
		"service": "payments", "digest": dig, "artifact": "ghcr.io/acme/payments", "repository": gateRepo, "commit": commit,
		"run_id": run, "pipeline": "deploy", "system": "github-actions", "deployer": pipeline, "started_at": ts(at),
		"outcome": "success", "finished_at": ts(at.Add(3 * time.Minute))})
}

// gateRow is one question to the gate and its hand-worked answer.
type gateRow struct {
	name     string
	artifact string
	commit   string // asked about a commit (with the repository) instead
	allow    bool
	change   string // the one record judged; "" for none (unknown)
	// cm6 is CM-6's status and a reason it must give (when a record is
	// judged); reason is one of the answer's reasons (a deny's).
	cm6, cm6Reason string
	reason         string
}

// artifactPhase is a part of the history, sent at once, and the questions
// asked of the gate after it.
type artifactPhase struct {
	name   string
	events func(h *history)
	rows   []gateRow
}

// The records of the history: A, B and C by their merged commits.
var recA, recB, recC = gateRepo + "@" + mergeA, gateRepo + "@" + mergeB, gateRepo + "@" + mergeC

// artifactPhases is the history of the gate's artifact tests, phase by
// phase, with each phase's hand-worked questions.
func artifactPhases() []artifactPhase {
	day := func(d, h int) time.Time { return time.Date(2025, 5, d, h, 0, 0, 0, time.UTC) }
	return []artifactPhase{{
		name: "A merged and built, not deployed",
		events: func(h *history) {
			h.change(51, "PAY-201", headA, mergeA, "merge", day(5, 10))
			h.build("5101", headA, "feature/PAY-201", digestAHead, day(5, 8))
			h.build("5102", mergeA, "main", digestA, day(5, 10))
		},
		rows: []gateRow{
			{name: "built from the merge commit", artifact: digestA, allow: true, change: recA,
				cm6: "pass", cm6Reason: "artifact " + digestA + " built by run 5102 from the merged commit " + short(mergeA)},
			{name: "built from the pull request's head", artifact: digestAHead, change: recA,
				cm6: "fail", cm6Reason: "artifact " + digestAHead + " built from " + short(headA) + ", not the merged commit " + short(mergeA),
				reason: "CM-6 fail: artifact " + digestAHead + " built from " + short(headA) + ", not the merged commit " + short(mergeA)},
		},
	}, {
		name: "A deployed; B squash-merged, built, deployed; rolled back to DA; DB deployed again",
		events: func(h *history) {
			h.deploy("5103", mergeA, digestA, day(5, 12))
			h.change(52, "PAY-202", headB, mergeB, "squash", day(12, 10))
			h.build("5202", mergeB, "main", digestB, day(12, 10))
			h.deploy("5203", mergeB, digestB, day(12, 12))
			h.deploy("6001", mergeB, digestA, day(13, 9))
			h.deploy("6002", mergeB, digestB, day(14, 9))
		},
		rows: []gateRow{
			{name: "squash merge: built from the squash commit", artifact: digestB, allow: true, change: recB,
				cm6: "pass", cm6Reason: "artifact " + digestB + " built by run 5202 from the merged commit " + short(mergeB)},
			{name: "rollback to the earlier compliant artifact, judged on its own change", artifact: digestA, allow: true, change: recA,
				cm6: "pass", cm6Reason: "artifact " + digestA + " built by run 5102 from the merged commit " + short(mergeA)},
			{name: "the pull request's head build, after its change was deployed", artifact: digestAHead, change: recA,
				cm6: "fail", cm6Reason: "artifact " + digestAHead + " built from " + short(headA) + ", not the merged commit " + short(mergeA)},
			// The rollback's event names B's merge commit: B's record does
			// not hold it (it would fail CM-6: no build of DA in B).
			{name: "the change rolled back from, by its commit", commit: mergeB, allow: true, change: recB,
				cm6: "pass", cm6Reason: "deployment production/payments : artifact " + digestB + " built by run 5202 from the merged commit " + short(mergeB)},
		},
	}, {
		name: "C rebase-merged, built by the pipeline and by alice; a branch built; nothing reported of DU",
		events: func(h *history) {
			h.change(53, "PAY-203", headC, mergeC, "rebase", day(19, 10))
			h.build("5302", mergeC, "main", digestC, day(19, 10))
			h.add(ciSource, "artifact.built", digestManual, day(19, 11), map[string]any{"digest": digestManual,
				"name": "ghcr.io/acme/payments", "repository": gateRepo, "commit": mergeC, "run_id": "laptop",
				"builder": alice, "built_at": ts(day(19, 11))})
			h.add(ciSource, "artifact.built", digestNoRun, day(19, 12), map[string]any{"digest": digestNoRun,
				"name": "ghcr.io/acme/payments", "repository": gateRepo, "commit": mergeC, "run_id": "7777",
				"builder": pipeline, "built_at": ts(day(19, 12))})
			h.build("5401", branchX, "experiment/cache", digestBranch, day(20, 9))
		},
		rows: []gateRow{
			{name: "rebase merge: built from the commit that landed", artifact: digestC, allow: true, change: recC,
				cm6: "pass", cm6Reason: "artifact " + digestC + " built by run 5302 from the merged commit " + short(mergeC)},
			{name: "redeploy of the same artifact (DB, deployed twice already)", artifact: digestB, allow: true, change: recB,
				cm6: "pass", cm6Reason: "artifact " + digestB + " built by run 5202 from the merged commit " + short(mergeB)},
			{name: "built outside a pipeline", artifact: digestManual, change: recC,
				cm6: "fail", cm6Reason: "artifact " + digestManual + ` built outside a pipeline (builder alice, run "laptop")`},
			{name: "built by a run no pipeline reported", artifact: digestNoRun, change: recC,
				cm6: "pending", cm6Reason: "artifact " + digestNoRun + ": its build run 7777 is not known"},
			{name: "built from a branch outside any change", artifact: digestBranch,
				reason: "no change record for artifact " + digestBranch + " (no change built or deployed it): the change is unknown (CM-8)"},
			{name: "never reported built", artifact: digestUnknown,
				reason: "no change record for artifact " + digestUnknown + " (no change built or deployed it): the change is unknown (CM-8)"},
		},
	}}
}

// TestGateJudgesTheArtifactAskedAbout asks GET /v1/gate about artifacts
// (alone, and with their repository as a pipeline in CI does), the
// server reading the live state from a real NATS KV bucket that the
// fixture's events were merged into, phase by phase as they would arrive.
func TestGateJudgesTheArtifactAskedAbout(t *testing.T) {
	ctx := context.Background()
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	kv, err := correlate.NewKVState(ctx, testenv.NATS(t).JS, correlate.KVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := evaluate.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, api.New(api.Config{Changes: correlate.KVReader{KV: kv}, Gate: engine}))
	t.Cleanup(srv.Close)

	phases := artifactPhases()
	h := &history{t: t, cat: cat}
	for _, ph := range phases {
		h.events = nil
		ph.events(h)
		facts := make([]correlate.Fact, 0, len(h.events))
		for _, e := range h.events {
			fs, err := correlate.Extract(e)
			if err != nil {
				t.Fatalf("%s: %s: %v", ph.name, e.Type, err)
			}
			facts = append(facts, fs...)
		}
		if _, err := kv.Merge(ctx, facts); err != nil {
			t.Fatalf("%s: %v", ph.name, err)
		}
		for _, row := range ph.rows {
			if row.commit != "" {
				t.Run(ph.name+"/"+row.name, func(t *testing.T) {
					checkGateRow(t, srv, "env=production&repo="+gateRepo+"&commit="+row.commit, row, true)
				})
				continue
			}
			for _, withRepo := range []bool{false, true} {
				q := "env=production&artifact=" + row.artifact
				if withRepo {
					q += "&repo=" + gateRepo
				}
				t.Run(ph.name+"/"+row.name+map[bool]string{true: "/with repo"}[withRepo], func(t *testing.T) {
					checkGateRow(t, srv, q, row, withRepo)
				})
			}
		}
	}
}

func checkGateRow(t *testing.T, srv *httptest.Server, q string, row gateRow, withRepo bool) {
	t.Helper()
	code, g, raw := askGate(t, srv, q, "")
	if code != 200 {
		t.Fatalf("%d %s", code, raw)
	}
	want := map[bool]string{true: api.GateAllow, false: api.GateDeny}[row.allow]
	if g.Decision != want || g.Artifact != row.artifact || row.commit != "" && g.Commit != row.commit || !g.Production {
		t.Errorf("decision %s for %s, want %s: %s", g.Decision, g.Artifact, want, raw)
	}
	switch {
	case row.change == "" && g.Change != nil:
		t.Errorf("judged %s, want no change record: %s", *g.Change, raw)
	case row.change != "" && (g.Change == nil || *g.Change != row.change || len(g.Changes) != 0):
		t.Errorf("judged %v %v, want %s alone: %s", g.Change, g.Changes, row.change, raw)
	}
	if row.change == "" {
		if len(g.Controls) != 1 || g.Controls[0].ID != "CM-8" || g.Controls[0].Status != evaluate.Fail {
			t.Errorf("controls of an unknown artifact: %s", raw)
		}
		if withRepo {
			row.reason = strings.Replace(row.reason, "for artifact "+row.artifact+" (no change built or deployed it)",
				"for "+gateRepo+" carrying artifact "+row.artifact, 1)
		}
	} else {
		if len(g.Controls) != 8 {
			t.Errorf("%d controls, want 8: %s", len(g.Controls), raw)
		}
		for _, c := range g.Controls {
			switch {
			case c.ID == "CM-6":
				if string(c.Status) != row.cm6 || !slices.Contains(c.Reasons, row.cm6Reason) {
					t.Errorf("CM-6 %s %q, want %s with %q", c.Status, c.Reasons, row.cm6, row.cm6Reason)
				}
			case c.Status != evaluate.Pass:
				// Every other control passes: CM-6 alone decides.
				t.Errorf("%s %s %q, want pass", c.ID, c.Status, c.Reasons)
			}
		}
	}
	if row.reason != "" && !slices.Contains(g.Reasons, row.reason) {
		t.Errorf("reasons %q, want %q", g.Reasons, row.reason)
	}
}
