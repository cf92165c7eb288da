package evidence.controls.cm3_test

import data.evidence.controls.cm3
import data.evidence.testing as fx

test_distinct_people_pass if {
	r := cm3.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
}

test_author_deploying_fails if {
	d := object.union(fx.compliant.deployments[0], {"deployer": fx.compliant.pull_request.author})
	r := cm3.result with input as fx.input_for(fx.with_change({"deployments": [d]}))
	r.status == "fail"
}
