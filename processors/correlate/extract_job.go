package correlate

// The pipeline identity of evidence posted with a CI job token: the
// receiver verified the token (an OIDC ID token of GitHub Actions or
// GitLab CI) and recorded its claims with the event (the CloudEvents Auth
// Context, ce.JobClaims), after refusing an event whose body contradicts
// them. Here the claims, not the body, say which system, run and pipeline
// the evidence comes from and who deployed or built: the pipeline itself
// (SYSTEM:PIPELINE, type service), which is what CM-3, CM-6 and CM-7 judge.

import (
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// job is the event's verified job claims, or nil when it was not posted
// with a job token.
func job(e *ce.Event) (*ce.JobClaims, error) {
	c, ok, err := e.JobClaims()
	if err != nil || !ok {
		return nil, err
	}
	return c, nil
}

// jobPipeline applies the claims to the run fields of a fact: repository,
// system, run and pipeline (GitLab's tokens name no pipeline: the body's
// is kept). It returns the pipeline's own identity.
func jobPipeline(c *ce.JobClaims, repository, system, runID, pipeline *string) *Identity {
	*repository, *system, *runID = c.Repository, c.System, c.Run()
	if p := c.Pipeline(); p != "" {
		*pipeline = p
	}
	id := &Identity{Login: ci.PipelineLogin(c.System, *pipeline), Type: "service"}
	if n := *pipeline; n != "" && len(n) <= 512 {
		id.Name = n
	}
	return id
}
