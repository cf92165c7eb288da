package jobtoken_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/jobtoken"
	"github.com/evidencepipeline/evidence/internal/jobtoken/jobtokentest"
)

const (
	aud = "https://evidence.example"
	sha = "0123456789abcdef0123456789abcdef01234567"
)

func newVerifier(t *testing.T, minRefresh time.Duration, issuers ...jobtoken.Issuer) *jobtoken.Verifier {
	t.Helper()
	v, err := jobtoken.New(jobtoken.Config{Issuers: issuers, MinRefresh: minRefresh})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A GitHub-style token gives the claims worked out by hand from what was
// signed: the repository on the issuer's host (a GitHub Enterprise
// Server issuer, HOST/_services/token), the run, the workflow.
func TestVerifyGitHubClaims(t *testing.T) {
	is := jobtokentest.New(t)
	v := newVerifier(t, 0, jobtoken.Issuer{URL: is.URL, Audience: aud})
	tok := is.Sign(t, is.GitHubClaims(aud, "Octo/App", "release", "4242", strings.ToUpper(sha), map[string]any{"run_attempt": "2"}))
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := &ce.JobClaims{
		Issuer: is.URL, Subject: "repo:Octo/App:ref:refs/heads/main", Audience: aud, System: "github-actions",
		Repository: "127.0.0.1/octo/app", Workflow: "release",
		JobWorkflowRef: "Octo/App/.github/workflows/release.yml@refs/heads/main",
		RunID:          "4242", RunAttempt: "2", Actor: "alice", Ref: "refs/heads/main", SHA: sha,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
}

// A GitLab issuer (at the root of its server) gives GitLab's claims, the
// numbers GitLab sends as strings or (other issuers) numbers alike.
func TestVerifyGitLabClaims(t *testing.T) {
	is := jobtokentest.NewAt(t, "")
	v := newVerifier(t, 0, jobtoken.Issuer{URL: is.URL, Audience: aud})
	now := time.Now()
	tok := is.Sign(t, map[string]any{
		"iss": is.URL, "aud": aud, "sub": "project_path:group/app:ref_type:branch:ref:main",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"project_path": "group/app", "pipeline_id": "991", "job_id": 12345, "ref": "main", "user_login": "bob", "sha": sha,
		"namespace_path": "group",
	})
	got, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := &ce.JobClaims{
		Issuer: is.URL, Subject: "project_path:group/app:ref_type:branch:ref:main", Audience: aud, System: "gitlab-ci",
		Repository: "127.0.0.1/group/app", ProjectPath: "group/app", PipelineID: "991", JobID: "12345",
		UserLogin: "bob", Ref: "main", SHA: sha,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("claims (-want +got):\n%s", d)
	}
	if got.Run() != "991" || got.Trigger() != "bob" || got.Pipeline() != "" {
		t.Errorf("Run %q Trigger %q Pipeline %q", got.Run(), got.Trigger(), got.Pipeline())
	}
}

// Each bad token is refused, and the reason says what is wrong.
func TestVerifyRefusals(t *testing.T) {
	is := jobtokentest.New(t)
	other := jobtokentest.New(t) // an issuer that is not configured
	v := newVerifier(t, 0, jobtoken.Issuer{URL: is.URL, Audience: aud})
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	good := func(over map[string]any) map[string]any {
		return is.GitHubClaims(aud, "octo/app", "release", "42", sha, over)
	}
	past := time.Now().Add(-2 * time.Hour)
	for _, tc := range []struct {
		name, token, want string
	}{
		{"expired", is.Sign(t, good(map[string]any{"iat": past.Unix(), "nbf": past.Unix(), "exp": past.Add(time.Hour).Unix()})),
			"the token expired at " + past.Add(time.Hour).UTC().Format(time.RFC3339)},
		{"wrong audience", is.Sign(t, good(map[string]any{"aud": "https://github.com/octo"})),
			`expected audience "` + aud + `" got ["https://github.com/octo"]`},
		{"wrong issuer", other.Sign(t, other.GitHubClaims(aud, "octo/app", "release", "42", sha, nil)),
			`issuer "` + other.URL + `" is not a configured job token issuer (--oidc-issuer: ` + is.URL + `)`},
		{"issuer claim of another issuer, signed by this one", is.Sign(t, good(map[string]any{"iss": "https://token.actions.githubusercontent.com"})),
			`issuer "https://token.actions.githubusercontent.com" is not a configured job token issuer`},
		{"unknown key", jobtokentest.SignWith(t, stranger, "key-99", good(nil)),
			`unknown key: the token is signed with key "key-99", which issuer ` + is.URL + ` does not list`},
		{"bad signature", jobtokentest.SignWith(t, stranger, is.KeyID(), good(nil)),
			`bad signature: the token does not verify with key "` + is.KeyID() + `" of issuer ` + is.URL},
		{"not yet valid", is.Sign(t, good(map[string]any{"nbf": time.Now().Add(time.Hour).Unix()})),
			"before the nbf (not before) time"},
		{"no run", is.Sign(t, good(map[string]any{"run_id": nil})),
			"not a github-actions job token: it has no run_id claim"},
		{"no repository nor workflow", is.Sign(t, good(map[string]any{"repository": nil, "workflow": nil})),
			"not a github-actions job token: it has no repository, workflow claim"},
		{"not a JWT", "evd_0123.abc.def", "not a signed JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tc.token)
			if err == nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("reason %q\nwant it to contain %q", err, tc.want)
			}
			var ue *jobtoken.UnavailableError
			if errors.As(err, &ue) {
				t.Errorf("a refused token is not an unavailable issuer: %v", err)
			}
		})
	}
}

