package api_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/jobtoken"
	"github.com/evidencepipeline/evidence/internal/jobtoken/jobtokentest"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/schemas"
)

const (
	jobAud  = "https://evidence.example"
	jobSHA  = "0123456789abcdef0123456789abcdef01234567"
	otherSH = "89abcdef0123456789abcdef0123456789abcdef"
	deploy  = "dev.evidencepipeline.deployment.finished.v1"
)

type jobFixture struct {
	srv *httptest.Server
	js  *testenv.JetStream
	is  *jobtokentest.Issuer
}

// newJobFixture is a receiver with one static producer token
// ("tok-producer") and the local issuer's job tokens.
func newJobFixture(t *testing.T, extra ...jobtoken.Issuer) *jobFixture {
	t.Helper()
	js := testenv.NATS(t)
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Parse(strings.NewReader("producer " + auth.Hash("tok-producer") + " ci\n"))
	if err != nil {
		t.Fatal(err)
	}
	is := jobtokentest.New(t)
	v, err := jobtoken.New(jobtoken.Config{Issuers: append([]jobtoken.Issuer{{URL: is.URL, Audience: jobAud}}, extra...)})
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Config{Publisher: bus.NewPublisher(js.JS), Catalog: cat, Tokens: tokens, JobTokens: v})
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &jobFixture{srv: srv, js: js, is: is}
}

// post sends one structured event with the bearer token and returns the
// status and every string of the JSON answer, joined (the reason is in
// one of them, whatever the error format names its member).
func (f *jobFixture) post(t *testing.T, token, event string) (int, string, api.EventsResponse) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/events", strings.NewReader(event))
	req.Header.Set("Content-Type", api.MediaStructured)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("answer is not JSON: %s", b)
	}
	var er api.EventsResponse
	_ = json.Unmarshal(b, &er)
	return resp.StatusCode, strings.Join(stringsOf(v), " | "), er
}

func stringsOf(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		var out []string
		for _, e := range x {
			out = append(out, stringsOf(e)...)
		}
		return out
	case map[string]any:
		var out []string
		for _, e := range x {
			out = append(out, stringsOf(e)...)
		}
		return out
	}
	return nil
}

