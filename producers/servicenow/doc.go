// Package servicenow translates the change request notifications that a
// ServiceNow business rule (or a flow) posts to /webhooks/servicenow into
// catalog events.
//
// ServiceNow has no built-in webhook payload for change requests: the body
// is this project's own, [Body], documented with a sample business rule in
// docs/webhooks.md:
//
//	{
//	  "table": "change_request", "operation": "update",
//	  "sys_id": "3f1c0d2e1b2a4c5d6e7f8091a2b3c4d5", "number": "CHG0031234",
//	  "type": "normal", "state": "-2", "previous_state": "-3",
//	  "approval": "approved", "previous_approval": "requested",
//	  "approvers": [{"user_name": "carol.jones", "name": "Carol Jones", "email": "carol@acme.example",
//	                 "state": "approved", "sys_updated_on": "2025-03-03 17:00:00", "group": "Payments CAB"}],
//	  "requested_by": {"user_name": "alice", "name": "Alice Martin", "email": "alice@acme.example"},
//	  "start_date": "2025-03-04 07:00:00", "end_date": "2025-03-04 08:00:00",
//	  "short_description": "Payments: retry card captures (PAY-123)",
//	  "sys_created_on": "2025-03-03 10:00:00", "sys_updated_on": "2025-03-03 17:05:00",
//	  "sys_updated_by": "carol.jones", "instance": "https://acme.service-now.com",
//	  "links": {"repositories": ["github.com/acme/payments"], "commits": [], "changes": []}
//	}
//
// # Verification
//
// [Provider.Verify] accepts either header, checked in constant time against
// the secret in EVIDENCE_SERVICENOW_SECRET:
//
//   - X-Evidence-Signature: sha256=<MAC>, the HMAC-SHA256 of the body keyed
//     by the secret, in hex or in base64. A business rule computes it with
//     GlideCertificateEncryption.generateMac(base64(secret), "HmacSHA256",
//     body), which returns base64. When the header is present it must
//     match.
//   - X-Evidence-Token: <secret>, for a sender that cannot compute a MAC
//     (a Flow Designer REST step). It authenticates the sender but does not
//     protect the body, so the signature is preferred.
//
// # What becomes evidence
//
//	operation insert (or, without operation: no previous_state and
//	  sys_created_on = sys_updated_on)      ticket.created
//	previous_state set and ≠ state           ticket.transitioned (transitioned_by = sys_updated_by)
//	approval became approved                 ticket.approved, one per approver whose state is
//	                                         approved (approved_at = the approver's
//	                                         sys_updated_on, approval_group = group)
//	approval became rejected                 ticket.rejected, one per approver whose state is
//	                                         rejected (reason = comments)
//	none of these                            ignored
//	table other than change_request          ignored
//
// One delivery may carry several facts (a state change and an approval);
// each gives its event, and one dev.evidencepipeline.webhook.received.v1
// event keeps the body.
//
// Decisions:
//
//   - The receiver keeps no state, so "first sight" is what the business
//     rule says: operation insert.
//   - "Became approved" is approval = approved with previous_approval
//     different (or absent): a rule that fires on every update would
//     otherwise report the same approvals again with every later change.
//   - States are given as labels or as the numbers of the default state
//     model (-5 New, -4 Assess, -3 Authorize, -2 Scheduled, -1 Implement,
//     0 Review, 3 Closed, 4 Canceled, and the task states 1 Open, 2 Work in
//     Progress, 7 Closed Skipped); events carry the label. Another number
//     is an error; another label is kept as given (custom state models).
//   - A standard change approved without approvers (pre-approved by its
//     template) yields no ticket.approved: there is no approver to name.
//   - links are the catalog's links object; an invalid entry is an error
//     naming it (links.commits[2]).
//
// # Identifiers
//
// source is the instance (https://acme.service-now.com). id is
// "sha256:<SHA-256 of the body>/<event>": ServiceNow sends no delivery id,
// and a retry sends the same body. subject is the change number. time is
// sys_updated_on (sys_created_on for ticket.created, the approver's
// sys_updated_on for an approval).
package servicenow
