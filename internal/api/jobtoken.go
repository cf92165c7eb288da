package api

// CI job tokens as producer credentials (docs/ci.md, "OIDC job tokens";
// docs/api.md, "Authentication"): a bearer token that is no static token
// and has the shape of a JWT is verified as an OIDC ID token of a
// configured issuer (Config.JobTokens). It authenticates as role producer,
// for the evidence of its own run only: each event must be of a CI type
// and about the token's repository, commit and run, and must not name
// another pipeline as its deployer or builder. The verified claims are
// recorded with each event (the CloudEvents Auth Context: authtype,
// authid, authclaims), where the correlation stage takes the pipeline
// identity from them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/jobtoken"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// JobTokenVerifier verifies CI job tokens (*jobtoken.Verifier).
type JobTokenVerifier interface {
	Verify(ctx context.Context, raw string) (*ce.JobClaims, error)
}

// authenticate is the request's identity: a static token of the tokens
// file, else a CI job token of a configured issuer.
func (s *Server) authenticate(r *http.Request) (auth.Identity, error) {
	id, err := s.cfg.Tokens.Authenticate(r)
	if err == nil || s.cfg.JobTokens == nil || !errors.Is(err, auth.ErrBadToken) {
		return id, err
	}
	tok, _ := auth.Bearer(r)
	if !jobtoken.LooksLikeJWT(tok) {
		return id, err
	}
	c, err := s.cfg.JobTokens.Verify(r.Context(), tok)
	if err != nil {
		s.log.Info("CI job token refused", "reason", err.Error(), "remote", r.RemoteAddr, "path", r.URL.Path)
		return auth.Identity{}, fmt.Errorf("CI job token refused: %w", err)
	}
	return auth.Identity{Name: "CI job token " + c.Subject, Role: auth.Producer, Job: c}, nil
}

