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
