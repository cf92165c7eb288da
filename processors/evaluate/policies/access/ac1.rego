package evidence.access.controls.ac1

import data.evidence.access.lib

metadata := {
	"id": "AC-1",
	"title": "Branch protection in force",
	"description": "Each protected branch of the production repository requires the configured number of approving reviews, dismisses stale approvals and applies to administrators, at every instant of the period; a weakening or deletion fails from that instant until restored, unless an approved change ticket covers it.",
	"risk": "Changes reach production without review because protection was weakened, deleted or never set.",
	"severity": "high",
}

rules := [p | some p in lib.rec.protections; lib.protects(p.target)]

window(p) := lib.window(lib.ns(p.from), lib.period_end(p))

weak(p) := {"the rule was deleted"} if not is_object(object.get(p, "settings", null))

weak(p) := lib.weaknesses(p.settings) if is_object(object.get(p, "settings", null))

label(p) := sprintf("%s rule %s on %s", [p.rule_kind, p.rule_id, p.target])

by(p) := sprintf(" by %s", [lib.name(p.changed_by)]) if is_object(object.get(p, "changed_by", null))

by(p) := "" if not is_object(object.get(p, "changed_by", null))

# covered: another rule on the same target was strong over the whole window.
covered(p, w) if {
	some q in rules
	q.target == p.target
	q != p
	is_object(object.get(q, "settings", null))
	count(lib.weaknesses(q.settings)) == 0
	lib.ns(q.from) <= w[0]
	lib.period_end(q) >= w[1]
}

ticket(p) := t if {
	object.get(p, "ticket", "") != ""
	t := lib.approved_ticket(p.ticket, lib.ns(p.from), object.get(p, "changed_by", null))
}

weak_in_period contains p if {
	some p in rules
	w := window(p)
	lib.overlaps(w)
	count(weak(p)) > 0
	not covered(p, w)
}

fails contains sprintf("%s: %s (%s%s at %s) from %s %s", [label(p), concat(", ", sort(weak(p))), p.action, by(p), p.from, lib.fmt_ns(w[0]), lib.end_label(p, w)]) if {
	some p in weak_in_period
	not ticket(p)
	w := window(p)
}

fails contains sprintf("no branch protection known on the protected branches (%s) during the period", [concat(", ", sort(lib.protected))]) if {
	count([p | some p in rules; lib.overlaps(window(p))]) == 0
}

passes contains sprintf("%s: %s (%s%s) from %s %s under approved ticket %s (approved by %s at %s)", [label(p), concat(", ", sort(weak(p))), p.action, by(p), lib.fmt_ns(w[0]), lib.end_label(p, w), t.key, lib.name(t.by), t.at]) if {
	some p in weak_in_period
	t := ticket(p)
	w := window(p)
}

passes contains sprintf("%s: %d approving reviews, stale approvals dismissed, administrators included, from %s %s", [label(p), p.settings.required_approving_review_count, lib.fmt_ns(w[0]), lib.end_label(p, w)]) if {
	some p in rules
	w := window(p)
	lib.overlaps(w)
	count(weak(p)) == 0
}

evidence contains p.event if {
	some p in rules
	lib.overlaps(window(p))
}

evidence contains t.event if {
	some p in weak_in_period
	t := ticket(p)
}

result := lib.decide(fails, passes, evidence)
