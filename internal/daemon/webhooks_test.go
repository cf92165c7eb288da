package daemon_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
)

func corpus(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "corpus", rel))
	if err != nil {
		if testenv.InCI() {
			t.Fatalf("corpus file missing in CI: %v", err)
		}
		t.Skipf("corpus not found (%v)", err)
	}
	return b
}

// TestGitHubWebhookToArchive posts a signed, real GitHub delivery to
// evidenced and finds its evidence archived in ClickHouse.
func TestGitHubWebhookToArchive(t *testing.T) {
	body := corpus(t, "github/octokit-webhooks/pull_request_review/submitted.payload.json")
	chURL := testenv.DatabaseURL(t)
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), chURL, "--github-secret", "s3cret")
	url := "http://" + d.Addr() + "/webhooks/github"
	sign := func(secret string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}
	send := func(sig string) int {
		req, _ := http.NewRequest("POST", url, strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "pull_request_review")
		req.Header.Set("X-GitHub-Delivery", "d6e7a2a0-0000-4000-8000-000000000001")
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send(sign("wrong")); code != 401 {
		t.Fatalf("wrong secret: %d, want 401", code)
	}
	if code := send(""); code != 401 {
		t.Fatalf("unsigned: %d, want 401", code)
	}
	if code := send(sign("s3cret")); code != 202 {
		t.Fatalf("signed: %d, want 202", code)
	}
	if code := send(sign("s3cret")); code != 202 { // a redelivery
		t.Fatalf("redelivery: %d, want 202", code)
	}
	st := testenv.StoreAt(t, chURL)
	testenv.Eventually(t, 30*time.Second, func() error {
		rows, err := st.Conn().Query(context.Background(), "SELECT type FROM events ORDER BY stream_seq")
		if err != nil {
			return err
		}
		defer rows.Close()
		var types []string
		for rows.Next() {
			var typ string
			if err := rows.Scan(&typ); err != nil {
				return err
			}
			types = append(types, typ)
		}
		want := "dev.evidencepipeline.review.submitted.v1,dev.evidencepipeline.webhook.received.v1"
		got := strings.Join(types, ",")
		if got != want && got != "dev.evidencepipeline.webhook.received.v1,dev.evidencepipeline.review.submitted.v1" {
			return fmt.Errorf("archived %q, want the review and the raw delivery once each", got)
		}
		return nil
	})
}

// TestEveryWebhookIsMounted: each adapter answers on its endpoint, and one
// whose secret is not configured refuses with a message naming the
// variable to set.
func TestEveryWebhookIsMounted(t *testing.T) {
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), "clickhouse://127.0.0.1:1/none")
	for provider, env := range map[string]string{
		"github": "EVIDENCE_GITHUB_SECRET", "gitlab": "EVIDENCE_GITLAB_TOKEN",
		"jira": "EVIDENCE_JIRA_SECRET", "servicenow": "EVIDENCE_SERVICENOW_SECRET",
	} {
		resp, err := http.Post("http://"+d.Addr()+"/webhooks/"+provider, "application/json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(b), env) {
			t.Errorf("/webhooks/%s: %d %s; want 401 naming %s", provider, resp.StatusCode, b, env)
		}
	}
}
