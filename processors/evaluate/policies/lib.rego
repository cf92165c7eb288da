# Shared helpers of the built-in controls. Input:
#   input.record  the change record (docs/changes.md)
#   input.now_ns  evaluation time, ns since the epoch (input.now: RFC 3339)
#   input.params  production_environments, emergency_window_ns,
#                 scan_severity_threshold, pipeline_identities,
#                 protected_branches, pending_deadline_ns,
#                 required_scan_categories (all names lower case)
package evidence.lib

rec := input.record

# ns is an RFC 3339 time in ns; undefined when the time is not known.
ns(t) := time.parse_rfc3339_ns(t) if {
	is_string(t)
	t != ""
}

fmt_ns(x) := time.format(x)

login(id) := lower(object.get(id, "login", "")) if is_object(id)

login(id) := "" if not is_object(id)

name(id) := sprintf("%s", [object.get(id, "login", "?")]) if is_object(id)

name(id) := "unknown" if not is_object(id)

# same_person: the same login, or the same e-mail address (logins differ
# between systems: GitHub "alice", Jira "712020:alice").
same_person(a, b) if {
	is_object(a)
	is_object(b)
	la := lower(object.get(a, "login", ""))
	la != ""
	la == lower(object.get(b, "login", ""))
}

same_person(a, b) if {
	is_object(a)
	is_object(b)
	ea := lower(object.get(a, "email", ""))
	ea != ""
	ea == lower(object.get(b, "email", ""))
}

is_pipeline(id) if login(id) in {lower(p) | some p in input.params.pipeline_identities}

prod_envs := {lower(e) | some e in input.params.production_environments}

prod_deployments := [d |
	some d in rec.deployments
	lower(d.environment) in prod_envs
]

deployed if count(prod_deployments) > 0

# prospective: no production deployment yet; the controls judge the change
# as if it were deployed now (what the gate asks).
prospective if not deployed

# deployment_ns: when a deployment started, else when it finished (a
# deployment known only by its finished event). The record leaves out an
# unknown time: object.get, since "not ns(d.started_at)" is undefined,
# not true, when d has no started_at.
deployment_ns(d) := ns(d.started_at)

deployment_ns(d) := ns(d.finished_at) if not ns(object.get(d, "started_at", ""))

# deploy_ns: the first production deployment (or now, prospectively).
deploy_ns := min({t | some d in prod_deployments; t := deployment_ns(d)}) if deployed

deploy_ns := input.now_ns if not deployed

deploy_ns := input.now_ns if {
	deployed
	count({t | some d in prod_deployments; t := deployment_ns(d)}) == 0
}

deadline_ns := deploy_ns + input.params.pending_deadline_ns

deadline := fmt_ns(deadline_ns)

# in_grace: evidence may still arrive.
in_grace if input.now_ns < deadline_ns

pr := rec.pull_request if is_object(rec.pull_request)

# authors: the pull request's author, or the pusher and commit authors of a
# direct push.
authors contains pr.author if is_object(pr.author)

authors contains p.pusher if {
	not pr
	some p in rec.pushes
	is_object(p.pusher)
}

authors contains c.author if {
	not pr
	some p in rec.pushes
	some c in p.commits
	is_object(c.author)
}

is_author(id) if {
	some a in authors
	same_person(a, id)
}

# machine_kind says why an identity is a machine, not a person: a
# configured pipeline identity (params.pipeline_identities), a service or
# bot account by the catalog's identity type, or a GitHub App's account
# (a login ending in [bot]). Undefined for a person. A machine is never a
# peer reviewer (CM-2) nor a ticket approver (CM-1).
machine_kind(id) := "a pipeline identity (--pipeline-identities)" if {
	is_pipeline(id)
} else := "a service account" if {
	is_object(id)
	lower(object.get(id, "type", "")) == "service"
} else := "a bot account" if {
	is_object(id)
	lower(object.get(id, "type", "")) == "bot"
} else := "a bot account" if {
	endswith(login(id), "[bot]")
}

is_machine(id) if machine_kind(id)

# deployed_digests / deployed_commits: what production runs (prospectively:
# the change's own commit).
deployed_digests contains d.digest if {
	some d in prod_deployments
	object.get(d, "digest", "") != ""
}

deployed_commits contains d.commit if {
	some d in prod_deployments
	object.get(d, "commit", "") != ""
}

deployed_commits contains a.commit if {
	some d in prod_deployments
	object.get(d, "commit", "") == ""
	some a in rec.artifacts
	artifact_of(d, a)
}

deployed_commits contains rec.commit if {
	prospective
	object.get(rec, "commit", "") != ""
}

artifact_of(d, a) if {
	object.get(d, "digest", "") != ""
	a.digest == d.digest
}

artifact_of(d, a) if {
	object.get(d, "digest", "") == ""
	object.get(d, "purl", "") != ""
	object.get(a, "purl", "") == d.purl
}

deployment_label(d) := sprintf("%s/%s %s", [d.environment, d.service, object.get(d, "deployment_id", "")])

deployment_events contains e if {
	some d in prod_deployments
	some e in d.events
}

short(sha) := substring(sha, 0, 12)

# decide builds a result from definite violations (fails), missing
# evidence (missing) and what a pass relied on. Violations fail at once;
# missing evidence is pending until the deadline, then fails.
decide(fails, missing, passes, evidence) := {"status": "fail", "reasons": sort(fails), "evidence": sort(evidence)} if {
	count(fails) > 0
}

decide(fails, missing, passes, evidence) := {"status": "pending", "reasons": array.concat(sort(missing), [sprintf("evidence may still arrive until %s", [deadline])]), "evidence": sort(evidence), "deadline": deadline} if {
	count(fails) == 0
	count(missing) > 0
	in_grace
}

decide(fails, missing, passes, evidence) := {"status": "fail", "reasons": array.concat(sort(missing), [sprintf("deadline %s passed", [deadline])]), "evidence": sort(evidence)} if {
	count(fails) == 0
	count(missing) > 0
	not in_grace
}

decide(fails, missing, passes, evidence) := {"status": "pass", "reasons": sort(passes), "evidence": sort(evidence)} if {
	count(fails) == 0
	count(missing) == 0
	count(passes) > 0
}

# Guard against a vacuous pass: nothing failed, nothing is missing, yet
# nothing was found to pass on.
decide(fails, missing, passes, evidence) := {"status": "fail", "reasons": ["no evidence the control holds"], "evidence": sort(evidence)} if {
	count(fails) == 0
	count(missing) == 0
	count(passes) == 0
}