// authStatus is the status of an authentication failure: 503 when a job
// token's issuer could not be asked for its keys, else 401.
func authStatus(err error) int {
	var ue *jobtoken.UnavailableError
	if errors.As(err, &ue) {
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// jobTypes are the event types a job token may post: a CI run's own
// evidence.
var jobTypes = map[string]bool{
	correlate.TypePipelineRunStarted: true, correlate.TypePipelineRunFinished: true,
	correlate.TypeArtifactBuilt: true, correlate.TypeTestReported: true, correlate.TypeScanReported: true,
	correlate.TypeDeploymentStarted: true, correlate.TypeDeploymentFinished: true,
}

// checkPosted is CheckEvent for POST /v1/events, which also refuses an
// event that carries the Auth Context itself: only the receiver sets it,
// from a verified job token.
func (s *Server) checkPosted(e *ce.Event) error {
	if err := s.CheckEvent(e); err != nil {
		return err
	}
	if name, ok := e.HasAuthContext(); ok {
		return &ce.Error{Field: name, Message: "the Auth Context (authtype, authid, authclaims) is set by evidenced from a verified CI job token; a producer must not send it"}
	}
	return nil
}

// ciData are the members of the CI types' data that a job token's claims
// speak for.
type ciData struct {
	Repository  string          `json:"repository"`
	Commit      string          `json:"commit"`
	RunID       string          `json:"run_id"`
	RunAttempt  json.RawMessage `json:"run_attempt"`
	Pipeline    string          `json:"pipeline"`
	System      string          `json:"system"`
	Deployer    *ciIdentity     `json:"deployer"`
	Builder     *ciIdentity     `json:"builder"`
	TriggeredBy *ciIdentity     `json:"triggered_by"`
}

type ciIdentity struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// bindJob checks each event against the job token's claims and, when
// none contradicts them, records the claims with every event. The
// problems name the field and say which claim it contradicts.
func bindJob(events []*ce.Event, c *ce.JobClaims) []EventError {
	var problems []EventError
	for i, e := range events {
		for _, p := range jobProblems(e, c) {
			p.Index, p.ID = i, e.ID
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return problems
	}
	for i, e := range events {
		if err := e.SetJobClaims(c); err != nil {
			problems = append(problems, EventError{Index: i, ID: e.ID, Field: ce.ExtAuthClaims, Detail: err.Error()})
		}
	}
	return problems
}

func jobProblems(e *ce.Event, c *ce.JobClaims) []EventError {
	if !jobTypes[e.Type] {
		return []EventError{{Field: "type", Detail: fmt.Sprintf("a CI job token posts only its run's own evidence (pipelinerun.started and .finished, artifact.built, test.reported, scan.reported, deployment.started and .finished); %s needs a static producer token", e.Type)}}
	}
	var d ciData
	if e.DataBase64 || json.Unmarshal(e.Data, &d) != nil {
		return []EventError{{Field: "data", Detail: "not a JSON object"}}
	}
	var ps []EventError
	bad := func(field, format string, a ...any) {
		ps = append(ps, EventError{Field: field, Detail: fmt.Sprintf(format, a...)})
	}
	runClaim, repoClaim := "run_id", "repository"
	if c.System == jobtoken.GitLabCI {
		runClaim, repoClaim = "pipeline_id", "project_path"
	}
	switch repo := ci.NormalizeRepository(d.Repository); {
	case repo == "":
		bad("data/repository", "required with a CI job token, which speaks for repository %s", c.Repository)
	case !strings.EqualFold(repo, c.Repository):
		bad("data/repository", "%s is not the job token's repository %s (claim %s): a job token posts evidence about its own repository only", d.Repository, c.Repository, repoClaim)
	}
	// A pull or merge request run's token names the temporary merge
	// commit (GitHub refs/pull/N/merge, GitLab refs/merge-requests/N/...),
	// while its evidence names the request's head, which the token does
	// not name: that commit cannot be checked.
	mergeRef := strings.HasPrefix(c.Ref, "refs/pull/") || strings.HasPrefix(c.Ref, "refs/merge-requests/")
	if d.Commit != "" && c.SHA != "" && !mergeRef && !strings.EqualFold(d.Commit, c.SHA) {
		bad("data/commit", "%s is not the commit of the job token's run, %s (claim sha)", d.Commit, c.SHA)
	}
	if d.RunID != "" && d.RunID != c.Run() {
		bad("data/run_id", "%s is not the job token's run %s (claim %s)", d.RunID, c.Run(), runClaim)
	}
	if a := strings.Trim(string(d.RunAttempt), `"`); a != "" && a != "null" && c.RunAttempt != "" {
		if n, err := strconv.Atoi(a); err != nil || strconv.Itoa(n) != c.RunAttempt {
			bad("data/run_attempt", "%s is not the job token's run attempt %s (claim run_attempt)", a, c.RunAttempt)
		}
	}
	if d.System != "" && d.System != c.System {
		bad("data/system", "%q is not the job token's CI system %q (its issuer %s)", d.System, c.System, c.Issuer)
	}
	pipeline := d.Pipeline
	if p := c.Pipeline(); p != "" {
		if d.Pipeline != "" && d.Pipeline != p {
			bad("data/pipeline", "%q is not the job token's workflow %q (claim workflow)", d.Pipeline, p)
		}
		pipeline = p
	}
	login := ci.PipelineLogin(c.System, pipeline)
	for _, id := range [...]struct {
		field string
		v     *ciIdentity
	}{{"data/deployer", d.Deployer}, {"data/builder", d.Builder}} {
		if id.v != nil && (!strings.EqualFold(id.v.Login, login) || id.v.Type != "service") {
			bad(id.field, "%s (type %s) is not the job token's pipeline %s (type service): with a CI job token the pipeline itself deploys and builds", id.v.Login, id.v.Type, login)
		}
	}
	// GitHub's actor started the run's first attempt (a re-run is started
	// by GITHUB_TRIGGERING_ACTOR, which the token does not carry).
	if t := d.TriggeredBy; t != nil && c.Trigger() != "" && (c.System == jobtoken.GitLabCI || c.RunAttempt == "" || c.RunAttempt == "1") &&
		!strings.EqualFold(t.Login, c.Trigger()) {
		claim := "actor"
		if c.System == jobtoken.GitLabCI {
			claim = "user_login"
		}
		bad("data/triggered_by", "%s is not who started the job token's run, %s (claim %s)", t.Login, c.Trigger(), claim)
	}
	return ps
}
