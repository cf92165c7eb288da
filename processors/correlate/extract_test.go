package correlate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var (
	ceTime = time.Date(2025, 3, 3, 23, 59, 0, 0, time.UTC) // the CloudEvent's time: not the data's
	evRef  = EventRef{Source: "https://example.test/source", ID: "evt-1"}
)

func ev(typ, data string) *ce.Event {
	return &ce.Event{ID: evRef.ID, Source: evRef.Source, Type: typ, Time: ceTime, DataContentType: "application/json", Data: []byte(data)}
}

func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

var (
	alice     = &Identity{Login: "alice", ID: "1001", Name: "Alice Martin", Email: "alice@acme.example", Type: "user"}
	bob       = &Identity{Login: "bob", ID: "1002", Name: "Bob Chen", Email: "bob@acme.example", Type: "user"}
	carol     = &Identity{Login: "carol.jones", Name: "Carol Jones", Email: "carol@acme.example", Type: "user"}
	ghBot     = &Identity{Login: "github-actions[bot]", ID: "41898282", Type: "service"}
	aliceJSON = `{"login": "alice", "id": "1001", "name": "Alice Martin", "email": "alice@acme.example", "type": "user"}`
	bobJSON   = `{"login": "bob", "id": "1002", "name": "Bob Chen", "email": "bob@acme.example", "type": "user"}`
	carolJSON = `{"login": "carol.jones", "name": "Carol Jones", "email": "carol@acme.example", "type": "user"}`
	botJSON   = `{"login": "github-actions[bot]", "id": "41898282", "type": "service"}`
)

const (
	repo    = "github.com/acme/payments"
	head1   = "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"
	head2   = "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4"
	mergeC  = "c0ffee1234567890abcdef1234567890abcdef12"
	baseC   = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d"
	digest1 = "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899"
	purl1   = "pkg:oci/payments@sha256%3A4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899?repository_url=ghcr.io/acme"
)

