package correlate

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// gen writes a realistic random history of delivery events from a seed:
// several repositories; pull requests with several pushes and reviews
// (self-approvals, approvals made stale by a later push, dismissals,
// approvals superseded by the reviewer's request for changes);
// change tickets with transitions, approvals and rejections, some shared
// by two pull requests, some named only in the branch; runs, tests that
// fail on an early head and pass later, scans; merges by merge, squash and
// rebase with the raw push GitHub sends for them; builds with artifacts;
// deployments to staging and production (some before the ticket's
// approval); exceptions; direct pushes to the default branch; deployments
// that match no change.
type gen struct {
	rng     *rand.Rand
	events  []*ce.Event
	clock   time.Time
	seq     int
	tickets int
	lastTk  string
	// built are the artifacts built from each repository's merge
	// commits, head the last merge commit of each (rollbacks).
	built map[string][]string
	head  map[string]string
}

type genRepo struct {
	key, web, service, image string
	gitlab                   bool
}

var genRepos = []genRepo{
	{key: "github.com/acme/payments", web: "https://github.com/acme/payments", service: "payments", image: "ghcr.io/acme/payments"},
	{key: "github.com/acme/ledger", web: "https://github.com/acme/ledger", service: "ledger", image: "ghcr.io/acme/ledger"},
	{key: "gitlab.acme.example/platform/api", web: "https://gitlab.acme.example/platform/api", service: "api", image: "registry.acme.example/platform/api", gitlab: true},
}

var (
	genPeople    = []string{"alice", "bob", "dave", "erin", "gus"}
	genApprovers = []string{"carol.jones", "frank.li"}
	genBot       = map[string]any{"login": "github-actions[bot]", "id": "41898282", "type": "service"}
)

func person(login string) map[string]any {
	return map[string]any{"login": login, "name": strings.ToUpper(login[:1]) + login[1:], "email": login + "@acme.example", "type": "user"}
}

func newGen(seed uint64) *gen {
	return &gen{
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		clock: time.Date(2025, 3, 3, 8, 0, 0, 0, time.UTC),
		built: map[string][]string{}, head: map[string]string{},
	}
}

func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *gen) sha() string    { return g.hex(40) }
func (g *gen) digest() string { return "sha256:" + g.hex(64) }

func (g *gen) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }
func (g *gen) chance(p float64) bool   { return g.rng.Float64() < p }

