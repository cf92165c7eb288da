package evidence.controls.cm3

import data.evidence.lib

metadata := {
	"id": "CM-3",
	"title": "Segregation of duties",
	"description": "The author, the approving reviewers, the ticket approvers and the deployer are distinct people; a deployment by a pipeline identity counts as automated.",
	"risk": "One person can write, approve and ship a change alone.",
	"severity": "high",
}

# people: [kind, role, identity, events]
people contains ["author", "author", a, []] if some a in lib.authors

people contains ["reviewer", "reviewer", r.reviewer, r.events] if {
	some r in lib.pr.reviews
	r.decision == "approved"
	not r.dismissed
}

people contains ["ticket_approver", sprintf("ticket %s approver", [t.key]), a.by, a.events] if {
	some t in lib.rec.tickets
	some a in t.approvals
}

people contains ["deployer", "deployer", d.deployer, d.events] if {
	some d in lib.prod_deployments
	is_object(d.deployer)
	not lib.is_pipeline(d.deployer)
}

fails contains sprintf("%s %s is also %s", [x[1], lib.name(x[2]), y[1]]) if {
	some x in people
	some y in people
	x[0] < y[0]
	lib.same_person(x[2], y[2])
}

automated contains d if {
	some d in lib.prod_deployments
	lib.is_pipeline(d.deployer)
}

# Guard against a vacuous pass: someone other than the author must have
# approved (a review or a ticket approval).
approvers contains p if {
	some p in people
	p[0] in {"reviewer", "ticket_approver"}
	not lib.is_author(p[2])
}

missing contains "no approval by anyone other than the author (review or ticket)" if count(approvers) == 0

missing contains sprintf("deployment %s has no known deployer", [lib.deployment_label(d)]) if {
	some d in lib.prod_deployments
	not is_object(d.deployer)
}

passes contains sprintf("%s: %s", [p[1], lib.name(p[2])]) if some p in people

passes contains sprintf("deployment %s automated by pipeline identity %s", [lib.deployment_label(d), lib.name(d.deployer)]) if some d in automated

evidence contains e if {
	some p in people
	some e in p[3]
}

evidence contains e if {
	some d in automated
	some e in d.events
}

result := lib.decide(fails, missing, passes, evidence)
