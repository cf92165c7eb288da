package evidence.controls.cm6_test

import data.evidence.controls.cm6
import data.evidence.testing as fx

test_artifact_built_by_the_pipeline_passes if {
	r := cm6.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
}

test_artifact_built_outside_a_pipeline_fails if {
	a := object.union(fx.compliant.artifacts[0], {"builder": {"login": "alice"}, "run_id": ""})
	r := cm6.result with input as fx.input_for(fx.with_change({"artifacts": [a]}))
	r.status == "fail"
	some reason in r.reasons
	contains(reason, "built outside a pipeline")
}

# An artifact of the pull request's final head, built by the pipeline run
# 101 on that head: not the merged commit.
head_digest := "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

with_head_build := fx.with_change({
	"artifacts": array.concat(fx.compliant.artifacts, [object.union(fx.compliant.artifacts[0], {"digest": head_digest, "commit": fx.compliant.pull_request.head_commit, "run_id": "101"})]),
	"runs": array.concat(fx.compliant.runs, [object.union(fx.compliant.runs[0], {"run_id": "101", "commit": fx.compliant.pull_request.head_commit, "branch": "feature/PAY-123"})]),
})

asking(record, artifact) := object.union(fx.input_for(record), {"artifact": artifact})

test_the_artifact_asked_about_is_judged_not_another_of_the_change if {
	# Judged as a whole, the change passes: its deployment's artifact is
	# the merged commit's.
	cm6.result.status == "pass" with input as fx.input_for(with_head_build)

	r := cm6.result with input as asking(with_head_build, head_digest)
	r.status == "fail"
	r.reasons == [sprintf("artifact %s built from 222222222222, not the merged commit cccccccccccc", [head_digest])]

	good := cm6.result with input as asking(with_head_build, fx.compliant.artifacts[0].digest)
	good.status == "pass"
	good.reasons == [sprintf("artifact %s built by run 100 from the merged commit cccccccccccc", [fx.compliant.artifacts[0].digest])]
}

test_an_earlier_deployment_of_another_artifact_does_not_fail_the_one_asked_about if {
	d := object.union(fx.compliant.deployments[0], {"deployment_id": "d-0", "digest": head_digest, "started_at": "2025-03-03T20:00:00Z", "finished_at": "2025-03-03T20:05:00Z"})
	rec := object.union(with_head_build, {"deployments": array.concat([d], fx.compliant.deployments)})
	cm6.result.status == "fail" with input as fx.input_for(rec)
	cm6.result.status == "pass" with input as asking(rec, fx.compliant.artifacts[0].digest)
}

test_an_artifact_asked_about_that_no_build_reported_is_pending if {
	x := "sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd"
	r := cm6.result with input as object.union(fx.input_at(fx.with_change({"deployments": []}), fx.deployed_at), {"artifact": x})
	r.status == "pending"
	r.reasons[0] == sprintf("artifact %s not known (no artifact.built event)", [x])
}
