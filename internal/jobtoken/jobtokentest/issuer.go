// Package jobtokentest is a local OIDC issuer for tests: an httptest
// server on loopback serving /.well-known/openid-configuration and its
// JWKS, signing job tokens with RSA keys generated in the test. Its URL
// ends in /_services/token (the form of a GitHub Enterprise Server
// issuer), so the verifier takes its tokens as GitHub Actions tokens of
// repositories on host 127.0.0.1; GitLab serves its issuer at the root,
// which NewAt("") gives.
package jobtokentest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a running local issuer.
type Issuer struct {
	// URL is the issuer (a token's iss).
	URL string
	srv *httptest.Server

	mu   sync.Mutex
	key  *rsa.PrivateKey
	kid  string
	keys []jose.JSONWebKey // published
	n    int

	// JWKSFetches counts the requests for the keys.
	JWKSFetches atomic.Int64
}

// New starts a GitHub-style issuer (path /_services/token).
func New(t testing.TB) *Issuer { return NewAt(t, "/_services/token") }

// NewAt starts an issuer whose URL has the given path ("" for the root,
// as GitLab's).
func NewAt(t testing.TB, path string) *Issuer {
	t.Helper()
	is := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+path+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": is.URL, "jwks_uri": is.URL + "/.well-known/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"id_token"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("GET "+path+"/.well-known/jwks", func(w http.ResponseWriter, r *http.Request) {
		is.JWKSFetches.Add(1)
		is.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), is.keys...)}
		is.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	is.srv = httptest.NewServer(mux)
	t.Cleanup(is.srv.Close)
	is.URL = is.srv.URL + path
	is.Rotate(t, false)
	return is
}

// Rotate makes a new signing key with a new kid and publishes it; keep
// says whether the old key stays published beside it.
func (is *Issuer) Rotate(t testing.TB, keep bool) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is.mu.Lock()
	defer is.mu.Unlock()
	is.n++
	is.key, is.kid = k, fmt.Sprintf("key-%d", is.n)
	pub := jose.JSONWebKey{Key: &k.PublicKey, KeyID: is.kid, Algorithm: string(jose.RS256), Use: "sig"}
	if keep {
		is.keys = append(is.keys, pub)
	} else {
		is.keys = []jose.JSONWebKey{pub}
	}
}

// KeyID is the current signing key's id.
func (is *Issuer) KeyID() string {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.kid
}

// Sign signs claims with the current key.
func (is *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	is.mu.Lock()
	k, kid := is.key, is.kid
	is.mu.Unlock()
	return SignWith(t, k, kid, claims)
}

// SignWith signs claims with any key, naming kid in the header.
func SignWith(t testing.TB, k *rsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader(jose.HeaderKey("kid"), kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: k}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := sig.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// GitHubClaims are the claims of a GitHub Actions job token of repository
// (owner/name) for the issuer and audience, valid from a minute ago for
// an hour, with the given overrides (a nil value deletes a claim).
func (is *Issuer) GitHubClaims(audience, repository, workflow, runID, sha string, over map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{
		"iss": is.URL, "aud": audience, "sub": "repo:" + repository + ":ref:refs/heads/main",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti":        fmt.Sprintf("jti-%d", now.UnixNano()),
		"repository": repository, "repository_owner": "octo", "workflow": workflow,
		"job_workflow_ref": repository + "/.github/workflows/release.yml@refs/heads/main",
		"workflow_ref":     repository + "/.github/workflows/release.yml@refs/heads/main",
		"ref":              "refs/heads/main", "ref_type": "branch", "run_id": runID, "run_number": "7", "run_attempt": "1",
		"actor": "alice", "sha": sha, "event_name": "push", "runner_environment": "github-hosted",
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}
