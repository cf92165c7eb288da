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
