// Package gitlab translates GitLab webhook deliveries (project or group
// webhooks, POSTed to /webhooks/gitlab) into catalog events.
//
// # Verification
//
// GitLab sends the webhook's secret token in plain text in X-Gitlab-Token
// (it is not an HMAC). [Provider.Verify] compares it with the configured
// secret (EVIDENCE_GITLAB_TOKEN) in constant time; a missing or different
// token is refused with an error wrapping [webhook.ErrBadSignature]. The
// token never reaches the archive: the headers kept with the raw payload
// are an allow-list that does not include it.
//
// # What becomes evidence
//
// The kind of a delivery is the payload's object_kind (X-Gitlab-Event when
// object_kind is absent). Every delivery that carries evidence also yields
// one dev.evidencepipeline.webhook.received.v1 event with the original
// payload.
//
//	Merge Request Hook  open, reopen         change.opened (author = user)
//	                    update with oldrev   change.updated (previous_head_commit = oldrev)
//	                    update of title, target branch or draft
//	                                         change.updated (no previous_head_commit)
//	                    approved, approval   review.submitted, decision approved
//	                    unapproved, unapproval
//	                                         review.submitted, decision dismissed
//	                    merge                change.merged (merged_by = user)
//	                    close                change.closed (closed_by = user)
//	                    other actions        ignored
//	Pipeline Hook       pending, running     pipelinerun.started
//	                    success              pipelinerun.finished, outcome success
//	                    failed               pipelinerun.finished, outcome failure
//	                    canceled, canceling  pipelinerun.finished, outcome cancelled
//	                    other statuses       ignored (not started yet, skipped, manual)
//	Deployment Hook     running              deployment.started
//	                    success, failed, canceled
//	                                         deployment.finished
//	                    created, blocked     ignored
//	Job Hook            job with an environment (action start):
//	                    running              deployment.started
//	                    success, failed, canceled
//	                                         deployment.finished
//	                    job without environment, or not started/finished: ignored
//	Push Hook           the raw payload only (webhook.received)
//	                    branch deletion      ignored
//	Member Hook, System Hook
//	                    member added to, changed on or removed from a group
//	                    or (system hooks) a project
//	                                         access.grant.changed (member.go)
//	Tag Push Hook, Note Hook, Issue Hook, Wiki Page Hook, Release Hook,
//	other system and group hook events, ...  ignored
//
// Decisions:
//
//   - approval and approved are both one person's approval: GitLab sends
//     approval for each approval before the required number is reached
//     and approved for the one that reaches it; likewise unapproval and
//     unapproved for a withdrawn approval. Approvals that GitLab resets
//     itself on a push send no webhook: change.updated with
//     previous_head_commit makes them stale for CM-2.
//   - A merge request event carries the author's numeric id only
//     (author_id). The author identity is the acting user when user.id
//     equals author_id. An open or reopen by someone else, whose author
//     login is not in the payload, is reported as change.updated (actor =
//     user), since change.opened requires the author.
//   - merge_commit is object_attributes.merge_commit_sha (method merge),
//     else squash_commit_sha (method squash), else the head commit: a
//     fast-forward merge puts the head itself on the target branch (method
//     rebase).
//   - Note Hook (comments) is ignored: a comment is not an approval, and
//     GitLab has no "request changes" review state in its webhooks.
//   - An identity is of type "bot" when the user object says "bot": true
//     (the REST API's flag, where GitLab embeds an API user) or the
//     username is one GitLab gives machine users: project_<id>_bot… and
//     group_<id>_bot… (access tokens), …-bot, ghost. Merge request hooks
//     carry no such flag for service accounts with a chosen username:
//     list those in --pipeline-identities. The controls never count a
//     bot as a peer reviewer or ticket approver.
//   - Push Hook is kept as raw evidence only. A direct push to the default
//     branch, which bypasses merge requests, is detected by the correlator
//     from that raw event (ref, before, after, user_username and
//     project.default_branch are all in the payload). Tag pushes and
//     branch deletions carry no change evidence and are ignored.
//   - Job Hook duplicates the Pipeline Hook for builds and tests, so only
//     jobs that deploy (with an environment whose action is start) are
//     evidence: they report the deployment with run_id = pipeline id,
//     which ties it to the pipeline run. The Deployment Hook reports the
//     same deployment again, with GitLab's deployment id: enable one of
//     the two (docs/webhooks.md recommends Deployment events).
//   - A deployment's service is the project's path (the last segment of
//     the repository); its commit is the full SHA when the payload has it
//     (sha, or the end of commit_url), else short_sha.
//   - A deployment a CI job made (a deploy job, or a Deployment Hook with
//     a deployable) is the pipeline's: the deployer is gitlab-ci:JOB (or
//     gitlab-ci when the hook does not name the job), type service, and
//     the hook's user, who started the pipeline or played the manual job,
//     is triggered_by. A deployment created through the API for an outside
//     tool (no deployable) is its user's.
//
// # Identifiers
//
// source is the project's web URL (https://gitlab.example.com/group/project).
// id is "<delivery>/<event>", where delivery is Idempotency-Key (GitLab
// 17.4+, stable across retries), else X-Gitlab-Event-UUID, else the
// SHA-256 of the body, so a redelivery of the same delivery yields the
// same ids and is stored once. time is the fact's own timestamp from the
// payload (created_at, updated_at, finished_at, status_changed_at, ...).
package gitlab