func TestExtract(t *testing.T) {
	no := false
	tests := []struct {
		name string
		e    *ce.Event
		want *Fact // nil: no fact
	}{
		{"change.opened", ev(TypeChangeOpened, `{
			"repository": "github.com/acme/payments",
			"change": {"number": 42, "url": "https://github.com/acme/payments/pull/42"},
			"title": "PAY-123 Retry card captures on gateway timeout",
			"author": `+aliceJSON+`,
			"source_branch": "feature/PAY-123-capture-retry", "target_branch": "main",
			"head_commit": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
			"base_commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d",
			"ticket_keys": ["PAY-123"], "draft": false, "opened_at": "2025-03-03T09:12:44Z"}`),
			&Fact{Kind: KindChangeOpened, Time: at("2025-03-03T09:12:44Z"),
				Keys: []Key{ChangeKey(repo, 42), CommitKey(repo, head1), RepoKey(repo), TicketKey("PAY-123")},
				Change: &ChangeFact{Repository: repo, Number: 42, URL: "https://github.com/acme/payments/pull/42",
					Title: "PAY-123 Retry card captures on gateway timeout", Author: alice,
					SourceBranch: "feature/PAY-123-capture-retry", TargetBranch: "main", HeadCommit: head1, BaseCommit: baseC,
					Draft: &no, Tickets: []Mention{{Key: "PAY-123", In: []string{"branch", "ticket_keys", "title"}}}}}},
		{"change.updated", ev(TypeChangeUpdated, `{
			"repository": "github.com/acme/payments",
			"change": {"number": 42, "url": "https://github.com/acme/payments/pull/42"},
			"head_commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
			"previous_head_commit": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
			"actor": `+aliceJSON+`, "title": "Retry captures (see CHG0031234)",
			"target_branch": "main", "updated_at": "2025-03-03T14:02:10Z"}`),
			&Fact{Kind: KindChangeHead, Time: at("2025-03-03T14:02:10Z"),
				Keys: []Key{ChangeKey(repo, 42), CommitKey(repo, head1), CommitKey(repo, head2), RepoKey(repo), TicketKey("CHG0031234")},
				Change: &ChangeFact{Repository: repo, Number: 42, URL: "https://github.com/acme/payments/pull/42",
					Title: "Retry captures (see CHG0031234)", TargetBranch: "main", HeadCommit: head2, PreviousHead: head1, Actor: alice,
					Tickets: []Mention{{Key: "CHG0031234", In: []string{"title"}}}}}},
		{"change.merged", ev(TypeChangeMerged, `{
			"repository": "github.com/acme/payments",
			"change": {"number": 42, "url": "https://github.com/acme/payments/pull/42"},
			"title": "Retry card captures on gateway timeout", "author": `+aliceJSON+`,
			"source_branch": "feature/pay-123-capture-retry", "target_branch": "main",
			"head_commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
			"base_commit": "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d",
			"merge_commit": "C0FFEE1234567890ABCDEF1234567890ABCDEF12", "method": "squash",
			"merged_by": `+bobJSON+`, "merged_at": "2025-03-03T16:30:00Z",
			"commits": ["9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4", "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"],
			"ticket_keys": ["pay-123"]}`),
			&Fact{Kind: KindChangeMerged, Time: at("2025-03-03T16:30:00Z"),
				Keys: []Key{ChangeKey(repo, 42), CommitKey(repo, head1), CommitKey(repo, head2), CommitKey(repo, mergeC), RepoKey(repo), TicketKey("PAY-123")},
				Change: &ChangeFact{Repository: repo, Number: 42, URL: "https://github.com/acme/payments/pull/42",
					Title: "Retry card captures on gateway timeout", Author: alice, SourceBranch: "feature/pay-123-capture-retry",
					TargetBranch: "main", HeadCommit: head2, BaseCommit: baseC, MergeCommit: mergeC, Method: "squash", MergedBy: bob,
					Commits: []string{head1, head2}, Tickets: []Mention{{Key: "PAY-123", In: []string{"branch", "ticket_keys"}}}}}},
		{"change.closed", ev(TypeChangeClosed, `{
			"repository": "github.com/acme/payments", "change": {"number": 43},
			"title": "Try a new retry library", "author": `+aliceJSON+`,
			"head_commit": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e", "target_branch": "main",
			"closed_by": `+aliceJSON+`, "closed_at": "2025-03-04T08:00:00Z"}`),
			&Fact{Kind: KindChangeClosed, Time: at("2025-03-04T08:00:00Z"),
				Keys: []Key{ChangeKey(repo, 43), CommitKey(repo, head1), RepoKey(repo)},
				Change: &ChangeFact{Repository: repo, Number: 43, Title: "Try a new retry library", Author: alice,
					TargetBranch: "main", HeadCommit: head1, ClosedBy: alice}}},
		{"review.submitted", ev(TypeReviewSubmitted, `{
			"repository": "github.com/acme/payments",
			"change": {"number": 42, "url": "https://github.com/acme/payments/pull/42"},
			"reviewer": `+bobJSON+`, "decision": "approved",
			"head_commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4", "submitted_at": "2025-03-03T15:45:12Z",
			"review_id": "2087654321", "review_url": "https://github.com/acme/payments/pull/42#pullrequestreview-2087654321",
			"author": `+aliceJSON+`}`),
			&Fact{Kind: KindReview, Time: at("2025-03-03T15:45:12Z"),
				Keys: []Key{ChangeKey(repo, 42), CommitKey(repo, head2), RepoKey(repo)},
				Review: &ReviewFact{Repository: repo, Number: 42, Reviewer: *bob, Decision: "approved", HeadCommit: head2,
					ReviewID: "2087654321", ReviewURL: "https://github.com/acme/payments/pull/42#pullrequestreview-2087654321", Author: alice}}},
		{"review.submitted minimal: the event's time", ev(TypeReviewSubmitted, `{
			"repository": "github.com/acme/payments", "change": {"number": 42}, "reviewer": {"login": "bob"},
			"decision": "dismissed", "head_commit": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"}`),
			&Fact{Kind: KindReview, Time: ceTime, Keys: []Key{ChangeKey(repo, 42), CommitKey(repo, head1), RepoKey(repo)},
				Review: &ReviewFact{Repository: repo, Number: 42, Reviewer: Identity{Login: "bob"}, Decision: "dismissed", HeadCommit: head1}}},
		{"ticket.created", ev(TypeTicketCreated, `{
			"key": "CHG0031234", "system": "servicenow", "ticket_type": "normal", "raw_type": "Normal",
			"summary": "Payments: retry card captures on gateway timeout (PAY-123)",
			"url": "https://acme.service-now.com/change_request.do?sys_id=3f1c0d2e1b2a",
			"requested_by": `+aliceJSON+`,
			"links": {"repositories": ["github.com/acme/payments"], "commits": ["c0ffee1234567890abcdef1234567890abcdef12"],
				"changes": [{"repository": "github.com/acme/payments", "number": 42, "url": "https://github.com/acme/payments/pull/42"}]},
			"planned_window": {"start": "2025-03-04T07:00:00Z", "end": "2025-03-04T08:00:00Z"},
			"status": "New", "created_at": "2025-03-03T10:00:00Z"}`),
			&Fact{Kind: KindTicketState, Time: at("2025-03-03T10:00:00Z"),
				Keys: []Key{TicketKey("CHG0031234"), RepoKey(repo), ChangeKey(repo, 42), CommitKey(repo, mergeC)},
				Ticket: &TicketFact{Key: "CHG0031234", System: "servicenow", Action: "created", Type: "normal", RawType: "Normal",
					Status: "New", Summary: "Payments: retry card captures on gateway timeout (PAY-123)",
					URL: "https://acme.service-now.com/change_request.do?sys_id=3f1c0d2e1b2a", RequestedBy: alice,
					Links:         &TicketLinks{Repositories: []string{repo}, Commits: []string{mergeC}, Changes: []ChangeRef{{Repository: repo, Number: 42}}},
					PlannedWindow: &Window{Start: at("2025-03-04T07:00:00Z"), End: at("2025-03-04T08:00:00Z")}}}},
		{"ticket.transitioned", ev(TypeTicketTransitioned, `{
			"key": "CHG0031234", "system": "servicenow", "ticket_type": "normal", "status": "Scheduled",
			"previous_status": "Authorize", "transitioned_by": `+carolJSON+`,
			"transitioned_at": "2025-03-03T17:05:00Z", "url": "https://acme.service-now.com/change_request.do?sys_id=3f1c0d2e1b2a"}`),
			&Fact{Kind: KindTicketState, Time: at("2025-03-03T17:05:00Z"), Keys: []Key{TicketKey("CHG0031234")},
				Ticket: &TicketFact{Key: "CHG0031234", System: "servicenow", Action: "transitioned", Type: "normal", Status: "Scheduled",
					PreviousStatus: "Authorize", By: carol, URL: "https://acme.service-now.com/change_request.do?sys_id=3f1c0d2e1b2a"}}},
		{"ticket.approved", ev(TypeTicketApproved, `{
			"key": "CHG0031234", "system": "servicenow", "ticket_type": "normal", "status": "Authorize",
			"approver": `+carolJSON+`, "approved_at": "2025-03-03T17:00:00Z",
			"approval_group": "Payments CAB", "comment": "Low risk, rollback tested."}`),
			&Fact{Kind: KindTicketAppr, Time: at("2025-03-03T17:00:00Z"), Keys: []Key{TicketKey("CHG0031234")},
				Ticket: &TicketFact{Key: "CHG0031234", System: "servicenow", Action: "approved", Type: "normal", Status: "Authorize",
					By: carol, ApprovalGroup: "Payments CAB", Comment: "Low risk, rollback tested."}}},
		{"ticket.rejected", ev(TypeTicketRejected, `{
			"key": "CHG0031301", "system": "servicenow", "ticket_type": "emergency", "approver": `+carolJSON+`,
			"rejected_at": "2025-03-05T11:20:00Z", "approval_group": "Payments CAB", "reason": "No rollback plan."}`),
			&Fact{Kind: KindTicketAppr, Time: at("2025-03-05T11:20:00Z"), Keys: []Key{TicketKey("CHG0031301")},
				Ticket: &TicketFact{Key: "CHG0031301", System: "servicenow", Action: "rejected", Type: "emergency",
					By: carol, ApprovalGroup: "Payments CAB", Reason: "No rollback plan."}}},
		{"pipelinerun.started", ev(TypePipelineRunStarted, `{
			"repository": "github.com/acme/payments", "commit": "c0ffee1234567890abcdef1234567890abcdef12", "branch": "main",
			"run_id": "9876543210", "run_attempt": 2, "run_url": "https://github.com/acme/payments/actions/runs/9876543210",
			"pipeline": "release", "system": "github-actions", "actor": `+bobJSON+`, "trigger": "push",
			"started_at": "2025-03-03T16:30:20Z"}`),
			&Fact{Kind: KindRun, Time: at("2025-03-03T16:30:20Z"),
				Keys: []Key{CommitKey(repo, mergeC), RunKey(repo, "9876543210"), RepoKey(repo)},
				Run: &RunFact{Phase: "started", Repository: repo, RunID: "9876543210", Attempt: 2, Commit: mergeC, Branch: "main",
					URL: "https://github.com/acme/payments/actions/runs/9876543210", Pipeline: "release", System: "github-actions",
					Actor: bob, Trigger: "push", StartedAt: at("2025-03-03T16:30:20Z")}}},
		{"pipelinerun.finished on a pull request", ev(TypePipelineRunFinished, `{
			"repository": "github.com/acme/payments", "commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
			"run_id": "payments/PR-42/3", "system": "jenkins", "trigger": "pull_request", "change": {"number": 42},
			"outcome": "failure", "finished_at": "2025-03-03T16:41:05Z"}`),
			&Fact{Kind: KindRun, Time: at("2025-03-03T16:41:05Z"),
				Keys: []Key{CommitKey(repo, head2), RunKey(repo, "payments/PR-42/3"), RepoKey(repo), ChangeKey(repo, 42)},
				Run: &RunFact{Phase: "finished", Repository: repo, RunID: "payments/PR-42/3", Attempt: 1, Commit: head2, System: "jenkins",
					Trigger: "pull_request", Change: 42, Outcome: "failure", FinishedAt: at("2025-03-03T16:41:05Z")}}},
		{"artifact.built", ev(TypeArtifactBuilt, `{
			"digest": "`+digest1+`", "name": "ghcr.io/acme/payments", "purl": "`+purl1+`", "tags": ["1.4.2", "latest"],
			"repository": "github.com/acme/payments", "commit": "c0ffee1234567890abcdef1234567890abcdef12",
			"run_id": "9876543210", "run_url": "https://github.com/acme/payments/actions/runs/9876543210",
			"pipeline": "release", "system": "github-actions", "builder": `+botJSON+`,
			"built_at": "2025-03-03T16:36:40Z", "attestation_url": "https://github.com/acme/payments/attestations/1"}`),
			&Fact{Kind: KindArtifact, Time: at("2025-03-03T16:36:40Z"),
				Keys: []Key{ArtifactKey(digest1), ArtifactKey(purl1), CommitKey(repo, mergeC), RunKey(repo, "9876543210"), RepoKey(repo)},
				Artifact: &ArtifactFact{Digest: digest1, Purl: purl1, Name: "ghcr.io/acme/payments", Tags: []string{"1.4.2", "latest"},
					Repository: repo, Commit: mergeC, RunID: "9876543210", RunURL: "https://github.com/acme/payments/actions/runs/9876543210",
					Pipeline: "release", System: "github-actions", Builder: ghBot, BuiltAt: at("2025-03-03T16:36:40Z"),
					AttestationURL: "https://github.com/acme/payments/attestations/1"}}},
		{"test.reported", ev(TypeTestReported, `{
			"repository": "gitlab.example.com:8443/platform/payments/api", "commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
			"suite": "integration", "tests": 20, "passed": 17, "failed": 2, "errors": 1, "skipped": 0, "outcome": "failed",
			"duration_seconds": 12.5, "report_format": "junit",
			"failures": [{"name": "CaptureTest.retries_on_timeout", "message": "expected 2 attempts, got 1"}]}`),
			&Fact{Kind: KindTest, Time: ceTime,
				Keys: []Key{CommitKey("gitlab.example.com:8443/platform/payments/api", head2), RepoKey("gitlab.example.com:8443/platform/payments/api")},
				Test: &TestFact{Repository: "gitlab.example.com:8443/platform/payments/api", Commit: head2, Suite: "integration",
					Outcome: "failed", Tests: 20, Passed: 17, Failed: 2, Errors: 1, DurationSeconds: 12.5, ReportFormat: "junit",
					Failures: []TestFailure{{Name: "CaptureTest.retries_on_timeout", Message: "expected 2 attempts, got 1"}}}}},
		{"scan.reported", ev(TypeScanReported, `{
			"repository": "github.com/acme/payments", "commit": "c0ffee1234567890abcdef1234567890abcdef12",
			"run_id": "9876543210", "system": "github-actions", "tool": "trivy", "tool_version": "0.58.1",
			"category": "container", "findings": {"critical": 0, "high": 1, "medium": 2, "low": 7},
			"outcome": "passed", "report_format": "sarif", "target": "ghcr.io/acme/payments:1.4.2",
			"digest": "`+digest1+`", "finished_at": "2025-03-03T16:38:30Z"}`),
			&Fact{Kind: KindScan, Time: at("2025-03-03T16:38:30Z"),
				Keys: []Key{CommitKey(repo, mergeC), RunKey(repo, "9876543210"), ArtifactKey(digest1), RepoKey(repo)},
				Scan: &ScanFact{Repository: repo, Commit: mergeC, RunID: "9876543210", System: "github-actions", Tool: "trivy",
					ToolVersion: "0.58.1", Category: "container", Findings: Findings{High: 1, Medium: 2, Low: 7}, Outcome: "passed",
					ReportFormat: "sarif", Target: "ghcr.io/acme/payments:1.4.2", Digest: digest1, FinishedAt: at("2025-03-03T16:38:30Z")}}},
		{"deployment.started", ev(TypeDeploymentStarted, `{
			"deployment_id": "payments-production-118", "environment": "production", "service": "payments",
			"digest": "`+digest1+`", "artifact": "ghcr.io/acme/payments:1.4.2",
			"repository": "github.com/acme/payments", "commit": "c0ffee1234567890abcdef1234567890abcdef12",
			"run_id": "9876543299", "pipeline": "deploy", "system": "github-actions", "deployer": `+botJSON+`,
			"ticket_keys": ["CHG0031234"], "change": {"number": 42}, "started_at": "2025-03-04T07:02:00Z"}`),
			&Fact{Kind: KindDeployment, Time: at("2025-03-04T07:02:00Z"),
				Keys: []Key{EnvKey("production"), ServiceKey("payments"), deployKey("production/payments/" + digest1),
					Key("deployment:production/payments/id:payments-production-118"), ArtifactKey(digest1), RepoKey(repo),
					CommitKey(repo, mergeC), RunKey(repo, "9876543299"), ChangeKey(repo, 42), TicketKey("CHG0031234")},
				Deployment: &DeploymentFact{Phase: "started", DeploymentID: "payments-production-118", Environment: "production",
					Service: "payments", Digest: digest1, Artifact: "ghcr.io/acme/payments:1.4.2", Repository: repo, Commit: mergeC,
					RunID: "9876543299", Pipeline: "deploy", System: "github-actions", Deployer: ghBot, TicketKeys: []string{"CHG0031234"},
					Change: 42, StartedAt: at("2025-03-04T07:02:00Z")}}},
		{"deployment.finished by a pipeline run triggered by hand", ev(TypeDeploymentFinished, `{
			"environment": "production", "service": "payments", "digest": "`+digest1+`",
			"repository": "github.com/acme/payments", "run_id": "9876543300", "pipeline": "release", "system": "github-actions",
			"deployer": {"login": "github-actions:release", "name": "release", "type": "service"},
			"triggered_by": `+aliceJSON+`, "trigger": "manual",
			"outcome": "success", "finished_at": "2025-03-07T02:14:00Z"}`),
			&Fact{Kind: KindDeployment, Time: at("2025-03-07T02:14:00Z"),
				Keys: []Key{EnvKey("production"), ServiceKey("payments"), deployKey("production/payments/" + digest1),
					Key("deployment:production/payments/run:github.com/acme/payments#9876543300"), ArtifactKey(digest1), RepoKey(repo),
					RunKey(repo, "9876543300")},
				Deployment: &DeploymentFact{Phase: "finished", Environment: "production", Service: "payments", Digest: digest1,
					Repository: repo, RunID: "9876543300", Pipeline: "release", System: "github-actions",
					Deployer:    &Identity{Login: "github-actions:release", Name: "release", Type: "service"},
					TriggeredBy: alice, Trigger: "manual", Outcome: "success", FinishedAt: at("2025-03-07T02:14:00Z")}}},
		{"deployment.finished by hand", ev(TypeDeploymentFinished, `{
			"environment": "production", "service": "payments", "digest": "`+digest1+`",
			"outcome": "success", "deployer": {"login": "dave", "type": "user"}, "finished_at": "2025-03-07T02:14:00Z"}`),
			&Fact{Kind: KindDeployment, Time: at("2025-03-07T02:14:00Z"),
				Keys: []Key{EnvKey("production"), ServiceKey("payments"), deployKey("production/payments/" + digest1), ArtifactKey(digest1)},
				Deployment: &DeploymentFact{Phase: "finished", Environment: "production", Service: "payments", Digest: digest1,
					Deployer: &Identity{Login: "dave", Type: "user"}, Outcome: "success", FinishedAt: at("2025-03-07T02:14:00Z")}}},
		{"exception.requested", ev(TypeExceptionRequested, `{
			"id": "EXC-7", "control": "CM-2", "scope": {"repository": "github.com/acme/payments", "change": {"number": 57}},
			"reason": "Hotfix while the only other reviewer is on leave.", "requested_by": `+aliceJSON+`,
			"requested_at": "2025-03-06T22:10:00Z", "ticket_key": "CHG0031310", "expires_at": "2025-03-13T00:00:00Z"}`),
			&Fact{Kind: KindException, Time: at("2025-03-06T22:10:00Z"),
				Keys: []Key{ExceptionKey("EXC-7"), ChangeKey(repo, 57)},
				Exception: &ExceptionFact{Phase: "requested", ID: "EXC-7", Control: "CM-2",
					Scope:  ExceptionScope{Repository: repo, Change: 57},
					Reason: "Hotfix while the only other reviewer is on leave.", RequestedBy: alice,
					RequestedAt: at("2025-03-06T22:10:00Z"), TicketKey: "CHG0031310", ExpiresAt: at("2025-03-13T00:00:00Z")}}},
		{"exception.granted", ev(TypeExceptionGranted, `{
			"id": "EXC-8", "control": "CM-5", "scope": {"service": "payments", "environment": "production", "ticket_key": "CHG0031311"},
			"approver": `+carolJSON+`, "granted_at": "2025-03-06T22:25:00Z", "expires_at": "2025-03-09T00:00:00Z"}`),
			&Fact{Kind: KindException, Time: at("2025-03-06T22:25:00Z"),
				Keys: []Key{ExceptionKey("EXC-8"), TicketKey("CHG0031311")},
				Exception: &ExceptionFact{Phase: "granted", ID: "EXC-8", Control: "CM-5",
					Scope:    ExceptionScope{Service: "payments", Environment: "production", TicketKey: "CHG0031311"},
					Approver: carol, GrantedAt: at("2025-03-06T22:25:00Z"), ExpiresAt: at("2025-03-09T00:00:00Z")}}},
		{"webhook.received: GitHub push to the default branch", ev(TypeWebhookReceived, `{
			"provider": "github", "event": "push", "delivery_id": "d-1", "payload_sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
			"payload": {"ref": "refs/heads/master", "before": "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
				"after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "forced": true,
				"repository": {"full_name": "Codertocat/Hello-World", "html_url": "https://github.com/Codertocat/Hello-World", "default_branch": "master"},
				"pusher": {"name": "Codertocat", "email": "21031067+Codertocat@users.noreply.github.com"},
				"sender": {"login": "Codertocat", "id": 21031067, "type": "User"},
				"commits": [{"id": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "message": "PAY-9 Initial commit",
					"timestamp": "2019-05-15T15:19:25-07:00", "author": {"name": "Codertocat", "email": "c@users.noreply.github.com", "username": "Codertocat"}}]},
			"received_at": "2025-03-03T15:45:13Z"}`),
			&Fact{Kind: KindPush, Time: at("2025-03-03T15:45:13Z"),
				Keys: []Key{RepoKey("github.com/codertocat/hello-world"), CommitKey("github.com/codertocat/hello-world", "6113728f27ae82c7b1a177c8d03f9e96e0adf246"), TicketKey("PAY-9")},
				Push: &PushFact{Provider: "github", Repository: "github.com/codertocat/hello-world", Ref: "refs/heads/master", DefaultBranch: "master",
					Before: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", After: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", Forced: true,
					Pusher: &Identity{Login: "Codertocat", ID: "21031067", Email: "21031067+Codertocat@users.noreply.github.com", Type: "user"},
					Commits: []PushCommit{{SHA: "6113728f27ae82c7b1a177c8d03f9e96e0adf246", Message: "PAY-9 Initial commit", Timestamp: at("2019-05-15T22:19:25Z"),
						Author: &Identity{Login: "Codertocat", Name: "Codertocat", Email: "c@users.noreply.github.com"}, TicketKeys: []string{"PAY-9"}}},
					DeliveryID: "d-1", PayloadSHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}},
		{"webhook.received: GitLab Push Hook to the default branch", ev(TypeWebhookReceived, `{
			"provider": "gitlab", "event": "Push Hook",
			"payload": {"object_kind": "push", "ref": "refs/heads/main", "before": "0000000000000000000000000000000000000000",
				"after": "c0ffee1234567890abcdef1234567890abcdef12", "user_id": 4, "user_username": "alice", "user_name": "Alice Martin",
				"user_email": "[REDACTED]",
				"project": {"web_url": "https://gitlab.acme.example:8443/Payments/Payments-API", "default_branch": "main"},
				"commits": [{"id": "c0ffee1234567890abcdef1234567890abcdef12", "message": "Fix rounding", "timestamp": "2025-03-03T15:40:00+00:00",
					"author": {"name": "Alice Martin", "email": "[REDACTED]"}}]},
			"received_at": "2025-03-03T15:45:13Z"}`),
			&Fact{Kind: KindPush, Time: at("2025-03-03T15:45:13Z"),
				Keys: []Key{RepoKey("gitlab.acme.example/payments/payments-api"), CommitKey("gitlab.acme.example/payments/payments-api", mergeC)},
				Push: &PushFact{Provider: "gitlab", Repository: "gitlab.acme.example/payments/payments-api", Ref: "refs/heads/main",
					DefaultBranch: "main", After: mergeC, Pusher: &Identity{Login: "alice", ID: "4", Name: "Alice Martin", Type: "user"},
					Commits: []PushCommit{{SHA: mergeC, Message: "Fix rounding", Timestamp: at("2025-03-03T15:40:00Z"), Author: &Identity{Name: "Alice Martin"}}}}}},
		{"webhook.received: push to another branch", ev(TypeWebhookReceived, `{"provider": "github", "event": "push",
			"payload": {"ref": "refs/heads/feature/x", "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
				"repository": {"html_url": "https://github.com/acme/payments", "default_branch": "main"}},
			"received_at": "2025-03-03T15:45:13Z"}`), nil},
		{"webhook.received: tag push", ev(TypeWebhookReceived, `{"provider": "github", "event": "push",
			"payload": {"ref": "refs/tags/v1.0.0", "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}, "received_at": "2025-03-03T15:45:13Z"}`), nil},
		{"webhook.received: branch deletion", ev(TypeWebhookReceived, `{"provider": "gitlab", "event": "Push Hook",
			"payload": {"ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000"}, "received_at": "2025-03-03T15:45:13Z"}`), nil},
		{"webhook.received: a review (the catalog event carries it)", ev(TypeWebhookReceived, `{"provider": "github",
			"event": "pull_request_review", "payload": {"action": "submitted"}, "received_at": "2025-03-03T15:45:13Z"}`), nil},
		{"a CDEvents type", ev("dev.cdevents.pipelinerun.finished.0.2.0", `{"subject": {}}`), nil},
		{"an unknown type", ev("com.example.other", `not even JSON`), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Extract(tt.e)
			if err != nil {
				t.Fatalf("Extract: %v", err)
			}
			if tt.want == nil {
				if len(got) != 0 {
					t.Fatalf("got %d facts, want none: %+v", len(got), got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d facts, want 1", len(got))
			}
			want := *tt.want
			want.Event = evRef
			slices.Sort(want.Keys)
			if d := cmp.Diff(want, got[0], cmpopts.IgnoreFields(Fact{}, "ID")); d != "" {
				t.Errorf("fact (-want +got):\n%s", d)
			}
			if got[0].ID != got[0].ComputeID() || len(got[0].ID) != 64 {
				t.Errorf("ID %q is not the hash of the fact", got[0].ID)
			}
			again, _ := Extract(tt.e)
			if again[0].ID != got[0].ID {
				t.Error("the same event gave another fact ID")
			}
		})
	}
}

// TestFactIDStable pins the canonical form: a change to it changes every
// fact's identity, and the facts already stored would no longer match new
// ones from a redelivered event.
func TestFactIDStable(t *testing.T) {
	fs, err := Extract(ev(TypeReviewSubmitted, `{"repository": "github.com/acme/payments", "change": {"number": 42},
		"reviewer": {"login": "bob"}, "decision": "approved", "head_commit": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
		"submitted_at": "2025-03-03T15:45:12Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"kind":"review","keys":["change:github.com/acme/payments#42","commit:github.com/acme/payments@1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e","repo:github.com/acme/payments"],"time":"2025-03-03T15:45:12Z","event":"https://example.test/source evt-1","review":{"repository":"github.com/acme/payments","number":42,"reviewer":{"login":"bob"},"decision":"approved","head_commit":"1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"}}`
	if got := string(fs[0].Canonical()); got != wantJSON {
		t.Fatalf("canonical form changed:\n got %s\nwant %s", got, wantJSON)
	}
}

func TestExtractMalformed(t *testing.T) {
	tests := []struct {
		typ, data, field string
	}{
		{TypeChangeOpened, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "target_branch": "main", "head_commit": "1b2c3d4e"}`, "data/author"},
		{TypeChangeOpened, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "author": {"name": "A"}, "target_branch": "main", "head_commit": "1b2c3d4e"}`, "data/author/login"},
		{TypeChangeOpened, `{"repository": "github.com/acme/payments", "change": {"number": 0}, "author": {"login": "a"}, "target_branch": "main", "head_commit": "1b2c3d4e"}`, "data/change/number"},
		{TypeChangeOpened, `{"repository": "github.com/acme/payments", "change": {"number": 1}, "author": {"login": "a"}, "target_branch": "main", "head_commit": "1b2c3d4e", "opened_at": "yesterday"}`, "data/opened_at"},
		{TypeChangeUpdated, `{"repository": "github.com/acme/payments", "change": {"number": "42"}, "head_commit": "1b2c3d4e"}`, "data/change/number"},
		{TypeChangeUpdated, `{"repository": "acme/payments", "change": {"number": 42}, "head_commit": "1b2c3d4e"}`, "data/repository"},
		{TypeChangeMerged, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "target_branch": "main", "head_commit": "1b2c3d4e", "merge_commit": "not-a-sha"}`, "data/merge_commit"},
		{TypeChangeMerged, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "target_branch": "main", "head_commit": "1b2c3d4e", "merge_commit": "c0ffee12", "commits": ["c0ffee12", ""]}`, "data/commits/1"},
		{TypeChangeClosed, `{"repository": "github.com/acme/payments"}`, "data/change"},
		{TypeReviewSubmitted, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "reviewer": {"login": "bob"}, "decision": "lgtm", "head_commit": "1b2c3d4e"}`, "data/decision"},
		{TypeReviewSubmitted, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "reviewer": {"login": "bob"}, "decision": "approved"}`, "data/head_commit"},
		{TypeReviewSubmitted, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "reviewer": {"login": "bob", "type": "robot"}, "decision": "approved", "head_commit": "1b2c3d4e"}`, "data/reviewer/type"},
		{TypeTicketCreated, `{"key": "CHG 1", "system": "servicenow"}`, "data/key"},
		{TypeTicketCreated, `{"key": "CHG0031234", "system": "remedy"}`, "data/system"},
		{TypeTicketCreated, `{"key": "CHG0031234", "system": "servicenow", "links": {"changes": [{"repository": "github.com/acme/payments"}]}}`, "data/links/changes/0/number"},
		{TypeTicketCreated, `{"key": "CHG0031234", "system": "servicenow", "ticket_type": "urgent"}`, "data/ticket_type"},
		{TypeTicketTransitioned, `{"key": "CHG0031234", "system": "servicenow"}`, "data/status"},
		{TypeTicketApproved, `{"key": "CHG0031234", "system": "servicenow", "approver": {"login": "carol"}}`, "data/approved_at"},
		{TypeTicketRejected, `{"key": "CHG0031234", "system": "servicenow", "rejected_at": "2025-03-05T11:20:00Z"}`, "data/approver"},
		{TypePipelineRunStarted, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "run_id": "1", "run_attempt": 0}`, "data/run_attempt"},
		{TypePipelineRunStarted, `{"repository": "github.com/acme/payments", "commit": "c0ffee12"}`, "data/run_id"},
		{TypePipelineRunFinished, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "run_id": "1"}`, "data/outcome"},
		{TypeArtifactBuilt, `{"digest": "sha256:abc", "name": "x", "repository": "github.com/acme/payments", "commit": "c0ffee12", "run_id": "1"}`, "data/digest"},
		{TypeArtifactBuilt, `{"digest": "` + digest1 + `", "name": "x", "repository": "github.com/acme/payments", "commit": "c0ffee12", "run_id": "1", "tags": "1.0"}`, "data/tags"},
		{TypeTestReported, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "suite": "unit", "outcome": "passed", "passed": 1, "failed": 0, "skipped": 0}`, "data/tests"},
		{TypeTestReported, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "suite": "unit", "outcome": "passed", "tests": 1, "passed": -1, "failed": 0, "skipped": 0}`, "data/passed"},
		{TypeTestReported, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "suite": "unit", "outcome": "passed", "tests": 1, "passed": 1, "failed": 0, "skipped": 0, "failures": [{"message": "x"}]}`, "data/failures/0/name"},
		{TypeScanReported, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "tool": "trivy", "category": "container", "findings": {"critical": 0, "medium": 0, "low": 0}}`, "data/findings/high"},
		{TypeScanReported, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "tool": "trivy", "category": "container"}`, "data/findings"},
		{TypeDeploymentStarted, `{"service": "payments", "digest": "` + digest1 + `"}`, "data/environment"},
		{TypeDeploymentFinished, `{"environment": "production", "service": "payments", "digest": "` + digest1 + `"}`, "data/outcome"},
		{TypeDeploymentFinished, `{"environment": "production", "service": "payments", "outcome": "success", "commit": "XYZ"}`, "data/commit"},
		{TypeDeploymentFinished, `{"environment": "production", "service": "payments", "outcome": "success", "ticket_keys": ["CHG 1"]}`, "data/ticket_keys/0"},
		{TypeExceptionRequested, `{"id": "EXC-1", "control": "CM-2", "scope": {"change": {"number": 5}}, "reason": "r", "requested_by": {"login": "a"}}`, "data/scope/repository"},
		{TypeExceptionRequested, `{"id": "EXC-1", "control": "CM-2", "scope": {}, "requested_by": {"login": "a"}}`, "data/reason"},
		{TypeExceptionGranted, `{"id": "EXC-1", "control": "CM-2", "scope": {}, "approver": {"login": "c"}, "granted_at": "2025-03-06T22:25:00Z"}`, "data/expires_at"},
		{TypeExceptionGranted, `{"id": "EXC-1", "control": "CM-2", "approver": {"login": "c"}, "granted_at": "2025-03-06T22:25:00Z", "expires_at": "2025-03-06T22:25:00Z"}`, "data/scope"},
		{TypeWebhookReceived, `{"provider": "github", "event": "push", "payload": {}}`, "data/received_at"},
		{TypeWebhookReceived, `{"provider": "bitbucket", "event": "push", "payload": {}, "received_at": "2025-03-03T15:45:13Z"}`, "data/provider"},
		{TypeWebhookReceived, `{"provider": "github", "event": "push", "received_at": "2025-03-03T15:45:13Z"}`, "data/payload"},
		{TypeWebhookReceived, `{"provider": "github", "event": "push", "payload": {"ref": 7}, "received_at": "2025-03-03T15:45:13Z"}`, "data/payload/ref"},
		{TypeWebhookReceived, `{"provider": "github", "event": "push", "payload": {"after": "c0ffee12"}, "received_at": "2025-03-03T15:45:13Z"}`, "data/payload/ref"},
		{TypeWebhookReceived, `{"provider": "github", "event": "push", "payload": {"ref": "refs/heads/main", "after": "c0ffee12", "repository": {"html_url": "https://github.com/acme/payments"}}, "received_at": "2025-03-03T15:45:13Z"}`, "data/payload/repository/default_branch"},
		{TypeWebhookReceived, `{"provider": "github", "event": "push", "payload": {"ref": "refs/heads/main", "after": "c0ffee12", "repository": {"default_branch": "main"}}, "received_at": "2025-03-03T15:45:13Z"}`, "data/payload/repository/html_url"},
		{TypeWebhookReceived, `{"provider": "gitlab", "event": "Push Hook", "payload": {"ref": "refs/heads/main", "after": "c0ffee12"}, "received_at": "2025-03-03T15:45:13Z"}`, "data/payload/project"},
		{TypeWebhookReceived, `{"provider": "gitlab", "event": "Push Hook", "payload": {"ref": "refs/heads/main", "after": "c0ffee12", "project": {"web_url": "https://gitlab.acme.example/a/b", "default_branch": "main"}, "commits": [{"message": "m"}]}, "received_at": "2025-03-03T15:45:13Z"}`, "data/payload/commits/0/id"},
		{TypeChangeOpened, `[1, 2]`, "data"},
		{TypeChangeOpened, `{"repository": `, "data"},
	}
	for _, tt := range tests {
		t.Run(tt.field+" "+strings.TrimPrefix(tt.typ, "dev.evidencepipeline."), func(t *testing.T) {
			_, err := Extract(ev(tt.typ, tt.data))
			var fe *ce.Error
			if !errors.As(err, &fe) {
				t.Fatalf("Extract = %v, want a *ce.Error naming %s", err, tt.field)
			}
			if fe.Field != tt.field {
				t.Errorf("error names %q (%v), want %q", fe.Field, err, tt.field)
			}
		})
	}
	t.Run("data_base64", func(t *testing.T) {
		e := ev(TypeChangeOpened, "")
		e.Data, e.DataBase64 = []byte{1, 2}, true
		var fe *ce.Error
		if _, err := Extract(e); !errors.As(err, &fe) || fe.Field != "data" {
			t.Errorf("Extract = %v, want an error naming data", err)
		}
	})
	t.Run("no data", func(t *testing.T) {
		var fe *ce.Error
		if _, err := Extract(ev(TypeTestReported, "")); !errors.As(err, &fe) || fe.Field != "data" {
			t.Errorf("Extract = %v, want an error naming data", err)
		}
	})
}

// TestExtractCatalogExamples extracts the catalog's own examples
// (schemas/testdata/examples): every catalog type has an extractor that
// reads realistic data without error.
func TestExtractCatalogExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "schemas", "testdata", "examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no catalog examples found: %v", err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		name := filepath.Base(f)
		typ := name[:strings.Index(name, ".v1.")+3]
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := Extract(ev(typ, string(b)))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		seen[typ] = true
		if Factless(typ) {
			if len(fs) != 0 {
				t.Errorf("%s: %d facts from a factless type, want 0", name, len(fs))
			}
			continue
		}
		if typ != TypeWebhookReceived && len(fs) != 1 {
			t.Errorf("%s: %d facts, want 1", name, len(fs))
		}
	}
	for _, typ := range Types() {
		if !seen[typ] {
			t.Errorf("no catalog example of %s", typ)
		}
	}
}
