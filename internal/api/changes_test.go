package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
)

// scenarioDir holds the correlator's scenario fixtures: the events of a
// change, in arrival order.
const scenarioDir = "../../processors/correlate/testdata/scenarios"

// scenarioState is the correlation state of the first n events of a
// scenario (n <= 0: all of them).
func scenarioState(t *testing.T, name string, n int) *correlate.State {
	t.Helper()
	return correlatetest.State(t, correlatetest.Events(t, filepath.Join(scenarioDir, name, "events.json"), n)...)
}

// changeStates are every scenario's final state, and the early states
// (checkpoints) in which a deployment is not matched yet.
func changeStates(t *testing.T) map[string]*correlate.State {
	t.Helper()
	entries, err := os.ReadDir(scenarioDir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*correlate.State{}
	for _, e := range entries {
		if e.IsDir() {
			out[e.Name()] = scenarioState(t, e.Name(), 0)
		}
	}
	if len(out) < 3 {
		t.Fatalf("only %d scenarios in %s", len(out), scenarioDir)
	}
	out["unmatched_relinked@1"] = scenarioState(t, "unmatched_relinked", 1)
	out["deploy_before_build@5"] = scenarioState(t, "deploy_before_build", 5)
	return out
}

func changesServer(t *testing.T, r correlate.Reader, tokens *auth.Tokens) *httptest.Server {
	t.Helper()
	srv := apitest.NewServer(t, api.New(api.Config{Changes: r, Tokens: tokens}))
	t.Cleanup(srv.Close)
	return srv
}

type answer struct {
	code int
	body []byte
	h    http.Header
}

func get(t *testing.T, srv *httptest.Server, path, token string) answer {
	t.Helper()
	req, err := http.NewRequest("GET", srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, b, resp.Header}
}

// errorOf decodes an error answer, failing when it is not a problem
// document (RFC 9457) of the answer's status with a detail; it returns
// the detail.
func errorOf(t *testing.T, a answer) string {
	t.Helper()
	return problemOf(t, a).Detail
}

// problemOf decodes an error answer as errorOf does (the whole problem).
func problemOf(t *testing.T, a answer) problem.Problem {
	t.Helper()
	if ct := a.h.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("error answer has content type %q, want application/problem+json", ct)
	}
	var p problem.Problem
	if err := json.Unmarshal(a.body, &p); err != nil || p.Detail == "" || p.Status != a.code ||
		!strings.HasPrefix(p.Type, problem.TypeBase) || p.Title == "" {
		t.Fatalf("%d answer is not a problem document of status %d with a type, title and detail: %s", a.code, a.code, a.body)
	}
	return p
}

// encodings are the ways a client may put an id in the path.
func encodings(id string) map[string]string {
	return map[string]string{
		"raw":         id,
		"path-escape": url.PathEscape(id),                                                 // '/' as %2F
		"all-escaped": strings.ReplaceAll(url.QueryEscape(id), "+", "%20"),                // '@' ':' '/' escaped too
		"mixed":       strings.Replace(strings.ReplaceAll(id, "@", "%40"), ":", "%3A", 1), // some escaped, some not
	}
}

func TestChangeByID(t *testing.T) {
	total := 0
	for name, s := range changeStates(t) {
		srv := changesServer(t, correlate.StateReader{State: s}, nil)
		for _, rec := range s.Records() {
			total++
			want, err := json.Marshal(rec)
			if err != nil {
				t.Fatal(err)
			}
			for how, p := range encodings(rec.ID) {
				a := get(t, srv, "/v1/changes/"+p, "")
				if a.code != http.StatusOK {
					t.Errorf("%s: %s id %s: %d %s", name, how, p, a.code, a.body)
					continue
				}
				if !bytes.Equal(a.body, want) {
					t.Errorf("%s: %s id %s: the answer is not json.Marshal(record):\n got %s\nwant %s", name, how, p, a.body, want)
				}
				if ct := a.h.Get("Content-Type"); ct != "application/json" {
					t.Errorf("%s: content type %q", name, ct)
				}
				if et := a.h.Get("ETag"); et != `"`+rec.Hash()+`"` {
					t.Errorf("%s: ETag %q, want the record's hash %s", name, et, rec.Hash())
				}
			}
		}
	}
	if total < 10 {
		t.Fatalf("only %d records in the scenarios", total)
	}
}

