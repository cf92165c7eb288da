# Shared helpers of the access controls (AC-1..AC-4, issue 17). Input:
#   input.record  the access record of one repository (processors/access
#                 Record: grants, protections, bypasses, reviews, tickets,
#                 exceptions; times RFC 3339)
#   input.period  {label, from_ns, to_ns, end_ns}: the period judged,
#                 [from_ns, to_ns) with to_ns = min(end of the period, now);
#                 end_ns: the end of the whole period
#   input.now_ns  evaluation time, ns since the epoch
#   input.params  required_reviews, protected_branches (lower case),
#                 review_deadline_ns
package evidence.access.lib

rec := input.record

from_ns := input.period.from_ns

to_ns := input.period.to_ns

# never: the end of a period still open.
never := 9223372036854775807

ns(t) := time.parse_rfc3339_ns(t)

fmt_ns(x) := time.format(x)

login(id) := lower(object.get(id, "login", "")) if is_object(id)

login(id) := "" if not is_object(id)

name(id) := object.get(id, "login", "?") if is_object(id)

name(id) := "unknown" if not is_object(id)

protected := {lower(b) | some b in input.params.protected_branches}

# protects: a rule target that covers a protected branch.
protects(target) if lower(target) in protected

protects("~DEFAULT_BRANCH")

protects("~ALL")

# on(target, branch): the rule target covers the branch pushed to.
on(target, branch) if lower(target) == lower(branch)

on(target, branch) if {
	target in {"~DEFAULT_BRANCH", "~ALL"}
	lower(branch) in protected
}

period_end(p) := ns(p.to) if is_string(object.get(p, "to", null))

period_end(p) := never if not is_string(object.get(p, "to", null))

# window is the part [a, b) of a record period [from, to) inside the judged period.
window(from, to) := [max([from, from_ns]), min([to, to_ns])]

overlaps(w) if w[0] < w[1]

end_label(p, w) := sprintf("until %s", [fmt_ns(w[1])]) if period_end(p) <= to_ns

end_label(p, w) := sprintf("through the end of the period judged (%s)", [fmt_ns(w[1])]) if period_end(p) > to_ns

# weaknesses: what settings lack against the parameters; empty: strong.
weaknesses(s) := ({sprintf("%d approving reviews required, %d needed", [s.required_approving_review_count, input.params.required_reviews]) |
	s.required_approving_review_count < input.params.required_reviews
} | {"stale approvals not dismissed" | not s.dismiss_stale_reviews}) | {"administrators exempt" | not s.enforce_admins}

# approved_ticket: the ticket was approved at or before at_ns by someone
# other than who made the change, and not rejected in between.
approved_ticket(key, at_ns, by) := t if {
	some t in rec.tickets
	upper(t.key) == upper(key)
	t.phase == "approved"
	ns(t.at) <= at_ns
	login(t.by) != login(by)
	not rejected_between(key, ns(t.at), at_ns)
}

rejected_between(key, a, b) if {
	some t in rec.tickets
	upper(t.key) == upper(key)
	t.phase == "rejected"
	ns(t.at) >= a
	ns(t.at) <= b
}

decide(fails, passes, evidence) := {"status": "fail", "reasons": sort(fails), "evidence": sort(evidence)} if count(fails) > 0

decide(fails, passes, evidence) := {"status": "pass", "reasons": sort(passes), "evidence": sort(evidence)} if {
	count(fails) == 0
	count(passes) > 0
}

decide(fails, passes, evidence) := {"status": "fail", "reasons": ["no evidence the control holds"], "evidence": sort(evidence)} if {
	count(fails) == 0
	count(passes) == 0
}
