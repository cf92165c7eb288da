package evidence.lib_test

import data.evidence.lib
import data.evidence.testing as fx

test_same_person_by_login_or_email if {
	lib.same_person({"login": "Alice"}, {"login": "alice"})
	lib.same_person({"login": "alice", "email": "a@acme.example"}, {"login": "712020:alice", "email": "A@acme.example"})
	not lib.same_person({"login": "alice"}, {"login": "bob"})
	not lib.same_person({"login": ""}, {"login": ""})
}

test_deploy_ns_is_the_first_production_deployment if {
	lib.deploy_ns == time.parse_rfc3339_ns(fx.deployed_at) with input as fx.input_for(fx.compliant)
	lib.deployed with input as fx.input_for(fx.compliant)
}

test_prospective_when_not_deployed_judges_as_of_now if {
	inp := fx.input_for(fx.with_change({"deployments": []}))
	lib.prospective with input as inp
	lib.deploy_ns == time.parse_rfc3339_ns(fx.later) with input as inp
	lib.deployed_commits == {fx.compliant.commit} with input as inp
}

test_staging_is_not_production if {
	d := object.union(fx.compliant.deployments[0], {"environment": "staging"})
	inp := fx.input_for(fx.with_change({"deployments": [d]}))
	count(lib.prod_deployments) == 0 with input as inp
}

test_machine_kind if {
	lib.machine_kind({"login": "github-actions[bot]", "type": "service"}) == "a pipeline identity (--pipeline-identities)" with input as fx.input_for(fx.compliant)
	lib.machine_kind({"login": "deploy-svc", "type": "service"}) == "a service account" with input as fx.input_for(fx.compliant)
	lib.machine_kind({"login": "renovate[bot]", "type": "user"}) == "a bot account" with input as fx.input_for(fx.compliant)
	lib.machine_kind({"login": "project_42_bot_3f9a", "type": "bot"}) == "a bot account" with input as fx.input_for(fx.compliant)
	not lib.is_machine({"login": "bob", "type": "user"}) with input as fx.input_for(fx.compliant)
	not lib.is_machine({"login": "botticelli"}) with input as fx.input_for(fx.compliant)
}

test_deploy_ns_of_a_deployment_known_only_by_its_finish if {
	d := object.union(fx.compliant.deployments[0], {"finished_at": "2025-03-04T09:05:00Z"})
	finished := object.remove(d, ["started_at"])
	inp := fx.input_for(fx.with_change({"deployments": [finished]}))
	lib.deploy_ns == time.parse_rfc3339_ns("2025-03-04T09:05:00Z") with input as inp
}

# A deployment of the compliant change by the given deployer from system.
deployed_by(deployer, system) := object.union(fx.compliant.deployments[0], {"deployer": deployer, "system": system})

pipeline_identity := {"login": "github-actions:release", "name": "release", "type": "service"}

test_pipeline_deployment_by_login_or_by_a_pipeline_systems_service_identity if {
	inp := fx.input_for(fx.compliant)
	lib.pipeline_deployment(deployed_by({"login": "github-actions[bot]"}, "")) with input as inp
	lib.pipeline_deployment(deployed_by(pipeline_identity, "github-actions")) with input as inp
	lib.pipeline_deployment(deployed_by({"login": "jenkins:payments/main", "type": "service"}, "Jenkins")) with input as inp

	# A service identity needs a pipeline system beside it; a person is a
	# person whatever system reported the deployment.
	not lib.pipeline_deployment(deployed_by(pipeline_identity, "")) with input as inp
	not lib.pipeline_deployment(deployed_by({"login": "argocd", "type": "service"}, "argocd")) with input as inp
	not lib.pipeline_deployment(deployed_by({"login": "carol", "type": "user"}, "github-actions")) with input as inp
	not lib.pipeline_deployment(deployed_by({"login": "deploy-bot", "type": "bot"}, "github-actions")) with input as inp
}

test_no_pipeline_systems_leaves_only_the_pipeline_identities if {
	params := object.union(fx.params, {"pipeline_systems": []})
	inp := object.union(fx.input_for(fx.compliant), {"params": params})
	not lib.pipeline_deployment(deployed_by(pipeline_identity, "github-actions")) with input as inp
	lib.pipeline_deployment(deployed_by({"login": "github-actions[bot]"}, "github-actions")) with input as inp
}

test_on_demand_triggers if {
	d := fx.compliant.deployments[0]
	every t in ["manual", "api", "other", "tag", "pull_request"] {
		lib.on_demand(object.union(d, {"trigger": t}))
	}
	lib.on_demand(d) # not reported
	every t in ["push", "schedule", "pipeline"] {
		not lib.on_demand(object.union(d, {"trigger": t}))
	}
}

test_trigger_labels if {
	d := fx.compliant.deployments[0]
	lib.trigger_label(object.union(d, {"triggered_by": {"login": "bob"}, "trigger": "push"})) == "triggered by bob (push)"
	lib.trigger_label(object.union(d, {"triggered_by": {"login": "bob"}})) == "triggered by bob (trigger not reported)"
	lib.trigger_label(object.union(d, {"trigger": "schedule"})) == "trigger schedule, no person reported"
	lib.trigger_label(d) == "trigger not reported"
}

test_deployed_commits_are_the_builds_not_what_the_deployment_names if {
	# A rollback run on main's head names that head and deploys the build
	# of cccc…: production runs cccc….
	d := object.union(fx.compliant.deployments[0], {"commit": "9999999999999999999999999999999999999999"})
	inp := fx.input_for(fx.with_change({"deployments": [d]}))
	lib.deployed_commits == {fx.compliant.commit} with input as inp

	# No build of what it deployed known: the commit it names.
	x := object.union(d, {"digest": "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"})
	lib.deployed_commits == {"9999999999999999999999999999999999999999"} with input as fx.input_for(fx.with_change({"deployments": [x]}))
}

test_an_asked_artifact_is_what_is_deployed if {
	head := object.union(fx.compliant.artifacts[0], {"digest": "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "commit": fx.compliant.pull_request.head_commit})
	rec := fx.with_change({"artifacts": array.concat(fx.compliant.artifacts, [head])})
	inp := object.union(fx.input_for(rec), {"artifact": head.digest})
	lib.asked with input as inp
	lib.deployed_commits == {fx.compliant.pull_request.head_commit} with input as inp
	lib.deployed_digests == {head.digest} with input as inp
	not lib.asked with input as fx.input_for(rec)
}
