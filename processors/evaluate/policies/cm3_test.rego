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

# The compliant change deployed by its pipeline (what evidence emit deploy
# writes in a CI job), the run triggered by trigger_by with trigger.
pipeline_deploy(trigger_by, trigger) := object.union(fx.compliant.deployments[0], {
	"system": "github-actions",
	"pipeline": "release",
	"deployer": {"login": "github-actions:release", "name": "release", "type": "service"},
	"triggered_by": trigger_by,
	"trigger": trigger,
})

strict := object.union(fx.params, {"manual_trigger_by_author": "fail"})

input_with(d, params) := object.union(fx.input_for(fx.with_change({"deployments": [d]})), {"params": params})

bob := fx.compliant.pull_request.merged_by

alice := fx.compliant.pull_request.author

test_pipeline_deploy_triggered_by_the_merger_passes if {
	r := cm3.result with input as input_with(pipeline_deploy(bob, "push"), fx.params)
	r.status == "pass"
	"deployment production/payments d-1 automated by pipeline identity github-actions:release (run 200), triggered by bob (push)" in r.reasons

	# bob reviewed the change: triggering its pipeline is not deploying it.
	every x in r.reasons {
		not contains(x, "is also")
	}
}

test_manual_trigger_by_the_author_is_allowed_and_named if {
	r := cm3.result with input as input_with(pipeline_deploy(alice, "manual"), fx.params)
	r.status == "pass"
	"deployment production/payments d-1 started on demand (manual) by the change's author alice: allowed, pipeline github-actions:release (run 200) deployed the change others approved (manual_trigger_by_author: allow)" in r.reasons
	"deployment production/payments d-1 automated by pipeline identity github-actions:release (run 200), triggered by alice (manual), the change's author" in r.reasons
}

test_manual_trigger_by_the_author_fails_when_strict if {
	r := cm3.result with input as input_with(pipeline_deploy(alice, "manual"), strict)
	r.status == "fail"
	r.reasons == ["deployment production/payments d-1 started on demand (manual) by the change's author alice, through pipeline github-actions:release (run 200) (manual_trigger_by_author: fail)"]
}

test_author_matched_by_email_when_strict if {
	by_email := {"login": "alice@acme.example", "email": "alice@acme.example", "type": "user"}
	r := cm3.result with input as input_with(pipeline_deploy(by_email, "api"), strict)
	r.status == "fail"
}

test_unreported_trigger_by_the_author_counts_as_on_demand if {
	d := object.remove(pipeline_deploy(alice, ""), ["trigger"])
	r := cm3.result with input as input_with(d, strict)
	r.status == "fail"
	contains(r.reasons[0], "started on demand (trigger not reported) by the change's author alice")
}

test_push_by_the_author_is_not_on_demand if {
	r := cm3.result with input as input_with(pipeline_deploy(alice, "push"), strict)
	r.status == "pass"
	"deployment production/payments d-1 automated by pipeline identity github-actions:release (run 200), triggered by alice (push), the change's author" in r.reasons
}

test_manual_trigger_by_a_reviewer_passes_when_strict if {
	r := cm3.result with input as input_with(pipeline_deploy(bob, "manual"), strict)
	r.status == "pass"
}

test_no_trigger_reported_passes if {
	d := object.remove(pipeline_deploy(alice, ""), ["trigger", "triggered_by"])
	r := cm3.result with input as input_with(d, strict)
	r.status == "pass"
	"deployment production/payments d-1 automated by pipeline identity github-actions:release (run 200), trigger not reported" in r.reasons
}

# Outside CI the deployment is the person's: the author fails.
test_author_deploying_outside_ci_fails if {
	d := object.remove(object.union(fx.compliant.deployments[0], {"deployer": {"login": "alice", "type": "user"}}), ["run_id"])
	r := cm3.result with input as input_with(d, fx.params)
	r.status == "fail"
	"author alice is also deployer" in r.reasons
}

# A service identity of a system that is not a pipeline system is judged
# as a deployer like a person.
test_service_identity_of_another_system_is_a_deployer if {
	d := object.union(pipeline_deploy(bob, "push"), {"system": "argocd", "deployer": {"login": "alice", "type": "service"}})
	r := cm3.result with input as input_with(d, fx.params)
	r.status == "fail"
	"author alice is also deployer" in r.reasons
}

# Pushing a release tag is a decision to ship, as is a run of a push to a
# pull request that deploys to production: on demand. A schedule or an
# upstream pipeline is not.
test_tag_or_pull_request_by_the_author_is_on_demand if {
	every t in ["tag", "pull_request"] {
		r := cm3.result with input as input_with(pipeline_deploy(alice, t), strict)
		r.status == "fail"
	}
	every t in ["schedule", "pipeline"] {
		r := cm3.result with input as input_with(pipeline_deploy(alice, t), strict)
		r.status == "pass"
	}
}
