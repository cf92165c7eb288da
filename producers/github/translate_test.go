package github_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/ticketkeys"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// payload reads testdata/<name>.json.
func payload(t testing.TB, name string) []byte {
	t.Helper()
	return webhooktest.Testdata(t, name+".json")
}

// modify edits a JSON payload.
func modify(t testing.TB, b []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// obj is the object at a path of a decoded payload.
func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}

// translate translates a delivery that must give events, and checks them.
func translate(t *testing.T, event string, body []byte) []*ce.Event {
	t.Helper()
	events, err := newProvider().Translate(headers(event, "d-1"), body)
	if err != nil {
		t.Fatalf("Translate: %v", err)
	}
	checkEvents(t, events, "d-1")
	return events
}

const (
	codertocat = `{"login": "Codertocat", "id": "21031067", "type": "user"}`
	octocat    = `{"login": "octocat", "id": "583231", "type": "user"}`
	pull2      = `{"number": 2, "url": "https://github.com/Codertocat/Hello-World/pull/2"}`
	head       = "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
	base       = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e"
)

func TestTranslateFields(t *testing.T) {
	for _, tc := range []struct {
		file    string
		typ     string
		id      string
		subject string
		time    string
		want    string // data, JSON
	}{{
		file:    "pull_request.opened",
		typ:     "dev.evidencepipeline.change.opened.v1",
		id:      "d-1/change.opened",
		subject: "github.com/codertocat/hello-world/pull/2",
		time:    "2019-05-15T15:20:33Z",
		want: `{
			"repository": "github.com/codertocat/hello-world",
			"change": ` + pull2 + `,
			"title": "PAY-123 Retry card captures on gateway timeout",
			"author": ` + codertocat + `,
			"source_branch": "feature/ops-7-capture-retry",
			"target_branch": "master",
			"head_commit": "` + head + `",
			"base_commit": "` + base + `",
			"ticket_keys": ["PAY-123", "OPS-7"],
			"draft": false,
			"opened_at": "2019-05-15T15:20:33Z"}`,
	}, {
		file:    "pull_request.synchronize",
		typ:     "dev.evidencepipeline.change.updated.v1",
		id:      "d-1/change.updated",
		subject: "github.com/codertocat/hello-world/pull/2",
		time:    "2019-05-16T09:00:00Z",
		want: `{
			"repository": "github.com/codertocat/hello-world",
			"change": ` + pull2 + `,
			"title": "Update the README with new information.",
			"author": ` + codertocat + `,
			"source_branch": "changes",
			"target_branch": "master",
			"head_commit": "` + head + `",
			"base_commit": "` + base + `",
			"draft": false,
			"previous_head_commit": "` + base + `",
			"actor": ` + codertocat + `,
			"updated_at": "2019-05-16T09:00:00Z"}`,
	}, {
		file:    "pull_request.closed.merged",
		typ:     "dev.evidencepipeline.change.merged.v1",
		id:      "d-1/change.merged",
		subject: "github.com/codertocat/hello-world/pull/2",
		time:    "2019-05-15T15:21:18Z",
		want: `{
			"repository": "github.com/codertocat/hello-world",
			"change": ` + pull2 + `,
			"title": "CHG0031234: update the README",
			"author": ` + codertocat + `,
			"source_branch": "changes",
			"target_branch": "master",
			"head_commit": "` + head + `",
			"base_commit": "` + base + `",
			"ticket_keys": ["CHG0031234"],
			"draft": false,
			"merge_commit": "c4295bd74fb0f4fda03689c3df3f2803b658fd85",
			"merged_by": ` + octocat + `,
			"merged_at": "2019-05-15T15:21:18Z"}`,
	}, {
		file:    "pull_request.closed",
		typ:     "dev.evidencepipeline.change.closed.v1",
		id:      "d-1/change.closed",
		subject: "github.com/codertocat/hello-world/pull/2",
		time:    "2019-05-15T15:21:18Z",
		want: `{
			"repository": "github.com/codertocat/hello-world",
			"change": ` + pull2 + `,
			"title": "Update the README with new information.",
			"author": ` + codertocat + `,
			"source_branch": "changes",
			"target_branch": "master",
			"head_commit": "` + head + `",
			"base_commit": "` + base + `",
			"draft": false,
			"closed_by": ` + codertocat + `,
			"closed_at": "2019-05-15T15:21:18Z"}`,
	}, {
		file:    "pull_request_review.approved",
		typ:     "dev.evidencepipeline.review.submitted.v1",
		id:      "d-1/review.submitted",
		subject: "github.com/codertocat/hello-world/pull/2",
		time:    "2019-05-15T15:20:38Z",
		want: `{
			"repository": "github.com/codertocat/hello-world",
			"change": ` + pull2 + `,
			"reviewer": ` + octocat + `,
			"decision": "approved",
			"head_commit": "` + head + `",
			"submitted_at": "2019-05-15T15:20:38Z",
			"review_id": "237895671",
			"review_url": "https://github.com/Codertocat/Hello-World/pull/2#pullrequestreview-237895671",
			"author": ` + codertocat + `}`,
	}, {
		file:    "pull_request_review.changes_requested",
		typ:     "dev.evidencepipeline.review.submitted.v1",
		id:      "d-1/review.submitted",
		subject: "github.com/codertocat/hello-world/pull/2",
		time:    "2019-05-15T15:20:38Z",
		want: `{
			"repository": "github.com/codertocat/hello-world",
			"change": ` + pull2 + `,
			"reviewer": {"login": "hubot", "id": "2", "type": "user"},
			"decision": "changes_requested",
			"head_commit": "` + base + `",
			"submitted_at": "2019-05-15T15:20:38Z",
			"review_id": "237895671",
			"review_url": "https://github.com/Codertocat/Hello-World/pull/2#pullrequestreview-237895671",
			"author": ` + codertocat + `}`,
	}, {
		file:    "workflow_run.completed.success",
		typ:     "dev.evidencepipeline.pipelinerun.finished.v1",
		id:      "d-1/pipelinerun.finished",
		subject: "github.com/octo-org/octo-repo/commit/3484a3fb816e0859fd6e1cea078d76385ff50625",
		time:    "2020-10-05T16:33:49Z",
		want: `{
			"repository": "github.com/octo-org/octo-repo",
			"commit": "3484a3fb816e0859fd6e1cea078d76385ff50625",
			"branch": "changes",
			"run_id": "289782451",
			"run_attempt": 1,
			"run_url": "https://github.com/octo-org/octo-repo/actions/runs/289782451",
			"pipeline": "ci",
			"system": "github-actions",
			"actor": {"login": "Codertocat", "id": "15669918", "type": "user"},
			"trigger": "pull_request",
			"change": {"number": 2, "url": "https://github.com/octo-org/octo-repo/pull/2"},
			"started_at": "2020-10-05T16:33:49Z",
			"outcome": "success",
			"finished_at": "2020-10-05T16:33:49Z"}`,
	}, {
		file:    "workflow_run.completed.failure",
		typ:     "dev.evidencepipeline.pipelinerun.finished.v1",
		id:      "d-1/pipelinerun.finished",
		subject: "github.com/octo-org/octo-repo/commit/3484a3fb816e0859fd6e1cea078d76385ff50625",
		time:    "2020-10-05T16:45:00Z",
		want: `{
			"repository": "github.com/octo-org/octo-repo",
			"commit": "3484a3fb816e0859fd6e1cea078d76385ff50625",
			"branch": "master",
			"run_id": "289782451",
			"run_attempt": 2,
			"run_url": "https://github.com/octo-org/octo-repo/actions/runs/289782451",
			"pipeline": "test",
			"system": "github-actions",
			"actor": {"login": "github-actions[bot]", "id": "41898282", "type": "service"},
			"trigger": "push",
			"started_at": "2020-10-05T16:33:49Z",
			"outcome": "failure",
			"finished_at": "2020-10-05T16:45:00Z"}`,
	}, {
		file:    "deployment.created",
		typ:     "dev.evidencepipeline.deployment.started.v1",
		id:      "d-1/deployment.started",
		subject: "payments",
		time:    "2019-05-15T15:20:53Z",
		want: `{
			"deployment_id": "145988746",
			"environment": "production",
			"service": "payments",
			"digest": "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899",
			"artifact": "ghcr.io/codertocat/payments:1.4.2",
			"repository": "github.com/codertocat/hello-world",
			"commit": "` + base + `",
			"deployer": ` + codertocat + `,
			"ticket_keys": ["CHG0031234"],
			"started_at": "2019-05-15T15:20:53Z"}`,
	}, {
		file:    "deployment_status.success",
		typ:     "dev.evidencepipeline.deployment.finished.v1",
		id:      "d-1/deployment.finished",
		subject: "Hello-World",
		time:    "2019-05-15T15:20:55Z",
		want: `{
			"deployment_id": "145988746",
			"environment": "production",
			"service": "Hello-World",
			"repository": "github.com/codertocat/hello-world",
			"commit": "` + base + `",
			"deployer": ` + codertocat + `,
			"started_at": "2019-05-15T15:20:53Z",
			"outcome": "success",
			"finished_at": "2019-05-15T15:20:55Z"}`,
	}} {
		t.Run(tc.file, func(t *testing.T) {
			event, _, _ := strings.Cut(tc.file, ".")
			events := translate(t, event, payload(t, tc.file))
			if diff := cmp.Diff([]string{tc.typ, "dev.evidencepipeline.webhook.received.v1"}, webhooktest.Types(events)); diff != "" {
				t.Fatalf("types (-want +got):\n%s", diff)
			}
			e := events[0]
			wantTime, _ := time.Parse(time.RFC3339, tc.time)
			gotAttrs := []any{e.ID, e.Source, e.Subject, e.Time, e.DataContentType}
			wantAttrs := []any{tc.id, "https://" + webhooktest.DataMap(t, e)["repository"].(string), tc.subject, wantTime, "application/json"}
			if diff := cmp.Diff(wantAttrs, gotAttrs); diff != "" {
				t.Errorf("id, source, subject, time, datacontenttype (-want +got):\n%s", diff)
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, webhooktest.DataMap(t, e)); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTranslatePushToDefaultBranch(t *testing.T) {
	// As GitHub sends it: without the file's final newline (a body with
	// whitespace around its JSON is also kept in body_base64).
	body := bytes.TrimSpace(payload(t, "push.default_branch"))
	events := translate(t, "push", body)
	if len(events) != 1 {
		t.Fatalf("got %v, want only webhook.received (the correlator reads the raw push)", webhooktest.Types(events))
	}
	e := events[0]
	got := webhooktest.DataMap(t, e)
	sum := sha256.Sum256(body)
	var raw any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"provider":    "github",
		"event":       "push",
		"delivery_id": "d-1",
		"headers": map[string]any{
			"x-github-event":    "push",
			"x-github-delivery": "d-1",
			"x-github-hook-id":  "531374501",
			"user-agent":        "GitHub-Hookshot/044aadd",
			"content-type":      "application/json",
		},
		"payload":            raw,
		"payload_sha256":     hex.EncodeToString(sum[:]),
		"signature_verified": true,
		"received_at":        "2025-03-03T15:45:13Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhook.received data (-want +got):\n%s", diff)
	}
	// What the correlator needs to tell a direct push to the default branch.
	p := raw.(map[string]any)
	if p["ref"] != "refs/heads/"+obj(p, "repository")["default_branch"].(string) {
		t.Errorf("testdata is not a push to the default branch")
	}
	attrs := []any{e.ID, e.Source, e.Subject, e.Time}
	wantAttrs := []any{"d-1", "https://github.com/codertocat/hello-world",
		"github.com/codertocat/hello-world/commit/6113728f27ae82c7b1a177c8d03f9e96e0adf246", fixedNow}
	if diff := cmp.Diff(wantAttrs, attrs); diff != "" {
		t.Errorf("id, source, subject, time (-want +got):\n%s", diff)
	}
}

// TestReceivedKeepsOnlySafeHeaders: the kept headers are the allow-list's,
// signatures included, never a credential.
func TestReceivedKeepsOnlySafeHeaders(t *testing.T) {
	body := payload(t, "pull_request.opened")
	h := headers("pull_request", "d-1")
	h.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	h.Set("X-GitHub-Hook-Installation-Target-ID", "186853002")
	h.Set("X-Hub-Signature-256", "sha256=00")
	h.Set("X-Hub-Signature", "sha1=00")
	h.Set("Authorization", "Bearer secret")
	h.Set("Cookie", "session=secret")
	h.Set("X-Forwarded-For", "10.0.0.1")
	events, err := newProvider().Translate(h, body)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, events, "d-1")
	got := webhooktest.DataMap(t, events[len(events)-1])["headers"]
	want := map[string]any{
		"x-github-event":                         "pull_request",
		"x-github-delivery":                      "d-1",
		"x-github-hook-id":                       "531374501",
		"x-github-hook-installation-target-type": "repository",
		"x-github-hook-installation-target-id":   "186853002",
		// The signatures are kept (an auditor verifies the stored
		// delivery again with them); the credentials and the proxy's
		// header are not.
		"x-hub-signature-256": "sha256=00",
		"x-hub-signature":     "sha1=00",
		"user-agent":          "GitHub-Hookshot/044aadd",
		"content-type":        "application/json",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers kept (-want +got):\n%s", diff)
	}
}

func TestTranslateFormEncoded(t *testing.T) {
	js := payload(t, "pull_request.opened")
	form := []byte("payload=" + url.QueryEscape(string(js)))
	h := headers("pull_request", "d-1")
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	events, err := newProvider().Translate(h, form)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, events, "d-1")
	jsonEvents := translate(t, "pull_request", js)
	if diff := cmp.Diff(jsonEvents[0].Data, events[0].Data); diff != "" {
		t.Errorf("form-encoded and JSON deliveries differ (-json +form):\n%s", diff)
	}
	raw := webhooktest.DataMap(t, events[1])
	var want any
	_ = json.Unmarshal(js, &want)
	if diff := cmp.Diff(want, raw["payload"]); diff != "" {
		t.Errorf("payload is not the form's JSON (-want +got):\n%s", diff)
	}
	sum := sha256.Sum256(form)
	if raw["payload_sha256"] != hex.EncodeToString(sum[:]) {
		t.Errorf("payload_sha256 = %v, want the SHA-256 of the form body as received", raw["payload_sha256"])
	}
}

func TestTranslateVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		event string
		file  string
		edit  func(m map[string]any)
		typ   string
		check map[string]any // data fields to compare
	}{{
		name: "reopened", event: "pull_request", file: "pull_request.opened",
		edit: func(m map[string]any) {
			m["action"] = "reopened"
			obj(m, "pull_request")["updated_at"] = "2019-06-01T10:00:00Z"
		},
		typ: "dev.evidencepipeline.change.opened.v1", check: map[string]any{"opened_at": "2019-06-01T10:00:00Z"},
	}, {
		name: "ready for review", event: "pull_request", file: "pull_request.opened",
		edit: func(m map[string]any) { m["action"] = "ready_for_review" },
		typ:  "dev.evidencepipeline.change.opened.v1", check: map[string]any{"draft": false},
	}, {
		name: "converted to draft", event: "pull_request", file: "pull_request.opened",
		edit: func(m map[string]any) { m["action"] = "converted_to_draft"; obj(m, "pull_request")["draft"] = true },
		typ:  "dev.evidencepipeline.change.updated.v1", check: map[string]any{"draft": true},
	}, {
		name: "title edited", event: "pull_request", file: "pull_request.opened",
		edit: func(m map[string]any) {
			m["action"] = "edited"
			m["changes"] = map[string]any{"title": map[string]any{"from": "Old title"}}
		},
		typ: "dev.evidencepipeline.change.updated.v1", check: map[string]any{"ticket_keys": []any{"PAY-123", "OPS-7"}},
	}, {
		name: "fork", event: "pull_request", file: "pull_request.opened",
		edit: func(m map[string]any) {
			obj(m, "pull_request", "head", "repo")["html_url"] = "https://github.com/Forker/Hello-World"
		},
		typ: "dev.evidencepipeline.change.opened.v1", check: map[string]any{"source_repository": "github.com/forker/hello-world"},
	}, {
		name: "enterprise host", event: "pull_request", file: "pull_request.opened",
		edit: func(m map[string]any) {
			obj(m, "repository")["html_url"] = "https://GHE.Acme.example/Payments/API"
			obj(m, "pull_request", "head", "repo")["html_url"] = "https://GHE.Acme.example/Payments/API"
			obj(m, "pull_request")["html_url"] = "https://GHE.Acme.example/Payments/API/pull/2"
		},
		typ: "dev.evidencepipeline.change.opened.v1",
		check: map[string]any{
			"repository": "ghe.acme.example/payments/api",
			"change":     map[string]any{"number": float64(2), "url": "https://GHE.Acme.example/Payments/API/pull/2"},
		},
	}, {
		name: "dismissed review", event: "pull_request_review", file: "pull_request_review.approved",
		edit: func(m map[string]any) {
			m["action"] = "dismissed"
			obj(m, "review")["state"] = "dismissed"
			m["sender"] = map[string]any{"login": "admin", "id": 9, "type": "User"}
		},
		typ: "dev.evidencepipeline.review.submitted.v1",
		check: map[string]any{
			"decision":     "dismissed",
			"reviewer":     map[string]any{"login": "octocat", "id": "583231", "type": "user"},
			"dismissed_by": map[string]any{"login": "admin", "id": "9", "type": "user"},
			"submitted_at": "2025-03-03T15:45:13Z",
		},
	}, {
		name: "review by an app's bot account", event: "pull_request_review", file: "pull_request_review.approved",
		edit: func(m map[string]any) {
			obj(m, "review")["user"] = map[string]any{"login": "dependabot[bot]", "id": 49699333, "type": "Bot"}
		},
		typ:   "dev.evidencepipeline.review.submitted.v1",
		check: map[string]any{"reviewer": map[string]any{"login": "dependabot[bot]", "id": "49699333", "type": "bot"}},
	}, {
		name: "a [bot] login is a bot whatever the type says", event: "pull_request_review", file: "pull_request_review.approved",
		edit: func(m map[string]any) {
			obj(m, "review")["user"] = map[string]any{"login": "Renovate[BOT]", "id": 29139614, "type": "User"}
		},
		typ:   "dev.evidencepipeline.review.submitted.v1",
		check: map[string]any{"reviewer": map[string]any{"login": "Renovate[BOT]", "id": "29139614", "type": "bot"}},
	}, {
		name: "review by github-actions[bot] is the pipeline's", event: "pull_request_review", file: "pull_request_review.approved",
		edit: func(m map[string]any) {
			obj(m, "review")["user"] = map[string]any{"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
		},
		typ:   "dev.evidencepipeline.review.submitted.v1",
		check: map[string]any{"reviewer": map[string]any{"login": "github-actions[bot]", "id": "41898282", "type": "service"}},
	}, {
		name: "review without commit_id", event: "pull_request_review", file: "pull_request_review.changes_requested",
		edit: func(m map[string]any) { delete(obj(m, "review"), "commit_id") },
		typ:  "dev.evidencepipeline.review.submitted.v1", check: map[string]any{"head_commit": head},
	}, {
		name: "review state upper case", event: "pull_request_review", file: "pull_request_review.approved",
		edit: func(m map[string]any) { obj(m, "review")["state"] = "APPROVED" },
		typ:  "dev.evidencepipeline.review.submitted.v1", check: map[string]any{"decision": "approved"},
	}, {
		name: "run requested", event: "workflow_run", file: "workflow_run.completed.success",
		edit: func(m map[string]any) { m["action"] = "requested"; obj(m, "workflow_run")["conclusion"] = nil },
		typ:  "dev.evidencepipeline.pipelinerun.started.v1", check: map[string]any{"started_at": "2020-10-05T16:33:49Z", "outcome": nil},
	}, {
		name: "run cancelled", event: "workflow_run", file: "workflow_run.completed.success",
		edit: func(m map[string]any) { obj(m, "workflow_run")["conclusion"] = "cancelled" },
		typ:  "dev.evidencepipeline.pipelinerun.finished.v1", check: map[string]any{"outcome": "cancelled"},
	}, {
		name: "run skipped", event: "workflow_run", file: "workflow_run.completed.success",
		edit: func(m map[string]any) { obj(m, "workflow_run")["conclusion"] = "skipped" },
		typ:  "dev.evidencepipeline.pipelinerun.finished.v1", check: map[string]any{"outcome": "error"},
	}, {
		name: "run on a release", event: "workflow_run", file: "workflow_run.completed.failure",
		edit: func(m map[string]any) {
			obj(m, "workflow_run")["event"] = "release"
			obj(m, "workflow_run")["head_branch"] = "v1.2.0"
		},
		typ: "dev.evidencepipeline.pipelinerun.finished.v1", check: map[string]any{"trigger": "tag", "tag": "v1.2.0", "branch": nil},
	}, {
		name: "deployment failed", event: "deployment_status", file: "deployment_status.success",
		edit: func(m map[string]any) { obj(m, "deployment_status")["state"] = "error" },
		typ:  "dev.evidencepipeline.deployment.finished.v1", check: map[string]any{"outcome": "failure"},
	}, {
		name: "deployment in progress", event: "deployment_status", file: "deployment_status.success",
		edit: func(m map[string]any) { obj(m, "deployment_status")["state"] = "in_progress" },
		typ:  "dev.evidencepipeline.deployment.started.v1", check: map[string]any{"deployment_id": "145988746", "outcome": nil},
	}, {
		name: "deployment payload as a string", event: "deployment", file: "deployment.created",
		edit: func(m map[string]any) { obj(m, "deployment")["payload"] = `{"service": "ledger"}` },
		typ:  "dev.evidencepipeline.deployment.started.v1", check: map[string]any{"service": "ledger", "digest": nil},
	}, {
		name: "deployment by a workflow", event: "deployment", file: "deployment.created",
		edit: func(m map[string]any) {
			m["workflow_run"] = map[string]any{"id": 77, "name": "deploy", "html_url": "https://github.com/Codertocat/Hello-World/actions/runs/77"}
			obj(m, "deployment")["creator"] = map[string]any{"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
		},
		typ: "dev.evidencepipeline.deployment.started.v1",
		check: map[string]any{
			"run_id": "77", "pipeline": "deploy", "system": "github-actions",
			"run_url":  "https://github.com/Codertocat/Hello-World/actions/runs/77",
			"deployer": map[string]any{"login": "github-actions:deploy", "name": "deploy", "type": "service"},
			// The run's token is not who triggered it; the payload names no one.
			"triggered_by": nil, "trigger": nil,
		},
	}, {
		// A job with an environment: GitHub names as the deployment's
		// creator the person who triggered the run (here by hand).
		name: "deployment by a workflow job, triggered by hand", event: "deployment", file: "deployment.created",
		edit: func(m map[string]any) {
			m["workflow_run"] = map[string]any{"id": 78, "name": "release", "event": "workflow_dispatch", "run_attempt": 1,
				"html_url":         "https://github.com/Codertocat/Hello-World/actions/runs/78",
				"actor":            map[string]any{"login": "Codertocat", "id": 21031067, "type": "User"},
				"triggering_actor": map[string]any{"login": "Codertocat", "id": 21031067, "type": "User"}}
		},
		typ: "dev.evidencepipeline.deployment.started.v1",
		check: map[string]any{
			"run_id": "78", "pipeline": "release", "system": "github-actions",
			"deployer":     map[string]any{"login": "github-actions:release", "name": "release", "type": "service"},
			"triggered_by": map[string]any{"login": "Codertocat", "id": "21031067", "type": "user"},
			"trigger":      "manual",
		},
	}, {
		name: "deployment by a re-run of a push run", event: "deployment_status", file: "deployment_status.success",
		edit: func(m map[string]any) {
			m["workflow_run"] = map[string]any{"id": 79, "name": "release", "event": "push", "run_attempt": 2,
				"html_url":         "https://github.com/Codertocat/Hello-World/actions/runs/79",
				"actor":            map[string]any{"login": "octocat", "id": 583231, "type": "User"},
				"triggering_actor": map[string]any{"login": "Codertocat", "id": 21031067, "type": "User"}}
		},
		typ: "dev.evidencepipeline.deployment.finished.v1",
		check: map[string]any{
			"deployer":     map[string]any{"login": "github-actions:release", "name": "release", "type": "service"},
			"triggered_by": map[string]any{"login": "Codertocat", "id": "21031067", "type": "user"},
			"trigger":      "manual",
		},
	}, {
		name: "deployment by a workflow, no actor in the run", event: "deployment", file: "deployment.created",
		edit: func(m map[string]any) {
			m["workflow_run"] = map[string]any{"id": 80, "name": "release", "event": "push"}
		},
		typ: "dev.evidencepipeline.deployment.started.v1",
		check: map[string]any{
			"deployer":     map[string]any{"login": "github-actions:release", "name": "release", "type": "service"},
			"triggered_by": map[string]any{"login": "Codertocat", "id": "21031067", "type": "user"},
			"trigger":      "push",
		},
	}, {
		name: "deployment created through the GitHub Actions app", event: "deployment", file: "deployment.created",
		edit: func(m map[string]any) {
			obj(m, "deployment")["performed_via_github_app"] = map[string]any{"id": 15368, "slug": "github-actions", "name": "GitHub Actions"}
		},
		typ: "dev.evidencepipeline.deployment.started.v1",
		check: map[string]any{
			"deployer":     map[string]any{"login": "github-actions[bot]", "type": "service"},
			"triggered_by": map[string]any{"login": "Codertocat", "id": "21031067", "type": "user"},
			"system":       nil,
		},
	}, {
		name: "deployment by a person", event: "deployment", file: "deployment.created",
		edit: func(m map[string]any) {},
		typ:  "dev.evidencepipeline.deployment.started.v1",
		check: map[string]any{
			"deployer":     map[string]any{"login": "Codertocat", "id": "21031067", "type": "user"},
			"triggered_by": nil, "system": nil,
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			events := translate(t, tc.event, modify(t, payload(t, tc.file), tc.edit))
			if events[0].Type != tc.typ {
				t.Fatalf("type %s, want %s", events[0].Type, tc.typ)
			}
			data := webhooktest.DataMap(t, events[0])
			for k, want := range tc.check {
				if diff := cmp.Diff(want, data[k]); diff != "" {
					t.Errorf("data.%s (-want +got):\n%s", k, diff)
				}
			}
		})
	}
}

func TestTranslateStatus(t *testing.T) {
	status := func(state string) []byte {
		return []byte(`{"id": 1, "sha": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "state": "` + state + `",
			"context": "ci/jenkins", "target_url": "https://jenkins.acme.example/job/app/12/",
			"created_at": "2019-05-15T15:20:55+00:00", "updated_at": "2019-05-15T15:20:55+00:00",
			"branches": [{"name": "main"}],
			"repository": {"name": "Hello-World", "full_name": "Codertocat/Hello-World", "html_url": "https://github.com/Codertocat/Hello-World"}}`)
	}
	started := translate(t, "status", status("pending"))
	finished := translate(t, "status", status("failure"))
	if started[0].Type != "dev.evidencepipeline.pipelinerun.started.v1" || finished[0].Type != "dev.evidencepipeline.pipelinerun.finished.v1" {
		t.Fatalf("types %v and %v", webhooktest.Types(started), webhooktest.Types(finished))
	}
	want := map[string]any{
		"repository":  "github.com/codertocat/hello-world",
		"commit":      "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		"branch":      "main",
		"run_id":      "status:ci/jenkins@6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		"run_url":     "https://jenkins.acme.example/job/app/12/",
		"pipeline":    "ci/jenkins",
		"outcome":     "failure",
		"finished_at": "2019-05-15T15:20:55Z",
	}
	if diff := cmp.Diff(want, webhooktest.DataMap(t, finished[0])); diff != "" {
		t.Errorf("finished (-want +got):\n%s", diff)
	}
	if got := webhooktest.DataMap(t, started[0])["run_id"]; got != want["run_id"] {
		t.Errorf("pending run_id %v does not pair with %v", got, want["run_id"])
	}
}

func TestTranslateIgnored(t *testing.T) {
	opened := payload(t, "pull_request.opened")
	for _, tc := range []struct {
		name   string
		event  string
		body   []byte
		reason string
	}{
		{"ping", "ping", []byte(`{"zen": "Keep it logically awesome.", "hook_id": 1}`), "ping carries no evidence"},
		{"issues", "issues", []byte(`{"action": "opened"}`), "issues carries no evidence"},
		{"star", "star", []byte(`not even JSON`), "star carries no evidence"},
		{"labeled", "pull_request", modify(t, opened, func(m map[string]any) { m["action"] = "labeled" }), "pull_request.labeled carries no evidence"},
		{"body edited", "pull_request", modify(t, opened, func(m map[string]any) {
			m["action"] = "edited"
			m["changes"] = map[string]any{"body": map[string]any{"from": "x"}}
		}), "pull_request.edited of the description carries no evidence"},
		{"review edited", "pull_request_review", modify(t, payload(t, "pull_request_review.approved"), func(m map[string]any) { m["action"] = "edited" }), "pull_request_review.edited carries no evidence"},
		{"tag push", "push", modify(t, payload(t, "push.default_branch"), func(m map[string]any) { m["ref"] = "refs/tags/v1" }), "push of a tag carries no evidence"},
		{"branch deleted", "push", modify(t, payload(t, "push.default_branch"), func(m map[string]any) {
			m["deleted"] = true
			m["after"] = "0000000000000000000000000000000000000000"
		}), "push deleting a branch carries no evidence"},
		{"deployment inactive", "deployment_status", modify(t, payload(t, "deployment_status.success"), func(m map[string]any) { obj(m, "deployment_status")["state"] = "inactive" }), "deployment_status inactive carries no evidence"},
		{"deployment queued", "deployment_status", modify(t, payload(t, "deployment_status.success"), func(m map[string]any) { obj(m, "deployment_status")["state"] = "queued" }), "deployment_status queued carries no evidence"},
		{"workflow job", "workflow_job", []byte(`{"action": "completed"}`), "workflow_job carries no evidence beyond workflow_run"},
		{"check run", "check_run", []byte(`{"action": "completed"}`), "check_run carries no evidence beyond check_suite and workflow_run"},
		{"actions check suite", "check_suite", []byte(`{"action": "completed", "check_suite": {"app": {"slug": "github-actions"}}}`), "check_suite of GitHub Actions duplicates workflow_run"},
		{"release edited", "release", []byte(`{"action": "edited"}`), "release.edited carries no evidence"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := newProvider().Translate(headers(tc.event, "d-1"), tc.body)
			var ign *webhook.Ignored
			if !errors.As(err, &ign) {
				t.Fatalf("Translate = %d events, %v; want Ignored", len(events), err)
			}
			if ign.Reason != tc.reason || events != nil {
				t.Errorf("reason %q with %d events, want %q", ign.Reason, len(events), tc.reason)
			}
		})
	}
}

