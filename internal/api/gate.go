package api

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// The deployment gate (role gate; docs/gate.md):
//
//	GET /v1/gate?repo=R&commit=C&env=E
//	GET /v1/gate?repo=R&artifact=sha256:...&env=E
//
// It judges the change records of R that hold commit C (or carry the
// artifact) against every control, as of now and as if deployed now to E,
// from the live state (cfg.Changes), not from the lagging ClickHouse copy.
// Asked about an artifact, it judges that artifact's provenance: built by
// a pipeline run from the change's merged commit (docs/gate.md).

// Gate decisions.
const (
	GateAllow = "allow"
	GateDeny  = "deny"
)

// GateResponse is the body of a 200 answer of GET /v1/gate.
type GateResponse struct {
	Decision    string `json:"decision"` // allow or deny
	Repo        string `json:"repo"`
	Commit      string `json:"commit"`
	Artifact    string `json:"artifact,omitempty"`
	Environment string `json:"environment"`
	// Production: the environment is one of the production environments;
	// otherwise the controls are informational and the decision is allow.
	Production bool `json:"production"`
	// Change is the judged record's id; null when no record holds the
	// commit (the change is unknown: deny).
	Change *string `json:"change"`
	// Changes lists every judged record when more than one holds the
	// commit (each must be allowed).
	Changes []string `json:"changes,omitempty"`
	// Reasons say why the decision was taken, in one line each.
	Reasons     []string      `json:"reasons"`
	Controls    []GateControl `json:"controls"`
	BundleHash  string        `json:"bundle_hash"`
	EvaluatedAt time.Time     `json:"evaluated_at"`
	// Behind is set, with the decision deny, when the correlation stage
	// had not taken in every event that arrived before the question
	// within the catch-up wait: the answer would have come from a state
	// older than what was sent. Ask again (evidence gate --wait does).
	Behind *GateBehind `json:"behind,omitempty"`
}

// GateBehind says how far behind the question the correlation was.
type GateBehind struct {
	AskedAt   time.Time `json:"asked_at"`
	Watermark time.Time `json:"watermark"` // zero when unknown
	Error     string    `json:"error,omitempty"`
}

// GateControl is one control's verdict in a gate answer.
type GateControl struct {
	ID     string          `json:"id"`
	Title  string          `json:"title"`
	Change string          `json:"change,omitempty"` // set when several records are judged
	Status evaluate.Status `json:"status"`
	// Reasons are the control's own, human-readable.
	Reasons   []string   `json:"reasons"`
	Deadline  *time.Time `json:"deadline,omitempty"`  // a pending control's
	Exception string     `json:"exception,omitempty"` // a waived control's exception id
}

// digestParamRE is an artifact digest as the catalog spells it.
var digestParamRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// errArtifactOnly is the answer to an artifact lookup without repo when
// the Reader cannot find records by artifact.
const errArtifactOnly = "artifact lookup without repo is not supported by this change-record reader; give repo with artifact (or repo and commit)"

type gateQuery struct {
	repo, commit, artifact, env string
}

func parseGateQuery(r *http.Request) (gateQuery, []problem.FieldError) {
	q := r.URL.Query()
	rawRepo := strings.TrimSpace(q.Get("repo"))
	g := gateQuery{
		repo:     strings.ToLower(ci.NormalizeRepository(rawRepo)),
		commit:   strings.ToLower(strings.TrimSpace(q.Get("commit"))),
		artifact: strings.ToLower(strings.TrimSpace(q.Get("artifact"))),
		env:      strings.TrimSpace(q.Get("env")),
	}
	var problems []problem.FieldError
	switch {
	case rawRepo == "" && g.artifact != "":
		// Found by the artifact alone, across repositories.
	case rawRepo == "":
		problems = append(problems, problem.FieldError{Field: "repo", Detail: "repo is required (host/owner/name, e.g. github.com/acme/payments)"})
	case strings.Count(g.repo, "/") < 2 || strings.ContainsAny(g.repo, "#@ "):
		problems = append(problems, problem.FieldError{Field: "repo", Detail: "repo " + quote(rawRepo) + " is not a repository as host/owner/name (e.g. github.com/acme/payments)"})
	}
	switch {
	case g.commit != "" && g.artifact != "":
		problems = append(problems, problem.FieldError{Field: "commit", Detail: "give commit or artifact, not both"})
	case g.commit == "" && g.artifact == "":
		problems = append(problems, problem.FieldError{Field: "commit", Detail: "commit is required (a commit SHA, 7 to 64 hex digits), or artifact (sha256:<64 hex digits>)"})
	case g.commit != "" && !commitParamRE.MatchString(g.commit):
		problems = append(problems, problem.FieldError{Field: "commit", Detail: "commit " + quote(q.Get("commit")) + " is not a commit SHA (7 to 64 hex digits)"})
	case g.artifact != "" && !digestParamRE.MatchString(g.artifact):
		problems = append(problems, problem.FieldError{Field: "artifact", Detail: "artifact " + quote(q.Get("artifact")) + " is not a digest (sha256:<64 hex digits>)"})
	}
	switch {
	case g.env == "":
		problems = append(problems, problem.FieldError{Field: "env", Detail: "env is required (the environment to deploy to, e.g. production)"})
	case len(g.env) > 200 || strings.ContainsAny(g.env, "\x00\n\r"):
		problems = append(problems, problem.FieldError{Field: "env", Detail: "env " + quote(g.env) + " is not an environment name"})
	}
	return g, problems
}

