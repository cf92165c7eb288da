package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// The change-record endpoints (role auditor; docs/changes.md):
//
//	GET /v1/changes/{id...}          one record, its canonical JSON
//	GET /v1/changes?repo=R&commit=C  {"changes":[...]}: the records of R that hold C
//
// Records are read from the live state through cfg.Changes (a
// correlate.Reader), not from the lagging ClickHouse copy.

// ChangesResponse is the body of GET /v1/changes. Each entry is a record's
// canonical JSON (the bytes of json.Marshal(record)), so an entry is
// byte-identical to what GET /v1/changes/{id} answers for it.
type ChangesResponse struct {
	Changes []json.RawMessage `json:"changes"`
}

// commitParamRE is a full or abbreviated commit SHA, as the catalog spells
// commits (lower case).
var commitParamRE = regexp.MustCompile(`^[0-9a-f]{7,64}$`)

// getChange answers GET /v1/changes/{id...}. The id is the rest of the
// path: ids hold '/', '@' and ':' and may be sent as they are or
// percent-encoded (ServeMux unescapes the wildcard, so both give the same
// id).
func (s *Server) getChange(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "" {
		fail(w, r, problem.InvalidParameter, "missing change id: GET /v1/changes/{id}, or GET /v1/changes?repo=REPOSITORY&commit=SHA")
		return
	}
	rec, ok, err := s.cfg.Changes.Change(r.Context(), id)
	if err != nil {
		s.log.Error("reading a change record", "id", id, "err", err)
		fail(w, r, problem.Internal, "reading change record "+id+": "+err.Error())
		return
	}
	if !ok {
		fail(w, r, problem.NotFound, "no change record with id "+id)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// The hash of the canonical JSON is what control results name as their
	// input: a reader can check it against them.
	w.Header().Set("ETag", `"`+rec.Hash()+`"`)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(rec.Canonical())
}

// listChanges answers GET /v1/changes?repo=R&commit=C: the records of
// repository R that hold commit C in any role (merge commit, a head,
// pushed, deployed); C may be abbreviated (7 or more hex digits).
func (s *Server) listChanges(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	rawRepo := strings.TrimSpace(q.Get("repo"))
	repo := strings.ToLower(ci.NormalizeRepository(rawRepo))
	commit := strings.ToLower(strings.TrimSpace(q.Get("commit")))
	var problems []problem.FieldError
	switch {
	case rawRepo == "":
		problems = append(problems, problem.FieldError{Field: "repo", Detail: "repo is required (host/owner/name, e.g. github.com/acme/payments)"})
	case strings.Count(repo, "/") < 2 || strings.ContainsAny(repo, "#@ "):
		problems = append(problems, problem.FieldError{Field: "repo", Detail: "repo " + quote(rawRepo) + " is not a repository as host/owner/name (e.g. github.com/acme/payments)"})
	}
	switch {
	case commit == "":
		problems = append(problems, problem.FieldError{Field: "commit", Detail: "commit is required (a commit SHA, 7 to 64 hex digits)"})
	case !commitParamRE.MatchString(commit):
		problems = append(problems, problem.FieldError{Field: "commit", Detail: "commit " + quote(q.Get("commit")) + " is not a commit SHA (7 to 64 hex digits)"})
	}
	if len(problems) > 0 {
		invalidParameters(w, r, problems)
		return
	}
	recs, err := s.cfg.Changes.ChangesOf(r.Context(), repo, commit)
	if err != nil {
		s.log.Error("reading change records", "repo", repo, "commit", commit, "err", err)
		fail(w, r, problem.Internal, "reading the change records of "+repo+"@"+commit+": "+err.Error())
		return
	}
	out := ChangesResponse{Changes: make([]json.RawMessage, 0, len(recs))}
	for _, rec := range recs {
		out.Changes = append(out.Changes, rec.Canonical())
	}
	writeJSON(w, http.StatusOK, out)
}

// quote quotes a parameter value for an error message, keeping it short.
func quote(s string) string {
	const max = 100
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
