package demo

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/producers/emitter"
)

// Source is the prefix of every demo event's source: demo data is never
// mistaken for real evidence (.invalid is a reserved top-level domain).
const Source = "https://demo.evidence.invalid"

// Kind is what a demo change shows.
type Kind string

// The kinds of demo changes: compliant ones, one of each violation, an
// emergency change approved retroactively, and an exception.
const (
	Compliant            Kind = "compliant"
	SelfApproved         Kind = "self-approved"          // the author approves their own pull request
	NoTicketApproval     Kind = "no-ticket-approval"     // the change ticket is never approved
	ApprovedAfterDeploy  Kind = "approved-after-deploy"  // a normal ticket approved after the production deployment
	FailingTests         Kind = "failing-tests"          // deployed with a failing test suite
	CriticalFinding      Kind = "critical-finding"       // deployed with a critical dependency finding
	BuiltOutsidePipeline Kind = "built-outside-pipeline" // the artifact was built on a laptop
	UnmatchedDeployment  Kind = "unmatched-deployment"   // a production deployment that matches no change
	DeployerIsAuthor     Kind = "deployer-is-author"     // the author deploys by hand
	EmergencyRetroactive Kind = "emergency-retroactive"  // an emergency change, its ticket approved after the deployment
	ExceptionGranted     Kind = "exception-granted"      // a critical finding waived by a granted exception
)

// Kinds lists every kind but Compliant.
var Kinds = []Kind{SelfApproved, NoTicketApproval, ApprovedAfterDeploy, FailingTests, CriticalFinding,
	BuiltOutsidePipeline, UnmatchedDeployment, DeployerIsAuthor, EmergencyRetroactive, ExceptionGranted}

// Expectation is the result a kind is meant to produce on one control once
// all its events are in and its deadlines have passed; every other control
// passes for Compliant, EmergencyRetroactive and ExceptionGranted.
type Expectation struct {
	Control string
	Status  string // pass, fail, waived
}

// Expected maps each kind to what it demonstrates.
var Expected = map[Kind]Expectation{
	Compliant:            {"", "pass"},
	SelfApproved:         {"CM-3", "fail"},
	NoTicketApproval:     {"CM-1", "fail"},
	ApprovedAfterDeploy:  {"CM-1", "fail"},
	FailingTests:         {"CM-4", "fail"},
	CriticalFinding:      {"CM-5", "fail"},
	BuiltOutsidePipeline: {"CM-6", "fail"},
	UnmatchedDeployment:  {"CM-8", "fail"},
	DeployerIsAuthor:     {"CM-3", "fail"},
	EmergencyRetroactive: {"CM-1", "pass"},
	ExceptionGranted:     {"CM-5", "waived"},
}

// blockSize: every block of this many changes has each violation kind once
// and compliant changes for the rest, in an order drawn from the seed.
const blockSize = 32

// KindAt is the kind of the n-th demo change (from 0) for a seed.
func KindAt(seed uint64, n int) Kind {
	block := make([]Kind, 0, blockSize)
	block = append(block, Kinds...)
	for len(block) < blockSize {
		block = append(block, Compliant)
	}
	r := rand.New(rand.NewPCG(seed, uint64(n/blockSize)))
	r.Shuffle(len(block), func(i, j int) { block[i], block[j] = block[j], block[i] })
	return block[n%blockSize]
}

type service struct {
	name, repo, prefix string
	summaries          []string
}

var services = []service{
	{"payments", "demo.evidence.invalid/acme/payments", "PAY", []string{"Retry card captures on gateway timeout", "Add idempotency keys to refunds", "Reject expired cards earlier", "Log 3-D Secure outcomes"}},
	{"billing", "demo.evidence.invalid/acme/billing", "BIL", []string{"Prorate plan upgrades", "Fix invoice rounding for JPY", "Send dunning e-mails in the customer's language", "Archive paid invoices"}},
	{"checkout", "demo.evidence.invalid/acme/checkout", "CHK", []string{"Show delivery estimate before payment", "Keep the basket across logins", "Validate postcodes per country", "Lazy-load payment methods"}},
	{"ledger", "demo.evidence.invalid/acme/ledger", "LED", []string{"Close the books at midnight UTC", "Reconcile FX gains daily", "Export journal entries as CSV", "Lock posted periods"}},
}

type person struct{ login, name string }