// gate answers GET /v1/gate.
func (s *Server) gate(w http.ResponseWriter, r *http.Request) {
	g, problems := parseGateQuery(r)
	if len(problems) > 0 {
		invalidParameters(w, r, problems)
		return
	}
	ctx := r.Context()
	if behind := s.catchUp(ctx); behind != nil {
		params := s.cfg.GateParams.WithDefaults()
		reason := fmt.Sprintf("the correlation stage has not yet taken in every event that arrived before this question (asked at %s, correlated up to %s): an answer now would be judged without evidence already sent; ask again (evidence gate --wait)",
			behind.AskedAt.Format(time.RFC3339Nano), watermarkText(behind))
		writeJSON(w, http.StatusOK, GateResponse{
			Decision: GateDeny, Repo: g.repo, Commit: g.commit, Artifact: g.artifact, Environment: g.env,
			Production: slices.ContainsFunc(params.ProductionEnvironments, func(e string) bool { return strings.EqualFold(e, g.env) }),
			Reasons:    []string{reason}, Controls: []GateControl{},
			BundleHash: s.cfg.Gate.BundleHash(), EvaluatedAt: time.Now().UTC(), Behind: behind,
		})
		return
	}
	var recs []correlate.Record
	var err error
	switch ar, byArtifact := s.cfg.Changes.(correlate.ArtifactReader); {
	case g.artifact != "" && g.repo == "" && !byArtifact:
		problem.Write(w, r, &problem.Problem{Type: problem.InvalidParameter.URI(), Title: problem.InvalidParameter.Title, Status: http.StatusBadRequest,
			Detail: errArtifactOnly, Errors: []problem.FieldError{{Field: "repo", Detail: errArtifactOnly}}})
		return
	case g.artifact != "" && g.repo == "":
		recs, err = ar.ChangesOfArtifact(ctx, g.artifact)
	case g.artifact != "":
		recs, err = s.cfg.Changes.ChangesOf(ctx, g.repo, "")
		recs = slices.DeleteFunc(recs, func(rec correlate.Record) bool { return !rec.Carries(g.artifact) })
	default:
		recs, err = s.cfg.Changes.ChangesOf(ctx, g.repo, g.commit)
	}
	if err != nil {
		s.log.Error("gate: reading change records", "repo", g.repo, "commit", g.commit, "artifact", g.artifact, "err", err)
		fail(w, r, problem.Internal, "reading the change records of "+g.repo+": "+err.Error())
		return
	}
	recs = primary(recs, g.commit)

	params := s.cfg.GateParams.WithDefaults()
	prodEnvs := params.ProductionEnvironments
	now := time.Now().UTC()
	out := GateResponse{
		Repo: g.repo, Commit: g.commit, Artifact: g.artifact, Environment: g.env,
		Production: slices.ContainsFunc(prodEnvs, func(e string) bool { return strings.EqualFold(e, g.env) }),
		Reasons:    []string{}, Controls: []GateControl{},
		BundleHash: s.cfg.Gate.BundleHash(), EvaluatedAt: now,
	}
	if len(recs) == 0 {
		what := g.repo + "@" + g.commit
		switch {
		case g.artifact != "" && g.repo == "":
			what = "artifact " + g.artifact + " (no change built or deployed it)"
		case g.artifact != "":
			what = g.repo + " carrying artifact " + g.artifact
		}
		reason := "no change record for " + what + ": the change is unknown (CM-8)"
		out.Decision = GateDeny
		c := GateControl{ID: "CM-8", Title: s.controlTitle("CM-8"), Status: evaluate.Fail, Reasons: []string{reason}}
		if !out.Production {
			out.Decision = GateAllow
			reason = "environment " + g.env + " is not a production environment: the controls are informational; " + reason
		}
		out.Reasons = append(out.Reasons, reason)
		out.Controls = append(out.Controls, c)
		writeJSON(w, http.StatusOK, out)
		return
	}
	if g.commit == "" && len(recs) == 1 {
		out.Commit = recs[0].Commit
	}
	if out.Repo == "" && len(recs) > 0 {
		out.Repo = recs[0].Repository
	}
	id := recs[0].ID
	out.Change = &id
	if len(recs) > 1 {
		for _, rec := range recs {
			out.Changes = append(out.Changes, rec.ID)
		}
	}
	// A non-production environment is judged like production (the record
	// does not change), but the verdicts are informational.
	blocking := 0
	for _, rec := range recs {
		// Asked about an artifact, the controls judge that artifact (its
		// provenance, the commit it was built from), not the change's
		// others: an image of the pull request's head is not let through
		// because the merge commit's image exists.
		res, err := s.cfg.Gate.EvaluateArtifact(ctx, rec, now, params, g.artifact)
		if err != nil {
			s.log.Error("gate: evaluating", "change", rec.ID, "err", err)
			fail(w, r, problem.Internal, "evaluating change "+rec.ID+": "+err.Error())
			return
		}
		for _, x := range res {
			c := GateControl{ID: x.Control.ID, Title: x.Control.Title, Status: x.Status, Reasons: x.Reasons,
				Deadline: x.Deadline, Exception: x.Exception}
			if c.Reasons == nil {
				c.Reasons = []string{}
			}
			if len(recs) > 1 {
				c.Change = rec.ID
			}
			if x.Status == evaluate.Fail || x.Status == evaluate.Pending {
				blocking++
				if out.Production {
					out.Reasons = append(out.Reasons, fmt.Sprintf("%s %s: %s", x.Control.ID, x.Status, strings.Join(x.Reasons, "; ")))
				}
			}
			out.Controls = append(out.Controls, c)
		}
	}
	switch {
	case !out.Production:
		out.Decision = GateAllow
		out.Reasons = append(out.Reasons, fmt.Sprintf("environment %s is not a production environment (%s): the controls are informational (%d failing or pending)",
			g.env, strings.Join(prodEnvs, ", "), blocking))
	case blocking > 0:
		out.Decision = GateDeny
	default:
		out.Decision = GateAllow
		out.Reasons = append(out.Reasons, "every control passes or is waived")
	}
	writeJSON(w, http.StatusOK, out)
}

