# An example custom control: a production change needs approving reviews
# by at least two people other than its author, on the pull request's
# final head. Load it with evidenced --policies-dir examples/policies;
# test it with evidence policy test examples/policies (docs/policies.md).
package evidence.controls.two_reviewers

import data.evidence.lib

metadata := {
	"id": "EX-1",
	"title": "Two reviewers",
	"description": "At least two people other than the author approved the pull request's final head.",
	"risk": "A single reviewer misses defects and can collude with the author.",
	"severity": "medium",
}

# required is the number of approvals needed.
required := 2

# approvers: people whose standing review (not superseded by their own
# later request for changes, not dismissed) approves the final head;
# not the author, not a bot, a service account or a pipeline identity
# (docs/evaluation.md, "Which reviews count").
approvers contains lower(r.reviewer.login) if {
	some r in lib.pr.reviews
	r.decision == "approved"
	r.head_commit == lib.pr.head_commit
	not object.get(r, "stale", false)
	not object.get(r, "dismissed", false)
	not object.get(r, "superseded", false)
	not lib.is_author(r.reviewer)
	not lib.is_machine(r.reviewer)
}

evidence contains e if {
	some r in lib.pr.reviews
	lower(r.reviewer.login) in approvers
	some e in r.events
}

passes contains sprintf("approved by %s on the final head %s", [concat(", ", sort(approvers)), lib.short(lib.pr.head_commit)]) if {
	count(approvers) >= required
}

# Too few approvals: evidence may still arrive until the deadline (a
# pending result), then the control fails (lib.decide).
missing contains sprintf("%d approving reviews on the final head, %d required", [count(approvers), required]) if {
	lib.pr
	count(approvers) < required
}

fails contains "no pull request: nobody reviewed the change" if not lib.pr

result := lib.decide(fails, missing, passes, evidence)
