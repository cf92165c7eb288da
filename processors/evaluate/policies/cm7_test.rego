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

pipeline_deploy(system) := object.union(fx.compliant.deployments[0], {
	"system": system,
	"deployer": {"login": "gitlab-ci:deploy-prod", "name": "deploy-prod", "type": "service"},
	"triggered_by": {"login": "carol", "type": "user"},
	"trigger": "push",
})

input_with(d, params) := object.union(fx.input_for(fx.with_change({"deployments": [d]})), {"params": params})

test_deploy_by_a_pipeline_of_a_pipeline_system_passes if {
	r := cm7.result with input as input_with(pipeline_deploy("gitlab-ci"), fx.params)
	r.status == "pass"
	"deployment production/payments d-1 by pipeline identity gitlab-ci:deploy-prod (run 200), triggered by carol (push)" in r.reasons
}

test_pipeline_systems_decide if {
	r := cm7.result with input as input_with(pipeline_deploy("argocd"), fx.params)
	r.status == "fail"
	"deployment production/payments d-1 by gitlab-ci:deploy-prod, not a pipeline identity" in r.reasons

	none := object.union(fx.params, {"pipeline_systems": []})
	s := cm7.result with input as input_with(pipeline_deploy("gitlab-ci"), none)
	s.status == "fail"
}

# Evidence of before the pipeline identity (the deployer was the run's
# actor, a person, though the system is a CI's) is judged as it says.
test_a_person_reported_by_a_ci_system_fails if {
	d := object.union(fx.compliant.deployments[0], {"system": "github-actions", "deployer": {"login": "carol", "type": "user"}})
	r := cm7.result with input as input_with(d, fx.params)
	r.status == "fail"
	"deployment production/payments d-1 by carol, not a pipeline identity" in r.reasons
}