func (f *jobFixture) stored(t *testing.T) uint64 {
	t.Helper()
	s, err := f.js.JS.Stream(context.Background(), bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// deployEvent is a deployment.finished of the pipeline github-actions:WF
// (the CI system of the local issuer's tokens), as evidence emit deploy
// writes it in a workflow run, with data members replaced by over.
func deployEvent(id, repo, commit, run, wf string, over map[string]any) string {
	d := map[string]any{
		"environment": "production", "service": "app", "outcome": "success",
		"repository": repo, "commit": commit, "run_id": run, "pipeline": wf, "system": "github-actions",
		"deployer":     map[string]any{"login": "github-actions:" + wf, "type": "service", "name": wf},
		"triggered_by": map[string]any{"login": "alice", "type": "user"},
		"finished_at":  "2026-11-25T10:00:00Z",
	}
	for k, v := range over {
		if v == nil {
			delete(d, k)
		} else {
			d[k] = v
		}
	}
	b, _ := json.Marshal(d)
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"https://ci.example/octo","type":%q,"data":%s}`, id, deploy, b)
}

// Every token or event the job token does not speak for is refused, with
// the status and the reason; nothing is stored.
func TestJobTokenRefusals(t *testing.T) {
	f := newJobFixture(t)
	is := f.is
	const repo = "127.0.0.1/octo/app" // the local issuer's repositories are on its host
	claims := func(over map[string]any) map[string]any {
		return is.GitHubClaims(jobAud, "octo/app", "release", "42", jobSHA, over)
	}
	good := is.Sign(t, claims(nil))
	ev := func(over map[string]any) string { return deployEvent("d-1", repo, jobSHA, "42", "release", over) }
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other := jobtokentest.New(t)
	past := time.Now().Add(-3 * time.Hour)
	forged := `{"specversion":"1.0","id":"f-1","source":"https://ci.example/octo","type":"` + deploy + `","authtype":"service_account","authid":"repo:octo/app","authclaims":"{}","data":{"environment":"production","service":"app","outcome":"success","repository":"` + repo + `","commit":"` + jobSHA + `"}}`

	for _, tc := range []struct {
		name, token, event string
		code               int
		reason             string
	}{
		{"expired", is.Sign(t, claims(map[string]any{"iat": past.Unix(), "nbf": past.Unix(), "exp": past.Add(time.Hour).Unix()})), ev(nil),
			401, "CI job token refused: the token expired at " + past.Add(time.Hour).UTC().Format(time.RFC3339)},
		{"wrong audience", is.Sign(t, claims(map[string]any{"aud": "sts.amazonaws.com"})), ev(nil),
			401, `CI job token refused: expected audience "` + jobAud + `" got ["sts.amazonaws.com"]`},
		{"wrong issuer", other.Sign(t, other.GitHubClaims(jobAud, "octo/app", "release", "42", jobSHA, nil)), ev(nil),
			401, `CI job token refused: issuer "` + other.URL + `" is not a configured job token issuer`},
		{"unknown key", jobtokentest.SignWith(t, stranger, "key-404", claims(nil)), ev(nil),
			401, `CI job token refused: unknown key: the token is signed with key "key-404"`},
		{"bad signature", jobtokentest.SignWith(t, stranger, is.KeyID(), claims(nil)), ev(nil),
			401, `CI job token refused: bad signature`},
		{"unknown static token of JWT shape, not signed", "eyJhbGciOiJSUzI1NiJ9.e30.AAAA", ev(nil),
			401, "CI job token refused"},
		{"other repository", good, deployEvent("d-1", "127.0.0.1/octo/payments", jobSHA, "42", "release", nil),
			403, "data/repository: 127.0.0.1/octo/payments is not the job token's repository 127.0.0.1/octo/app (claim repository)"},
		{"other repository host", good, deployEvent("d-1", "github.com/octo/app", jobSHA, "42", "release", nil),
			403, "is not the job token's repository 127.0.0.1/octo/app"},
		{"no repository", good, ev(map[string]any{"repository": nil}),
			403, "data/repository: required with a CI job token"},
		{"other sha", good, deployEvent("d-1", repo, otherSH, "42", "release", nil),
			403, "data/commit: " + otherSH + " is not the commit of the job token's run, " + jobSHA + " (claim sha)"},
		{"other run", good, deployEvent("d-1", repo, jobSHA, "43", "release", nil),
			403, "data/run_id: 43 is not the job token's run 42 (claim run_id)"},
		{"other workflow", good, ev(map[string]any{"pipeline": "hotfix"}),
			403, `data/pipeline: "hotfix" is not the job token's workflow "release" (claim workflow)`},
		{"a person as deployer", good, ev(map[string]any{"deployer": map[string]any{"login": "mallory", "type": "user"}}),
			403, "data/deployer: mallory (type user) is not the job token's pipeline github-actions:release (type service)"},
		{"another pipeline as deployer", good, ev(map[string]any{"deployer": map[string]any{"login": "github-actions:hotfix", "type": "service"}}),
			403, "data/deployer: github-actions:hotfix (type service) is not the job token's pipeline github-actions:release"},
		{"other system", good, ev(map[string]any{"system": "jenkins"}),
			403, `data/system: "jenkins" is not the job token's CI system "github-actions"`},
		{"other trigger", good, ev(map[string]any{"triggered_by": map[string]any{"login": "mallory", "type": "user"}}),
			403, "data/triggered_by: mallory is not who started the job token's run, alice (claim actor)"},
		{"a type that is no CI run's evidence", good,
			`{"specversion":"1.0","id":"r-1","source":"https://github.com/octo/app","type":"dev.evidencepipeline.review.submitted.v1","data":{"repository":"` + repo + `","change":{"number":7},"reviewer":{"login":"bob"},"decision":"approved","head_commit":"` + jobSHA + `"}}`,
			403, "type: a CI job token posts only its run's own evidence"},
		{"Auth Context sent by a job token", good, forged,
			400, "the Auth Context (authtype, authid, authclaims) is set by evidenced from a verified CI job token"},
		{"Auth Context sent by a static token", "tok-producer", forged,
			400, "the Auth Context (authtype, authid, authclaims) is set by evidenced from a verified CI job token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := f.stored(t)
			code, reason, _ := f.post(t, tc.token, tc.event)
			if code != tc.code || !strings.Contains(reason, tc.reason) {
				t.Errorf("got %d %q\nwant %d with %q", code, reason, tc.code, tc.reason)
			}
			if n := f.stored(t); n != before {
				t.Errorf("stored %d events, want none", n-before)
			}
		})
	}
}

