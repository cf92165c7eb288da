# Shared helpers of the built-in controls. Input:
#   input.record    the change record (docs/changes.md)
#   input.now_ns    evaluation time, ns since the epoch (input.now: RFC 3339)
#   input.params    production_environments, emergency_window_ns,
#                   scan_severity_threshold, pipeline_identities,
#                   pipeline_systems, manual_trigger_by_author,
#                   protected_branches, pending_deadline_ns,
#                   required_scan_categories (all names lower case)
#   input.artifact  optional: the artifact judged (digest, or purl), the
#                   one the gate is asked about or the one the deployment
#                   whose verdict is decided deployed (asked_artifact)
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

pipeline_systems := {lower(s) | some s in input.params.pipeline_systems}

# pipeline_deployment: the deployment was made by a pipeline, not by a
# person. Its deployer is one of the pipeline_identities, or a service
# identity of a run of one of the pipeline_systems: what evidence emit
# deploy writes in CI (the pipeline's own identity, SYSTEM:PIPELINE) and
# the GitHub and GitLab webhooks write for a deployment a CI job made.
# Who triggered the run is d.triggered_by, beside it, never the deployer.
pipeline_deployment(d) if is_pipeline(d.deployer)

pipeline_deployment(d) if {
	is_object(d.deployer)
	object.get(d.deployer, "type", "") == "service"
	lower(object.get(d, "system", "")) in pipeline_systems
}

# trigger_kind: how the deploying run was started (push, manual, ...);
# "" when not reported.
trigger_kind(d) := lower(object.get(d, "trigger", ""))

# triggered_by: who started the deploying run; undefined when not
# reported.
triggered_by(d) := t if {
	t := object.get(d, "triggered_by", null)
	is_object(t)
}

# on_demand: a person (or their token) chose to start the deploying run:
# by hand (workflow_dispatch, a GitLab web pipeline or manual job, a
# re-run), by an API call, by pushing a tag or publishing a release, by
# pushing to a pull request, by another trigger the catalog does not name
# (a chat command), or by a trigger the CI system does not report
# (Jenkins, CircleCI, Tekton), which cannot be shown to be an event's.
# Only a push (the merge reaching the branch), a schedule and an upstream
# pipeline start a run that follows from the merge, which CM-2 and CM-3
# judge.
on_demand(d) if not trigger_kind(d) in {"push", "schedule", "pipeline"}

# run_label: the run that deployed, for reasons.
run_label(d) := sprintf(" (run %s)", [d.run_id]) if object.get(d, "run_id", "") != ""

run_label(d) := "" if object.get(d, "run_id", "") == ""

# trigger_label: who triggered the deploying run and how, for reasons.
trigger_label(d) := sprintf("triggered by %s (%s)", [name(triggered_by(d)), trigger_or_unknown(d)]) if triggered_by(d)

trigger_label(d) := sprintf("trigger %s, no person reported", [trigger_kind(d)]) if {
	not triggered_by(d)
	trigger_kind(d) != ""
}

trigger_label(d) := "trigger not reported" if {
	not triggered_by(d)
	trigger_kind(d) == ""
}

trigger_or_unknown(d) := trigger_kind(d) if trigger_kind(d) != ""

trigger_or_unknown(d) := "trigger not reported" if trigger_kind(d) == ""

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

# asked_artifact: the artifact judged (input.artifact), "" when the change
# is judged as a whole. With one, what is deployed is that artifact: its
# provenance (CM-6) and the commit it was built from (CM-4, CM-5) are
# judged, not the change's other artifacts and deployments.
asked_artifact := a if {
	a := object.get(input, "artifact", "")
	is_string(a)
} else := ""

asked if asked_artifact != ""

# is_asked(x): the artifact or deployment x is (or deployed) the asked one.
is_asked(x) if {
	asked
	object.get(x, "digest", "") == asked_artifact
}

is_asked(x) if {
	asked
	object.get(x, "purl", "") == asked_artifact
}

# asked_builds: the record's builds of the asked artifact.
asked_builds := [a | some a in rec.artifacts; is_asked(a)]

# built_here(d): the record holds a build of what deployment d deployed.
built_here(d) if {
	some a in rec.artifacts
	artifact_of(d, a)
}

# deployed_digests / deployed_commits: what production runs: the artifacts
# deployed and the commits they were built from (a deployment's own commit
# when no build of its artifact is known; prospectively, the change's own
# commit); with an asked artifact, that artifact and its commit.
deployed_digests contains d.digest if {
	not asked
	some d in prod_deployments
	object.get(d, "digest", "") != ""
}

deployed_digests contains asked_artifact if asked

deployed_commits contains d.commit if {
	not asked
	some d in prod_deployments
	object.get(d, "commit", "") != ""
	not built_here(d)
}

deployed_commits contains a.commit if {
	not asked
	some d in prod_deployments
	some a in rec.artifacts
	artifact_of(d, a)
}

deployed_commits contains rec.commit if {
	not asked
	prospective
	object.get(rec, "commit", "") != ""
}

deployed_commits contains a.commit if some a in asked_builds

# No build of the asked artifact known: the commits its production
# deployments name, else the change's own.
deployed_commits contains d.commit if {
	count(asked_builds) == 0
	some d in prod_deployments
	is_asked(d)
	object.get(d, "commit", "") != ""
}

deployed_commits contains rec.commit if {
	asked
	count(asked_builds) == 0
	count([d | some d in prod_deployments; is_asked(d); object.get(d, "commit", "") != ""]) == 0
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
