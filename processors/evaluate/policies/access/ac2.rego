package evidence.access.controls.ac2

import data.evidence.access.lib

metadata := {
	"id": "AC-2",
	"title": "No bypass of branch protection",
	"description": "No push to a protected branch of the production repository bypassed its protection during the period (a force push where force pushes are not allowed, a direct push or a rule bypass while a rule was in force).",
	"risk": "Unreviewed code reaches a protected branch by force or by an exemption.",
	"severity": "high",
}

pushes := [b | some b in lib.rec.bypasses; at := lib.ns(b.at); at >= lib.from_ns; at < lib.to_ns]

# in_force: a rule (not deleted) on the branch at the push's instant.
in_force(b) := [p |
	some p in lib.rec.protections
	lib.on(p.target, b.branch)
	is_object(object.get(p, "settings", null))
	lib.ns(p.from) <= lib.ns(b.at)
	lib.ns(b.at) < lib.period_end(p)
]

bypassed(b, p) if b.kind != "force_push"

bypassed(b, p) if {
	b.kind == "force_push"
	not p.settings.allow_force_pushes
}

kind_label := {"force_push": "force push", "direct_push": "direct push", "rule_bypass": "push bypassing a rule"}

sha_label(b) := sprintf(" (%s..%s)", [substring(object.get(b, "before", ""), 0, 12), substring(object.get(b, "after", ""), 0, 12)]) if object.get(b, "after", "") != ""

sha_label(b) := "" if object.get(b, "after", "") == ""

failing contains b if {
	some b in pushes
	some p in in_force(b)
	bypassed(b, p)
}

fails contains sprintf("%s to %s by %s at %s%s while branch protection was in force", [kind_label[b.kind], b.branch, lib.name(b.actor), b.at, sha_label(b)]) if {
	some b in failing
}

passes contains sprintf("%s to %s by %s at %s: the branch was not protected then", [kind_label[b.kind], b.branch, lib.name(b.actor), b.at]) if {
	some b in pushes
	count(in_force(b)) == 0
}

passes contains sprintf("%s to %s by %s at %s: the rule in force allowed force pushes", [kind_label[b.kind], b.branch, lib.name(b.actor), b.at]) if {
	some b in pushes
	not b in failing
	count(in_force(b)) > 0
}

passes contains "no push bypassed branch protection during the period" if count(pushes) == 0

evidence contains b.event if some b in pushes

result := lib.decide(fails, passes, evidence)
