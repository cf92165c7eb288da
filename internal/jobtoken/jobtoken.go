// Package jobtoken verifies CI job tokens: the OIDC ID tokens that GitHub
// Actions (permissions: id-token: write) and GitLab CI (id_tokens) give a
// running job, which evidenced accepts as a producer's bearer credential
// (docs/ci.md, "OIDC job tokens"). A token is verified with
// github.com/coreos/go-oidc against the keys of its issuer, which must be
// one of the configured issuers, each with the audience its tokens must
// name: signature, issuer, audience, expiry and not-before.
//
// An issuer's discovery document (ISSUER/.well-known/openid-configuration)
// is read at its first token, and its keys (the document's jwks_uri) are
// cached; a token signed with a key id the cache does not hold makes the
// verifier read the keys again (the issuer rotated them), at most once per
// Config.MinRefresh (such a token waits for the rest of it), so that a
// flood of tokens with made-up key ids does not become a flood of
// requests to the issuer.
//
// The claims that identify the run (ce.JobClaims) are returned; which CI
// system a token is from follows from its issuer, not from its claims:
// https://token.actions.githubusercontent.com (and a GitHub Enterprise
// Server's https://HOST/_services/token) is GitHub Actions, any other
// issuer GitLab CI (gitlab.com or self-managed).
package jobtoken

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// GitHubIssuer is the issuer of GitHub Actions' job tokens on github.com.
const GitHubIssuer = "https://token.actions.githubusercontent.com"

// The CI systems (the catalog's ci_system slugs).
const (
	GitHubActions = "github-actions"
	GitLabCI      = "gitlab-ci"
)

// Issuer is one trusted issuer and the audience its tokens must name.
type Issuer struct {
	URL      string
	Audience string
}

// ParseIssuer reads URL=AUDIENCE (the --oidc-issuer flag's form). The URL
// is https, or http on a loopback address (for tests); it is kept as given
// without a trailing slash, since a token's iss must equal it exactly.
func ParseIssuer(s string) (Issuer, error) {
	u, aud, ok := strings.Cut(strings.TrimSpace(s), "=")
	u, aud = strings.TrimSpace(u), strings.TrimSpace(aud)
	if !ok || u == "" || aud == "" {
		return Issuer{}, fmt.Errorf("%q: want ISSUER_URL=AUDIENCE, e.g. %s=https://evidence.example.com", s, GitHubIssuer)
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" || pu.RawQuery != "" || pu.Fragment != "" || pu.User != nil {
		return Issuer{}, fmt.Errorf("%q: the issuer must be an absolute URL without query, fragment or credentials", u)
	}
	switch pu.Scheme {
	case "https":
	case "http":
		if !isLoopback(pu.Hostname()) {
			return Issuer{}, fmt.Errorf("%q: an issuer is https (http only on loopback, for tests)", u)
		}
	default:
		return Issuer{}, fmt.Errorf("%q: an issuer is https", u)
	}
	return Issuer{URL: strings.TrimSuffix(u, "/"), Audience: aud}, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	return strings.HasPrefix(host, "127.") || host == "::1"
}

// System is the CI system whose tokens the issuer signs.
func (i Issuer) System() string {
	u, err := url.Parse(i.URL)
	if err == nil && (strings.EqualFold(u.Host, "token.actions.githubusercontent.com") || strings.HasSuffix(u.Path, "/_services/token")) {
		return GitHubActions
	}
	return GitLabCI
}

// RepositoryHost is the host of the repositories whose jobs the issuer
// signs tokens for, the first part of the repository key: github.com for
// GitHub's issuer, the server's host for GitHub Enterprise Server
// (HOST/_services/token) and GitLab.
func (i Issuer) RepositoryHost() string {
	u, err := url.Parse(i.URL)
	if err != nil {
		return ""
	}
	if strings.EqualFold(u.Host, "token.actions.githubusercontent.com") {
		return "github.com"
	}
	return strings.ToLower(u.Hostname())
}

