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
