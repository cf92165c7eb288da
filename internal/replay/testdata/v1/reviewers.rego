# Version 1 of a custom control: one approving review suffices.
package evidence.controls.reviewers

import data.evidence.lib

metadata := {
	"id": "CUST-1",
	"title": "Approving reviews",
	"description": "The pull request has enough approving reviews by people other than its author.",
	"risk": "A single reviewer misses defects.",
	"severity": "medium",
}

required := 1

approvals := {lower(r.reviewer.login) |
	some r in lib.pr.reviews
	r.decision == "approved"
	not lib.is_author(r.reviewer)
}

result := {"status": "pass", "reasons": [sprintf("%d approving reviews (%d required)", [count(approvals), required])], "evidence": []} if {
	count(approvals) >= required
} else := {"status": "fail", "reasons": [sprintf("%d approving reviews, %d required", [count(approvals), required])], "evidence": []}