// Config is what a Verifier is built from.
type Config struct {
	// Issuers are the trusted issuers; at least one.
	Issuers []Issuer
	// HTTPClient reads discovery documents and keys (default: a client
	// with a 10s timeout).
	HTTPClient *http.Client
	// MinRefresh: an issuer's keys are read again for an unknown key id
	// at most this often (default 5s; negative: every time).
	MinRefresh time.Duration
	// Now is the clock of the expiry checks (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Verifier verifies job tokens of the configured issuers. It is safe for
// concurrent use.
type Verifier struct {
	cfg     Config
	issuers map[string]*issuer
}

// New checks the configuration; nothing is fetched until the first token.
func New(cfg Config) (*Verifier, error) {
	if len(cfg.Issuers) == 0 {
		return nil, errors.New("jobtoken: no issuer configured")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{cfg: cfg, issuers: map[string]*issuer{}}
	for _, is := range cfg.Issuers {
		if _, dup := v.issuers[is.URL]; dup {
			return nil, fmt.Errorf("jobtoken: issuer %s is configured twice", is.URL)
		}
		v.issuers[is.URL] = &issuer{Issuer: is, v: v}
	}
	return v, nil
}

// LooksLikeJWT reports whether a bearer token has the shape of a JWT in
// the compact form (three base64url parts, the first a JSON header): the
// receiver tries such a token as a job token when it is no static token.
func LooksLikeJWT(tok string) bool {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || len(parts[0]) < 4 || parts[0][0] != 'e' {
		return false
	}
	return true
}

// UnavailableError says an issuer's discovery document or keys could not
// be read: the token may be good, evidenced cannot tell (HTTP 503).
type UnavailableError struct {
	Issuer string
	Err    error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("cannot read the keys of job token issuer %s: %v", e.Issuer, e.Err)
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// algs are the signature algorithms accepted (GitHub and GitLab sign with
// RS256).
var algs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.EdDSA}

// Verify verifies a job token and returns its claims. A refused token's
// error says why (issuer not configured, unknown key, bad signature,
// wrong audience, expired, not a job token); an *UnavailableError means
// the issuer's keys could not be read.
func (v *Verifier) Verify(ctx context.Context, raw string) (*ce.JobClaims, error) {
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return nil, fmt.Errorf("not a signed JWT: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("a job token has one signature, this one %d", len(jws.Signatures))
	}
	var head struct {
		Issuer string `json:"iss"`
	}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &head); err != nil {
		return nil, fmt.Errorf("the token's claims are not a JSON object: %v", err)
	}
	is, ok := v.issuers[head.Issuer]
	if !ok {
		return nil, fmt.Errorf("issuer %q is not a configured job token issuer (--oidc-issuer: %s)", head.Issuer, strings.Join(v.issuerURLs(), ", "))
	}
	return is.verify(ctx, raw, jws.Signatures[0].Header.KeyID)
}

func (v *Verifier) issuerURLs() []string {
	out := make([]string, 0, len(v.issuers))
	for u := range v.issuers {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// issuer is one issuer's state: its discovery document, keys and
// go-oidc verifier, made at its first token.
type issuer struct {
	Issuer
	v *Verifier

	mu       sync.Mutex // guards the fields below and serialises fetches
	jwksURI  string
	algs     []string
	keys     []jose.JSONWebKey
	fetched  time.Time // when keys were last read
	verifier *gooidc.IDTokenVerifier
}

func (is *issuer) verify(ctx context.Context, raw, kid string) (*ce.JobClaims, error) {
	if err := is.keysFor(ctx, kid); err != nil {
		return nil, err
	}
	is.mu.Lock()
	verifier := is.verifier
	is.mu.Unlock()
	tok, err := verifier.Verify(gooidc.ClientContext(ctx, is.v.cfg.HTTPClient), raw)
	if err != nil {
		var exp *gooidc.TokenExpiredError
		if errors.As(err, &exp) {
			return nil, fmt.Errorf("the token expired at %s", exp.Expiry.UTC().Format(time.RFC3339))
		}
		msg := strings.TrimPrefix(err.Error(), "oidc: ")
		if strings.Contains(msg, "failed to verify signature") {
			msg = fmt.Sprintf("bad signature: the token does not verify with key %q of issuer %s", kid, is.URL)
		}
		return nil, errors.New(msg)
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return nil, fmt.Errorf("the token's claims: %v", err)
	}
	return is.jobClaims(tok, &c)
}

// keysFor makes sure the issuer's keys are known and hold kid, reading the
// discovery document at the first token and the keys again for a key id
// not seen. Keys are read at most once per MinRefresh: a token of an
// unknown kid that comes sooner waits for the rest of that time (without
// holding up tokens of known keys) and then has them read, so that a new
// key is found soon after it is published while made-up kids cost the
// issuer one request per MinRefresh at most. The error for a kid the
// issuer does not list says so.
func (is *issuer) keysFor(ctx context.Context, kid string) error {
	waited := false
	for {
		is.mu.Lock()
		if is.verifier == nil {
			if err := is.discover(ctx); err != nil {
				is.mu.Unlock()
				return &UnavailableError{Issuer: is.URL, Err: err}
			}
		}
		if has(is.keys, kid) {
			is.mu.Unlock()
			return nil
		}
		wait := is.v.cfg.MinRefresh - time.Since(is.fetched)
		if is.fetched.IsZero() || is.v.cfg.MinRefresh < 0 || wait <= 0 {
			keys, err := is.fetchKeys(ctx)
			if err != nil {
				is.mu.Unlock()
				return &UnavailableError{Issuer: is.URL, Err: err}
			}
			is.keys, is.fetched = keys, time.Now()
			found := has(keys, kid)
			is.mu.Unlock()
			is.v.cfg.Log.Info("job token issuer keys read", "issuer", is.URL, "keys", len(keys), "for_kid", kid, "found", found)
			if found {
				return nil
			}
			return is.unknownKey(kid)
		}
		is.mu.Unlock()
		if waited {
			// Read since this token came, and still without its kid.
			return is.unknownKey(kid)
		}
		waited = true
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (is *issuer) unknownKey(kid string) error {
	is.mu.Lock()
	defer is.mu.Unlock()
	if kid == "" {
		return fmt.Errorf("the token names no key (kid) and issuer %s has %d keys", is.URL, len(is.keys))
	}
	return fmt.Errorf("unknown key: the token is signed with key %q, which issuer %s does not list (%s)", kid, is.URL, is.jwksURI)
}

func has(keys []jose.JSONWebKey, kid string) bool {
	if kid == "" {
		return len(keys) == 1
	}
	for _, k := range keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

// discover reads the discovery document and builds the go-oidc verifier on
// the issuer's cached keys.
func (is *issuer) discover(ctx context.Context) error {
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := is.getJSON(ctx, is.URL+"/.well-known/openid-configuration", &doc); err != nil {
		return err
	}
	if doc.Issuer != is.URL {
		return fmt.Errorf("the discovery document names issuer %q, not %q", doc.Issuer, is.URL)
	}
	if doc.JWKSURI == "" {
		return errors.New("the discovery document has no jwks_uri")
	}
	is.jwksURI, is.algs = doc.JWKSURI, doc.Algs
	is.verifier = gooidc.NewVerifier(is.URL, (*cachedKeys)(is), &gooidc.Config{
		ClientID:             is.Audience,
		SupportedSigningAlgs: doc.Algs,
		Now:                  is.v.cfg.Now,
	})
	return nil
}

func (is *issuer) fetchKeys(ctx context.Context) ([]jose.JSONWebKey, error) {
	var set jose.JSONWebKeySet
	if err := is.getJSON(ctx, is.jwksURI, &set); err != nil {
		return nil, err
	}
	keys := set.Keys[:0]
	for _, k := range set.Keys {
		if k.Use == "" || k.Use == "sig" {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func (is *issuer) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := is.v.cfg.HTTPClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: not JSON: %v", u, err)
	}
	return nil
}

// cachedKeys is the issuer's key cache as go-oidc's KeySet: it verifies
// with the cached key of the token's kid and never fetches (keysFor did).
type cachedKeys issuer

func (k *cachedKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, algs)
	if err != nil {
		return nil, err
	}
	kid := jws.Signatures[0].Header.KeyID
	is := (*issuer)(k)
	is.mu.Lock()
	keys := is.keys
	is.mu.Unlock()
	for _, key := range keys {
		if kid == "" || key.KeyID == kid {
			return jws.Verify(&key)
		}
	}
	return nil, fmt.Errorf("no key %q", kid)
}

// str is a claim that GitHub and GitLab give as a string, and others
// might give as a number.
type str string

func (s *str) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch x := v.(type) {
	case string:
		*s = str(x)
	case float64:
		*s = str(strconv.FormatFloat(x, 'f', -1, 64))
	case bool:
		*s = str(strconv.FormatBool(x))
	case nil:
		*s = ""
	default:
		return fmt.Errorf("want a string, got %s", b)
	}
	return nil
}

// claims are the token's claims read (both systems').
type claims struct {
	Repository     str `json:"repository"`
	Workflow       str `json:"workflow"`
	JobWorkflowRef str `json:"job_workflow_ref"`
	RunID          str `json:"run_id"`
	RunAttempt     str `json:"run_attempt"`
	Actor          str `json:"actor"`
	ProjectPath    str `json:"project_path"`
	PipelineID     str `json:"pipeline_id"`
	JobID          str `json:"job_id"`
	UserLogin      str `json:"user_login"`
	Ref            str `json:"ref"`
	SHA            str `json:"sha"`
}

// maxClaim bounds each claim kept (the Auth Context is one extension
// attribute of at most ce.MaxExtValueLen bytes).
const maxClaim = 400

func (is *issuer) jobClaims(tok *gooidc.IDToken, c *claims) (*ce.JobClaims, error) {
	aud := is.Audience
	jc := &ce.JobClaims{
		Issuer: tok.Issuer, Subject: tok.Subject, Audience: aud, System: is.System(),
		Ref: string(c.Ref), SHA: strings.ToLower(string(c.SHA)),
	}
	var need []string
	switch jc.System {
	case GitHubActions:
		jc.Workflow, jc.JobWorkflowRef, jc.RunID, jc.RunAttempt, jc.Actor =
			string(c.Workflow), string(c.JobWorkflowRef), string(c.RunID), string(c.RunAttempt), string(c.Actor)
		if c.Repository != "" {
			jc.Repository = strings.ToLower(is.RepositoryHost() + "/" + string(c.Repository))
		}
		for _, f := range [...]struct{ name, v string }{{"repository", string(c.Repository)}, {"run_id", jc.RunID}, {"workflow", jc.Workflow}} {
			if f.v == "" {
				need = append(need, f.name)
			}
		}
	default:
		jc.ProjectPath, jc.PipelineID, jc.JobID, jc.UserLogin = string(c.ProjectPath), string(c.PipelineID), string(c.JobID), string(c.UserLogin)
		if c.ProjectPath != "" {
			jc.Repository = strings.ToLower(is.RepositoryHost() + "/" + string(c.ProjectPath))
		}
		for _, f := range [...]struct{ name, v string }{{"project_path", jc.ProjectPath}, {"pipeline_id", jc.PipelineID}} {
			if f.v == "" {
				need = append(need, f.name)
			}
		}
	}
	if len(need) > 0 {
		return nil, fmt.Errorf("not a %s job token: it has no %s claim", jc.System, strings.Join(need, ", "))
	}
	for _, v := range [...]string{jc.Subject, jc.Repository, jc.Workflow, jc.JobWorkflowRef, jc.RunID, jc.RunAttempt, jc.Actor, jc.PipelineID, jc.JobID, jc.UserLogin, jc.Ref, jc.SHA} {
		if len(v) > maxClaim {
			return nil, fmt.Errorf("a claim of the token is %d bytes long, more than %d", len(v), maxClaim)
		}
	}
	return jc, nil
}
