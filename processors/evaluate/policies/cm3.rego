package evidence.controls.cm3

import data.evidence.lib

metadata := {
	"id": "CM-3",
	"title": "Segregation of duties",
	"description": "The author, the approving reviewers, the ticket approvers and the deployer are distinct people; a deployment by a pipeline identity counts as automated, and who triggered its run is recorded beside it (the author starting it on demand: see manual_trigger_by_author).",
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

# A pipeline's deployment is automated: the pipeline is not a person, and
# the person who triggered its run is not the deployer (see below).
people contains ["deployer", "deployer", d.deployer, d.events] if {
	some d in lib.prod_deployments
	is_object(d.deployer)
	not lib.pipeline_deployment(d)
}

fails contains sprintf("%s %s is also %s", [x[1], lib.name(x[2]), y[1]]) if {
	some x in people
	some y in people
	x[0] < y[0]
	lib.same_person(x[2], y[2])
}

automated contains d if {
	some d in lib.prod_deployments
	lib.pipeline_deployment(d)
}

# The author starting the deploying run on demand (workflow_dispatch, a
# GitLab web pipeline or manual job, a re-run, an API call, a tag or
# release, a push to a pull request, or a trigger the CI system does not
# report: lib.on_demand). The change was reviewed and approved by
# others (CM-2 and the people above) and the pipeline deploys what was
# merged (CM-6, CM-7): the author chooses when, not what. So by default
# (manual_trigger_by_author: allow) it passes and is named in the
# reasons, for the auditor to see; with manual_trigger_by_author: fail it
# is a violation. A run started by the merge's push, a schedule or an
# upstream pipeline is not on demand: it follows from the merge.
author_started contains d if {
	some d in automated
	lib.on_demand(d)
	triggered_by_author(d)
}

strict_trigger if lower(object.get(input.params, "manual_trigger_by_author", "allow")) == "fail"

fails contains sprintf("deployment %s started on demand (%s) by the change's author %s, through pipeline %s%s (manual_trigger_by_author: fail)", [lib.deployment_label(d), lib.trigger_or_unknown(d), lib.name(lib.triggered_by(d)), lib.name(d.deployer), lib.run_label(d)]) if {
	strict_trigger
	some d in author_started
}

passes contains sprintf("deployment %s started on demand (%s) by the change's author %s: allowed, pipeline %s%s deployed the change others approved (manual_trigger_by_author: allow)", [lib.deployment_label(d), lib.trigger_or_unknown(d), lib.name(lib.triggered_by(d)), lib.name(d.deployer), lib.run_label(d)]) if {
	not strict_trigger
	some d in author_started
}

triggered_by_author(d) if lib.is_author(lib.triggered_by(d))

authors_note(d) := ", the change's author" if triggered_by_author(d)

authors_note(d) := "" if not triggered_by_author(d)

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

passes contains sprintf("deployment %s automated by pipeline identity %s%s, %s%s", [lib.deployment_label(d), lib.name(d.deployer), lib.run_label(d), lib.trigger_label(d), authors_note(d)]) if some d in automated

evidence contains e if {
	some p in people
	some e in p[3]
}

evidence contains e if {
	some d in automated
	some e in d.events
}

result := lib.decide(fails, missing, passes, evidence)
