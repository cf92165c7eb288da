# Fixtures of the built-in pack's Rego tests: a change every control
# passes (alice's pull request #42, approved by bob on its final head,
# ticket PAY-123 approved by carol before the production deployment,
# built and deployed by the pipeline) and the input around a record.
# Custom tests may use them too: import data.evidence.testing.
package evidence.testing

# The defaults of the built-in controls' params (processors/evaluate).
params := {
	"production_environments": ["production", "prod"],
	"emergency_window": "24h0m0s",
	"emergency_window_ns": 86400000000000,
	"scan_severity_threshold": "high",
	"required_scan_categories": ["sast", "dependency"],
	"pipeline_identities": ["github-actions[bot]"],
	"pipeline_systems": ["github-actions", "gitlab-ci", "jenkins", "circleci", "azure-pipelines", "buildkite", "tekton"],
	"manual_trigger_by_author": "allow",
	"protected_branches": ["main", "master"],
	"pending_deadline": "1h0m0s",
	"pending_deadline_ns": 3600000000000,
}

# deployed_at is the compliant change's production deployment; later is
# well past every deadline.
deployed_at := "2025-03-04T09:00:00Z"

later := "2025-03-07T09:00:00Z"

# input_at is the controls' input for record as of now (RFC 3339).
input_at(record, now) := {"record": record, "now": now, "now_ns": time.parse_rfc3339_ns(now), "params": params}

# input_for is the input for record as of later.
input_for(record) := input_at(record, later)

# with_change is the compliant record with some members replaced
# (object.union: nested objects merge, lists are replaced).
with_change(patch) := object.union(compliant, patch)

compliant := {
		"id": "github.com/acme/payments@cccccccccccccccccccccccccccccccccccccccc",
		"repository": "github.com/acme/payments",
		"commit": "cccccccccccccccccccccccccccccccccccccccc",
		"direct_push": false,
		"unmatched": false,
		"pull_request": {
			"number": 42,
			"author": {
				"login": "alice",
				"email": "alice@acme.example",
				"type": "user"
			},
			"target_branch": "main",
			"head_commit": "2222222222222222222222222222222222222222",
			"heads": [
				{
					"commit": "1111111111111111111111111111111111111111",
					"via": "opened",
					"by": {
						"login": "alice",
						"email": "alice@acme.example",
						"type": "user"
					},
					"at": "2025-03-03T09:00:00Z",
					"events": [
						"test opened"
					]
				},
				{
					"commit": "2222222222222222222222222222222222222222",
					"previous": "1111111111111111111111111111111111111111",
					"via": "updated",
					"by": {
						"login": "alice",
						"email": "alice@acme.example",
						"type": "user"
					},
					"at": "2025-03-03T11:00:00Z",
					"events": [
						"test updated"
					]
				},
				{
					"commit": "2222222222222222222222222222222222222222",
					"via": "merged",
					"by": {
						"login": "bob",
						"email": "bob@acme.example",
						"type": "user"
					},
					"at": "2025-03-03T17:00:00Z",
					"events": [
						"test merged"
					]
				}
			],
			"merge_commit": "cccccccccccccccccccccccccccccccccccccccc",
			"merged_by": {
				"login": "bob",
				"email": "bob@acme.example",
				"type": "user"
			},
			"merged_at": "2025-03-03T17:00:00Z",
			"reviews": [
				{
					"reviewer": {
						"login": "bob",
						"email": "bob@acme.example",
						"type": "user"
					},
					"decision": "approved",
					"head_commit": "2222222222222222222222222222222222222222",
					"stale": false,
					"dismissed": false,
					"at": "2025-03-03T16:00:00Z",
					"events": [
						"test review-bob"
					]
				}
			],
			"events": []
		},
		"pushes": [],
		"commits": [],
		"tickets": [
			{
				"key": "PAY-123",
				"found_in": [],
				"system": "jira",
				"type": "normal",
				"status": "Approved",
				"requested_by": {
					"login": "alice",
					"email": "alice@acme.example",
					"type": "user"
				},
				"history": [],
				"approvals": [
					{
						"by": {
							"login": "712020:carol",
							"email": "carol@acme.example",
							"type": "user"
						},
						"at": "2025-03-03T15:00:00Z",
						"status": "Approved",
						"events": [
							"test ticket-approved"
						]
					}
				],
				"rejections": []
			}
		],
		"runs": [
			{
				"repository": "github.com/acme/payments",
				"run_id": "100",
				"attempt": 1,
				"commit": "cccccccccccccccccccccccccccccccccccccccc",
				"branch": "main",
				"pipeline": "release",
				"actor": {
					"login": "bob",
					"email": "bob@acme.example",
					"type": "user"
				},
				"started_at": "2025-03-03T17:00:00Z",
				"finished_at": "2025-03-03T18:00:00Z",
				"outcome": "success",
				"events": [
					"test run-100"
				]
			}
		],
		"artifacts": [
			{
				"digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				"name": "ghcr.io/acme/payments",
				"repository": "github.com/acme/payments",
				"commit": "cccccccccccccccccccccccccccccccccccccccc",
				"run_id": "100",
				"builder": {
					"login": "github-actions[bot]",
					"type": "service"
				},
				"at": "2025-03-03T17:30:00Z",
				"events": [
					"test artifact"
				]
			}
		],
		"tests": [
			{
				"repository": "github.com/acme/payments",
				"commit": "1111111111111111111111111111111111111111",
				"suite": "unit",
				"outcome": "failed",
				"tests": 10,
				"passed": 8,
				"failed": 2,
				"errors": 0,
				"skipped": 0,
				"at": "2025-03-03T10:00:00Z",
				"events": [
					"test test-head1"
				]
			},
			{
				"repository": "github.com/acme/payments",
				"commit": "cccccccccccccccccccccccccccccccccccccccc",
				"suite": "unit",
				"outcome": "passed",
				"tests": 10,
				"passed": 10,
				"failed": 0,
				"errors": 0,
				"skipped": 0,
				"at": "2025-03-03T17:20:00Z",
				"events": [
					"test test-merge"
				]
			}
		],
		"scans": [
			{
				"repository": "github.com/acme/payments",
				"commit": "cccccccccccccccccccccccccccccccccccccccc",
				"tool": "semgrep",
				"category": "sast",
				"findings": {
					"critical": 0,
					"high": 0,
					"medium": 3,
					"low": 0,
					"none": 0
				},
				"at": "2025-03-03T17:10:00Z",
				"events": [
					"test sast"
				]
			},
			{
				"repository": "github.com/acme/payments",
				"commit": "cccccccccccccccccccccccccccccccccccccccc",
				"tool": "grype",
				"category": "dependency",
				"findings": {
					"critical": 0,
					"high": 0,
					"medium": 0,
					"low": 2,
					"none": 0
				},
				"at": "2025-03-03T17:10:00Z",
				"events": [
					"test deps"
				]
			}
		],
		"deployments": [
			{
				"environment": "production",
				"service": "payments",
				"deployment_id": "d-1",
				"digest": "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
				"repository": "github.com/acme/payments",
				"run_id": "200",
				"deployer": {
					"login": "github-actions[bot]",
					"type": "service"
				},
				"started_at": "2025-03-04T09:00:00Z",
				"finished_at": "2025-03-04T09:05:00Z",
				"outcome": "success",
				"matched_by": [
					"artifact"
				],
				"events": [
					"test deploy"
				]
			}
		],
		"exceptions": []
	}
