# Tests of the example control, on the built-in fixtures
# (data.evidence.testing: a compliant change reviewed by bob only).
package evidence.controls.two_reviewers_test

import data.evidence.controls.two_reviewers
import data.evidence.testing as fx

dave_approves := {
	"reviewer": {"login": "dave", "email": "dave@acme.example"},
	"decision": "approved",
	"head_commit": fx.compliant.pull_request.head_commit,
	"stale": false,
	"dismissed": false,
	"at": "2025-03-03T16:30:00Z",
	"events": ["test review-dave"],
}

two_reviews := fx.with_change({"pull_request": {"reviews": array.concat(fx.compliant.pull_request.reviews, [dave_approves])}})

test_two_approvals_pass if {
	r := two_reviewers.result with input as fx.input_for(two_reviews)
	r.status == "pass"
	r.reasons == ["approved by bob, dave on the final head 222222222222"]
	r.evidence == ["test review-bob", "test review-dave"]
}

test_one_approval_fails_after_the_deadline if {
	r := two_reviewers.result with input as fx.input_for(fx.compliant)
	r.status == "fail"
	"1 approving reviews on the final head, 2 required" in r.reasons
}

test_one_approval_is_pending_before_the_deadline if {
	r := two_reviewers.result with input as fx.input_at(fx.compliant, "2025-03-04T09:30:00Z")
	r.status == "pending"
}

test_the_authors_own_approval_does_not_count if {
	self := object.union(dave_approves, {"reviewer": fx.compliant.pull_request.author})
	inp := fx.input_for(fx.with_change({"pull_request": {"reviews": array.concat(fx.compliant.pull_request.reviews, [self])}}))
	r := two_reviewers.result with input as inp
	r.status == "fail"
}

test_a_stale_approval_does_not_count if {
	stale := object.union(dave_approves, {"head_commit": "1111111111111111111111111111111111111111"})
	inp := fx.input_for(fx.with_change({"pull_request": {"reviews": array.concat(fx.compliant.pull_request.reviews, [stale])}}))
	r := two_reviewers.result with input as inp
	r.status == "fail"
}

test_a_superseded_approval_does_not_count if {
	withdrawn := object.union(dave_approves, {"superseded": true})
	inp := fx.input_for(fx.with_change({"pull_request": {"reviews": array.concat(fx.compliant.pull_request.reviews, [withdrawn])}}))
	r := two_reviewers.result with input as inp
	r.status == "fail"
}

test_a_bot_approval_does_not_count if {
	bot := object.union(dave_approves, {"reviewer": {"login": "renovate[bot]", "type": "bot"}})
	inp := fx.input_for(fx.with_change({"pull_request": {"reviews": array.concat(fx.compliant.pull_request.reviews, [bot])}}))
	r := two_reviewers.result with input as inp
	r.status == "fail"
}
