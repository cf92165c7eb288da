package evidence.access.controls.ac3

import data.evidence.access.lib

metadata := {
	"id": "AC-3",
	"title": "Authorised grants",
	"description": "Every grant of write, maintain or admin on the production repository during the period has an approver other than the grantee and the grantor (an approver the producer states, or an approved access ticket); a grant by the grantee to themselves fails.",
	"risk": "People give themselves or others the power to change production without authorisation.",
	"severity": "high",
}

privileged := {"write", "maintain", "admin"}

grants := [g |
	some g in lib.rec.grants
	g.permission in privileged
	g.action != "snapshot"
	at := lib.ns(g.from)
	at >= lib.from_ns
	at < lib.to_ns
]

grantee(g) := lower(g.principal.login)

grantor(g) := lib.login(object.get(g, "granted_by", null))

self_grant(g) if {
	g.principal.kind == "user"
	grantor(g) == grantee(g)
}

label(g) := sprintf("%s to %s %s by %s at %s", [g.permission, g.principal.kind, g.principal.login, lib.name(object.get(g, "granted_by", null)), g.from])

# approvers: who approved the grant, other than grantee and grantor.
approvers(g) := {lib.name(g.approver) |
	a := lib.login(object.get(g, "approver", null))
	a != ""
	a != grantee(g)
	a != grantor(g)
} | {sprintf("%s (ticket %s)", [lib.name(t.by), t.key]) |
	object.get(g, "ticket", "") != ""
	t := lib.approved_ticket(g.ticket, lib.ns(g.from), object.get(g, "granted_by", null))
	lib.login(t.by) != grantee(g)
}

fails contains sprintf("self-grant: %s", [label(g)]) if {
	some g in grants
	self_grant(g)
}

fails contains sprintf("grant of %s: no approver other than the grantee and the grantor", [label(g)]) if {
	some g in grants
	not self_grant(g)
	count(approvers(g)) == 0
}

passes contains sprintf("grant of %s approved by %s", [label(g), concat(", ", sort(approvers(g)))]) if {
	some g in grants
	not self_grant(g)
	count(approvers(g)) > 0
}

passes contains "no write, maintain or admin granted during the period" if count(grants) == 0

evidence contains g.grant_event if some g in grants

evidence contains t.event if {
	some g in grants
	object.get(g, "ticket", "") != ""
	t := lib.approved_ticket(g.ticket, lib.ns(g.from), object.get(g, "granted_by", null))
}

result := lib.decide(fails, passes, evidence)