// tick advances the clock by up to max minutes and returns it.
func (g *gen) tick(max int) time.Time {
	g.clock = g.clock.Add(time.Duration(1+g.rng.IntN(max*60)) * time.Second)
	return g.clock
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// emit appends an event; the CloudEvent time is the fact's time, as the
// adapters set it.
func (g *gen) emit(typ, source string, at time.Time, data map[string]any) {
	g.seq++
	b, err := json.Marshal(data)
	if err != nil {
		panic(err)
	}
	short := strings.TrimSuffix(strings.TrimPrefix(typ, "dev.evidencepipeline."), ".v1")
	g.events = append(g.events, &ce.Event{
		ID: fmt.Sprintf("%s-%06d", short, g.seq), Source: source, Type: typ, Time: at,
		DataContentType: "application/json", Data: b,
	})
}

func change(r genRepo, n int) map[string]any {
	if r.gitlab {
		return map[string]any{"number": n, "url": fmt.Sprintf("%s/-/merge_requests/%d", r.web, n)}
	}
	return map[string]any{"number": n, "url": fmt.Sprintf("%s/pull/%d", r.web, n)}
}

// ticket creates a change ticket and drives it to its approval step; it
// returns its key and the approval (or rejection then approval) to write
// when the change is approved: before the work for a normal or standard
// change, after the deployment for an emergency one.
func (g *gen) ticket(author string) (key string, emergency bool, approve func()) {
	g.tickets++
	snow := g.chance(0.5)
	key = fmt.Sprintf("PAY-%d", 100+g.tickets)
	system, source := "jira", "https://acme.atlassian.net"
	if snow {
		key = fmt.Sprintf("CHG%07d", 31000+g.tickets)
		system, source = "servicenow", "https://acme.service-now.com"
	}
	typ := "normal"
	switch x := g.rng.Float64(); {
	case x < 0.2:
		typ = "standard"
	case x < 0.3:
		typ = "emergency"
	}
	at := g.tick(30)
	g.emit(TypeTicketCreated, source, at, map[string]any{
		"key": key, "system": system, "ticket_type": typ, "status": "New",
		"summary": "Change " + key, "requested_by": person(author), "created_at": ts(at),
	})
	prev := "New"
	for _, st := range []string{"Assess", "Authorize"} {
		at = g.tick(20)
		g.emit(TypeTicketTransitioned, source, at, map[string]any{
			"key": key, "system": system, "ticket_type": typ, "status": st, "previous_status": prev,
			"transitioned_by": person(g.pick(genApprovers)), "transitioned_at": ts(at),
		})
		prev = st
	}
	approve = func() {
		if g.chance(0.1) {
			at := g.tick(20)
			g.emit(TypeTicketRejected, source, at, map[string]any{
				"key": key, "system": system, "ticket_type": typ, "approver": person(g.pick(genApprovers)),
				"rejected_at": ts(at), "reason": "No rollback plan.",
			})
		}
		if g.chance(0.05) {
			return // never approved
		}
		approvedAt := g.tick(60)
		approver := g.pick(genApprovers)
		if g.chance(0.05) {
			approver = author // approves their own change
		}
		g.emit(TypeTicketApproved, source, approvedAt, map[string]any{
			"key": key, "system": system, "ticket_type": typ, "status": "Scheduled",
			"approver": person(approver), "approved_at": ts(approvedAt), "approval_group": "CAB",
		})
	}
	return key, typ == "emergency", approve
}

// pullRequest writes the life of one pull request, from its ticket to its
// production deployment.
func (g *gen) pullRequest(r genRepo, n int) {
	author := g.pick(genPeople)
	var key string
	var emergency bool
	approve := func() {}
	if g.lastTk != "" && g.chance(0.15) {
		key = g.lastTk // a second pull request for the same ticket
	} else {
		key, emergency, approve = g.ticket(author)
	}
	if !emergency {
		approve()
	}
	g.lastTk = key
	title, branch := fmt.Sprintf("Improve %s handling", r.service), fmt.Sprintf("feature/improve-%s-%d", r.service, n)
	var keys []string
	switch x := g.rng.Float64(); {
	case x < 0.5:
		title = key + " " + title
	case x < 0.8:
		branch = "feature/" + strings.ToLower(key) + "-work"
	default:
		keys = []string{key}
	}
	vcs := r.web
	ci := "/ci/github-actions/" + strings.TrimPrefix(r.key, "github.com/")
	if r.gitlab {
		ci = "/ci/gitlab-ci/platform/api"
	}
	base := g.sha()
	heads := []string{g.sha()}
	at := g.tick(60)
	opened := map[string]any{
		"repository": r.key, "change": change(r, n), "title": title, "author": person(author),
		"source_branch": branch, "target_branch": "main", "head_commit": heads[0], "base_commit": base,
		"opened_at": ts(at),
	}
	if keys != nil {
		opened["ticket_keys"] = keys
	}
	g.emit(TypeChangeOpened, vcs, at, opened)
	for range g.rng.IntN(3) {
		h := g.sha()
		at = g.tick(60)
		upd := map[string]any{
			"repository": r.key, "change": change(r, n), "head_commit": h, "previous_head_commit": heads[len(heads)-1],
			"actor": person(author), "updated_at": ts(at),
		}
		if g.chance(0.2) && !strings.HasPrefix(title, key) {
			title = key + " " + title // the title edited to name the ticket
			upd["title"] = title
		}
		g.emit(TypeChangeUpdated, vcs, at, upd)
		heads = append(heads, h)
	}
	final := heads[len(heads)-1]
	// CI on every head: tests fail on an early head and pass on the last.
	for i, h := range heads {
		run := fmt.Sprintf("%d", 7000000+g.seq)
		g.runOn(r, ci, h, run, "pull_request", n)
		outcome := "passed"
		if i < len(heads)-1 && g.chance(0.5) {
			outcome = "failed"
		}
		g.testOn(r, ci, h, run, "unit", outcome)
		if g.chance(0.5) {
			g.scanOn(r, ci, h, run, "sast", "semgrep", "")
		}
	}
	// Reviews.
	reviewer := g.pick(genPeople)
	for reviewer == author {
		reviewer = g.pick(genPeople)
	}
	if len(heads) > 1 && g.chance(0.6) {
		g.review(r, n, reviewer, author, "approved", heads[0], "") // stale after the next push
	}
	if g.chance(0.2) {
		g.review(r, n, g.pick(genPeople), author, "changes_requested", heads[0], "")
	}
	if g.chance(0.1) {
		g.review(r, n, author, author, "approved", final, "") // self-approval
	}
	if g.chance(0.85) {
		id := fmt.Sprintf("%d", 2000000000+g.seq)
		g.review(r, n, reviewer, author, "approved", final, id)
		switch {
		case g.chance(0.05):
			g.review(r, n, reviewer, author, "dismissed", final, id)
		case g.chance(0.05):
			// The reviewer changes their mind: the approval is superseded.
			g.review(r, n, reviewer, author, "changes_requested", final, fmt.Sprintf("%d", 2000000000+g.seq))
		}
	}
	if g.chance(0.05) {
		at = g.tick(10)
		g.emit(TypeChangeClosed, vcs, at, map[string]any{
			"repository": r.key, "change": change(r, n), "head_commit": final, "closed_by": person(author), "closed_at": ts(at),
		})
		// Deployed from the branch anyway: matches no change.
		g.deploy(r, "staging", "", final, key)
		if emergency {
			approve()
		}
		return
	}
	// Merge.
	method := g.pick([]string{"merge", "squash", "rebase"})
	merge := g.sha()
	var commits []string
	switch method {
	case "merge":
		commits = append([]string{}, heads...)
	case "rebase":
		for range heads {
			commits = append(commits, g.sha())
		}
		merge = commits[len(commits)-1]
	}
	merger := g.pick(genPeople)
	at = g.tick(30)
	merged := map[string]any{
		"repository": r.key, "change": change(r, n), "title": title, "author": person(author),
		"source_branch": branch, "target_branch": "main", "head_commit": final, "base_commit": base,
		"merge_commit": merge, "method": method, "merged_by": person(merger), "merged_at": ts(at),
	}
	if commits != nil {
		merged["commits"] = commits
	}
	if keys != nil {
		merged["ticket_keys"] = keys
	}
	g.emit(TypeChangeMerged, vcs, at, merged)
	pushed := append(append([]string{}, commits...), merge)
	if method == "rebase" {
		pushed = commits
	}
	g.push(r, merger, merge, pushed, "Merge pull request #"+fmt.Sprint(n))
	// Build, test and scan the merge commit; deploy the artifact.
	run := fmt.Sprintf("%d", 9000000+g.seq)
	g.runOn(r, ci, merge, run, "push", 0)
	d := g.build(r, ci, merge, run)
	g.built[r.key] = append(g.built[r.key], d)
	g.head[r.key] = merge
	g.testOn(r, ci, merge, run, "unit", "passed")
	if g.chance(0.7) {
		g.scanOn(r, ci, merge, run, "container", "trivy", d)
	}
	if g.chance(0.1) {
		at = g.tick(10)
		g.emit(TypeExceptionGranted, "https://evidence.acme.example/exceptions", at, map[string]any{
			"id": fmt.Sprintf("EXC-%d", g.seq), "control": "CM-2",
			"scope":  map[string]any{"repository": r.key, "change": map[string]any{"number": n}},
			"reason": "Hotfix", "approver": person(g.pick(genApprovers)),
			"granted_at": ts(at), "expires_at": ts(at.Add(72 * time.Hour)),
		})
	}
	g.deploy(r, "staging", d, merge, "")
	if g.chance(0.9) {
		g.deploy(r, "production", d, "", key)
	}
	if emergency {
		approve() // approved after the fact
	}
}

func (g *gen) runOn(r genRepo, source, commit, run, trigger string, n int) {
	at := g.tick(5)
	data := map[string]any{"repository": r.key, "commit": commit, "run_id": run, "run_attempt": 1, "system": "github-actions",
		"pipeline": "ci", "trigger": trigger, "actor": genBot, "started_at": ts(at)}
	if n != 0 {
		data["change"] = map[string]any{"number": n}
	}
	g.emit(TypePipelineRunStarted, source, at, data)
	end := g.tick(15)
	data["outcome"] = "success"
	data["finished_at"] = ts(end)
	if g.chance(0.1) {
		delete(data, "finished_at") // the event's own time is the fact's
	}
	g.emit(TypePipelineRunFinished, source, end, data)
}

func (g *gen) testOn(r genRepo, source, commit, run, suite, outcome string) {
	at := g.tick(10)
	failed := 0
	if outcome == "failed" {
		failed = 1 + g.rng.IntN(3)
	}
	g.emit(TypeTestReported, source, at, map[string]any{
		"repository": r.key, "commit": commit, "run_id": run, "suite": suite, "tests": 100, "passed": 100 - failed,
		"failed": failed, "skipped": 0, "outcome": outcome, "finished_at": ts(at),
	})
}

func (g *gen) scanOn(r genRepo, source, commit, run, category, tool, digest string) {
	at := g.tick(10)
	data := map[string]any{
		"repository": r.key, "commit": commit, "run_id": run, "tool": tool, "category": category,
		"findings":    map[string]any{"critical": 0, "high": g.rng.IntN(2), "medium": g.rng.IntN(4), "low": g.rng.IntN(9)},
		"finished_at": ts(at),
	}
	if digest != "" {
		data["digest"] = digest
	}
	g.emit(TypeScanReported, source, at, data)
}

func (g *gen) review(r genRepo, n int, reviewer, author, decision, head, id string) {
	at := g.tick(60)
	data := map[string]any{
		"repository": r.key, "change": change(r, n), "reviewer": person(reviewer), "decision": decision,
		"head_commit": head, "submitted_at": ts(at), "author": person(author),
	}
	if id != "" {
		data["review_id"] = id
	}
	g.emit(TypeReviewSubmitted, r.web, at, data)
}

func (g *gen) build(r genRepo, source, commit, run string) string {
	d := g.digest()
	at := g.tick(10)
	g.emit(TypeArtifactBuilt, source, at, map[string]any{
		"digest": d, "name": r.image, "repository": r.key, "commit": commit, "run_id": run,
		"builder": genBot, "built_at": ts(at), "tags": []string{fmt.Sprintf("1.%d.0", g.seq)},
	})
	return d
}

// deploy writes a deployment's started and finished events.
func (g *gen) deploy(r genRepo, env, digest, commit, ticket string) {
	id := fmt.Sprintf("%s-%s-%d", r.service, env, g.seq)
	data := map[string]any{"deployment_id": id, "environment": env, "service": r.service, "repository": r.key,
		"system": "github-actions", "deployer": genBot}
	if digest != "" {
		data["digest"] = digest
	}
	if commit != "" {
		data["commit"] = commit
	}
	if ticket != "" {
		data["ticket_keys"] = []string{ticket}
	}
	if g.chance(0.1) {
		data["deployer"] = person(g.pick(genPeople))
	}
	at := g.tick(30)
	data["started_at"] = ts(at)
	g.emit(TypeDeploymentStarted, "/deploy/"+r.service, at, data)
	end := g.tick(10)
	data["outcome"] = "success"
	if g.chance(0.05) {
		data["outcome"] = "failure"
	}
	data["finished_at"] = ts(end)
	g.emit(TypeDeploymentFinished, "/deploy/"+r.service, end, data)
}

// push writes the raw webhook of a push to the default branch.
func (g *gen) push(r genRepo, pusher, after string, commits []string, message string) {
	at := g.tick(2)
	var cs []map[string]any
	for _, c := range commits {
		cs = append(cs, map[string]any{"id": c, "message": message, "timestamp": ts(at),
			"author": map[string]any{"name": pusher, "email": pusher + "@acme.example", "username": pusher}})
	}
	var payload map[string]any
	provider, event := "github", "push"
	if r.gitlab {
		provider, event = "gitlab", "Push Hook"
		payload = map[string]any{"object_kind": "push", "ref": "refs/heads/main", "before": g.sha(), "after": after,
			"user_username": pusher, "user_name": pusher, "project": map[string]any{"web_url": r.web, "default_branch": "main"},
			"commits": cs}
	} else {
		payload = map[string]any{"ref": "refs/heads/main", "before": g.sha(), "after": after,
			"repository": map[string]any{"html_url": r.web, "full_name": strings.TrimPrefix(r.key, "github.com/"), "default_branch": "main"},
			"pusher":     map[string]any{"name": pusher, "email": pusher + "@acme.example"}, "sender": map[string]any{"login": pusher, "id": 1000, "type": "User"},
			"commits": cs}
	}
	g.emit(TypeWebhookReceived, r.web, at, map[string]any{
		"provider": provider, "event": event, "delivery_id": fmt.Sprintf("delivery-%d", g.seq),
		"payload": payload, "received_at": ts(at),
	})
}

// directPush writes a push straight to the default branch, its build and
// its production deployment.
func (g *gen) directPush(r genRepo) {
	c := g.sha()
	who := g.pick(genPeople)
	key := ""
	msg := "Hotfix: raise timeout"
	if g.chance(0.5) {
		key = fmt.Sprintf("PAY-%d", 100+g.rng.IntN(g.tickets+1))
		msg = key + " hotfix: raise timeout"
	}
	g.push(r, who, c, []string{c}, msg)
	run := fmt.Sprintf("%d", 9000000+g.seq)
	g.runOn(r, "/ci/direct", c, run, "push", 0)
	d := g.build(r, "/ci/direct", c, run)
	g.deploy(r, "production", d, c, key)
}

// rollback deploys an earlier build of the repository to production from
// a run on its last merge commit, which the deployment names (what
// evidence emit deploy --digest does in a rollback workflow on main).
func (g *gen) rollback(r genRepo) {
	builds := g.built[r.key]
	g.deploy(r, "production", builds[g.rng.IntN(len(builds)-1)], g.head[r.key], "")
}

// branchBuild builds a commit of a branch no pull request has and deploys
// it to production from a run naming the last merge commit.
func (g *gen) branchBuild(r genRepo) {
	c := g.sha()
	run := fmt.Sprintf("%d", 9000000+g.seq)
	g.runOn(r, "/ci/branch", c, run, "push", 0)
	d := g.build(r, "/ci/branch", c, run)
	g.deploy(r, "production", d, g.head[r.key], "")
}

// history generates about n events.
func history(seed uint64, n int) []*ce.Event {
	g := newGen(seed)
	prNum := map[string]int{}
	for len(g.events) < n {
		r := genRepos[g.rng.IntN(len(genRepos))]
		switch x := g.rng.Float64(); {
		case x < 0.04:
			g.directPush(r)
		case x < 0.07:
			g.deploy(r, "production", g.digest(), "", "") // an artifact nobody built
		case x < 0.15 && len(g.built[r.key]) > 1:
			g.rollback(r)
		case x < 0.20 && g.head[r.key] != "":
			g.branchBuild(r)
		default:
			prNum[r.key]++
			g.pullRequest(r, prNum[r.key])
		}
	}
	return g.events
}
