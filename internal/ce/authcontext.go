package ce

// The CloudEvents Auth Context extension (cloudevents/spec,
// extensions/authcontext.md): who the receiver verified an event came from.
// evidenced sets it on every event posted with a CI job token (an OIDC ID
// token of GitHub Actions or GitLab CI, verified against its issuer's
// keys): authtype "service_account", authid the token's subject, and
// authclaims the verified claims that say which pipeline run sent it
// (JobClaims, as JSON). A producer never sets it: the receiver refuses an
// event that carries any of the three, so an archived event's auth context
// is always one the receiver verified.

import (
	"encoding/json"
	"fmt"
)

// The Auth Context extension's attributes.
const (
	ExtAuthType   = "authtype"
	ExtAuthID     = "authid"
	ExtAuthClaims = "authclaims"
)

// AuthTypeServiceAccount is the authtype of events posted with a CI job
// token: a non-user principal, the pipeline run.
const AuthTypeServiceAccount = "service_account"

// HasAuthContext reports whether the event carries any attribute of the
// Auth Context extension, and names the first one found.
func (e *Event) HasAuthContext() (string, bool) {
	for _, name := range [...]string{ExtAuthType, ExtAuthID, ExtAuthClaims} {
		if _, ok := e.Extensions[name]; ok {
			return name, true
		}
	}
	return "", false
}

// JobClaims are the verified claims of a CI job token that identify the
// run which sent an event. System and Repository are derived by evidenced
// (the CI system, and the repository as host/path, the correlation key);
// the other fields are the token's claims of the same names (GitHub
// Actions: workflow, job_workflow_ref, run_id, run_attempt, actor;
// GitLab CI: project_path, pipeline_id, job_id, user_login; both: ref,
// sha), empty when the token has none.
type JobClaims struct {
	Issuer     string `json:"iss"`
	Subject    string `json:"sub"`
	Audience   string `json:"aud"`
	System     string `json:"system"`
	Repository string `json:"repository"`
	// GitHub Actions.
	Workflow       string `json:"workflow,omitempty"`
	JobWorkflowRef string `json:"job_workflow_ref,omitempty"`
	RunID          string `json:"run_id,omitempty"`
	RunAttempt     string `json:"run_attempt,omitempty"`
	Actor          string `json:"actor,omitempty"`
	// GitLab CI.
	ProjectPath string `json:"project_path,omitempty"`
	PipelineID  string `json:"pipeline_id,omitempty"`
	JobID       string `json:"job_id,omitempty"`
	UserLogin   string `json:"user_login,omitempty"`
	// Both.
	Ref string `json:"ref,omitempty"`
	SHA string `json:"sha,omitempty"`
}

// Run is the run the token was issued to: GitHub's run_id, GitLab's
// pipeline_id (the run_id of the catalog's events).
func (c *JobClaims) Run() string {
	if c.RunID != "" {
		return c.RunID
	}
	return c.PipelineID
}

// Pipeline is the pipeline's name as the token gives it: GitHub's
// workflow; "" for GitLab, whose tokens do not name the pipeline or job.
func (c *JobClaims) Pipeline() string { return c.Workflow }

// Trigger is who started the run: GitHub's actor (of the run's first
// attempt), GitLab's user_login.
func (c *JobClaims) Trigger() string {
	if c.Actor != "" {
		return c.Actor
	}
	return c.UserLogin
}

// SetJobClaims gives the event the Auth Context of a verified job token,
// replacing any it had.
func (e *Event) SetJobClaims(c *JobClaims) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	s, _ := json.Marshal(string(b))
	if len(s) > MaxExtValueLen {
		return fmt.Errorf("the job token's claims take %d bytes of JSON, more than an extension attribute may hold (%d)", len(s), MaxExtValueLen)
	}
	typ, _ := json.Marshal(AuthTypeServiceAccount)
	id, _ := json.Marshal(c.Subject)
	if e.Extensions == nil {
		e.Extensions = make(map[string]json.RawMessage, 3)
	}
	e.Extensions[ExtAuthType], e.Extensions[ExtAuthID], e.Extensions[ExtAuthClaims] = typ, id, s
	return nil
}

// JobClaims returns the job token claims of the event's Auth Context;
// ok is false when the event has none (it was posted with a static token,
// or came from a webhook). An error says its authclaims are not JobClaims.
func (e *Event) JobClaims() (c *JobClaims, ok bool, err error) {
	var typ string
	raw, has := e.Extensions[ExtAuthType]
	if !has || json.Unmarshal(raw, &typ) != nil || typ != AuthTypeServiceAccount {
		return nil, false, nil
	}
	var s string
	if err := json.Unmarshal(e.Extensions[ExtAuthClaims], &s); err != nil {
		return nil, false, &Error{Field: ExtAuthClaims, Message: "must be a string of JSON (the Auth Context's claims)"}
	}
	c = &JobClaims{}
	if err := json.Unmarshal([]byte(s), c); err != nil {
		return nil, false, &Error{Field: ExtAuthClaims, Message: "not the claims of a job token: " + err.Error()}
	}
	if c.System == "" || c.Repository == "" {
		return nil, false, &Error{Field: ExtAuthClaims, Message: "the claims of a job token name its system and repository"}
	}
	return c, true, nil
}