// primary keeps the records that introduced the commit (their own commit,
// the merge or pushed commit) when there are some; otherwise the records
// that hold it in another role (a pull request head, a deployment). A
// matched record wins over an unmatched deployment's.
func primary(recs []correlate.Record, commit string) []correlate.Record {
	if commit != "" {
		own := slices.DeleteFunc(slices.Clone(recs), func(r correlate.Record) bool { return !strings.HasPrefix(r.Commit, commit) })
		if len(own) > 0 {
			return own
		}
	}
	matched := slices.DeleteFunc(slices.Clone(recs), func(r correlate.Record) bool { return strings.HasPrefix(r.ID, "unmatched:") })
	if len(matched) > 0 {
		return matched
	}
	return recs
}

func (s *Server) controlTitle(id string) string {
	for _, c := range s.cfg.Gate.Controls() {
		if c.ID == id {
			return c.Title
		}
	}
	return ""
}

// catchUp waits, up to GateCatchUp, until the correlation watermark is
// past the moment the question was asked; nil when it is (or when no
// watermark is configured), else how far behind it stayed.
func (s *Server) catchUp(ctx context.Context) *GateBehind {
	if s.cfg.Watermark == nil {
		return nil
	}
	asked := time.Now().UTC()
	wait := s.cfg.GateCatchUp
	if wait <= 0 {
		wait = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	var last *GateBehind
	for {
		wm, err := s.cfg.Watermark(ctx)
		if err == nil && wm.After(asked) {
			return nil
		}
		last = &GateBehind{AskedAt: asked, Watermark: wm.UTC()}
		if err != nil {
			last.Watermark, last.Error = time.Time{}, err.Error()
		}
		select {
		case <-ctx.Done():
			return last
		case <-tick.C:
		}
	}
}

func watermarkText(b *GateBehind) string {
	if b.Error != "" {
		return "unknown: " + b.Error
	}
	return b.Watermark.Format(time.RFC3339Nano)
}
