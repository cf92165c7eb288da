package evidence.controls.cm2

import data.evidence.lib

metadata := {
	"id": "CM-2",
	"title": "Peer review",
	"description": "At least one approval by someone other than the author, on the final head commit, that is still the reviewer's standing review (not replaced by the same reviewer's later request for changes, not dismissed); approvals made stale by a later push, and approvals by bots, service accounts or pipeline identities, do not count.",
	"risk": "Unreviewed code reaches production: errors and malicious changes go undetected.",
	"severity": "high",
}

pr := lib.pr

approvals := [r | some r in pr.reviews; r.decision == "approved"]

# standing: the review is the reviewer's standing one, as the platforms
# keep it. The record marks a review superseded when the same reviewer's
# later approval or request for changes replaced it (comments replace
# nothing), and dismissed when a dismissal (GitHub) or an unapproval
# (GitLab) withdrew it.
standing(r) if {
	not r.dismissed
	not object.get(r, "superseded", false)
}

on_final_head(r) if {
	not r.stale
	r.head_commit == pr.head_commit
}

# valid: the approvals that count.
valid contains r if {
	some r in approvals
	standing(r)
	on_final_head(r)
	not lib.is_author(r.reviewer)
	not lib.is_machine(r.reviewer)
}

ok if count(valid) > 0

passes contains sprintf("approved by %s at %s on the final head %s", [lib.name(r.reviewer), object.get(r, "at", "?"), lib.short(r.head_commit)]) if some r in valid

# A request for changes that still stands does not undo another
# reviewer's approval (CM-2 asks for one approval), but the verdict shows
# it: the change was merged over a reviewer's objection.
passes contains sprintf("note: changes requested by %s at %s on %s still stand (not dismissed, no later approval by %s)", [n, object.get(r, "at", "?"), lib.short(r.head_commit), n]) if {
	ok
	some r in pr.reviews
	r.decision == "changes_requested"
	standing(r)
	not lib.is_machine(r.reviewer)
	n := lib.name(r.reviewer)
}

fails contains "direct push to the default branch: no pull request, no review" if lib.rec.direct_push

fails contains "deployment matches no change record: no review" if lib.rec.unmatched

missing contains sprintf("pull request #%d has no approving review", [pr.number]) if {
	count(approvals) == 0
}

missing contains why_not(r) if {
	not ok
	some r in approvals
}

missing contains "no pull request known for the change" if {
	not pr
	not lib.rec.direct_push
	not lib.rec.unmatched
}

# why_not says why an approval does not count: the first of the reasons
# that applies.
why_not(r) := sprintf("approval by %s is the author's own", [lib.name(r.reviewer)]) if {
	lib.is_author(r.reviewer)
} else := sprintf("approval by %s does not count: %s is %s, not a peer reviewer", [n, n, kind]) if {
	kind := lib.machine_kind(r.reviewer)
	n := lib.name(r.reviewer)
} else := sprintf("approval by %s was dismissed", [lib.name(r.reviewer)]) if {
	r.dismissed
} else := sprintf("approval by %s at %s was withdrawn: %s requested changes at %s", [n, r.at, n, lib.fmt_ns(t)]) if {
	object.get(r, "superseded", false)
	t := request_after(r)
	n := lib.name(r.reviewer)
} else := sprintf("approval by %s at %s was replaced by a later review of %s's", [n, object.get(r, "at", "?"), n]) if {
	object.get(r, "superseded", false)
	n := lib.name(r.reviewer)
} else := sprintf("approval by %s on %s is stale: the final head is %s", [lib.name(r.reviewer), lib.short(r.head_commit), lib.short(pr.head_commit)]) if {
	not on_final_head(r)
} else := sprintf("approval by %s does not count", [lib.name(r.reviewer)])

# request_after is the time (ns) of the same reviewer's first request for
# changes at or after approval r; undefined when there is none.
request_after(r) := min(ts) if {
	ts := {t |
		some s in pr.reviews
		s.decision == "changes_requested"
		same_reviewer(s.reviewer, r.reviewer)
		t := lib.ns(s.at)
		t >= lib.ns(r.at)
	}
	count(ts) > 0
}

# same_reviewer: the same account of the reviewing system, as the record
# matches reviewers (the same id, or the same login ignoring case).
same_reviewer(a, b) if {
	object.get(a, "id", "") != ""
	a.id == object.get(b, "id", "")
}

same_reviewer(a, b) if {
	lib.login(a) != ""
	lib.login(a) == lib.login(b)
}

evidence contains e if {
	some r in valid
	some e in r.events
}

result := lib.decide(fails, missing, passes, evidence)
