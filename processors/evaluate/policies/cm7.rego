package evidence.controls.cm7

import data.evidence.lib

metadata := {
	"id": "CM-7",
	"title": "Authorized deployment path",
	"description": "Deployed by a pipeline identity, from a change merged into a protected branch.",
	"risk": "Changes reach production by a manual or unauthorized path.",
	"severity": "high",
}

protected := {lower(b) | some b in input.params.protected_branches}

fails contains sprintf("deployment %s by %s, not a pipeline identity", [lib.deployment_label(d), lib.name(d.deployer)]) if {
	some d in lib.prod_deployments
	is_object(d.deployer)
	not lib.pipeline_deployment(d)
}

fails contains sprintf("pull request #%d merged into %s, not a protected branch", [lib.pr.number, object.get(lib.pr, "target_branch", "")]) if {
	not lower(object.get(lib.pr, "target_branch", "")) in protected
}

fails contains "direct push to the default branch: not merged through a pull request" if lib.rec.direct_push

fails contains "deployment matches no change record: path unknown" if lib.rec.unmatched

missing contains sprintf("deployment %s has no known deployer", [lib.deployment_label(d)]) if {
	some d in lib.prod_deployments
	not is_object(d.deployer)
}

missing contains "no pull request known for the change" if {
	not lib.pr
	not lib.rec.direct_push
	not lib.rec.unmatched
}

passes contains sprintf("deployment %s by pipeline identity %s%s, %s", [lib.deployment_label(d), lib.name(d.deployer), lib.run_label(d), lib.trigger_label(d)]) if {
	some d in lib.prod_deployments
	lib.pipeline_deployment(d)
}

passes contains sprintf("pull request #%d merged into protected branch %s", [lib.pr.number, lib.pr.target_branch]) if {
	lower(lib.pr.target_branch) in protected
}

evidence contains e if some e in lib.deployment_events

evidence contains e if {
	some h in lib.pr.heads
	h.via == "merged"
	some e in h.events
}

result := lib.decide(fails, missing, passes, evidence)