// A good job token posts its run's deployment: the stored event carries
// the verified claims as its Auth Context. A re-run attempt may be
// triggered by someone else than the run's actor. A static token keeps
// working, and its events carry no Auth Context.
func TestJobTokenAccepted(t *testing.T) {
	f := newJobFixture(t)
	is := f.is
	const repo = "127.0.0.1/octo/app"
	tok := is.Sign(t, is.GitHubClaims(jobAud, "Octo/App", "release", "42", jobSHA, nil))
	code, reason, r := f.post(t, tok, deployEvent("d-ok", repo, jobSHA, "42", "release", nil))
	if code != 202 || r.Stored != 1 {
		t.Fatalf("job token: %d %s", code, reason)
	}
	e := f.event(t, r.Events[0].Seq)
	c, ok, err := e.JobClaims()
	if err != nil || !ok {
		t.Fatalf("stored event's claims: %v %v (extensions %s)", ok, err, e.ExtensionsJSON())
	}
	want := ce.JobClaims{Issuer: is.URL, Subject: "repo:Octo/App:ref:refs/heads/main", Audience: jobAud, System: "github-actions",
		Repository: repo, Workflow: "release", JobWorkflowRef: "Octo/App/.github/workflows/release.yml@refs/heads/main",
		RunID: "42", RunAttempt: "1", Actor: "alice", Ref: "refs/heads/main", SHA: jobSHA}
	if *c != want {
		t.Errorf("claims %+v\nwant %+v", *c, want)
	}
	if got := string(e.Extensions[ce.ExtAuthType]) + " " + string(e.Extensions[ce.ExtAuthID]); got != `"service_account" "repo:Octo/App:ref:refs/heads/main"` {
		t.Errorf("authtype authid: %s", got)
	}

	rerun := is.Sign(t, is.GitHubClaims(jobAud, "octo/app", "release", "42", jobSHA, map[string]any{"run_attempt": "2"}))
	code, reason, _ = f.post(t, rerun, deployEvent("d-rerun", repo, jobSHA, "42", "release", map[string]any{"triggered_by": map[string]any{"login": "bob", "type": "user"}}))
	if code != 202 {
		t.Errorf("re-run by another person: %d %s", code, reason)
	}

	// A pull request run's token names the merge commit GitHub made; its
	// evidence names the head, which the token cannot vouch for.
	pr := is.Sign(t, is.GitHubClaims(jobAud, "octo/app", "ci", "43", jobSHA, map[string]any{"ref": "refs/pull/7/merge"}))
	code, reason, _ = f.post(t, pr, deployEvent("d-pr", repo, otherSH, "43", "ci", map[string]any{"environment": "preview"}))
	if code != 202 {
		t.Errorf("pull request run with its head commit: %d %s", code, reason)
	}

	code, reason, r = f.post(t, "tok-producer", deployEvent("d-static", "github.com/octo/other", otherSH, "7", "release", nil))
	if code != 202 {
		t.Fatalf("static token: %d %s", code, reason)
	}
	if e := f.event(t, r.Events[0].Seq); len(e.Extensions) != 0 {
		t.Errorf("a static token's event has extensions %s", e.ExtensionsJSON())
	}
}

// An issuer whose keys cannot be read gives 503: the token may be good.
func TestJobTokenIssuerDown(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL + "/_services/token"
	down.Close()
	f := newJobFixture(t, jobtoken.Issuer{URL: url, Audience: jobAud})
	tok := f.is.Sign(t, f.is.GitHubClaims(jobAud, "octo/app", "release", "42", jobSHA, map[string]any{"iss": url}))
	code, reason, _ := f.post(t, tok, deployEvent("d-1", "127.0.0.1/octo/app", jobSHA, "42", "release", nil))
	if code != 503 || !strings.Contains(reason, "cannot read the keys of job token issuer "+url) {
		t.Errorf("got %d %q, want 503 naming the issuer", code, reason)
	}
}

func (f *jobFixture) event(t *testing.T, seq uint64) *ce.Event {
	t.Helper()
	s, err := f.js.JS.Stream(context.Background(), bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	e, err := ce.ParseStored(m.Data)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