func TestChangeByIDUnmatched(t *testing.T) {
	// An unmatched deployment's id has ':' and '/' in it; once the merge
	// is known the same deployment belongs to the change and the
	// unmatched id is gone.
	early := changesServer(t, correlate.StateReader{State: scenarioState(t, "unmatched_relinked", 1)}, nil)
	id := "unmatched:production/payments/github.com/acme/payments@72c0ffee00112233445566778899aabbccddee72"
	if a := get(t, early, "/v1/changes/"+url.PathEscape(id), ""); a.code != 200 || !bytes.Contains(a.body, []byte(`"unmatched":true`)) {
		t.Fatalf("early: %d %s", a.code, a.body)
	}
	late := changesServer(t, correlate.StateReader{State: scenarioState(t, "unmatched_relinked", 0)}, nil)
	a := get(t, late, "/v1/changes/"+id, "")
	if a.code != http.StatusNotFound || !strings.Contains(errorOf(t, a), id) {
		t.Fatalf("late: %d %s", a.code, a.body)
	}
}

func TestChangeNotFound(t *testing.T) {
	srv := changesServer(t, correlate.StateReader{State: scenarioState(t, "squash_merge", 0)}, nil)
	id := "github.com/acme/payments@0000000000000000000000000000000000000000"
	for how, p := range encodings(id) {
		a := get(t, srv, "/v1/changes/"+p, "")
		if a.code != http.StatusNotFound {
			t.Fatalf("%s: %d %s", how, a.code, a.body)
		}
		if msg := errorOf(t, a); msg != "no change record with id "+id {
			t.Errorf("%s: error %q does not name the id", how, msg)
		}
	}
	a := get(t, srv, "/v1/changes/", "")
	if a.code != http.StatusBadRequest || !strings.Contains(errorOf(t, a), "missing change id") {
		t.Errorf("empty id: %d %s", a.code, a.body)
	}
}

