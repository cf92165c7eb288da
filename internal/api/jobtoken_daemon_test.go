package api_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/jobtoken/jobtokentest"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
)

// TestJobTokenThroughEvidenced: a real evidenced started with
// --oidc-issuer for a local issuer takes a GitHub-style job token signed
// by that issuer; the pipeline run and the production deployment it posts
// (whose body names no deployer, system or pipeline) become, in
// ClickHouse, a deployment deployed by the workflow the token's claims
// name (github-actions:release, run 4242), and the verdict is judged on
// that deployer; the archived events carry the claims. A second token of
// a rotated key works as well.
func TestJobTokenThroughEvidenced(t *testing.T) {
	ctx := context.Background()
	is := jobtokentest.New(t)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("auditor "+auth.Hash("tok-auditor")+" audit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	chURL := testenv.DatabaseURL(t)
	d := evidenced.Start(t, chURL, "--tokens-file", tokens, "--oidc-issuer", is.URL+"="+jobAud, "--verdict-delay", "0s")
	base := "http://" + d.Addr()

	const repo = "127.0.0.1/octo/app"
	tok := is.Sign(t, is.GitHubClaims(jobAud, "octo/app", "release", "4242", jobSHA, nil))
	post := func(tok, event string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(event))
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("post: %s", resp.Status)
		}
	}
	post(tok, fmt.Sprintf(`{"specversion":"1.0","id":"run-4242","source":"https://ci.example/octo","type":"dev.evidencepipeline.pipelinerun.finished.v1","data":{"repository":%q,"commit":%q,"run_id":"4242","outcome":"success","finished_at":"2026-11-25T09:58:00Z"}}`, repo, jobSHA))
	post(tok, deployEvent("dep-4242", repo, jobSHA, "4242", "release", map[string]any{"deployer": nil, "system": nil, "pipeline": nil, "triggered_by": nil}))

	st := testenv.StoreAt(t, chURL)
	testenv.Eventually(t, 90*time.Second, func() error {
		var deployer, run, verdictDeployer string
		row := st.Conn().QueryRow(ctx, `SELECT deployer, run_id FROM deployments FINAL WHERE service = 'app' AND repository = ?`, repo)
		if err := row.Scan(&deployer, &run); err != nil {
			return fmt.Errorf("deployments: %w", err)
		}
		if deployer != "github-actions:release" || run != "4242" {
			return fmt.Errorf("deployment deployed by %q in run %q, want github-actions:release in run 4242 (the claims')", deployer, run)
		}
		row = st.Conn().QueryRow(ctx, `SELECT deployer FROM deployment_verdicts FINAL WHERE service = 'app'`)
		if err := row.Scan(&verdictDeployer); err != nil {
			return fmt.Errorf("deployment_verdicts: %w", err)
		}
		if verdictDeployer != "github-actions:release" {
			return fmt.Errorf("verdict judged deployer %q", verdictDeployer)
		}
		return nil
	})
	var ext string
	if err := st.Conn().QueryRow(ctx, `SELECT extensions FROM events WHERE event_id = 'dep-4242'`).Scan(&ext); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"authtype":"service_account"`, `"authid":"repo:octo/app:ref:refs/heads/main"`, `\"workflow\":\"release\"`, `\"run_id\":\"4242\"`, `\"iss\":\"` + is.URL + `\"`} {
		if !strings.Contains(ext, want) {
			t.Errorf("archived extensions %s lack %s", ext, want)
		}
	}

	is.Rotate(t, false)
	post(is.Sign(t, is.GitHubClaims(jobAud, "octo/app", "release", "4242", jobSHA, nil)),
		deployEvent("dep-4242-b", repo, jobSHA, "4242", "release", map[string]any{"environment": "staging"}))
}
