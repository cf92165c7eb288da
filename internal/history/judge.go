package history

import (
	"slices"
	"strings"
	"time"
)

// The statuses of a control, as deployment_verdicts records them.
const (
	Pass    = "pass"
	Fail    = "fail"
	Pending = "pending"
)

// Params are the parameters the reference judge applies: the daemon's
// defaults (processors/evaluate/policies/params.go DefaultParams).
type Params struct {
	PipelineIdentities     []string
	PipelineSystems        []string
	ProtectedBranches      []string
	RequiredScanCategories []string
	EmergencyWindow        time.Duration
	// FailManualTriggerByAuthor is --manual-trigger-by-author fail: CM-3
	// fails when the author started the deploying pipeline on demand.
	FailManualTriggerByAuthor bool
}

// DefaultParams are the defaults of the built-in controls.
func DefaultParams() Params {
	return Params{
		PipelineIdentities:     []string{"github-actions[bot]"},
		PipelineSystems:        []string{"github-actions", "gitlab-ci", "jenkins", "circleci", "azure-pipelines", "buildkite", "tekton"},
		ProtectedBranches:      []string{"main", "master"},
		RequiredScanCategories: []string{"sast", "dependency"},
		EmergencyWindow:        24 * time.Hour,
	}
}

// Verdict is the reference judge's verdict of a production deployment:
// the overall status and each control's.
type Verdict struct {
	Status   string
	Controls map[string]string
	// Failing and Pending are the ids of the controls with that status,
	// sorted, as deployment_verdicts.failing and .pending hold them.
	Failing []string
	Pending []string
}

// Judge gives the verdict of c's production deployment, judged as of its
// start on all of c's facts (every one of them arrives within the
// verdict delay in the deliveries the property test makes), with the
// built-in controls' rules applied directly to the facts. Each control's
// rule is the Rego policy's (processors/evaluate/policies/cmN.rego), cut
// down to the facts the generator writes: no exceptions, rejections,
// pushes or stale heads. The policies judge a deployment with "now" its
// own start (processors/evaluate/stage.go deploymentVerdict), so a
// control missing evidence is pending (lib.rego in_grace: the pending
// deadline is after the deployment) and an emergency ticket with no
// approval is pending (cm1.rego emergency_open).
func (p Params) Judge(c *Change) Verdict {
	j := judge{p: p, c: c, at: c.Deployment.StartedAt}
	v := Verdict{Status: Pass, Controls: map[string]string{
		"CM-1": j.cm1(), "CM-2": j.cm2(), "CM-3": j.cm3(), "CM-4": j.cm4(),
		"CM-5": j.cm5(), "CM-6": j.cm6(), "CM-7": j.cm7(), "CM-8": j.cm8(),
	}}
	for id, s := range v.Controls {
		switch s {
		case Fail:
			v.Failing = append(v.Failing, id)
		case Pending:
			v.Pending = append(v.Pending, id)
		}
	}
	slices.Sort(v.Failing)
	slices.Sort(v.Pending)
	// evaluate.Overall: fail if one failed, else pending if one was.
	switch {
	case len(v.Failing) > 0:
		v.Status = Fail
	case len(v.Pending) > 0:
		v.Status = Pending
	}
	return v
}

type judge struct {
	p  Params
	c  *Change
	at time.Time
}

// decide is lib.rego decide with the deployment as "now": a failure
// fails; else missing evidence is pending (in grace); else a reason to
// pass passes; else nothing shows the control holds: fail.
func decide(fails, missing, passes bool) string {
	switch {
	case fails:
		return Fail
	case missing:
		return Pending
	case passes:
		return Pass
	}
	return Fail
}

// samePerson is lib.rego same_person: the same login or the same e-mail,
// case-insensitively.
func samePerson(a, b Identity) bool {
	return a.Login != "" && strings.EqualFold(a.Login, b.Login) || a.Email != "" && strings.EqualFold(a.Email, b.Email)
}

func (j judge) isPipeline(id Identity) bool {
	return slices.ContainsFunc(j.p.PipelineIdentities, func(p string) bool { return strings.EqualFold(p, id.Login) })
}

// isMachine is lib.rego machine_kind: a pipeline identity, a service
// account, a bot account (type bot or a login ending in [bot]).
func (j judge) isMachine(id Identity) bool {
	return j.isPipeline(id) || strings.EqualFold(id.Type, "service") || strings.EqualFold(id.Type, "bot") ||
		strings.HasSuffix(strings.ToLower(id.Login), "[bot]")
}

