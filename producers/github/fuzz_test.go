package github_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// FuzzTranslate feeds deliveries of every handled event: the corpus and
// the test payloads as seeds, built-in minimal payloads when the corpus is
// absent. Translate must not panic; its events must all be valid.
func FuzzTranslate(f *testing.F) {
	events := []string{"pull_request", "pull_request_review", "push", "workflow_run", "workflow_job",
		"check_suite", "check_run", "status", "deployment", "deployment_status", "deployment_review", "release", "ping"}
	seeded := false
	dir, ok := webhooktest.CorpusPath("github")
	if ok {
		for _, c := range corpusFiles(f, dir) {
			f.Add(c.event, c.header.Get("Content-Type"), c.body)
			seeded = true
		}
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		event := filepath.Base(name)
		for i := range event {
			if event[i] == '.' {
				event = event[:i]
				break
			}
		}
		f.Add(event, "application/json", b)
	}
	if !seeded {
		f.Logf("the corpus is not at %s: seeding with built-in payloads", dir)
	}
	repo := `"repository": {"name": "app", "html_url": "https://github.com/acme/app", "default_branch": "main"}`
	for _, s := range []struct{ event, body string }{
		{"pull_request", `{"action": "opened", "pull_request": {"number": 1, "title": "PAY-1", "user": {"login": "a"}, "head": {"ref": "pay-1-x", "sha": "0123456789abcdef0123456789abcdef01234567"}, "base": {"ref": "main"}}, ` + repo + `}`},
		{"pull_request", `{"action": "closed", "pull_request": {"number": 1, "merged": true, "merge_commit_sha": "abcdef0", "head": {"sha": "0123456"}, "base": {"ref": "main"}}, ` + repo + `}`},
		{"pull_request_review", `{"action": "submitted", "review": {"state": "approved", "commit_id": "0123456", "user": {"login": "b"}}, "pull_request": {"number": 1}, ` + repo + `}`},
		{"push", `{"ref": "refs/heads/main", "after": "0123456", ` + repo + `}`},
		{"workflow_run", `{"action": "completed", "workflow_run": {"id": 5, "head_sha": "0123456", "conclusion": "failure", "event": "push"}, ` + repo + `}`},
		{"check_suite", `{"action": "completed", "check_suite": {"id": 5, "head_sha": "0123456", "app": {"name": "Circle CI"}}, ` + repo + `}`},
		{"status", `{"state": "pending", "sha": "0123456", "context": "ci", ` + repo + `}`},
		{"deployment", `{"action": "created", "deployment": {"id": 3, "sha": "0123456", "environment": "prod", "payload": "{\"service\": \"x\"}"}, ` + repo + `}`},
		{"deployment_status", `{"action": "created", "deployment_status": {"state": "success"}, "deployment": {"sha": "0123456", "environment": "prod"}, ` + repo + `}`},
		{"ping", `{"zen": "x"}`},
		{"pull_request", `{"action": "opened", "pull_request": null}`},
		{"pull_request", `{"action": 7}`},
		{"push", `[]`},
	} {
		f.Add(s.event, "application/json", []byte(s.body))
	}
	f.Add("push", "application/x-www-form-urlencoded", []byte("payload=%7B%22ref%22%3A1%7D"))
	p := newProvider()
	f.Fuzz(func(t *testing.T, event, contentType string, body []byte) {
		if event == "" {
			event = events[len(body)%len(events)]
		}
		h := http.Header{}
		h.Set("X-GitHub-Event", event)
		h.Set("X-GitHub-Delivery", "fuzz-1")
		h.Set("Content-Type", contentType)
		out, err := p.Translate(h, body)
		var ign *webhook.Ignored
		switch {
		case errors.As(err, &ign):
			if out != nil || ign.Reason == "" {
				t.Fatalf("Ignored(%q) with %d events", ign.Reason, len(out))
			}
		case err != nil:
			if out != nil || err.Error() == "" {
				t.Fatalf("error %q with %d events", err, len(out))
			}
		default:
			checkEvents(t, out, "fuzz-1")
		}
	})
}
