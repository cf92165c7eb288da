// Package jira translates Jira webhook deliveries (Jira Cloud admin
// webhooks, Jira Server and Data Center webhooks, POSTed to /webhooks/jira)
// about change tickets into catalog events.
//
// # Verification
//
// [Provider.Verify] accepts either of two headers, checked in constant
// time against the secret in EVIDENCE_JIRA_SECRET:
//
//   - X-Hub-Signature: sha256=<hex>, the HMAC-SHA256 of the body keyed by
//     the secret. Jira Cloud sends it for an admin webhook created with a
//     secret. When the header is present it must match: a wrong signature
//     is not rescued by a token.
//   - X-Evidence-Token: <secret>, the secret itself, for senders that
//     cannot sign (Jira Server and Data Center webhooks sent through a
//     proxy that adds the header, Automation for Jira's "Send web request"
//     action with a custom header). Headers only: a secret in the query
//     string would be written to access logs.
//
// Neither header, or a mismatch, is refused with an error wrapping
// [webhook.ErrBadSignature]. The token is never stored: the headers kept
// with the raw payload are an allow-list.
//
// # What becomes evidence
//
// Only issues of a change ticket type (Options.ChangeIssueTypes, default
// "Change" and "Change Request") are evidence; other issues are ignored.
//
//	jira:issue_created                      ticket.created
//	jira:issue_updated, status changed      ticket.transitioned (status, previous_status,
//	                                        transitioned_by = user)
//	  to an approved status                 + ticket.approved (approver = user,
//	                                        approved_at = the webhook's timestamp)
//	  to a rejected status                  + ticket.rejected (approver = user,
//	                                        rejected_at = the webhook's timestamp)
//	jira:issue_updated, no status change    ignored (edits, comments, assignments)
//	any other webhookEvent                  ignored (comments, worklogs, deletions, ...)
//
// Every event that is not ignored comes with one
// dev.evidencepipeline.webhook.received.v1 event that keeps the payload.
//
// Decisions:
//
//   - Approval is read from the workflow: entering one of
//     Options.ApprovedStatuses (default "Approved") is an approval by the
//     user who made the transition, entering one of
//     Options.RejectedStatuses (default "Rejected", "Declined") a rejection.
//     Jira Service Management approvals that do not move the issue are not
//     in the webhook payload; model the approval step as a status.
//   - The change type comes from the labels emergency-change,
//     standard-change, normal-change, or from Options.TypeField; a ticket
//     that says nothing is normal (approved before it is deployed), the
//     strictest type.
//   - Identities: login is the accountId on Jira Cloud, the user name on
//     Jira Server and Data Center (id is then the user key); name is the
//     display name; email only when Jira discloses it. requested_by is the
//     reporter (else the creator).
//   - links come from Options.LinksField when set: repository, merge
//     request, pull request and commit addresses, and full commit SHAs,
//     found in its text. A value of another shape is skipped, not an
//     error: links are optional, the ticket's approval is not.
//
// # Identifiers
//
// source is the Jira site (Options.BaseURL, else the self link up to
// /rest/), e.g. https://acme.atlassian.net. id is "<delivery>/<event>",
// where delivery is X-Atlassian-Webhook-Identifier (Jira Cloud, the same for
// every retry), else the SHA-256 of the body. subject is the issue key. time
// is the webhook's timestamp (the created time for ticket.created).
package jira
