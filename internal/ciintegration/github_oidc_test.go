package ciintegration

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/jobtoken/jobtokentest"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
)

// TestGitHubActionOIDC: with oidc-audience the action asks the runner's
// token service (ACTIONS_ID_TOKEN_REQUEST_URL, with the request token,
// for the audience) for the job's OIDC token and sends the evidence with
// it to an evidenced that trusts the issuer; without the job's
// id-token permission the step fails saying so, and without any token
// evidenced refuses the evidence. The issuer is a local one of GitHub
// Enterprise Server's form, so the job's server is http://127.0.0.1.
func TestGitHubActionOIDC(t *testing.T) {
	const aud = "https://evidence.example"
	rel := newRelease(t, false)
	is := jobtokentest.New(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(tokens, []byte("gate "+auth.Hash("tok-gate")+" gate\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := evidenced.Start(t, testenv.DatabaseURL(t), "--tokens-file", tokens, "--oidc-issuer", is.URL+"="+aud)
	server := "http://" + d.Addr()

	asked := 0
	tokenService := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "bearer request-token" || r.URL.Query().Get("api-version") != "2.0" {
			http.Error(w, "bad request token", http.StatusUnauthorized)
			return
		}
		asked++
		claims := is.GitHubClaims(r.URL.Query().Get("audience"), "acme/payments", "release", runID, commit, map[string]any{"actor": "bob"})
		_ = json.NewEncoder(w).Encode(map[string]any{"count": 1, "value": is.Sign(t, claims)})
	}))
	t.Cleanup(tokenService.Close)

	vars := map[string]string{"EVIDENCE_SPOOL_DIR": t.TempDir(), "GITHUB_SERVER_URL": "http://127.0.0.1",
		"ACTIONS_ID_TOKEN_REQUEST_URL": tokenService.URL + "/token?api-version=2.0", "ACTIONS_ID_TOKEN_REQUEST_TOKEN": "request-token"}
	j := newGitHubJob(t, server, vars)
	for _, with := range []map[string]string{
		{"emit": "pipeline", "args": "--status started"},
		{"emit": "deploy", "args": "--env production --service payments --digest " + imageDigest},
	} {
		with["version"], with["release-url"], with["oidc-audience"] = version, rel.URL, aud
		res, _ := j.uses(with)
		if res.code != 0 || !strings.Contains(res.stdout, "stored: ") || !strings.Contains(res.stdout, "::add-mask::") {
			t.Fatalf("uses with %v: %+v", with, res)
		}
	}
	if asked != 2 {
		t.Errorf("the token service was asked %d times, want 2", asked)
	}

	// No id-token permission: the runner sets no request URL.
	j = newGitHubJob(t, server, map[string]string{"EVIDENCE_SPOOL_DIR": t.TempDir(), "GITHUB_SERVER_URL": "http://127.0.0.1"})
	res, _ := j.uses(map[string]string{"version": version, "release-url": rel.URL, "oidc-audience": aud, "emit": "pipeline", "args": "--status started"})
	if res.code != 2 || !strings.Contains(res.stdout, "oidc-audience needs the job's permission id-token: write") {
		t.Fatalf("without id-token: write: %+v", res)
	}
	// Without it, evidenced refuses the evidence (no token).
	res, _ = j.uses(map[string]string{"version": version, "release-url": rel.URL, "emit": "pipeline", "args": "--status started --no-spool"})
	if res.code == 0 {
		t.Fatalf("evidence without a token was accepted: %+v", res)
	}
}
