package evidence.controls.cm5_test

import data.evidence.controls.cm5
import data.evidence.testing as fx

test_scans_below_the_threshold_pass if {
	r := cm5.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
}

test_critical_finding_fails if {
	s := [object.union(x, {"findings": {"critical": 1}}) | some x in fx.compliant.scans]
	r := cm5.result with input as fx.input_for(fx.with_change({"scans": s}))
	r.status == "fail"
}

test_missing_dependency_scan_fails_after_the_deadline if {
	s := [x | some x in fx.compliant.scans; x.category == "sast"]
	r := cm5.result with input as fx.input_for(fx.with_change({"scans": s}))
	r.status == "fail"
	"no dependency scan on the deployed commit cccccccccccc" in r.reasons
}