var (
	engineers = []person{{"alice", "Alice Martin"}, {"bob", "Bob Chen"}, {"dana", "Dana Okafor"}, {"emeka", "Emeka Obi"},
		{"farah", "Farah Haddad"}, {"goran", "Goran Petrov"}, {"hana", "Hana Sato"}, {"ines", "Inès Laurent"}}
	approvers = []person{{"carol.cab", "Carol Jones"}, {"ivan.cab", "Ivan Novak"}, {"maria.cab", "Maria Silva"}}
	pipeline  = emitter.Identity{Login: "github-actions[bot]", Type: "service"}
)

func (p person) id() *emitter.Identity {
	return &emitter.Identity{Login: p.login, Name: p.name, Email: p.login + "@demo.evidence.invalid", Type: "user"}
}

// Scenario is one demo change: its events in the order and at the times a
// real delivery would produce them.
type Scenario struct {
	N          int
	Kind       Kind
	Service    string
	Repository string
	// Change is the id of the change record the events make.
	Change string
	// Commit is the merge commit (for UnmatchedDeployment, the deployed one).
	Commit string
	PR     int
	Ticket string
	Events []event.Event
}

// Build makes the n-th change of a run: kind from the seed, people and
// service from the seed, identifiers from the seed and the run (so two runs
// against the same evidenced never share a pull request or a commit), its
// first event at start and the next ones step apart.
func Build(seed uint64, run string, n int, start time.Time, step time.Duration) Scenario {
	return BuildKind(seed, run, n, KindAt(seed, n), start, step)
}

