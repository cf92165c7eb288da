package evidence.controls.cm1

import data.evidence.lib

metadata := {
	"id": "CM-1",
	"title": "Approved change ticket",
	"description": "The production change has a change ticket approved by a person before the deployment; an emergency change's ticket is approved within the emergency window after it. Approvals by bots, service accounts or pipeline identities do not count.",
	"risk": "Unapproved changes reach production: changes bypass the change advisory process.",
	"severity": "high",
}

tickets := lib.rec.tickets

# approvals_of are a ticket's approvals by people: an approval by a bot, a
# service account or a pipeline identity (lib.machine_kind) approves
# nothing.
approvals_of(t) := [a | some a in t.approvals; not lib.is_machine(a.by)]

emergency(t) if lower(object.get(t, "type", "")) == "emergency"

window_end_ns := lib.deploy_ns + input.params.emergency_window_ns

# rejected_between: a rejection after the approval and before the deployment.
rejected_between(t, a) if {
	some r in t.rejections
	lib.ns(r.at) > lib.ns(a.at)
	lib.ns(r.at) <= lib.deploy_ns
}

qualifying contains [t.key, a] if {
	some t in tickets
	some a in approvals_of(t)
	lib.ns(a.at) <= lib.deploy_ns
	not rejected_between(t, a)
}

qualifying contains [t.key, a] if {
	some t in tickets
	emergency(t)
	lib.deployed
	some a in approvals_of(t)
	lib.ns(a.at) > lib.deploy_ns
	lib.ns(a.at) <= window_end_ns
}

ok if count(qualifying) > 0

passes contains sprintf("ticket %s approved by %s at %s (deployment at %s)", [k, lib.name(a.by), a.at, lib.fmt_ns(lib.deploy_ns)]) if {
	some [k, a] in qualifying
	lib.ns(a.at) <= lib.deploy_ns
}

passes contains sprintf("emergency ticket %s approved by %s at %s, within %s of the deployment at %s", [k, lib.name(a.by), a.at, input.params.emergency_window, lib.fmt_ns(lib.deploy_ns)]) if {
	some [k, a] in qualifying
	lib.ns(a.at) > lib.deploy_ns
}

fails contains sprintf("ticket %s approved at %s, after the deployment at %s", [t.key, a.at, lib.fmt_ns(lib.deploy_ns)]) if {
	not ok
	some t in tickets
	not emergency(t)
	some a in approvals_of(t)
	lib.ns(a.at) > lib.deploy_ns
}

fails contains sprintf("emergency ticket %s approved at %s, outside the %s window after the deployment at %s", [t.key, a.at, input.params.emergency_window, lib.fmt_ns(lib.deploy_ns)]) if {
	not ok
	some t in tickets
	emergency(t)
	some a in approvals_of(t)
	lib.ns(a.at) > window_end_ns
}

fails contains sprintf("ticket %s rejected by %s at %s", [t.key, lib.name(r.by), r.at]) if {
	not ok
	some t in tickets
	some r in t.rejections
	lib.ns(r.at) <= lib.deploy_ns
}

missing contains "no change ticket linked to the change" if count(tickets) == 0

missing contains sprintf("ticket %s has no approval", [t.key]) if {
	not ok
	some t in tickets
	count(t.approvals) == 0
}

missing contains sprintf("ticket %s approval by %s does not count: %s is %s, not a ticket approver", [t.key, n, n, kind]) if {
	not ok
	some t in tickets
	some a in t.approvals
	kind := lib.machine_kind(a.by)
	n := lib.name(a.by)
}

missing contains sprintf("ticket %s known only by its key (its events have not arrived)", [t.key]) if {
	not ok
	some t in tickets
	object.get(t, "system", "") == ""
}

# An emergency ticket not approved yet is pending until the window closes.
emergency_open if {
	not ok
	lib.deployed
	some t in tickets
	emergency(t)
	count(approvals_of(t)) == 0
	input.now_ns <= window_end_ns
}

emergency_late contains sprintf("emergency ticket %s not approved within %s after the deployment at %s", [t.key, input.params.emergency_window, lib.fmt_ns(lib.deploy_ns)]) if {
	not ok
	not emergency_open
	some t in tickets
	emergency(t)
	count(approvals_of(t)) == 0
	input.now_ns > window_end_ns
}

evidence contains e if {
	some [_, a] in qualifying
	some e in a.events
}

evidence contains e if {
	ok
	some e in lib.deployment_events
}

result := {
	"status": "pending",
	"reasons": [sprintf("emergency change deployed at %s: ticket approval expected by %s", [lib.fmt_ns(lib.deploy_ns), lib.fmt_ns(window_end_ns)])],
	"evidence": sort(lib.deployment_events),
	"deadline": lib.fmt_ns(window_end_ns),
} if {
	emergency_open
	count(fails) == 0
} else := lib.decide(fails | emergency_late, missing, passes, evidence)
