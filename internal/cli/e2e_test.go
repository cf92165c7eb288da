package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

const (
	e2eRepo   = "github.com/codertocat/hello-world"
	e2eMerge  = "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
	e2eChange = e2eRepo + "@" + e2eMerge
	e2eDigest = "sha256:9b1d8c6e4a2f00112233445566778899aabbccddeeff00112233445566778899"
)

// e2ePayload is a GitHub or Jira webhook payload of the producers'
// testdata (derived from octokit/webhooks and Jira's documentation), with
// the changes a scenario needs applied to its decoded JSON.
func e2ePayload(t *testing.T, path string, edit func(m map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", path))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// TestEndToEndGate runs the whole path a real team's evidence takes: the
// pull request, its review and its merge arrive as signed GitHub webhooks,
// the change ticket as signed Jira webhooks, and the pipeline reports its
// run, tests, scans and artifact with evidence emit from GitHub Actions'
// environment. evidence gate denies the deployment naming CM-1 while the
// ticket is not approved, allows it once Jira's approval arrives, and the
// deployment reported afterwards gets its verdict (pass) in ClickHouse,
// next to the control results of the change.
func TestEndToEndGate(t *testing.T) {
	ctx := context.Background()
	chURL := testenv.DatabaseURL(t)
	cfg, _, err := config.Parse("evidenced", []string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "d"),
		"--clickhouse-url", chURL, "--github-secret", "gh-s3cret", "--jira-secret", "jira-s3cret", "--verdict-delay", "2s"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(ctx, cfg, nil, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	base := "http://" + d.Addr()

	deliveries := 0
	webhook := func(provider string, h http.Header, body []byte) {
		t.Helper()
		deliveries++
		req, _ := http.NewRequest(http.MethodPost, base+"/webhooks/"+provider, bytes.NewReader(body))
		req.Header = h
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("%s delivery %d: status %d", provider, deliveries, resp.StatusCode)
		}
	}
	github := func(event, file string, edit func(map[string]any)) {
		t.Helper()
		body := e2ePayload(t, "producers/github/testdata/"+file, edit)
		webhook("github", webhooktest.Header("X-GitHub-Event", event, "X-GitHub-Delivery", fmt.Sprintf("e2e-%d", deliveries),
			"X-Hub-Signature-256", webhooktest.SignHex("gh-s3cret", body)), body)
	}
	jira := func(file string) {
		t.Helper()
		body := e2ePayload(t, "producers/jira/testdata/"+file, nil)
		webhook("jira", webhooktest.Header("X-Hub-Signature", webhooktest.SignHex("jira-s3cret", body)), body)
	}
	// One ticket key throughout (the octokit fixtures name others).
	titled := func(m map[string]any) {
		pr := obj(m, "pull_request")
		pr["title"] = "CHG-7 Retry card captures on gateway timeout"
		obj(pr, "head")["ref"] = "feature/retry-captures"
	}

	jira("change_created.json")
	github("pull_request", "pull_request.opened.json", titled)
	github("pull_request_review", "pull_request_review.approved.json", titled)
	github("pull_request", "pull_request.closed.merged.json", titled)

	// The release pipeline of the merge commit, as GitHub Actions runs it:
	// the push of octocat's merge started it (octocat also reviewed).
	ciEnv := with(githubEnv, "GITHUB_REPOSITORY", "Codertocat/Hello-World", "GITHUB_REPOSITORY_OWNER", "Codertocat",
		"GITHUB_SHA", e2eMerge, "GITHUB_REF", "refs/heads/master", "GITHUB_REF_NAME", "master", "GITHUB_ACTOR", "octocat",
		"GITHUB_TRIGGERING_ACTOR", "octocat", "EVIDENCE_SERVER", base)
	emit := func(args ...string) {
		t.Helper()
		if r := run(t, ciEnv, "", append([]string{"emit"}, args...)...); r.code != 0 {
			t.Fatalf("evidence emit %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
	}
	emit("pipeline", "--status", "started")
	emit("test", "--junit", "testdata/junit-unit.xml")
	emit("scan", "--sarif", "testdata/scan-clean.sarif", "--category", "sast")
	emit("scan", "--sarif", "testdata/scan-clean.sarif", "--category", "dependency", "--tool", "grype")
	emit("artifact", "--image", "ghcr.io/codertocat/hello-world:1.0.0@"+e2eDigest)
	emit("pipeline", "--status", "success")

	gate := func() result {
		return run(t, ciEnv, "", "gate", "--env", "production")
	}
	// Everything is in but the ticket's approval: denied, naming CM-1.
	var r result
	testenv.Eventually(t, 30*time.Second, func() error {
		r = gate()
		if r.code != 1 || !strings.Contains(r.stdout, "CM-1") {
			return fmt.Errorf("gate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, c := range []string{"CM-2", "CM-3", "CM-4", "CM-5", "CM-6", "CM-7", "CM-8"} {
			if !strings.Contains(r.stdout, c+" ") {
				return fmt.Errorf("gate output does not list %s yet:\n%s", c, r.stdout)
			}
		}
		// Only CM-1 blocks (the rest of the evidence is in).
		if n := strings.Count(r.stdout, "FAIL") + strings.Count(r.stdout, "PENDING"); n != 1 {
			return fmt.Errorf("%d blocking controls, want CM-1 only:\n%s", n, r.stdout)
		}
		return nil
	})
	t.Logf("denied:\n%s", r.stdout)
	if !regexpMatch(`(?m)^DENY`, r.stdout) || !regexpMatch(`(?m)^(PENDING|FAIL) +CM-1 `, r.stdout) {
		t.Errorf("gate output does not deny on CM-1:\n%s", r.stdout)
	}

	// Jira's approval arrives: allowed.
	jira("change_approved.json")
	testenv.Eventually(t, 30*time.Second, func() error {
		if r = gate(); r.code != 0 {
			return fmt.Errorf("gate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		return nil
	})
	if !regexpMatch(`(?m)^ALLOW`, r.stdout) {
		t.Errorf("gate output does not allow:\n%s", r.stdout)
	}

	// The pipeline deploys, with GitHub Actions' own variables only: the
	// deployer is the workflow, octocat (the reviewer) its trigger, so
	// CM-3 and CM-7 pass. The deployment's verdict is kept in ClickHouse.
	emit("deploy", "--env", "production", "--service", "hello-world", "--digest", e2eDigest, "--status", "started")
	st := testenv.StoreAt(t, chURL)
	testenv.Eventually(t, 60*time.Second, func() error {
		var verdict, change string
		var failing, pending []string
		err := st.Conn().QueryRow(ctx, `SELECT any(verdict), any(change_id), any(failing), any(pending)
			FROM deployment_verdicts FINAL WHERE environment = 'production' AND service = 'hello-world'`).Scan(&verdict, &change, &failing, &pending)
		if err != nil {
			return err
		}
		if verdict != "pass" || change != e2eChange {
			return fmt.Errorf("deployment verdict %q of %q (failing %v, pending %v), want pass of %s", verdict, change, failing, pending, e2eChange)
		}
		return nil
	})
	inForce := map[string]string{}
	rows, err := st.Conn().Query(ctx, `SELECT control_id, argMax(status, evaluated_at_ns) FROM control_results
		WHERE change_id = ? GROUP BY control_id ORDER BY control_id`, e2eChange)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var c, s string
		if err := rows.Scan(&c, &s); err != nil {
			t.Fatal(err)
		}
		inForce[c] = s
	}
	rows.Close()
	var ids []string
	for c, s := range inForce {
		ids = append(ids, c)
		if s != "pass" {
			t.Errorf("%s in force: %s, want pass", c, s)
		}
	}
	slices.Sort(ids)
	if want := []string{"CM-1", "CM-2", "CM-3", "CM-4", "CM-5", "CM-6", "CM-7", "CM-8"}; !slices.Equal(ids, want) {
		t.Errorf("control results for %v, want %v", ids, want)
	}
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