// pipelineDeployment is lib.rego pipeline_deployment: by a pipeline
// identity, or by a service identity through a pipeline system.
func (j judge) pipelineDeployment() bool {
	d := j.c.Deployment
	return j.isPipeline(d.Deployer) || d.Deployer.Type == "service" &&
		slices.ContainsFunc(j.p.PipelineSystems, func(s string) bool { return strings.EqualFold(s, d.System) })
}

func (j judge) isAuthor(id Identity) bool { return j.c.PR != nil && samePerson(j.c.PR.Author, id) }

// deployed is the deployed artifact (lib.rego asked_builds: the change's
// artifacts with the deployment's digest), if the change built it.
func (j judge) deployed() (Artifact, bool) {
	for _, a := range j.c.Artifacts {
		if a.Digest == j.c.Deployment.Digest {
			return a, true
		}
	}
	return Artifact{}, false
}

// deployedCommit is lib.rego deployed_commits for a deployment judged on
// its artifact: the artifact's commit, else the commit the deployment
// names, else the change's merged commit; "" when none is known.
func (j judge) deployedCommit() string {
	if a, ok := j.deployed(); ok {
		return a.Commit
	}
	if j.c.Deployment.Commit != "" {
		return j.c.Deployment.Commit
	}
	if j.c.PR != nil {
		return j.c.PR.MergeCommit
	}
	return ""
}

// cm1 is cm1.rego: a ticket approved by a person at or before the
// deployment, or an emergency ticket approved within the emergency window
// after it; a normal ticket approved only after it fails; an emergency
// ticket with no approval yet is pending; no ticket, no approval or only
// a machine's approval is missing evidence.
func (j judge) cm1() string {
	t := j.c.Ticket
	if t == nil {
		return decide(false, true, false) // no change ticket linked
	}
	emergency := t.Type == "emergency"
	end := j.at.Add(j.p.EmergencyWindow)
	var human []Approval
	machine := false
	for _, a := range t.Approvals {
		if j.isMachine(a.By) {
			machine = true
			continue
		}
		human = append(human, a)
	}
	for _, a := range human {
		if !a.At.After(j.at) || emergency && !a.At.After(end) {
			return Pass // qualifying
		}
	}
	fails := false
	for _, a := range human {
		if !emergency && a.At.After(j.at) || emergency && a.At.After(end) {
			fails = true
		}
	}
	if !fails && emergency && len(human) == 0 {
		return Pending // emergency_open: the window is still open as of the deployment
	}
	return decide(fails, len(t.Approvals) == 0 || machine, false)
}

// standing is cm2.rego standing, with the platform's review semantics
// the correlation derives (processors/correlate/build.go): an approval
// counts unless a dismissal names it (same reviewer, same review id) or
// the same reviewer's later decisive review (approved or changes
// requested) replaced it; at the same instant a request for changes is
// the later.
func (j judge) standing(r Review) bool {
	return !j.dismissed(r) && !j.superseded(r)
}

func (j judge) dismissed(r Review) bool {
	for _, s := range j.c.PR.Reviews {
		if s.Decision == "dismissed" && r.Decision != "dismissed" && strings.EqualFold(s.Reviewer.Login, r.Reviewer.Login) &&
			(s.ID != "" && s.ID == r.ID || s.ID == "" && !s.At.Before(r.At)) {
			return true
		}
	}
	return false
}

func decisive(d string) bool { return d == "approved" || d == "changes_requested" }

func (j judge) superseded(r Review) bool {
	for _, s := range j.c.PR.Reviews {
		if s == r || !decisive(s.Decision) || !decisive(r.Decision) || !strings.EqualFold(s.Reviewer.Login, r.Reviewer.Login) {
			continue
		}
		if s.At.After(r.At) || s.At.Equal(r.At) && s.Decision == "changes_requested" && r.Decision == "approved" {
			return true
		}
	}
	return false
}

// cm2 is cm2.rego: a standing approval on the final head (not stale) by someone
// neither the author nor a machine passes; a deployment matching no
// change fails; anything else is missing evidence.
func (j judge) cm2() string {
	pr := j.c.PR
	if pr == nil {
		return Fail // unmatched
	}
	for _, r := range pr.Reviews {
		if r.Decision == "approved" && j.standing(r) && r.Head == pr.HeadCommit && !j.isAuthor(r.Reviewer) && !j.isMachine(r.Reviewer) {
			return Pass
		}
	}
	return Pending
}