func TestTranslateErrors(t *testing.T) {
	opened := payload(t, "pull_request.opened")
	merged := payload(t, "pull_request.closed.merged")
	form := func(h http.Header) { h.Set("Content-Type", "application/x-www-form-urlencoded") }
	for _, tc := range []struct {
		name   string
		event  string
		body   []byte
		header func(h http.Header)
		want   string
	}{
		{"no event header", "", opened, nil, "X-GitHub-Event header: missing"},
		{"no delivery header", "pull_request", opened, func(h http.Header) { h.Del("X-GitHub-Delivery") }, "X-GitHub-Delivery header: missing"},
		{"not JSON", "pull_request", []byte(`{"action": `), nil, "payload: not a JSON object"},
		{"JSON array", "pull_request", []byte(`[1, 2]`), nil, "payload: not a JSON object"},
		{"unknown content type", "pull_request", opened, func(h http.Header) { h.Set("Content-Type", "text/plain") }, `Content-Type header: "text/plain" is neither`},
		{"form without payload", "pull_request", []byte("other=1"), form, "payload form field: missing"},
		{"form with bad escape", "pull_request", []byte("payload=%zz"), form, "payload: the form body does not parse"},
		{"no head sha", "pull_request", modify(t, opened, func(m map[string]any) { delete(obj(m, "pull_request", "head"), "sha") }), nil, "pull_request.head.sha: missing"},
		{"bad head sha", "pull_request", modify(t, opened, func(m map[string]any) { obj(m, "pull_request", "head")["sha"] = "main" }), nil, `pull_request.head.sha: not a commit SHA: "main"`},
		{"number as string", "pull_request", modify(t, opened, func(m map[string]any) { obj(m, "pull_request")["number"] = "2" }), nil, "pull_request.number: want an integer, got string"},
		{"no number", "pull_request", modify(t, opened, func(m map[string]any) { delete(obj(m, "pull_request"), "number") }), nil, "pull_request.number: missing"},
		{"no author", "pull_request", modify(t, opened, func(m map[string]any) { obj(m, "pull_request")["user"] = nil }), nil, "pull_request.user.login: missing"},
		{"no repository", "pull_request", modify(t, opened, func(m map[string]any) { delete(m, "repository") }), nil, "repository: missing"},
		{"bad repository", "pull_request", modify(t, opened, func(m map[string]any) { obj(m, "repository")["html_url"] = "ftp://x/y/z" }), nil, `repository.html_url: not a repository web address: "ftp://x/y/z"`},
		{"no action", "pull_request", modify(t, opened, func(m map[string]any) { delete(m, "action") }), nil, "action: missing"},
		{"merged without merge commit", "pull_request", modify(t, merged, func(m map[string]any) { obj(m, "pull_request")["merge_commit_sha"] = nil }), nil, "pull_request.merge_commit_sha: missing"},
		{"unknown review state", "pull_request_review", modify(t, payload(t, "pull_request_review.approved"), func(m map[string]any) { obj(m, "review")["state"] = "maybe" }), nil, `review.state: "maybe" is not a review decision`},
		{"no reviewer", "pull_request_review", modify(t, payload(t, "pull_request_review.approved"), func(m map[string]any) { delete(obj(m, "review"), "user") }), nil, "review.user.login: missing"},
		{"no run head sha", "workflow_run", modify(t, payload(t, "workflow_run.completed.success"), func(m map[string]any) { delete(obj(m, "workflow_run"), "head_sha") }), nil, "workflow_run.head_sha: missing"},
		{"no environment", "deployment", modify(t, payload(t, "deployment.created"), func(m map[string]any) { delete(obj(m, "deployment"), "environment") }), nil, "deployment.environment: missing"},
		{"no deployment sha", "deployment_status", modify(t, payload(t, "deployment_status.success"), func(m map[string]any) { delete(obj(m, "deployment"), "sha") }), nil, "deployment.sha: missing"},
		{"push without after", "push", modify(t, payload(t, "push.default_branch"), func(m map[string]any) { delete(m, "after") }), nil, "after: missing"},
		{"unknown status state", "status", []byte(`{"state": "weird"}`), nil, `state: "weird" is not a commit status state`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := headers(tc.event, "d-1")
			if tc.event == "" {
				h.Del("X-GitHub-Event")
			}
			if tc.header != nil {
				tc.header(h)
			}
			events, err := newProvider().Translate(h, tc.body)
			var ign *webhook.Ignored
			if err == nil || errors.As(err, &ign) || events != nil {
				t.Fatalf("Translate = %d events, %v; want an error", len(events), err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestRedelivery: GitHub redelivers with the same X-GitHub-Delivery; the
// events must keep their source and id so that JetStream stores them once.
func TestRedelivery(t *testing.T) {
	for _, file := range []string{"pull_request.closed.merged", "pull_request_review.approved", "workflow_run.completed.success", "deployment.created", "push.default_branch"} {
		t.Run(file, func(t *testing.T) {
			event, _, _ := strings.Cut(file, ".")
			body := payload(t, file)
			first, err := newProvider().Translate(headers(event, "72d3162e-cc78-11e3-81ab-4c9367dc0958"), body)
			if err != nil {
				t.Fatal(err)
			}
			later := github.New(github.Options{Now: func() time.Time { return fixedNow.Add(36 * time.Hour) }})
			again, err := later.Translate(headers(event, "72d3162e-cc78-11e3-81ab-4c9367dc0958"), body)
			if err != nil {
				t.Fatal(err)
			}
			key := func(events []*ce.Event) []string {
				var out []string
				for _, e := range events {
					out = append(out, e.Source+" "+e.ID+" "+e.MsgID())
				}
				return out
			}
			if diff := cmp.Diff(key(first), key(again)); diff != "" {
				t.Errorf("a redelivery changes the events' source or id (-first +again):\n%s", diff)
			}
			other, err := newProvider().Translate(headers(event, "another-delivery"), body)
			if err != nil {
				t.Fatal(err)
			}
			for i := range other {
				if other[i].MsgID() == first[i].MsgID() {
					t.Errorf("another delivery gives event %s the same message id", other[i].ID)
				}
			}
		})
	}
}

func TestTicketMatcherOption(t *testing.T) {
	m, err := ticketkeys.New(`\b(INC[0-9]{5})\b`)
	if err != nil {
		t.Fatal(err)
	}
	p := github.New(github.Options{Tickets: m, Now: func() time.Time { return fixedNow }})
	body := modify(t, payload(t, "pull_request.opened"), func(m map[string]any) {
		obj(m, "pull_request")["title"] = "INC12345 PAY-1 hotfix"
	})
	events, err := p.Translate(headers("pull_request", "d-1"), body)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, events, "d-1")
	if diff := cmp.Diff([]any{"INC12345"}, webhooktest.DataMap(t, events[0])["ticket_keys"]); diff != "" {
		t.Errorf("ticket_keys with a configured matcher (-want +got):\n%s", diff)
	}
}

func TestProviderNames(t *testing.T) {
	p := newProvider()
	if p.Name() != "github" || p.SecretEnv() != "EVIDENCE_GITHUB_SECRET" {
		t.Errorf("Name, SecretEnv = %q, %q", p.Name(), p.SecretEnv())
	}
}
