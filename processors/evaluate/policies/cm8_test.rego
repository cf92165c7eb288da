package evidence.controls.cm8_test

import data.evidence.controls.cm8
import data.evidence.testing as fx

test_matched_change_passes if {
	r := cm8.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
	r.reasons == [sprintf("matches change record %s (pull request #42)", [fx.compliant.id])]
}

test_unmatched_production_deployment_fails_at_once if {
	r := cm8.result with input as fx.input_at(fx.with_change({"unmatched": true, "pull_request": null}), fx.deployed_at)
	r.status == "fail"
}

test_direct_push_fails if {
	p := {"ref": "refs/heads/main", "pusher": {"login": "alice"}, "after": "cccccccccccccccccccccccccccccccccccccccc", "commits": [], "events": []}
	r := cm8.result with input as fx.input_for(fx.with_change({"direct_push": true, "pull_request": null, "pushes": [p]}))
	r.status == "fail"
	some reason in r.reasons
	startswith(reason, "direct push to refs/heads/main by alice")
}