// cm3 is cm3.rego: the author, the approving reviewers (not dismissed;
// superseded or stale ones still count here),
// the ticket approvers and a deployer that is not the pipeline are
// distinct people; someone other than the author must have approved (a
// review or the ticket). The author starting the pipeline on demand is
// allowed (manual_trigger_by_author: allow, the default) unless
// FailManualTriggerByAuthor.
func (j judge) cm3() string {
	type role struct {
		name string
		id   Identity
	}
	var people []role
	if pr := j.c.PR; pr != nil {
		people = append(people, role{"author", pr.Author})
		for _, r := range pr.Reviews {
			if r.Decision == "approved" && !j.dismissed(r) {
				people = append(people, role{"reviewer", r.Reviewer})
			}
		}
	}
	if t := j.c.Ticket; t != nil {
		for _, a := range t.Approvals {
			people = append(people, role{"ticket_approver", a.By})
		}
	}
	d := j.c.Deployment
	if !j.pipelineDeployment() {
		people = append(people, role{"deployer", d.Deployer})
	}
	fails, approvers := false, false
	// cm3.rego author_started: on demand is any trigger but push,
	// schedule and pipeline (lib.rego on_demand).
	if j.p.FailManualTriggerByAuthor && j.pipelineDeployment() && d.TriggeredBy != nil && j.isAuthor(*d.TriggeredBy) &&
		!slices.Contains([]string{"push", "schedule", "pipeline"}, strings.ToLower(d.Trigger)) {
		fails = true
	}
	for _, x := range people {
		for _, y := range people {
			if x.name < y.name && samePerson(x.id, y.id) {
				fails = true
			}
		}
		if (x.name == "reviewer" || x.name == "ticket_approver") && !j.isAuthor(x.id) {
			approvers = true
		}
	}
	return decide(fails, !approvers, len(people) > 0 || j.pipelineDeployment())
}

// cm4 is cm4.rego: the latest result of every suite on the deployed
// commit passed; none there is missing evidence.
func (j judge) cm4() string {
	c := j.deployedCommit()
	if c == "" {
		return Pending // the deployed commit is not known
	}
	latest := map[string]Test{}
	for _, t := range j.c.Tests {
		if t.Commit == c && (latest[t.Suite].At.IsZero() || t.At.After(latest[t.Suite].At)) {
			latest[t.Suite] = t
		}
	}
	fails := false
	for _, t := range latest {
		fails = fails || t.Outcome != "passed"
	}
	return decide(fails, len(latest) == 0, true)
}

// cm5 is cm5.rego: the latest scan of each tool and category on the
// deployed commit (or of the deployed digest) has no finding at or above
// high; each required category must have run on the commit.
func (j judge) cm5() string {
	c := j.deployedCommit()
	if c == "" {
		return Pending
	}
	type k struct{ tool, cat string }
	latest := map[k]Scan{}
	for _, s := range j.c.Scans {
		key := k{s.Tool, s.Category}
		if s.Commit == c && (latest[key].At.IsZero() || s.At.After(latest[key].At)) {
			latest[key] = s
		}
	}
	fails := false
	ran := map[string]bool{}
	for key, s := range latest {
		fails = fails || s.Critical+s.High > 0
		ran[key.cat] = true
	}
	missing := false
	for _, cat := range j.p.RequiredScanCategories {
		missing = missing || !ran[cat]
	}
	return decide(fails, missing, len(latest) > 0)
}

// cm6 is cm6.rego for the deployed artifact: built by a pipeline run (a
// run id; a pipeline or service builder) from the merged commit, the run
// on that commit and not failed. A deployment matching no change fails;
// an artifact or run the change does not know is missing evidence.
func (j judge) cm6() string {
	if j.c.PR == nil {
		return Fail // unmatched
	}
	a, ok := j.deployed()
	if !ok {
		return Pending // the deployed artifact is not known
	}
	outside := a.RunID == "" || !j.isPipeline(a.Builder) && a.Builder.Type != "service"
	fails := outside || a.Commit != j.c.PR.MergeCommit
	var run *Run
	for i := range j.c.Runs {
		if j.c.Runs[i].ID == a.RunID {
			run = &j.c.Runs[i]
		}
	}
	if run != nil {
		fails = fails || run.Commit != a.Commit || run.Outcome == "failure"
	}
	return decide(fails, !outside && run == nil, true)
}

// cm7 is cm7.rego: deployed by the pipeline, from a change merged into a
// protected branch; a deployment matching no change fails.
func (j judge) cm7() string {
	pr := j.c.PR
	if pr == nil {
		return Fail
	}
	protected := slices.ContainsFunc(j.p.ProtectedBranches, func(b string) bool { return strings.EqualFold(b, pr.TargetBranch) })
	return decide(!j.pipelineDeployment() || !protected, false, true)
}

// cm8 is cm8.rego: the deployment matches a change record (a merged pull
// request).
func (j judge) cm8() string {
	if j.c.PR == nil {
		return Fail
	}
	return Pass
}
