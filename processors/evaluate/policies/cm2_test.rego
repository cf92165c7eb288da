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