// A token signed with a new key (new kid) is verified: the verifier reads
// the issuer's keys again; tokens of the old key, no longer published,
// are then refused as of an unknown key.
func TestKeyRotation(t *testing.T) {
	is := jobtokentest.New(t)
	v := newVerifier(t, -1, jobtoken.Issuer{URL: is.URL, Audience: aud})
	claims := is.GitHubClaims(aud, "octo/app", "release", "42", sha, nil)
	old := is.Sign(t, claims)
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), old); err != nil {
		t.Fatal(err)
	}
	if n := is.JWKSFetches.Load(); n != 1 {
		t.Errorf("keys read %d times for two tokens of one key, want 1 (cached)", n)
	}
	oldKid := is.KeyID()
	is.Rotate(t, false)
	if _, err := v.Verify(context.Background(), is.Sign(t, claims)); err != nil {
		t.Fatalf("token of the rotated key: %v", err)
	}
	if n := is.JWKSFetches.Load(); n != 2 {
		t.Errorf("keys read %d times, want 2 (once more for the new kid)", n)
	}
	_, err := v.Verify(context.Background(), old)
	if err == nil || !strings.Contains(err.Error(), `unknown key: the token is signed with key "`+oldKid+`"`) {
		t.Errorf("token of the retired key: %v", err)
	}
}

// Keys are read at most once per MinRefresh, however many tokens of
// made-up kids come at once: each waits for its turn and is refused as of
// an unknown key, and the issuer sees one request per MinRefresh at most.
func TestUnknownKeyRefreshIsBounded(t *testing.T) {
	const minRefresh = 200 * time.Millisecond
	is := jobtokentest.New(t)
	v := newVerifier(t, minRefresh, jobtoken.Issuer{URL: is.URL, Audience: aud})
	claims := is.GitHubClaims(aud, "octo/app", "release", "42", sha, nil)
	if _, err := v.Verify(context.Background(), is.Sign(t, claims)); err != nil {
		t.Fatal(err)
	}
	stranger, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	toks := make([]string, n)
	for i := range toks {
		toks[i] = jobtokentest.SignWith(t, stranger, fmt.Sprintf("made-up-%d", i), claims)
	}
	start := time.Now()
	errs := make(chan error, n)
	for _, tok := range toks {
		go func() {
			_, err := v.Verify(context.Background(), tok)
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("a token of a made-up key: %v", err)
		}
	}
	elapsed := time.Since(start)
	// One read at the first token, then at most one per MinRefresh of
	// the time the tokens took (and one for the period under way).
	if got, max := is.JWKSFetches.Load(), 2+int64(elapsed/minRefresh); got > max {
		t.Errorf("keys read %d times in %s, want at most %d", got, elapsed, max)
	}
	if got := is.JWKSFetches.Load(); got < 2 {
		t.Errorf("keys read %d times: the made-up kids never had them read again", got)
	}
}

// An issuer that cannot be reached gives an UnavailableError (503), not a
// refusal: the token may be good.
func TestIssuerUnavailable(t *testing.T) {
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL + "/_services/token"
	down.Close()
	is := jobtokentest.New(t)
	v := newVerifier(t, 0, jobtoken.Issuer{URL: url, Audience: aud})
	claims := is.GitHubClaims(aud, "octo/app", "release", "42", sha, map[string]any{"iss": url})
	_, err := v.Verify(context.Background(), is.Sign(t, claims))
	var ue *jobtoken.UnavailableError
	if !errors.As(err, &ue) || ue.Issuer != url {
		t.Fatalf("got %v, want an UnavailableError of %s", err, url)
	}
}

func TestParseIssuer(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want jobtoken.Issuer
		err  string
	}{
		{in: "https://token.actions.githubusercontent.com=https://evidence.example", want: jobtoken.Issuer{URL: "https://token.actions.githubusercontent.com", Audience: "https://evidence.example"}},
		{in: " https://gitlab.example.com/ = evidence ", want: jobtoken.Issuer{URL: "https://gitlab.example.com", Audience: "evidence"}},
		{in: "http://127.0.0.1:9000=evidence", want: jobtoken.Issuer{URL: "http://127.0.0.1:9000", Audience: "evidence"}},
		{in: "https://token.actions.githubusercontent.com", err: "want ISSUER_URL=AUDIENCE"},
		{in: "https://gitlab.com=", err: "want ISSUER_URL=AUDIENCE"},
		{in: "http://gitlab.example.com=evidence", err: "an issuer is https (http only on loopback"},
		{in: "gitlab.com=evidence", err: "absolute URL"},
		{in: "https://gitlab.com?x=1=evidence", err: "without query"},
	} {
		got, err := jobtoken.ParseIssuer(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: got %v, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%q: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ url, system, host string }{
		{"https://token.actions.githubusercontent.com", "github-actions", "github.com"},
		{"https://ghe.example.com/_services/token", "github-actions", "ghe.example.com"},
		{"https://gitlab.com", "gitlab-ci", "gitlab.com"},
		{"https://GitLab.Example.com:8443", "gitlab-ci", "gitlab.example.com"},
	} {
		is := jobtoken.Issuer{URL: tc.url}
		if is.System() != tc.system || is.RepositoryHost() != tc.host {
			t.Errorf("%s: system %q host %q, want %q %q", tc.url, is.System(), is.RepositoryHost(), tc.system, tc.host)
		}
	}
}
