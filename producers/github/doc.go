// Package github is the GitHub webhook adapter: it verifies a delivery's
// X-Hub-Signature-256 and translates the payload into catalog events
// (docs/events.md), for the handler of package webhook at
// /webhooks/github.
//
// Every delivery that carries evidence gives the catalog events below plus
// one dev.evidencepipeline.webhook.received.v1 event that keeps the payload
// as received (with its SHA-256, the safe subset of the delivery headers,
// X-Hub-Signature-256 and X-Hub-Signature included, and the receive time):
// with the secret, the stored delivery can be verified again. Deliveries that carry no evidence are answered with a
// *webhook.Ignored error: acknowledged, counted, not stored.
//
// # Mapping
//
//	X-GitHub-Event / action              catalog event
//	pull_request opened, reopened,       change.opened
//	  ready_for_review
//	pull_request synchronize             change.updated (previous_head_commit = before)
//	pull_request converted_to_draft      change.updated (draft true)
//	pull_request edited                  change.updated when the title or the base branch
//	                                     changed; ignored otherwise (body edits)
//	pull_request closed, merged          change.merged (merge_commit = merge_commit_sha)
//	pull_request closed, not merged      change.closed
//	pull_request other actions           ignored (labels, assignees, review requests,
//	                                     locks carry no evidence)
//	pull_request_review submitted        review.submitted, decision = review.state
//	pull_request_review dismissed        review.submitted, decision dismissed,
//	                                     dismissed_by = sender
//	pull_request_review edited           ignored (the decision does not change)
//	push to a branch                     webhook.received only: the correlator reads the
//	                                     raw push to detect direct pushes to the default
//	                                     branch (changes without a pull request) and
//	                                     ticket keys in commit messages
//	push of a tag, branch deletion       ignored
//	workflow_run requested, in_progress  pipelinerun.started
//	workflow_run completed               pipelinerun.finished
//	workflow_job (all)                   ignored: workflow_run reports the run; run_id in
//	                                     every other event is the run, not the job
//	check_suite completed                pipelinerun.finished for suites of apps other
//	                                     than GitHub Actions (run_id check_suite/<id>,
//	                                     system = the app's slug); Actions' own suites
//	                                     duplicate workflow_run and are ignored
//	check_suite requested, rerequested   ignored (nothing ran yet)
//	check_run (all)                      ignored: one check of a suite; check_suite
//	                                     and workflow_run report the run
//	status pending                       pipelinerun.started (run_id status:<context>@<sha>)
//	status success, failure, error       pipelinerun.finished
//	deployment created                   deployment.started
//	deployment_status in_progress        deployment.started (same deployment_id)
//	deployment_status success            deployment.finished, outcome success
//	deployment_status failure, error     deployment.finished, outcome failure
//	deployment_status queued, pending,   ignored (not started yet)
//	  waiting
//	deployment_status inactive           ignored: GitHub marks an earlier deployment
//	                                     inactive when a later one succeeds; it had
//	                                     already finished
//	deployment_review approved, rejected webhook.received only (environment approvals
//	                                     are kept; the catalog has no type for them)
//	deployment_review requested          ignored
//	release published                    webhook.received only (who published which tag);
//	                                     other release actions ignored
//	branch_protection_rule created,      access.protection.changed (target rule.name,
//	  edited, deleted                    rule_id rule.id; edited: changed_fields from
//	                                     changes; deleted: no settings)
//	member added, edited, removed        access.grant.changed granted, changed, removed
//	                                     (new permission from changes.permission.to,
//	                                     write when absent; previous from
//	                                     changes.old_permission)
//	deploy_key created, deleted          access.grant.changed (kind deploy_key,
//	                                     read_only: read, else write)
//	repository created, deleted,         access.repository.changed
//	  archived, unarchived, publicized,
//	  privatized, renamed, transferred
//	repository edited and others         ignored
//	push with forced true                access.bypass kind force_push, besides the
//	                                     webhook.received
//	team added_to_repository, edited,    access.grant.changed (kind team; permission the
//	  removed_from_repository            highest of repository.permissions); a team
//	                                     event without a repository is ignored
//	membership added, removed            access.grant.changed, scope organization, with
//	                                     the team (subject org:<host>/<org>)
//	organization member_added,           access.grant.changed, scope organization (role
//	  member_removed                     admin: admin, else member); member_invited and
//	                                     renamed ignored (an invitation grants nothing)
//	repository_ruleset created, edited,  access.protection.changed per ref include
//	  deleted (target branch)            pattern (rule_kind repository_ruleset); rulesets
//	                                     of tags or pushes, or without a repository,
//	                                     ignored
//	ping and any other event             ignored
//
// # Attributes
//
// source is the repository's web address (https://github.com/acme/payments,
// or the GitHub Enterprise host from repository.html_url), in lower case.
// The webhook.received event's id is the delivery id (X-GitHub-Delivery);
// a derived event's id is the delivery id and a readable suffix
// (<delivery>/change.merged), so a redelivery gives the same ids and
// JetStream stores it once. subject is the pull request
// (github.com/acme/payments/pull/42), the commit
// (github.com/acme/payments/commit/<sha>) or the service deployed. time is
// the fact's own time from the payload (opened, merged, submitted, run
// updated, deployment status created), or the receive time when it has
// none; the webhook.received event's time is the receive time.
//
// # Decisions
//
// Ticket keys of a change come from its title and its head branch; the
// body is not read (templates, links and quoted text make it noisy); the
// correlator may still look further with its own pattern.
//
// A review's head_commit is review.commit_id; old payloads without it fall
// back to the pull request's head at delivery time. A dismissal carries no
// time of its own: submitted_at is then the receive time.
//
// Identities carry a type: github-actions[bot] is "service" (the
// pipeline's own identity); an account of type Bot, or any login ending
// in [bot] (every GitHub App's account, whatever type the payload gives),
// is "bot"; type User is "user". The controls never count a bot or
// service account as a peer reviewer or ticket approver.
//
// A deployment's service is deployment.payload.service when the deployer
// set it (the payload may also give digest and artifact), else the
// repository's name. Its deployer is the deployment's creator, unless
// GitHub Actions made it: a deployment of a workflow run (a job with an
// environment, whose creator GitHub sets to the person who triggered the
// run) is deployed by the workflow, github-actions:WORKFLOW (type
// service), with the run as run_id, its triggering actor as triggered_by
// and its event as trigger (manual for workflow_dispatch and for a re-run
// attempt); one the GitHub Actions app created without a run in the
// payload is github-actions[bot]'s, its creator (when a person) the
// trigger.
//
// GitHub Enterprise Server 3.1 to 3.5 send deployment and
// deployment_status without an action field; those events had the one
// action created then, so a payload without an action is read as created
// (for these two events only; an action other than created is ignored as
// on github.com).
//
// payload_sha256 is over the body as received, which is what GitHub signs:
// for a form-encoded delivery (Content-Type
// application/x-www-form-urlencoded) that is the form, which body_base64
// keeps, and payload holds the JSON of its payload field.
package github
