package evidence.controls.cm4_test

import data.evidence.controls.cm4
import data.evidence.testing as fx

test_tests_passed_on_the_deployed_commit_pass if {
	r := cm4.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
}

test_failed_suite_on_the_deployed_commit_fails if {
	t := [object.union(x, {"outcome": "failed", "failed": 1}) | some x in fx.compliant.tests]
	r := cm4.result with input as fx.input_for(fx.with_change({"tests": t}))
	r.status == "fail"
	some reason in r.reasons
	startswith(reason, "suite unit failed on the deployed commit")
}

test_no_tests_fails_after_the_deadline if {
	r := cm4.result with input as fx.input_for(fx.with_change({"tests": []}))
	r.status == "fail"
	"no test results on the deployed commit cccccccccccc" in r.reasons
}
