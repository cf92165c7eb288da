package evidence.access.controls.ac4

import data.evidence.access.lib

metadata := {
	"id": "AC-4",
	"title": "Access reviewed",
	"description": "For each period, a reviewer signed off the production repository's access list (an access.reviewed event with outcome approved whose period covers it, give or take a day); pending until the review deadline after the period ends, then a failure.",
	"risk": "Access nobody needs any more stays, unnoticed.",
	"severity": "medium",
}

day := 86400000000000

covers(r) if {
	lib.ns(r.period_from) <= lib.from_ns + day
	lib.ns(r.period_to) >= input.period.end_ns - day
}

signoffs := [r | some r in lib.rec.reviews; covers(r); r.outcome == "approved"]

refusals := [r | some r in lib.rec.reviews; covers(r); r.outcome != "approved"]

deadline_ns := input.period.end_ns + input.params.review_deadline_ns

refused := sprintf(" (changes required by %s)", [concat(", ", sort({lib.name(r.reviewer) | some r in refusals}))]) if count(refusals) > 0

refused := "" if count(refusals) == 0

result := {"status": "pass", "reasons": sort({sprintf("access list signed off by %s at %s for %s..%s", [lib.name(r.reviewer), r.signed_at, r.period_from, r.period_to]) | some r in signoffs}), "evidence": sort({r.event | some r in signoffs})} if count(signoffs) > 0

result := {
	"status": "pending",
	"reasons": [sprintf("no sign-off of the access list for %s yet%s; due by %s", [input.period.label, refused, lib.fmt_ns(deadline_ns)])],
	"evidence": sort({r.event | some r in refusals}),
	"deadline": lib.fmt_ns(deadline_ns),
} if {
	count(signoffs) == 0
	input.now_ns < deadline_ns
}

result := {
	"status": "fail",
	"reasons": [sprintf("the access list was never signed off for %s%s (due by %s)", [input.period.label, refused, lib.fmt_ns(deadline_ns)])],
	"evidence": sort({r.event | some r in refusals}),
} if {
	count(signoffs) == 0
	input.now_ns >= deadline_ns
}
