package evidence.controls.cm7_test

import data.evidence.controls.cm7
import data.evidence.testing as fx

test_pipeline_deploy_of_a_protected_branch_passes if {
	r := cm7.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
}

test_unprotected_branch_fails if {
	r := cm7.result with input as fx.input_for(fx.with_change({"pull_request": {"target_branch": "feature/x"}}))
	r.status == "fail"
	"pull request #42 merged into feature/x, not a protected branch" in r.reasons
}

test_deploy_by_a_person_fails if {
	d := object.union(fx.compliant.deployments[0], {"deployer": {"login": "bob"}})
	r := cm7.result with input as fx.input_for(fx.with_change({"deployments": [d]}))
	r.status == "fail"
}