// BuildKind is Build with a given kind.
func BuildKind(seed uint64, run string, n int, kind Kind, start time.Time, step time.Duration) Scenario {
	r := rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, uint64(n)))
	svc := services[r.IntN(len(services))]
	perm := r.Perm(len(engineers))
	author, reviewer := engineers[perm[0]], engineers[perm[1]]
	approver := approvers[r.IntN(len(approvers))]
	summary := svc.summaries[r.IntN(len(svc.summaries))]
	sha := func(role string) string {
		s := sha256.Sum256([]byte(fmt.Sprintf("%d/%s/%d/%s", seed, run, n, role)))
		return hex.EncodeToString(s[:20])
	}
	digest := func(role string) string {
		s := sha256.Sum256([]byte(fmt.Sprintf("digest/%d/%s/%d/%s", seed, run, n, role)))
		return "sha256:" + hex.EncodeToString(s[:])
	}
	// A pull request number and ticket key unique to the run.
	runNum := int(sha256.Sum256([]byte(run))[0])<<8 | int(sha256.Sum256([]byte(run))[1])
	pr := 1000 + runNum%900*100 + n%100 + (n/100)*100000
	key := fmt.Sprintf("%s-%d", svc.prefix, pr)
	head, base, merge := sha("head"), sha("base"), sha("merge")
	runID := fmt.Sprintf("%d%04d", 70000+runNum%9000, n)
	img := "registry.demo.evidence.invalid/acme/" + svc.name
	dig := digest("image")

	b := &builder{seed: seed, run: run, n: n, at: start, step: step}
	sc := Scenario{N: n, Kind: kind, Service: svc.name, Repository: svc.repo, Commit: merge, PR: pr, Ticket: key}
	sc.Change = svc.repo + "@" + merge
	vcs := Source + "/github/acme/" + svc.name
	jira := Source + "/jira"
	ci := Source + "/ci/acme/" + svc.name
	deploySrc := Source + "/deploy/acme/" + svc.name
	change := map[string]any{"number": pr, "url": "https://demo.evidence.invalid/github/acme/" + svc.name + "/pull/" + fmt.Sprint(pr)}

	if kind == UnmatchedDeployment {
		sc.Change = "unmatched:production/" + svc.name + "/" + dig
		sc.Commit, sc.PR, sc.Ticket = sha("hotfix"), 0, ""
		dep := emitter.Deployment{DeploymentID: fmt.Sprintf("%s-production-%s-%d", svc.name, run, n), Environment: "production", Service: svc.name,
			Digest: dig, Artifact: img, Repository: svc.repo, Commit: sc.Commit, System: "demo", Deployer: &pipeline}
		b.emit(emitter.DeploymentStarted(emitter.Meta{Source: deploySrc, ID: b.id("deploy-production-started"), Time: b.next()}, withStart(dep, b.at)))
		dep.Outcome = "success"
		b.emit(emitter.DeploymentFinished(emitter.Meta{Source: deploySrc, ID: b.id("deploy-production-finished"), Time: b.next()}, withFinish(dep, b.at)))
		sc.Events = b.events
		return sc
	}

	ticketType, rawType := "normal", "Change"
	if kind == EmergencyRetroactive {
		ticketType, rawType = "emergency", "Emergency Change"
	}
	title := key + " " + summary
	approve := func() {
		at := b.next()
		b.raw("dev.evidencepipeline.ticket.approved.v1", jira, b.id("ticket-approved"), key, at, map[string]any{
			"key": key, "system": "jira", "ticket_type": ticketType, "status": "Approved",
			"approver": approver.id(), "approved_at": at, "approval_group": "Change Advisory Board",
		})
	}

	at := b.next()
	b.raw("dev.evidencepipeline.ticket.created.v1", jira, b.id("ticket-created"), key, at, map[string]any{
		"key": key, "system": "jira", "ticket_type": ticketType, "raw_type": rawType, "summary": summary, "status": "Open",
		"url": "https://demo.evidence.invalid/jira/browse/" + key, "requested_by": author.id(), "created_at": at,
	})
	at = b.next()
	b.raw("dev.evidencepipeline.change.opened.v1", vcs, b.id("change-opened"), svc.repo+"/pull/"+fmt.Sprint(pr), at, map[string]any{
		"repository": svc.repo, "change": change, "title": title, "author": author.id(),
		"source_branch": "feature/" + key, "target_branch": "main", "head_commit": head, "base_commit": base,
		"ticket_keys": []string{key}, "draft": false, "opened_at": at,
	})
	rv := reviewer
	if kind == SelfApproved {
		rv = author
	}
	at = b.next()
	b.raw("dev.evidencepipeline.review.submitted.v1", vcs, b.id("review"), svc.repo+"/pull/"+fmt.Sprint(pr), at, map[string]any{
		"repository": svc.repo, "change": change, "reviewer": rv.id(), "decision": "approved", "head_commit": head,
		"submitted_at": at, "review_id": fmt.Sprint(pr*10 + 1), "author": author.id(),
	})
	if kind != NoTicketApproval && kind != ApprovedAfterDeploy && kind != EmergencyRetroactive {
		approve()
	}
	at = b.next()
	b.raw("dev.evidencepipeline.change.merged.v1", vcs, b.id("change-merged"), svc.repo+"/pull/"+fmt.Sprint(pr), at, map[string]any{
		"repository": svc.repo, "change": change, "title": title, "author": author.id(),
		"source_branch": "feature/" + key, "target_branch": "main", "head_commit": head, "base_commit": base,
		"merge_commit": merge, "method": "squash", "merged_by": reviewer.id(), "merged_at": at,
		"commits": []string{head}, "ticket_keys": []string{key},
	})
	prun := emitter.PipelineRun{Repository: svc.repo, Commit: merge, Branch: "main", RunID: runID, RunAttempt: 1,
		RunURL: Source + "/ci/acme/" + svc.name + "/runs/" + runID, Pipeline: "release", System: "demo",
		Actor: &pipeline, Trigger: "push"}
	prun.StartedAt = b.next()
	b.emit(emitter.PipelineRunStarted(emitter.Meta{Source: ci, ID: b.id("run-started"), Time: b.at}, prun))

	test := emitter.TestReport{Repository: svc.repo, Commit: merge, RunID: runID, System: "demo", Suite: "unit",
		Tests: 240 + r.IntN(400), Outcome: "passed", ReportFormat: "junit"}
	test.Passed = test.Tests
	if kind == FailingTests {
		test.Failed, test.Passed, test.Outcome = 3, test.Tests-3, "failed"
		test.Failures = []emitter.TestFailure{{Name: "TestRoundTrip", Message: "expected 2 entries, got 1"}}
	}
	test.FinishedAt = b.next()
	b.emit(emitter.TestReported(emitter.Meta{Source: ci, ID: b.id("test-unit"), Time: b.at}, test))

	for _, s := range []struct{ tool, category string }{{"semgrep", "sast"}, {"grype", "dependency"}} {
		scan := emitter.ScanReport{Repository: svc.repo, Commit: merge, RunID: runID, System: "demo", Tool: s.tool, Category: s.category,
			Findings: emitter.Findings{Medium: r.IntN(3), Low: r.IntN(8)}, Outcome: "passed", ReportFormat: "sarif", Target: img, Digest: dig}
		if s.category == "dependency" && (kind == CriticalFinding || kind == ExceptionGranted) {
			scan.Findings.Critical, scan.Outcome = 1, "failed"
		}
		scan.FinishedAt = b.next()
		b.emit(emitter.ScanReported(emitter.Meta{Source: ci, ID: b.id("scan-" + s.tool), Time: b.at}, scan))
	}
	if kind == ExceptionGranted {
		excID := "EXC-" + fmt.Sprint(pr)
		scope := map[string]any{"repository": svc.repo, "change": map[string]any{"number": pr}}
		expires := b.at.Add(14 * 24 * time.Hour)
		at = b.next()
		b.raw("dev.evidencepipeline.exception.requested.v1", jira, b.id("exception-requested"), excID, at, map[string]any{
			"id": excID, "control": "CM-5", "scope": scope, "reason": "CVE in a transitive dependency that is not reachable; upgrade planned in " + key,
			"requested_by": author.id(), "requested_at": at, "ticket_key": key, "expires_at": expires,
		})
		at = b.next()
		b.raw("dev.evidencepipeline.exception.granted.v1", jira, b.id("exception-granted"), excID, at, map[string]any{
			"id": excID, "control": "CM-5", "scope": scope, "approver": approver.id(), "granted_at": at, "expires_at": expires, "ticket_key": key,
		})
	}
	art := emitter.Artifact{Digest: dig, Name: img, Tags: []string{fmt.Sprintf("1.%d.%d", n/10, n%10)}, Repository: svc.repo, Commit: merge,
		RunID: runID, RunURL: prun.RunURL, Pipeline: "release", System: "demo", Builder: &pipeline}
	if kind == BuiltOutsidePipeline {
		art.RunID, art.RunURL, art.Pipeline, art.Builder = "laptop-"+author.login, "", "", author.id()
	}
	art.BuiltAt = b.next()
	b.emit(emitter.ArtifactBuilt(emitter.Meta{Source: ci, ID: b.id("artifact"), Time: b.at}, art))
	prun.Outcome = "success"
	prun.FinishedAt = b.next()
	b.emit(emitter.PipelineRunFinished(emitter.Meta{Source: ci, ID: b.id("run-finished"), Time: b.at}, prun))

	for _, env := range []string{"staging", "production"} {
		deployer := &pipeline
		if env == "production" && kind == DeployerIsAuthor {
			deployer = author.id()
		}
		dep := emitter.Deployment{DeploymentID: fmt.Sprintf("%s-%s-%s-%d", svc.name, env, run, n), Environment: env, Service: svc.name,
			Digest: dig, Artifact: img, Repository: svc.repo, Commit: merge, RunID: runID, RunURL: prun.RunURL, Pipeline: "release",
			System: "demo", Deployer: deployer, TicketKeys: []string{key}}
		b.next()
		b.emit(emitter.DeploymentStarted(emitter.Meta{Source: deploySrc, ID: b.id("deploy-" + env + "-started"), Time: b.at}, withStart(dep, b.at)))
		dep.Outcome = "success"
		b.next()
		b.emit(emitter.DeploymentFinished(emitter.Meta{Source: deploySrc, ID: b.id("deploy-" + env + "-finished"), Time: b.at}, withFinish(dep, b.at)))
	}
	if kind == ApprovedAfterDeploy || kind == EmergencyRetroactive {
		b.next()
		b.next()
		approve()
	}
	sc.Events = b.events
	return sc
}

