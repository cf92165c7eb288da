package evidence.controls.cm2_test

import data.evidence.controls.cm2
import data.evidence.testing as fx

test_peer_approval_on_the_final_head_passes if {
	r := cm2.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
}

test_no_review_fails if {
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": []}}))
	r.status == "fail"
	"pull request #42 has no approving review" in r.reasons
}

test_self_approval_does_not_count if {
	rv := object.union(fx.compliant.pull_request.reviews[0], {"reviewer": fx.compliant.pull_request.author})
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [rv]}}))
	r.status == "fail"
	"approval by alice is the author's own" in r.reasons
}

test_approval_of_an_earlier_head_is_stale if {
	rv := object.union(fx.compliant.pull_request.reviews[0], {"head_commit": "1111111111111111111111111111111111111111"})
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [rv]}}))
	r.status == "fail"
	some reason in r.reasons
	contains(reason, "is stale")
}

bob := fx.compliant.pull_request.reviews[0]

carol := {"login": "carol", "email": "carol@acme.example", "type": "user"}

test_approval_superseded_by_a_request_for_changes_is_withdrawn if {
	approved := object.union(bob, {"superseded": true})
	changes := object.union(bob, {"decision": "changes_requested", "at": "2025-03-03T16:30:00Z", "events": ["test review-bob-2"]})
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [approved, changes]}}))
	r.status == "fail"
	"approval by bob at 2025-03-03T16:00:00Z was withdrawn: bob requested changes at 2025-03-03T16:30:00Z" in r.reasons
}

test_approval_after_a_request_for_changes_counts if {
	changes := object.union(bob, {"decision": "changes_requested", "at": "2025-03-03T15:00:00Z", "superseded": true})
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [changes, bob]}}))
	r.status == "pass"
	r.reasons == ["approved by bob at 2025-03-03T16:00:00Z on the final head 222222222222"]
}

test_a_comment_changes_nothing if {
	comment := object.union(bob, {"decision": "commented", "at": "2025-03-03T16:30:00Z"})
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [bob, comment]}}))
	r.status == "pass"
}

test_a_bot_approval_does_not_count if {
	dependabot := object.union(bob, {"reviewer": {"login": "dependabot[bot]", "type": "bot"}})
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [dependabot]}}))
	r.status == "fail"
	"approval by dependabot[bot] does not count: dependabot[bot] is a bot account, not a peer reviewer" in r.reasons
}

test_a_pipeline_identity_approval_does_not_count if {
	actions := object.union(bob, {"reviewer": {"login": "github-actions[bot]", "type": "service"}})
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [actions]}}))
	r.status == "fail"
	"approval by github-actions[bot] does not count: github-actions[bot] is a pipeline identity (--pipeline-identities), not a peer reviewer" in r.reasons
}

test_another_reviewers_standing_request_for_changes_is_shown_not_failed if {
	changes := {"reviewer": carol, "decision": "changes_requested", "head_commit": bob.head_commit, "stale": false, "dismissed": false, "at": "2025-03-03T16:10:00Z", "events": ["test review-carol"]}
	r := cm2.result with input as fx.input_for(fx.with_change({"pull_request": {"reviews": [bob, changes]}}))
	r.status == "pass"
	"note: changes requested by carol at 2025-03-03T16:10:00Z on 222222222222 still stand (not dismissed, no later approval by carol)" in r.reasons
}