func listOf(t *testing.T, a answer) []json.RawMessage {
	t.Helper()
	if a.code != http.StatusOK {
		t.Fatalf("%d %s", a.code, a.body)
	}
	var out struct {
		Changes []json.RawMessage `json:"changes"`
	}
	dec := json.NewDecoder(bytes.NewReader(a.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil || out.Changes == nil {
		t.Fatalf("not {\"changes\":[...]}: %s (%v)", a.body, err)
	}
	return out.Changes
}

func TestChangesOfCommit(t *testing.T) {
	for name, s := range changeStates(t) {
		srv := changesServer(t, correlate.StateReader{State: s}, nil)
		for _, rec := range s.Records() {
			want, _ := json.Marshal(rec)
			// The record's own commit, every commit it holds (merge
			// commit, heads, pushed, deployed), each abbreviated, and in
			// upper case.
			shas := []string{rec.Commit}
			for _, c := range rec.Commits {
				shas = append(shas, c.SHA)
			}
			if rec.PullRequest != nil {
				if len(rec.PullRequest.Heads) == 0 {
					t.Fatalf("%s: %s has no heads", name, rec.ID)
				}
				shas = append(shas, rec.PullRequest.HeadCommit, rec.PullRequest.Heads[0].Commit, rec.PullRequest.MergeCommit)
			}
			if rec.Repository == "" {
				continue // an unmatched deployment known only by its digest
			}
			var queries []string
			for _, sha := range shas {
				if sha == "" {
					continue
				}
				queries = append(queries, sha, sha[:7], strings.ToUpper(sha[:min(10, len(sha))]))
			}
			for _, c := range queries {
				l := listOf(t, get(t, srv, "/v1/changes?repo="+url.QueryEscape(rec.Repository)+"&commit="+c, ""))
				if !slices.ContainsFunc(l, func(m json.RawMessage) bool { return bytes.Equal(m, want) }) {
					t.Errorf("%s: commit %s of %s: %s is not in the answer (or not byte-identical)", name, c, rec.Repository, rec.ID)
				}
				for _, m := range l {
					var r correlate.Record
					if err := json.Unmarshal(m, &r); err != nil || r.Repository != rec.Repository || !r.HasCommit(c) {
						t.Errorf("%s: commit %s: the answer lists %s, which does not hold it", name, c, r.ID)
					}
				}
			}
		}
	}

	srv := changesServer(t, correlate.StateReader{State: scenarioState(t, "squash_merge", 0)}, nil)
	// The merge commit and the first head (a failed test ran on it) give
	// the one record; the repository may be given as a URL.
	for _, q := range []string{
		"repo=github.com/acme/payments&commit=c0ffee1234567890abcdef1234567890abcdef12",
		"repo=github.com/acme/payments&commit=1b2c3d4",
		"repo=https://github.com/Acme/Payments.git&commit=9f2c1e7a4b5d",
	} {
		l := listOf(t, get(t, srv, "/v1/changes?"+q, ""))
		if len(l) != 1 || !bytes.Contains(l[0], []byte(`"id":"github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"`)) {
			t.Errorf("%s: %d records", q, len(l))
		}
	}
	// A commit no record holds, another repository: an empty list.
	for _, q := range []string{
		"repo=github.com/acme/payments&commit=0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d", // the base commit: the target branch's
		"repo=github.com/acme/ledger&commit=c0ffee1234567890abcdef1234567890abcdef12",
		"repo=github.com/acme/payments&commit=deadbeef",
	} {
		a := get(t, srv, "/v1/changes?"+q, "")
		if a.code != 200 || string(a.body) != "{\"changes\":[]}\n" {
			t.Errorf("%s: %d %q, want an empty list", q, a.code, a.body)
		}
	}
}

func TestChangesOfBadParameters(t *testing.T) {
	srv := changesServer(t, correlate.StateReader{State: scenarioState(t, "squash_merge", 0)}, nil)
	for q, want := range map[string][]string{
		"":                              {"repo is required", "commit is required"},
		"commit=c0ffee1":                {"repo is required"},
		"repo=github.com/acme/payments": {"commit is required"},
		"repo=payments&commit=c0ffee1":  {`repo "payments" is not a repository`},
		"repo=github.com/acme/payments&commit=c0ffee":                     {`commit "c0ffee" is not a commit SHA (7 to 64 hex digits)`},
		"repo=github.com/acme/payments&commit=main":                       {`commit "main" is not a commit SHA`},
		"repo=github.com/acme/payments&commit=" + strings.Repeat("a", 65): {"is not a commit SHA"},
		"repo=github.com/acme/payments&commit=c0ffee1%20OR%201":           {`commit "c0ffee1 OR 1" is not a commit SHA`},
	} {
		a := get(t, srv, "/v1/changes?"+q, "")
		if a.code != http.StatusBadRequest {
			t.Errorf("%q: %d %s, want 400", q, a.code, a.body)
			continue
		}
		msg := errorOf(t, a)
		for _, w := range want {
			if !strings.Contains(msg, w) {
				t.Errorf("%q: error %q does not say %q", q, msg, w)
			}
		}
	}
}

func TestChangesRoles(t *testing.T) {
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("producer %s ci\ngate %s deployer\nauditor %s sox-audit\nadmin %s ops\n",
		auth.Hash("tok-producer"), auth.Hash("tok-gate"), auth.Hash("tok-auditor"), auth.Hash("tok-admin"))))
	if err != nil {
		t.Fatal(err)
	}
	srv := changesServer(t, correlate.StateReader{State: scenarioState(t, "squash_merge", 0)}, tokens)
	id := "/v1/changes/" + url.PathEscape("github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12")
	list := "/v1/changes?repo=github.com/acme/payments&commit=c0ffee1"
	for _, p := range []string{id, list} {
		for token, want := range map[string]int{"": 401, "nope": 401, "tok-producer": 403, "tok-gate": 403, "tok-auditor": 200, "tok-admin": 200} {
			a := get(t, srv, p, token)
			if a.code != want {
				t.Errorf("%s with %q: %d %s, want %d", p, token, a.code, a.body, want)
				continue
			}
			if want == 403 && !strings.Contains(errorOf(t, a), "needs role auditor") {
				t.Errorf("%s with %q: %s", p, token, a.body)
			}
		}
	}
}

func TestChangesRoutesNeedAReader(t *testing.T) {
	srv := apitest.NewServer(t, api.New(api.Config{}))
	defer srv.Close()
	for _, p := range []string{"/v1/changes/x", "/v1/changes?repo=github.com/a/b&commit=c0ffee1"} {
		if a := get(t, srv, p, ""); a.code != http.StatusNotFound {
			t.Errorf("%s without a reader: %d", p, a.code)
		}
	}
}

// failingReader is a Reader whose store is unavailable.
type failingReader struct{}

var errKV = errors.New("nats: key-value bucket unavailable")

func (failingReader) Change(context.Context, string) (correlate.Record, bool, error) {
	return correlate.Record{}, false, errKV
}

func (failingReader) ChangesOf(context.Context, string, string) ([]correlate.Record, error) {
	return nil, errKV
}

func TestChangesReaderError(t *testing.T) {
	srv := changesServer(t, failingReader{}, nil)
	for _, p := range []string{"/v1/changes/github.com/acme/payments@c0ffee1", "/v1/changes?repo=github.com/acme/payments&commit=c0ffee1"} {
		a := get(t, srv, p, "")
		if a.code != http.StatusInternalServerError || !strings.Contains(errorOf(t, a), errKV.Error()) {
			t.Errorf("%s: %d %s", p, a.code, a.body)
		}
	}
}
