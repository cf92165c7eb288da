package evidence.controls.cm6

import data.evidence.lib

metadata := {
	"id": "CM-6",
	"title": "Provenance",
	"description": "The deployed artifact was built by a pipeline run from the merged commit.",
	"risk": "What runs in production is not what was reviewed and tested.",
	"severity": "high",
}

merged := lib.rec.commit

run_of(a) := r if {
	some r in lib.rec.runs
	r.run_id == a.run_id
	r.repository == a.repository
}

built_outside(a) if object.get(a, "run_id", "") == ""

built_outside(a) if {
	is_object(a.builder)
	not lib.is_pipeline(a.builder)
	object.get(a.builder, "type", "") != "service"
}

good(a) if {
	a.commit == merged
	not built_outside(a)
	r := run_of(a)
	r.commit == a.commit
	object.get(r, "outcome", "") != "failure"
}

# artifacts: [deployment label, artifact]: the builds judged. With an
# asked artifact (the gate's, or a deployment's own when its verdict is
# decided: lib.asked_artifact), the builds of that artifact alone, so an
# artifact of the pull request's head is not passed on the strength of
# another artifact of the change, nor is an earlier deployment of another
# one held against it. Without, the artifact of every production
# deployment.
artifacts contains [lib.deployment_label(d), a] if {
	not lib.asked
	some d in lib.prod_deployments
	some a in lib.rec.artifacts
	lib.artifact_of(d, a)
}

artifacts contains ["", a] if some a in lib.asked_builds

fails contains sprintf("deployment %s names no artifact (digest or purl): provenance cannot be established", [lib.deployment_label(d)]) if {
	not lib.asked
	some d in lib.prod_deployments
	object.get(d, "digest", "") == ""
	object.get(d, "purl", "") == ""
}

fails contains sprintf("artifact %s built outside a pipeline (builder %s, run %q)", [a.digest, lib.name(object.get(a, "builder", null)), object.get(a, "run_id", "")]) if {
	some [_, a] in artifacts
	built_outside(a)
}

fails contains sprintf("artifact %s built from %s, not the merged commit %s", [a.digest, lib.short(a.commit), lib.short(merged)]) if {
	some [_, a] in artifacts
	a.commit != merged
}

fails contains sprintf("artifact %s: run %s built commit %s, not %s", [a.digest, r.run_id, lib.short(r.commit), lib.short(a.commit)]) if {
	some [_, a] in artifacts
	r := run_of(a)
	r.commit != a.commit
}

fails contains sprintf("artifact %s: run %s failed", [a.digest, r.run_id]) if {
	some [_, a] in artifacts
	r := run_of(a)
	object.get(r, "outcome", "") == "failure"
}

fails contains "deployment matches no change record: no provenance to the merged commit" if lib.rec.unmatched

missing contains sprintf("deployment %s: artifact %s not known (no artifact.built event)", [lib.deployment_label(d), object.get(d, "digest", object.get(d, "purl", ""))]) if {
	not lib.asked
	some d in lib.prod_deployments
	not lib.rec.unmatched
	object.get(d, "digest", "") != ""
	count([a | some a in lib.rec.artifacts; lib.artifact_of(d, a)]) == 0
}

missing contains sprintf("deployment %s: artifact %s not known (no artifact.built event)", [lib.deployment_label(d), d.purl]) if {
	not lib.asked
	some d in lib.prod_deployments
	not lib.rec.unmatched
	object.get(d, "digest", "") == ""
	object.get(d, "purl", "") != ""
	count([a | some a in lib.rec.artifacts; lib.artifact_of(d, a)]) == 0
}

missing contains sprintf("artifact %s: its build run %s is not known", [a.digest, a.run_id]) if {
	some [_, a] in artifacts
	not built_outside(a)
	not run_of(a)
}

missing contains sprintf("artifact %s not known (no artifact.built event)", [lib.asked_artifact]) if {
	lib.asked
	not lib.rec.unmatched
	count(lib.asked_builds) == 0
}

# Prospectively (nothing deployed yet, no artifact asked about) an artifact
# of the merged commit built by a pipeline must exist.
missing contains sprintf("no artifact built by a pipeline run from the merged commit %s", [lib.short(merged)]) if {
	not lib.asked
	lib.prospective
	not lib.rec.unmatched
	count([a | some a in lib.rec.artifacts; good(a)]) == 0
}

passes contains sprintf("deployment %s: artifact %s built by run %s from the merged commit %s", [l, a.digest, a.run_id, lib.short(a.commit)]) if {
	not lib.asked
	some [l, a] in artifacts
	good(a)
}

passes contains sprintf("artifact %s built by run %s from the merged commit %s", [a.digest, a.run_id, lib.short(a.commit)]) if {
	not lib.asked
	lib.prospective
	some a in lib.rec.artifacts
	good(a)
}

passes contains sprintf("artifact %s built by run %s from the merged commit %s", [a.digest, a.run_id, lib.short(a.commit)]) if {
	some a in lib.asked_builds
	good(a)
}

evidence contains e if {
	some [_, a] in artifacts
	some e in a.events
}

evidence contains e if {
	some [_, a] in artifacts
	r := run_of(a)
	some e in r.events
}

evidence contains e if {
	not lib.asked
	some e in lib.deployment_events
}

evidence contains e if {
	some d in lib.prod_deployments
	lib.is_asked(d)
	some e in d.events
}

result := lib.decide(fails, missing, passes, evidence)
