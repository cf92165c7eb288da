package evidence.controls.cm1_test

import data.evidence.controls.cm1
import data.evidence.testing as fx

test_ticket_approved_before_the_deployment_passes if {
	r := cm1.result with input as fx.input_for(fx.compliant)
	r.status == "pass"
	contains(r.reasons[0], "ticket PAY-123 approved by 712020:carol")
}

test_no_ticket_fails_after_the_deadline if {
	r := cm1.result with input as fx.input_for(fx.with_change({"tickets": []}))
	r.status == "fail"
	"no change ticket linked to the change" in r.reasons
}

test_no_ticket_is_pending_within_the_deadline if {
	r := cm1.result with input as fx.input_at(fx.with_change({"tickets": []}), "2025-03-04T09:10:00Z")
	r.status == "pending"
	r.deadline == "2025-03-04T10:00:00Z"
}

test_ticket_approved_after_the_deployment_fails if {
	t := fx.compliant.tickets[0]
	late := object.union(t, {"approvals": [object.union(t.approvals[0], {"at": "2025-03-04T10:00:00Z"})]})
	r := cm1.result with input as fx.input_for(fx.with_change({"tickets": [late]}))
	r.status == "fail"
	some reason in r.reasons
	contains(reason, "after the deployment")
}

test_a_bot_ticket_approval_does_not_count if {
	t := fx.compliant.tickets[0]
	bot := object.union(t, {"approvals": [object.union(t.approvals[0], {"by": {"login": "automation-for-jira", "type": "bot"}})]})
	r := cm1.result with input as fx.input_for(fx.with_change({"tickets": [bot]}))
	r.status == "fail"
	"ticket PAY-123 approval by automation-for-jira does not count: automation-for-jira is a bot account, not a ticket approver" in r.reasons
}

test_a_person_approval_beside_a_bot_one_passes if {
	t := fx.compliant.tickets[0]
	both := object.union(t, {"approvals": array.concat([object.union(t.approvals[0], {"by": {"login": "system", "type": "service"}})], t.approvals)})
	r := cm1.result with input as fx.input_for(fx.with_change({"tickets": [both]}))
	r.status == "pass"
	not contains(concat("\n", r.reasons), "system")
}
