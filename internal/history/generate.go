package history

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

// Span is how long a generated history lasts: changes start uniformly
// over it, and each one's events (from its ticket to its deployment, an
// emergency approval included) take at most about 12 hours after its
// start.
const Span = 30 * 24 * time.Hour

// Tail is the longest a change's events last after its start; a history
// starting at s has every event before s + Span + Tail.
const Tail = 14 * time.Hour

// Event is one CloudEvent of the history.
type Event struct {
	ID     string
	Source string
	Type   string
	Time   time.Time
	// Change is the index of the change it belongs to (History.Changes).
	Change int
	// JSON is the structured-mode CloudEvent.
	JSON []byte
}

// History is a generated delivery history.
type History struct {
	Seed    uint64
	Start   time.Time
	Changes []Change
	// Events are in time order (ties keep the order they were written).
	Events []Event
}

// Deployments are the production deployments of the history, by
// deployment id: one per change.
func (h *History) Deployments() map[string]*Change {
	out := make(map[string]*Change, len(h.Changes))
	for i := range h.Changes {
		out[h.Changes[i].Deployment.ID] = &h.Changes[i]
	}
	return out
}

// The catalog event types the generator writes.
const (
	TypeTicketCreated      = "dev.evidencepipeline.ticket.created.v1"
	TypeTicketApproved     = "dev.evidencepipeline.ticket.approved.v1"
	TypeChangeOpened       = "dev.evidencepipeline.change.opened.v1"
	TypeChangeUpdated      = "dev.evidencepipeline.change.updated.v1"
	TypeReviewSubmitted    = "dev.evidencepipeline.review.submitted.v1"
	TypeChangeMerged       = "dev.evidencepipeline.change.merged.v1"
	TypePipelineRunFinshed = "dev.evidencepipeline.pipelinerun.finished.v1"
	TypeTestReported       = "dev.evidencepipeline.test.reported.v1"
	TypeScanReported       = "dev.evidencepipeline.scan.reported.v1"
	TypeArtifactBuilt      = "dev.evidencepipeline.artifact.built.v1"
	TypeDeploymentStarted  = "dev.evidencepipeline.deployment.started.v1"
	TypeDeploymentFinished = "dev.evidencepipeline.deployment.finished.v1"
)

// Kinds are the violations (and platform cases) the generator injects,
// each in about Rate of the changes; the rest are compliant. Each kind
// changes facts only.
var Kinds = []struct {
	Name string
	Rate float64
}{
	{"ticket-approved-after-deploy", 0.05},    // CM-1: normal ticket approved after the deployment
	{"ticket-approved-by-bot", 0.02},          // CM-1: the only approval is a bot's
	{"emergency-approved-after-deploy", 0.02}, // CM-1 platform rule: within the window after it (passes)
	{"emergency-unapproved", 0.01},            // CM-1: emergency, no approval yet (pending)
	{"no-review", 0.03},                       // CM-2: a comment only
	{"self-approval", 0.02},                   // CM-2 and CM-3: the author approves their own change
	{"review-superseded", 0.02},               // CM-2 platform rule: approved, then changes requested by the same reviewer
	{"review-by-bot", 0.02},                   // CM-2 platform rule: the only approval is a bot's
	{"review-dismissed", 0.01},                // CM-2 platform rule: the only approval was dismissed
	{"review-stale", 0.01},                    // CM-2 platform rule: approved, then a push; not approved again
	{"review-renewed", 0.01},                  // CM-2 platform rule: approved, a push, approved again (passes)
	{"ticket-approved-by-author", 0.03},       // CM-3
	{"reviewer-approves-ticket", 0.02},        // CM-3
	{"manual-trigger-by-author", 0.02},        // CM-3 platform rule: the author starts the pipeline on demand (allowed)
	{"tests-failed", 0.05},                    // CM-4
	{"tests-missing", 0.01},                   // CM-4: no result (pending)
	{"scan-finding-high", 0.03},               // CM-5
	{"scan-missing-dependency", 0.02},         // CM-5: a required category did not run (pending)
	{"artifact-from-pr-head", 0.03},           // CM-6 platform rule: built from the pull request's head
	{"artifact-built-by-person", 0.02},        // CM-6: built outside a pipeline
	{"deployed-by-person", 0.03},              // CM-7 platform rule: a person's deployment, not the pipeline's
	{"deployed-by-author", 0.01},              // CM-7 and CM-3
	{"unprotected-branch", 0.01},              // CM-7
	{"unmatched", 0.05},                       // CM-8: a deployment no change matches
}

