package evidence.controls.cm8

import data.evidence.lib

metadata := {
	"id": "CM-8",
	"title": "No unauthorized change",
	"description": "Every production deployment matches a change record (a merged pull request); an unmatched deployment or a direct push fails at once.",
	"risk": "Changes reach production outside change management altogether.",
	"severity": "critical",
}

# Unauthorized changes are detected immediately: never pending.
fails contains sprintf("production deployment %s matches no change record", [lib.deployment_label(d)]) if {
	lib.rec.unmatched
	some d in lib.prod_deployments
}

fails contains sprintf("direct push to %s by %s (%s) without a pull request", [p.ref, lib.name(object.get(p, "pusher", null)), lib.short(p.after)]) if {
	lib.rec.direct_push
	some p in lib.rec.pushes
}

fails contains "direct push without a pull request" if {
	lib.rec.direct_push
	count(lib.rec.pushes) == 0
}

passes contains sprintf("matches change record %s (pull request #%d)", [lib.rec.id, lib.pr.number]) if {
	not lib.rec.unmatched
	not lib.rec.direct_push
}

passes contains "no production deployment" if {
	lib.rec.unmatched
	lib.prospective
}

evidence contains e if some e in lib.deployment_events

evidence contains e if {
	lib.rec.direct_push
	some p in lib.rec.pushes
	some e in p.events
}

evidence contains e if some e in lib.pr.events

# missing: neither unmatched, direct push nor pull request: nothing known.
missing contains "no pull request known for the change" if {
	not lib.pr
	not lib.rec.direct_push
	not lib.rec.unmatched
}

result := lib.decide(fails, missing, passes, evidence)
