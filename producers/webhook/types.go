package webhook

// Catalog event types the adapters emit (their data is described in schemas/catalog).
const (
	// TypeWebhookReceived keeps a delivery's payload as it was received.
	TypeWebhookReceived = "dev.evidencepipeline.webhook.received.v1"

	TypeChangeOpened       = "dev.evidencepipeline.change.opened.v1"
	TypeChangeUpdated      = "dev.evidencepipeline.change.updated.v1"
	TypeChangeMerged       = "dev.evidencepipeline.change.merged.v1"
	TypeChangeClosed       = "dev.evidencepipeline.change.closed.v1"
	TypeReviewSubmitted    = "dev.evidencepipeline.review.submitted.v1"
	TypePipelineStarted    = "dev.evidencepipeline.pipelinerun.started.v1"
	TypePipelineFinished   = "dev.evidencepipeline.pipelinerun.finished.v1"
	TypeDeploymentStarted  = "dev.evidencepipeline.deployment.started.v1"
	TypeDeploymentFinished = "dev.evidencepipeline.deployment.finished.v1"

	TypeTicketCreated      = "dev.evidencepipeline.ticket.created.v1"
	TypeTicketTransitioned = "dev.evidencepipeline.ticket.transitioned.v1"
	TypeTicketApproved     = "dev.evidencepipeline.ticket.approved.v1"
	TypeTicketRejected     = "dev.evidencepipeline.ticket.rejected.v1"

	// Access events (issue 17): protection, grants, bypasses, repositories.
	TypeAccessProtectionChanged = "dev.evidencepipeline.access.protection.changed.v1"
	TypeAccessGrantChanged      = "dev.evidencepipeline.access.grant.changed.v1"
	TypeAccessBypass            = "dev.evidencepipeline.access.bypass.v1"
	TypeAccessReviewed          = "dev.evidencepipeline.access.reviewed.v1"
	TypeAccessRepositoryChanged = "dev.evidencepipeline.access.repository.changed.v1"
	TypeAccessSnapshot          = "dev.evidencepipeline.access.snapshot.v1"
)
