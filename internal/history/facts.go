// Package history generates a realistic, deterministic delivery history
// (catalog CloudEvents of pull requests, change tickets, reviews, runs,
// tests, scans, artifacts and production deployments) together with the
// facts of each change, and judges those facts with a reference judge: a
// small implementation of the built-in controls (CM-1..CM-8) that is
// independent of the correlation and of OPA. Tests deliver the events to
// the pipeline in several ways and compare the pipeline's verdicts with
// the judge's; a benchmark may use the generator alone.
//
// The generator injects violations by changing the facts (who approved,
// when, what a suite reported, what was built from which commit, who
// deployed), never by a label the judge reads: Change.Kind only names, for
// a person reading a mismatch, what the generator meant to do.
package history

import "time"

// Identity is a person or machine account as the events name it
// (catalog $defs/identity).
type Identity struct {
	Login string
	Email string
	// Type is user, bot or service.
	Type string
}

// Ticket is a change ticket and its approvals.
type Ticket struct {
	Key    string
	System string
	// Type is normal, standard or emergency.
	Type      string
	CreatedAt time.Time
	Approvals []Approval
}

// Approval is one approval of a ticket.
type Approval struct {
	By Identity
	At time.Time
}

// Review is one review of the pull request.
type Review struct {
	ID       string
	Reviewer Identity
	// Decision is approved, changes_requested, commented or dismissed.
	Decision string
	Head     string
	At       time.Time
}

// PR is the pull request of a change.
type PR struct {
	Number       int
	Title        string
	Author       Identity
	SourceBranch string
	TargetBranch string
	HeadCommit   string
	BaseCommit   string
	MergeCommit  string
	MergedBy     Identity
	OpenedAt     time.Time
	MergedAt     time.Time
	// Updates are the pushes to the pull request after it was opened,
	// in order; HeadCommit is the last one's head.
	Updates []Update
	Reviews []Review
}

// Update is a push to the pull request (change.updated).
type Update struct {
	Head, Previous string
	At             time.Time
}

// Run is a pipeline run (its pipelinerun.finished event).
type Run struct {
	ID      string
	Commit  string
	Trigger string
	// Outcome is success or failure.
	Outcome string
	At      time.Time
}

// Test is one suite's result on a commit.
type Test struct {
	Commit string
	RunID  string
	Suite  string
	// Outcome is passed or failed.
	Outcome string
	Failed  int
	At      time.Time
}

// Scan is one security scan's result on a commit.
type Scan struct {
	Commit   string
	RunID    string
	Tool     string
	Category string
	Critical int
	High     int
	Medium   int
	Low      int
	At       time.Time
}

// Artifact is a build (artifact.built).
type Artifact struct {
	Digest  string
	Name    string
	Commit  string
	RunID   string
	Builder Identity
	At      time.Time
}

// Deployment is a deployment's started and finished events.
type Deployment struct {
	ID          string
	Environment string
	Service     string
	Repository  string
	Digest      string
	Commit      string
	// System and Pipeline are the CI system and pipeline that deployed;
	// empty for a deployment made outside CI.
	System   string
	Pipeline string
	RunID    string
	Deployer Identity
	// TriggeredBy is who started the deploying run; Trigger how.
	TriggeredBy *Identity
	Trigger     string
	StartedAt   time.Time
	FinishedAt  time.Time
}

// Change is everything the generator wrote about one change: its facts,
// from which the reference judge computes the verdict of its production
// deployment. A change with no pull request (PR nil) is a deployment that
// matches no change record: only its deployment's events were written.
type Change struct {
	Index      int
	Repository string
	// Kind names the violation the generator meant ("" for a compliant
	// change). The judge never reads it: it is for a person reading a
	// mismatch.
	Kind       string
	PR         *PR
	Ticket     *Ticket
	Runs       []Run
	Tests      []Test
	Scans      []Scan
	Artifacts  []Artifact
	Deployment Deployment
}