// PipelineBot is the GitHub Actions identity that builds.
var PipelineBot = Identity{Login: "github-actions[bot]", Type: "service"}

type gen struct {
	rng    *rand.Rand
	h      *History
	repos  []string
	devs   []string
	cab    []string
	relMgr []string
}

func (g *gen) hex(n int) string {
	const digits = "0123456789abcdef"
	b := make([]byte, n)
	for i := range b {
		b[i] = digits[g.rng.IntN(16)]
	}
	return string(b)
}

func (g *gen) pick(xs []string) string { return xs[g.rng.IntN(len(xs))] }

// minutes returns a duration of lo to hi minutes, to the second.
func (g *gen) minutes(lo, hi int) time.Duration {
	return time.Duration(lo*60+g.rng.IntN((hi-lo)*60+1)) * time.Second
}

func person(login string) Identity {
	return Identity{Login: login, Email: login + "@acme.example", Type: "user"}
}

func (id Identity) data() map[string]any {
	m := map[string]any{"login": id.Login}
	if id.Email != "" {
		m["email"] = id.Email
	}
	if id.Type != "" {
		m["type"] = id.Type
	}
	return m
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Generate writes a history of changes over repos repositories (at least
// one), starting at start (truncated to the second) and lasting Span (plus
// Tail), from seed: the same arguments give the same history, byte for
// byte.
func Generate(seed uint64, changes, repos int, start time.Time) *History {
	repos = max(repos, 1)
	g := &gen{
		rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		h:   &History{Seed: seed, Start: start.UTC().Truncate(time.Second)},
	}
	for i := range repos {
		g.repos = append(g.repos, fmt.Sprintf("svc%02d", i))
	}
	for i := range 40 {
		g.devs = append(g.devs, fmt.Sprintf("dev%02d", i))
	}
	for i := range 6 {
		g.cab = append(g.cab, fmt.Sprintf("cab%02d", i))
	}
	for i := range 4 {
		g.relMgr = append(g.relMgr, fmt.Sprintf("release%02d", i))
	}
	prNum := map[string]int{}
	for i := range changes {
		kind := ""
		x := g.rng.Float64()
		for _, k := range Kinds {
			if x < k.Rate {
				kind = k.Name
				break
			}
			x -= k.Rate
		}
		repo := g.pick(g.repos)
		at := g.h.Start.Add(time.Duration(g.rng.Int64N(int64(Span/time.Second))) * time.Second)
		c := Change{Index: i, Repository: "github.com/acme/" + repo, Kind: kind}
		if kind == "unmatched" {
			g.unmatched(&c, repo, at)
		} else {
			prNum[repo]++
			g.change(&c, repo, prNum[repo], at)
		}
		g.h.Changes = append(g.h.Changes, c)
	}
	g.render()
	return g.h
}

func (g *gen) change(c *Change, repo string, number int, at time.Time) {
	kind := c.Kind
	author := person(g.pick(g.devs))
	reviewer := person(g.pick(g.devs))
	for reviewer.Login == author.Login {
		reviewer = person(g.pick(g.devs))
	}
	tk := &Ticket{Key: fmt.Sprintf("CHG-%d", 1000+c.Index), System: "jira", Type: "normal", CreatedAt: at}
	if g.rng.IntN(5) == 0 {
		tk.Type = "standard"
	}
	if kind == "emergency-approved-after-deploy" || kind == "emergency-unapproved" {
		tk.Type = "emergency"
	}
	c.Ticket = tk
	approvalAt := at.Add(g.minutes(5, 60))
	opened := at.Add(g.minutes(10, 90))
	pr := &PR{
		Number: number, Title: tk.Key + " improve " + repo, Author: author,
		SourceBranch: fmt.Sprintf("feature/%s-%d", repo, number), TargetBranch: "main",
		HeadCommit: g.hex(40), BaseCommit: g.hex(40), MergeCommit: g.hex(40), OpenedAt: opened,
	}
	if kind == "unprotected-branch" {
		pr.TargetBranch = "develop"
	}
	c.PR = pr
	// Reviews, on the final head.
	rat := opened.Add(g.minutes(10, 120))
	review := func(who Identity, decision string) {
		pr.Reviews = append(pr.Reviews, Review{ID: fmt.Sprintf("%d", 5000000+len(pr.Reviews)+10*c.Index), Reviewer: who, Decision: decision, Head: pr.HeadCommit, At: rat})
		rat = rat.Add(g.minutes(5, 30))
	}
	if kind == "review-stale" || kind == "review-renewed" {
		review(reviewer, "approved")
		h := g.hex(40)
		pr.Updates = append(pr.Updates, Update{Head: h, Previous: pr.HeadCommit, At: rat})
		pr.HeadCommit = h
		rat = rat.Add(g.minutes(5, 30))
	}
	switch kind {
	case "review-stale":
	case "review-dismissed":
		review(reviewer, "approved")
		d := pr.Reviews[len(pr.Reviews)-1]
		d.Decision, d.At = "dismissed", rat
		pr.Reviews = append(pr.Reviews, d)
		rat = rat.Add(g.minutes(5, 30))
	case "no-review":
		review(reviewer, "commented")
	case "self-approval":
		review(author, "approved")
	case "review-superseded":
		review(reviewer, "approved")
		review(reviewer, "changes_requested")
	case "review-by-bot":
		review(Identity{Login: "review-helper[bot]", Type: "bot"}, "approved")
	default:
		review(reviewer, "approved")
	}
	pr.MergedAt = rat.Add(g.minutes(5, 60))
	pr.MergedBy = person(g.pick(g.devs))
	// CI on the merge commit: the run, its tests and scans, the artifact;
	// for an artifact from the pull request's head, all of it on the head.
	built := pr.MergeCommit
	trigger := "push"
	if kind == "artifact-from-pr-head" {
		built, trigger = pr.HeadCommit, "pull_request"
	}
	runAt := pr.MergedAt.Add(g.minutes(5, 20))
	run := Run{ID: fmt.Sprintf("%d", 80000000+c.Index), Commit: built, Trigger: trigger, Outcome: "success", At: runAt}
	c.Runs = []Run{run}
	if kind != "tests-missing" {
		t := Test{Commit: built, RunID: run.ID, Suite: "unit", Outcome: "passed", At: runAt.Add(-g.minutes(1, 3))}
		if kind == "tests-failed" {
			t.Outcome, t.Failed = "failed", 1+g.rng.IntN(4)
		}
		c.Tests = append(c.Tests, t)
	}
	sast := Scan{Commit: built, RunID: run.ID, Tool: "semgrep", Category: "sast", Medium: g.rng.IntN(4), Low: g.rng.IntN(9), At: runAt.Add(-g.minutes(1, 3))}
	if kind == "scan-finding-high" {
		sast.High = 1 + g.rng.IntN(3)
	}
	c.Scans = append(c.Scans, sast)
	if kind != "scan-missing-dependency" {
		c.Scans = append(c.Scans, Scan{Commit: built, RunID: run.ID, Tool: "trivy", Category: "dependency", Medium: g.rng.IntN(3), Low: g.rng.IntN(5), At: runAt.Add(-g.minutes(1, 3))})
	}
	art := Artifact{Digest: "sha256:" + g.hex(64), Name: "ghcr.io/acme/" + repo, Commit: built, RunID: run.ID, Builder: PipelineBot, At: runAt.Add(g.minutes(1, 5))}
	if kind == "artifact-built-by-person" {
		art.Builder = person(g.pick(g.devs))
	}
	c.Artifacts = []Artifact{art}
	// The production deployment, by the release pipeline.
	dep := Deployment{
		ID: fmt.Sprintf("%s-production-%d", repo, c.Index), Environment: "production", Service: repo, Repository: c.Repository,
		Digest: art.Digest, Commit: built, System: "github-actions", Pipeline: "release", RunID: fmt.Sprintf("%d", 90000000+c.Index),
		Deployer: Identity{Login: "github-actions:release", Type: "service"}, Trigger: "push", TriggeredBy: &pr.MergedBy,
		StartedAt: art.At.Add(g.minutes(5, 30)),
	}
	switch kind {
	case "manual-trigger-by-author":
		dep.Trigger, dep.TriggeredBy = "manual", &pr.Author
	case "deployed-by-person", "deployed-by-author":
		who := person(g.pick(g.relMgr))
		if kind == "deployed-by-author" {
			who = author
		}
		dep.System, dep.Pipeline, dep.RunID, dep.Deployer, dep.Trigger, dep.TriggeredBy = "", "", "", who, "", nil
	}
	dep.FinishedAt = dep.StartedAt.Add(g.minutes(2, 10))
	c.Deployment = dep
	// The ticket's approval.
	approver := person(g.pick(g.cab))
	switch kind {
	case "ticket-approved-after-deploy":
		approvalAt = dep.StartedAt.Add(g.minutes(10, 120))
	case "emergency-approved-after-deploy":
		approvalAt = dep.StartedAt.Add(g.minutes(30, 180))
	case "ticket-approved-by-bot":
		approver = Identity{Login: "cab-automation[bot]", Type: "bot"}
	case "ticket-approved-by-author":
		approver = author
	case "reviewer-approves-ticket":
		approver = reviewer
	}
	if kind != "emergency-unapproved" {
		tk.Approvals = []Approval{{By: approver, At: approvalAt}}
	}
}

// unmatched writes a production deployment of an artifact nobody built,
// by the release pipeline, naming no commit, ticket or change.
func (g *gen) unmatched(c *Change, repo string, at time.Time) {
	by := person(g.pick(g.devs))
	c.Deployment = Deployment{
		ID: fmt.Sprintf("%s-production-%d", repo, c.Index), Environment: "production", Service: repo, Repository: c.Repository,
		Digest: "sha256:" + g.hex(64), System: "github-actions", Pipeline: "release", RunID: fmt.Sprintf("%d", 90000000+c.Index),
		Deployer: Identity{Login: "github-actions:release", Type: "service"}, Trigger: "manual", TriggeredBy: &by,
		StartedAt: at, FinishedAt: at.Add(g.minutes(2, 10)),
	}
}

// render writes every change's events and sorts them by time.
func (g *gen) render() {
	var evs []Event
	for i := range g.h.Changes {
		evs = append(evs, changeEvents(&g.h.Changes[i])...)
	}
	slices.SortStableFunc(evs, func(a, b Event) int { return a.Time.Compare(b.Time) })
	g.h.Events = evs
}

func changeEvents(c *Change) []Event {
	var out []Event
	n := 0
	repo := strings.TrimPrefix(c.Repository, "github.com/")
	web := "https://" + c.Repository
	emit := func(typ, source string, at time.Time, data map[string]any) {
		n++
		short := strings.TrimSuffix(strings.TrimPrefix(typ, "dev.evidencepipeline."), ".v1")
		id := fmt.Sprintf("c%06d-%02d-%s", c.Index, n, short)
		ev := map[string]any{
			"specversion": "1.0", "id": id, "source": source, "type": typ, "time": ts(at),
			"datacontenttype": "application/json", "data": data,
		}
		b, err := json.Marshal(ev)
		if err != nil {
			panic(err)
		}
		out = append(out, Event{ID: id, Source: source, Type: typ, Time: at, Change: c.Index, JSON: b})
	}
	ci := "/ci/github-actions/" + repo
	if tk := c.Ticket; tk != nil {
		src := "https://acme.atlassian.net"
		emit(TypeTicketCreated, src, tk.CreatedAt, map[string]any{
			"key": tk.Key, "system": tk.System, "ticket_type": tk.Type, "status": "New", "summary": "Change " + tk.Key,
			"requested_by": c.PR.Author.data(), "created_at": ts(tk.CreatedAt),
		})
		for _, a := range tk.Approvals {
			emit(TypeTicketApproved, src, a.At, map[string]any{
				"key": tk.Key, "system": tk.System, "ticket_type": tk.Type, "status": "Scheduled",
				"approver": a.By.data(), "approved_at": ts(a.At), "approval_group": "CAB",
			})
		}
	}
	if pr := c.PR; pr != nil {
		ch := map[string]any{"number": pr.Number, "url": fmt.Sprintf("%s/pull/%d", web, pr.Number)}
		var keys []string
		if c.Ticket != nil {
			keys = []string{c.Ticket.Key}
		}
		openedHead := pr.HeadCommit
		if len(pr.Updates) > 0 {
			openedHead = pr.Updates[0].Previous
		}
		emit(TypeChangeOpened, web, pr.OpenedAt, map[string]any{
			"repository": c.Repository, "change": ch, "title": pr.Title, "author": pr.Author.data(),
			"source_branch": pr.SourceBranch, "target_branch": pr.TargetBranch, "head_commit": openedHead,
			"base_commit": pr.BaseCommit, "opened_at": ts(pr.OpenedAt), "ticket_keys": keys,
		})
		for _, u := range pr.Updates {
			emit(TypeChangeUpdated, web, u.At, map[string]any{
				"repository": c.Repository, "change": ch, "head_commit": u.Head, "previous_head_commit": u.Previous,
				"actor": pr.Author.data(), "updated_at": ts(u.At),
			})
		}
		for _, r := range pr.Reviews {
			data := map[string]any{
				"repository": c.Repository, "change": ch, "reviewer": r.Reviewer.data(), "decision": r.Decision,
				"head_commit": r.Head, "submitted_at": ts(r.At), "review_id": r.ID, "author": pr.Author.data(),
			}
			if r.Decision == "dismissed" {
				data["dismissed_by"] = pr.Author.data()
			}
			emit(TypeReviewSubmitted, web, r.At, data)
		}
		emit(TypeChangeMerged, web, pr.MergedAt, map[string]any{
			"repository": c.Repository, "change": ch, "title": pr.Title, "author": pr.Author.data(),
			"source_branch": pr.SourceBranch, "target_branch": pr.TargetBranch, "head_commit": pr.HeadCommit,
			"base_commit": pr.BaseCommit, "merge_commit": pr.MergeCommit, "method": "merge",
			"merged_by": pr.MergedBy.data(), "merged_at": ts(pr.MergedAt), "ticket_keys": keys,
		})
	}
	for _, t := range c.Tests {
		emit(TypeTestReported, ci, t.At, map[string]any{
			"repository": c.Repository, "commit": t.Commit, "run_id": t.RunID, "suite": t.Suite, "tests": 120,
			"passed": 120 - t.Failed, "failed": t.Failed, "skipped": 0, "outcome": t.Outcome, "finished_at": ts(t.At),
		})
	}
	for _, s := range c.Scans {
		emit(TypeScanReported, ci, s.At, map[string]any{
			"repository": c.Repository, "commit": s.Commit, "run_id": s.RunID, "tool": s.Tool, "category": s.Category,
			"findings":    map[string]any{"critical": s.Critical, "high": s.High, "medium": s.Medium, "low": s.Low},
			"finished_at": ts(s.At),
		})
	}
	for _, r := range c.Runs {
		emit(TypePipelineRunFinshed, ci, r.At, map[string]any{
			"repository": c.Repository, "commit": r.Commit, "run_id": r.ID, "run_attempt": 1, "system": "github-actions",
			"pipeline": "ci", "trigger": r.Trigger, "actor": PipelineBot.data(), "outcome": r.Outcome, "finished_at": ts(r.At),
		})
	}
	for _, a := range c.Artifacts {
		emit(TypeArtifactBuilt, ci, a.At, map[string]any{
			"digest": a.Digest, "name": a.Name, "repository": c.Repository, "commit": a.Commit, "run_id": a.RunID,
			"builder": a.Builder.data(), "built_at": ts(a.At), "tags": []string{fmt.Sprintf("1.%d.0", c.Index)},
		})
	}
	d := c.Deployment
	data := map[string]any{
		"deployment_id": d.ID, "environment": d.Environment, "service": d.Service, "repository": d.Repository,
		"digest": d.Digest, "deployer": d.Deployer.data(), "started_at": ts(d.StartedAt),
	}
	if d.Commit != "" {
		data["commit"] = d.Commit
	}
	if d.System != "" {
		data["system"], data["pipeline"], data["run_id"] = d.System, d.Pipeline, d.RunID
	}
	if d.TriggeredBy != nil {
		data["triggered_by"] = d.TriggeredBy.data()
	}
	if d.Trigger != "" {
		data["trigger"] = d.Trigger
	}
	src := "/deploy/" + d.Service
	emit(TypeDeploymentStarted, src, d.StartedAt, data)
	fin := make(map[string]any, len(data)+2)
	for k, v := range data {
		fin[k] = v
	}
	fin["outcome"], fin["finished_at"] = "success", ts(d.FinishedAt)
	emit(TypeDeploymentFinished, src, d.FinishedAt, fin)
	return out
}