func withStart(d emitter.Deployment, at time.Time) emitter.Deployment {
	d.StartedAt = at
	return d
}

func withFinish(d emitter.Deployment, at time.Time) emitter.Deployment {
	d.FinishedAt = at
	return d
}

// builder collects a scenario's events, each a step after the one before.
type builder struct {
	seed   uint64
	run    string
	n      int
	at     time.Time
	step   time.Duration
	count  int
	events []event.Event
	err    error
}

func (b *builder) next() time.Time {
	if b.count > 0 {
		b.at = b.at.Add(b.step)
	}
	b.count++
	b.at = b.at.UTC().Truncate(time.Millisecond)
	return b.at
}

func (b *builder) id(step string) string {
	return fmt.Sprintf("demo-%d-%s-%d-%s", b.seed, b.run, b.n, step)
}

func (b *builder) emit(e event.Event, err error) {
	if err != nil {
		panic(fmt.Sprintf("demo: %v", err)) // the scenarios are fixed code: a bug, not input
	}
	b.events = append(b.events, e)
}

// raw builds a catalog event the emitter has no constructor for (pull
// requests, reviews, tickets, exceptions: webhook adapters make those).
func (b *builder) raw(typ, source, id, subject string, at time.Time, data map[string]any) {
	e := event.New()
	e.SetType(typ)
	e.SetSource(source)
	e.SetID(id)
	e.SetSubject(strings.TrimSpace(subject))
	e.SetTime(at)
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		panic(fmt.Sprintf("demo: %s: %v", typ, err))
	}
	b.events = append(b.events, e)
}
