package daemon_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestAccessWebhooksToACResults: signed GitHub access deliveries (real
// octokit payloads) posted to evidenced become access records in
// ClickHouse (access_grants, protection_settings) and AC results in
// control_results, through the access stage's own consumer.
//
// Hand-worked expectations, for the quarter in progress (the deliveries'
// receipt times fall in it):
//   - github.com/octo-org/octo-repo, protected branch "production": the
//     rule 21796960 created 2021-08-19T16:16:32Z with dismiss_stale false
//     and admin_enforced false, then deleted (at its receipt). AC-1 fails
//     twice: the weak settings from the quarter's start until the deletion,
//     and the deletion from then through the end of what is judged.
//   - github.com/codertocat/hello-world: hacktocat added hacktocat as a
//     collaborator (write, GitHub's default when the payload names none):
//     AC-3 fails as a self-grant. A forced push to master by Codertocat:
//     no rule covered master, so AC-2 passes and names the push.
//   - Neither repository's access list was signed off: AC-4 pending.
func TestAccessWebhooksToACResults(t *testing.T) {
	chURL := testenv.DatabaseURL(t)
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), chURL, "--github-secret", "s3cret", "--gitlab-token", "gl-s3cret",
		"--production-repos", "github.com/octo-org/octo-repo,github.com/Codertocat/Hello-World,gitlab.com/jsmith/storecloud",
		"--protected-branches", "main,master,production", "--access-interval", "1s")
	post := func(event, delivery string, body []byte) {
		t.Helper()
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write(body)
		req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/webhooks/github", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", event)
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("%s %s: %d, want 202", event, delivery, resp.StatusCode)
		}
	}
	var push map[string]any
	if err := json.Unmarshal(corpus(t, "github/octokit-webhooks/push/with-new-branch.payload.json"), &push); err != nil {
		t.Fatal(err)
	}
	push["forced"], push["before"] = true, "a10867b14bb761a232cd80139fbd4c0d33264240"
	forced, _ := json.Marshal(push)

	start := time.Now().UTC()
	post("branch_protection_rule", "acc-1", corpus(t, "github/octokit-examples-access/branch_protection_rule/02-created.json"))
	post("branch_protection_rule", "acc-2", corpus(t, "github/octokit-examples-access/branch_protection_rule/03-deleted.json"))
	post("member", "acc-3", corpus(t, "github/octokit-examples-access/member/00-added.json"))
	post("push", "acc-4", forced)
	post("member", "acc-3", corpus(t, "github/octokit-examples-access/member/00-added.json")) // a redelivery changes nothing
	// A GitLab system hook: a project member made Developer. GitLab's
	// member events do not name who did it: AC-3 finds no approver.
	glAt := time.Now().UTC().Truncate(time.Second)
	glBody := `{"created_at":"` + glAt.Format(time.RFC3339) + `","updated_at":"` + glAt.Format(time.RFC3339) + `","event_name":"user_add_to_team",` +
		`"access_level":"Developer","project_id":74,"project_name":"StoreCloud","project_path":"storecloud",` +
		`"project_path_with_namespace":"jsmith/storecloud","user_email":"johnsmith@example.com","user_name":"John Smith",` +
		`"user_username":"johnsmith","user_id":41,"project_visibility":"private"}`
	glReq, _ := http.NewRequest("POST", "http://"+d.Addr()+"/webhooks/gitlab", strings.NewReader(glBody))
	glReq.Header.Set("Content-Type", "application/json")
	glReq.Header.Set("X-Gitlab-Event", "System Hook")
	glReq.Header.Set("X-Gitlab-Token", "gl-s3cret")
	glReq.Header.Set("X-Gitlab-Instance", "https://gitlab.com")
	glReq.Header.Set("X-Gitlab-Event-UUID", "acc-gl-1")
	glResp, err := http.DefaultClient.Do(glReq)
	if err != nil {
		t.Fatal(err)
	}
	glResp.Body.Close()
	if glResp.StatusCode != 202 {
		t.Fatalf("gitlab system hook: %d, want 202", glResp.StatusCode)
	}

	st := testenv.StoreAt(t, chURL)
	ctx := context.Background()
	q := time.Date(start.Year(), time.Month((int(start.Month())-1)/3*3+1), 1, 0, 0, 0, 0, time.UTC)
	label := fmt.Sprintf("%d-Q%d", q.Year(), (int(q.Month())-1)/3+1)

	// The deletion's time and the grant's, as the producers stamped them
	// (their receipt), read from the access tables.
	var deletedNs, grantedNs int64
	testenv.Eventually(t, 60*time.Second, func() error {
		row := st.Conn().QueryRow(ctx, "SELECT valid_from_ns FROM protection_settings WHERE repository = 'github.com/octo-org/octo-repo' AND deleted = 1 AND "+
			"(repository, version) IN (SELECT repository, max(version) FROM protection_settings GROUP BY repository)")
		if err := row.Scan(&deletedNs); err != nil {
			var n, e uint64
			_ = st.Conn().QueryRow(ctx, "SELECT count() FROM protection_settings").Scan(&n)
			_ = st.Conn().QueryRow(ctx, "SELECT count() FROM events WHERE type LIKE '%access%'").Scan(&e)
			return fmt.Errorf("deleted period: %w (%d protection rows, %d access events archived)", err, n, e)
		}
		row = st.Conn().QueryRow(ctx, "SELECT valid_from_ns FROM access_grants WHERE repository = 'github.com/codertocat/hello-world' AND principal_login = 'hacktocat' AND granted_by = 'hacktocat' AND permission = 'write' AND valid_to_ns = 0")
		return row.Scan(&grantedNs)
	})
	var periods uint64
	if err := st.Conn().QueryRow(ctx, "SELECT count() FROM protection_settings WHERE repository = 'github.com/octo-org/octo-repo' AND "+
		"(repository, version) IN (SELECT repository, max(version) FROM protection_settings GROUP BY repository)").Scan(&periods); err != nil {
		t.Fatal(err)
	}
	if periods != 2 {
		t.Errorf("octo-repo protection periods: %d, want 2 (created, deleted)", periods)
	}

	rfc := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	deletedAt, grantedAt := time.Unix(0, deletedNs), time.Unix(0, grantedNs)
	end := q.AddDate(0, 3, 0)
	due := end.Add(720 * time.Hour)
	want := map[string]string{
		"access:github.com/octo-org/octo-repo@" + label + " AC-1": "fail\n" +
			"branch_protection_rule rule 21796960 on production: administrators exempt, stale approvals not dismissed (created by Codertocat at 2021-08-19T16:16:32Z) from " + rfc(q) + " until " + rfc(deletedAt) + "\n" +
			"branch_protection_rule rule 21796960 on production: the rule was deleted (deleted by Codertocat at " + rfc(deletedAt) + ") from " + rfc(deletedAt) + " through the end of the period judged",
		"access:github.com/octo-org/octo-repo@" + label + " AC-2":     "pass\nno push bypassed branch protection during the period",
		"access:github.com/octo-org/octo-repo@" + label + " AC-3":     "pass\nno write, maintain or admin granted during the period",
		"access:github.com/octo-org/octo-repo@" + label + " AC-4":     "pending\nno sign-off of the access list for " + label + " yet; due by " + rfc(due),
		"access:github.com/codertocat/hello-world@" + label + " AC-1": "fail\nno branch protection known on the protected branches (main, master, production) during the period",
		"access:github.com/codertocat/hello-world@" + label + " AC-3": "fail\nself-grant: write to user hacktocat by hacktocat at " + rfc(grantedAt),
		"access:github.com/codertocat/hello-world@" + label + " AC-4": "pending\nno sign-off of the access list for " + label + " yet; due by " + rfc(due),
		"access:gitlab.com/jsmith/storecloud@" + label + " AC-3":      "fail\ngrant of write to user johnsmith by unknown at " + rfc(glAt) + ": no approver other than the grantee and the grantor",
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		rows, err := st.Conn().Query(ctx, "SELECT change_id, control_id, argMax(status, evaluated_at_ns), argMax(reasons, evaluated_at_ns) "+
			"FROM control_results WHERE change_id LIKE 'access:%@"+label+"' GROUP BY change_id, control_id")
		if err != nil {
			return err
		}
		defer rows.Close()
		got := map[string]string{}
		for rows.Next() {
			var change, control, status string
			var reasons []string
			if err := rows.Scan(&change, &control, &status, &reasons); err != nil {
				return err
			}
			got[change+" "+control] = status + "\n" + strings.Join(reasons, "\n")
		}
		var errs []string
		for k, w := range want {
			g := got[k]
			// "through the end of the period judged (<now>)": the time judged moves on
			if i := strings.LastIndex(g, " ("); strings.HasSuffix(w, "period judged") && i > 0 {
				g = g[:i]
			}
			if g != w {
				errs = append(errs, fmt.Sprintf("%s:\n  got  %q\n  want %q", k, g, w))
			}
		}
		if h := got["access:github.com/codertocat/hello-world@"+label+" AC-2"]; !strings.HasPrefix(h, "pass\nforce push to master by Codertocat at ") ||
			!strings.HasSuffix(h, ": the branch was not protected then") {
			errs = append(errs, "hello-world AC-2: "+h)
		}
		slices.Sort(errs)
		if len(errs) > 0 {
			return fmt.Errorf("%s", strings.Join(errs, "\n"))
		}
		return nil
	})
}
