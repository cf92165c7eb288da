package evidence.controls.cm2

import data.evidence.lib

metadata := {
	"id": "CM-2",
	"title": "Peer review",
	"description": "At least one approval by someone other than the author, on the final head commit; approvals made stale by a later push, or dismissed, do not count.",
	"risk": "Unreviewed code reaches production: errors and malicious changes go undetected.",
	"severity": "high",
}

pr := lib.pr

approvals := [r | some r in pr.reviews; r.decision == "approved"]

valid contains r if {
	some r in approvals
	not r.stale
	not r.dismissed
	r.head_commit == pr.head_commit
	not lib.is_author(r.reviewer)
}

ok if count(valid) > 0

passes contains sprintf("approved by %s at %s on the final head %s", [lib.name(r.reviewer), object.get(r, "at", "?"), lib.short(r.head_commit)]) if some r in valid

fails contains "direct push to the default branch: no pull request, no review" if lib.rec.direct_push

fails contains "deployment matches no change record: no review" if lib.rec.unmatched

missing contains sprintf("pull request #%d has no approving review", [pr.number]) if {
	count(approvals) == 0
}

missing contains sprintf("approval by %s is the author's own", [lib.name(r.reviewer)]) if {
	not ok
	some r in approvals
	lib.is_author(r.reviewer)
}

missing contains sprintf("approval by %s on %s is stale: the final head is %s", [lib.name(r.reviewer), lib.short(r.head_commit), lib.short(pr.head_commit)]) if {
	not ok
	some r in approvals
	not lib.is_author(r.reviewer)
	stale(r)
}

missing contains sprintf("approval by %s was dismissed", [lib.name(r.reviewer)]) if {
	not ok
	some r in approvals
	r.dismissed
}

missing contains "no pull request known for the change" if {
	not pr
	not lib.rec.direct_push
	not lib.rec.unmatched
}

stale(r) if r.stale

stale(r) if r.head_commit != pr.head_commit

evidence contains e if {
	some r in valid
	some e in r.events
}

result := lib.decide(fails, missing, passes, evidence)
