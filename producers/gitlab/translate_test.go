package gitlab_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

const (
	source = "https://gitlab.acme.example/payments/payments-api"
	repo   = "gitlab.acme.example/payments/payments-api"
	mrURL  = "https://gitlab.acme.example/Payments/Payments-API/-/merge_requests/42"
)

var (
	alice = map[string]any{"login": "alice", "id": "1001", "name": "Alice Martin", "type": "user"}
	bob   = map[string]any{"login": "bob", "id": "1002", "name": "Bob Chen", "email": "bob@acme.example", "type": "user"}
)

// want is one expected catalog event: its attributes and its data, field
// by field.
type want struct {
	Type    string
	ID      string
	Subject string
	Time    time.Time
	Data    map[string]any
}

func TestTranslateFixtures(t *testing.T) {
	for _, tc := range []struct {
		file, hook string
		want       want
	}{{
		file: "mr_open.json", hook: "Merge Request Hook",
		want: want{
			Type: "dev.evidencepipeline.change.opened.v1", ID: "uuid-1/change.opened",
			Subject: repo + "/-/merge_requests/42", Time: time.Date(2025, 3, 3, 9, 12, 44, 0, time.UTC),
			Data: map[string]any{
				"repository":    repo,
				"change":        map[string]any{"number": 42.0, "url": mrURL},
				"title":         "PAY-123 Retry card captures on gateway timeout",
				"author":        alice, // "[REDACTED]" e-mail left out
				"source_branch": "feature/pay-124-capture-retry",
				"target_branch": "main",
				"head_commit":   "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e", // lower-cased
				"ticket_keys":   []any{"PAY-123", "PAY-124"},                // title, then branch
				"draft":         false,
				"opened_at":     "2025-03-03T09:12:44Z",
			},
		},
	}, {
		file: "mr_update_oldrev.json", hook: "Merge Request Hook",
		want: want{
			Type: "dev.evidencepipeline.change.updated.v1", ID: "uuid-1/change.updated",
			Subject: repo + "/-/merge_requests/42", Time: time.Date(2025, 3, 3, 14, 2, 10, 0, time.UTC),
			Data: map[string]any{
				"repository":           repo,
				"change":               map[string]any{"number": 42.0, "url": mrURL},
				"title":                "PAY-123 Retry card captures on gateway timeout",
				"author":               map[string]any{"login": "alice", "id": "1001", "name": "Alice Martin", "email": "alice@acme.example", "type": "user"},
				"actor":                map[string]any{"login": "alice", "id": "1001", "name": "Alice Martin", "email": "alice@acme.example", "type": "user"},
				"source_branch":        "feature/pay-124-capture-retry",
				"target_branch":        "main",
				"head_commit":          "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
				"previous_head_commit": "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e",
				"ticket_keys":          []any{"PAY-123", "PAY-124"},
				"draft":                false,
				"updated_at":           "2025-03-03T14:02:10Z",
			},
		},
	}, {
		file: "mr_approved.json", hook: "Merge Request Hook",
		want: want{
			Type: "dev.evidencepipeline.review.submitted.v1", ID: "uuid-1/review.submitted",
			Subject: repo + "/-/merge_requests/42", Time: time.Date(2025, 3, 3, 15, 45, 12, 0, time.UTC),
			Data: map[string]any{
				"repository":   repo,
				"change":       map[string]any{"number": 42.0, "url": mrURL},
				"reviewer":     bob,
				"decision":     "approved",
				"head_commit":  "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
				"submitted_at": "2025-03-03T15:45:12Z",
			},
		},
	}, {
		file: "mr_merge.json", hook: "Merge Request Hook",
		want: want{
			Type: "dev.evidencepipeline.change.merged.v1", ID: "uuid-1/change.merged",
			Subject: repo + "/-/merge_requests/42", Time: time.Date(2025, 3, 3, 16, 30, 0, 0, time.UTC),
			Data: map[string]any{
				"repository":    repo,
				"change":        map[string]any{"number": 42.0, "url": mrURL},
				"title":         "PAY-123 Retry card captures on gateway timeout",
				"source_branch": "feature/pay-124-capture-retry",
				"target_branch": "main",
				"head_commit":   "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
				"merge_commit":  "c0ffee1234567890abcdef1234567890abcdef12",
				"method":        "merge",
				"merged_by":     bob,
				"merged_at":     "2025-03-03T16:30:00Z",
				"ticket_keys":   []any{"PAY-123", "PAY-124"},
			},
		},
	}, {
		file: "pipeline_success.json", hook: "Pipeline Hook",
		want: want{
			Type: "dev.evidencepipeline.pipelinerun.finished.v1", ID: "uuid-1/pipelinerun.finished",
			Subject: repo + "/-/pipelines/9876543210", Time: time.Date(2025, 3, 3, 16, 41, 5, 0, time.UTC),
			Data: map[string]any{
				"repository":  repo,
				"commit":      "c0ffee1234567890abcdef1234567890abcdef12",
				"branch":      "main",
				"run_id":      "9876543210",
				"run_url":     "https://gitlab.acme.example/Payments/Payments-API/-/pipelines/9876543210",
				"pipeline":    "release",
				"system":      "gitlab-ci",
				"actor":       bob,
				"trigger":     "push",
				"started_at":  "2025-03-03T16:30:20Z",
				"outcome":     "success",
				"finished_at": "2025-03-03T16:41:05Z",
			},
		},
	}, {
		file: "deployment_success.json", hook: "Deployment Hook",
		want: want{
			Type: "dev.evidencepipeline.deployment.finished.v1", ID: "uuid-1/deployment.finished",
			Subject: repo + "/-/environments/production", Time: time.Date(2025, 3, 4, 7, 7, 30, 0, time.UTC),
			Data: map[string]any{
				"deployment_id": "118",
				"environment":   "production",
				"service":       "payments-api",
				"repository":    repo,
				"commit":        "c0ffee1234567890abcdef1234567890abcdef12", // from commit_url, not short_sha
				"run_url":       "https://gitlab.acme.example/Payments/Payments-API/-/jobs/555001",
				"system":        "gitlab-ci",
				// The job (deployable) deployed: the pipeline; the hook's
				// user triggered it.
				"deployer":     map[string]any{"login": "gitlab-ci", "type": "service"},
				"triggered_by": map[string]any{"login": "project_42_bot_3f9a", "id": "2001", "name": "Deploy bot", "type": "bot"},
				"outcome":      "success",
				"finished_at":  "2025-03-04T07:07:30Z", // +0100 in the payload
			},
		},
	}, {
		file: "job_environment.json", hook: "Job Hook",
		want: want{
			Type: "dev.evidencepipeline.deployment.finished.v1", ID: "uuid-1/deployment.finished",
			Subject: repo + "/-/jobs/555001", Time: time.Date(2025, 3, 4, 7, 7, 30, 0, time.UTC),
			Data: map[string]any{
				"environment":  "production",
				"service":      "payments-api",
				"repository":   repo,
				"commit":       "c0ffee1234567890abcdef1234567890abcdef12",
				"run_id":       "9876543299",
				"run_url":      source + "/-/pipelines/9876543299",
				"pipeline":     "deploy:production",
				"system":       "gitlab-ci",
				"deployer":     map[string]any{"login": "gitlab-ci:deploy:production", "name": "deploy:production", "type": "service"},
				"triggered_by": bob,
				"started_at":   "2025-03-04T07:02:00Z",
				"outcome":      "success",
				"finished_at":  "2025-03-04T07:07:30Z",
			},
		},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			// As GitLab sends it: without the file's final newline (a body
			// with whitespace around its JSON is also kept in body_base64).
			body := bytes.TrimSpace(webhooktest.Testdata(t, tc.file))
			h := webhooktest.Header("X-Gitlab-Event", tc.hook, "X-Gitlab-Event-UUID", "uuid-1", "X-Gitlab-Token", "s3cret",
				"Content-Type", "application/json", "User-Agent", "GitLab/17.3.0")
			events, err := newProvider().Translate(h, body)
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			if len(events) != 2 {
				t.Fatalf("%d events, want the catalog event and the raw one", len(events))
			}
			e := events[0]
			got := want{Type: e.Type, ID: e.ID, Subject: e.Subject, Time: e.Time, Data: webhooktest.DataMap(t, e)}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("catalog event (-want +got):\n%s", diff)
			}
			if e.Source != source {
				t.Errorf("source %q, want %q", e.Source, source)
			}
			raw := events[1]
			sum := sha256.Sum256(body)
			var payload any
			if err := json.Unmarshal(body, &payload); err != nil {
				t.Fatal(err)
			}
			wantRaw := want{
				Type: typeRaw, ID: "uuid-1/webhook.received", Subject: tc.want.Subject, Time: tc.want.Time,
				Data: map[string]any{
					"provider":    "gitlab",
					"event":       tc.hook,
					"delivery_id": "uuid-1",
					"headers": map[string]any{ // never x-gitlab-token
						"x-gitlab-event": tc.hook, "x-gitlab-event-uuid": "uuid-1",
						"content-type": "application/json", "user-agent": "GitLab/17.3.0",
					},
					"payload":            payload,
					"payload_sha256":     hex.EncodeToString(sum[:]),
					"signature_verified": true,
					"received_at":        "2025-03-05T12:00:00Z",
				},
			}
			gotRaw := want{Type: raw.Type, ID: raw.ID, Subject: raw.Subject, Time: raw.Time, Data: webhooktest.DataMap(t, raw)}
			if diff := cmp.Diff(wantRaw, gotRaw); diff != "" {
				t.Errorf("raw event (-want +got):\n%s", diff)
			}
		})
	}
}

// edit returns the fixture with JSON edits applied: each edit is a path of
// object keys and the value to set there (nil deletes it).
func edit(t testing.TB, name string, edits ...[]any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(webhooktest.Testdata(t, name), &m); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		path, v := e[:len(e)-1], e[len(e)-1]
		obj := m
		for _, k := range path[:len(path)-1] {
			next, ok := obj[k.(string)].(map[string]any)
			if !ok {
				next = map[string]any{}
				obj[k.(string)] = next
			}
			obj = next
		}
		last := path[len(path)-1].(string)
		if v == nil {
			delete(obj, last)
		} else {
			obj[last] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func at(keysAndValue ...any) []any { return keysAndValue }

// TestTranslateVariants covers the other mappings, checking the fields
// each variant changes.
func TestTranslateVariants(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     []byte
		wantType string
		want     map[string]any // fields of the data to compare
	}{
		{"reopen by the author", edit(t, "mr_open.json", at("object_attributes", "action", "reopen")),
			"dev.evidencepipeline.change.opened.v1", map[string]any{"opened_at": "2025-03-03T09:12:44Z", "author": alice}},
		{"reopen by someone else", edit(t, "mr_open.json", at("object_attributes", "action", "reopen"), at("user", "id", 7.0), at("user", "username", "carol")),
			"dev.evidencepipeline.change.updated.v1", map[string]any{"author": nil, "actor": map[string]any{"login": "carol", "id": "7", "name": "Alice Martin", "type": "user"}}},
		{"approval below the threshold", edit(t, "mr_approved.json", at("object_attributes", "action", "approval")),
			"dev.evidencepipeline.review.submitted.v1", map[string]any{"decision": "approved", "reviewer": bob}},
		{"unapproved", edit(t, "mr_approved.json", at("object_attributes", "action", "unapproved")),
			"dev.evidencepipeline.review.submitted.v1", map[string]any{"decision": "dismissed", "reviewer": bob, "dismissed_by": bob}},
		{"unapproval", edit(t, "mr_approved.json", at("object_attributes", "action", "unapproval")),
			"dev.evidencepipeline.review.submitted.v1", map[string]any{"decision": "dismissed"}},
		{"approval by a user the payload marks as a bot", edit(t, "mr_approved.json", at("user", "bot", true)),
			"dev.evidencepipeline.review.submitted.v1", map[string]any{"reviewer": map[string]any{"login": "bob", "id": "1002", "name": "Bob Chen", "email": "bob@acme.example", "type": "bot"}}},
		{"a bot flag that is not true refuses nothing", edit(t, "mr_approved.json", at("user", "bot", "yes")),
			"dev.evidencepipeline.review.submitted.v1", map[string]any{"reviewer": bob}},
		{"approval by a project access token's user", edit(t, "mr_approved.json", at("user", "username", "project_42_bot_3f9a")),
			"dev.evidencepipeline.review.submitted.v1", map[string]any{"reviewer": map[string]any{"login": "project_42_bot_3f9a", "id": "1002", "name": "Bob Chen", "email": "bob@acme.example", "type": "bot"}}},
		{"self approval names the author", edit(t, "mr_approved.json", at("object_attributes", "author_id", 1002.0)),
			"dev.evidencepipeline.review.submitted.v1", map[string]any{"author": bob, "reviewer": bob}},
		{"squash merge", edit(t, "mr_merge.json", at("object_attributes", "merge_commit_sha", nil), at("object_attributes", "squash_commit_sha", "ABCDEF1234567890abcdef1234567890abcdef12")),
			"dev.evidencepipeline.change.merged.v1", map[string]any{"merge_commit": "abcdef1234567890abcdef1234567890abcdef12", "method": "squash"}},
		{"fast-forward merge", edit(t, "mr_merge.json", at("object_attributes", "merge_commit_sha", nil)),
			"dev.evidencepipeline.change.merged.v1", map[string]any{"merge_commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4", "method": "rebase"}},
		{"close", edit(t, "mr_merge.json", at("object_attributes", "action", "close")),
			"dev.evidencepipeline.change.closed.v1", map[string]any{"closed_by": bob, "closed_at": "2025-03-03T16:30:00Z", "merge_commit": nil}},
		{"title edit", edit(t, "mr_update_oldrev.json", at("object_attributes", "oldrev", nil), at("changes", "title", map[string]any{"previous": "x", "current": "y"})),
			"dev.evidencepipeline.change.updated.v1", map[string]any{"previous_head_commit": nil, "head_commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4"}},
		{"pipeline running", edit(t, "pipeline_success.json", at("object_attributes", "status", "running"), at("object_attributes", "finished_at", nil)),
			"dev.evidencepipeline.pipelinerun.started.v1", map[string]any{"outcome": nil, "started_at": "2025-03-03T16:30:20Z"}},
		{"pipeline failed", edit(t, "pipeline_success.json", at("object_attributes", "status", "failed")),
			"dev.evidencepipeline.pipelinerun.finished.v1", map[string]any{"outcome": "failure"}},
		{"pipeline canceled", edit(t, "pipeline_success.json", at("object_attributes", "status", "canceled")),
			"dev.evidencepipeline.pipelinerun.finished.v1", map[string]any{"outcome": "cancelled"}},
		{"merge request pipeline", edit(t, "pipeline_success.json", at("object_attributes", "source", "merge_request_event"), at("merge_request", map[string]any{"iid": 42.0, "url": mrURL})),
			"dev.evidencepipeline.pipelinerun.finished.v1", map[string]any{"trigger": "pull_request", "change": map[string]any{"number": 42.0, "url": mrURL}}},
		{"tag pipeline", edit(t, "pipeline_success.json", at("object_attributes", "tag", true), at("object_attributes", "ref", "v1.4.2")),
			"dev.evidencepipeline.pipelinerun.finished.v1", map[string]any{"tag": "v1.4.2", "branch": nil, "trigger": "tag"}},
		{"pipeline without url", edit(t, "pipeline_success.json", at("object_attributes", "url", nil)),
			"dev.evidencepipeline.pipelinerun.finished.v1", map[string]any{"run_url": source + "/-/pipelines/9876543210"}},
		{"deployment running", edit(t, "deployment_success.json", at("status", "running")),
			"dev.evidencepipeline.deployment.started.v1", map[string]any{"started_at": "2025-03-04T07:07:30Z", "outcome": nil, "finished_at": nil}},
		{"deployment failed", edit(t, "deployment_success.json", at("status", "failed")),
			"dev.evidencepipeline.deployment.finished.v1", map[string]any{"outcome": "failure"}},
		{"deployment canceled", edit(t, "deployment_success.json", at("status", "canceled")),
			"dev.evidencepipeline.deployment.finished.v1", map[string]any{"outcome": "cancelled"}},
		{"deployment with sha", edit(t, "deployment_success.json", at("sha", "0123456789abcdef0123456789abcdef01234567")),
			"dev.evidencepipeline.deployment.finished.v1", map[string]any{"commit": "0123456789abcdef0123456789abcdef01234567"}},
		{"deployment with short sha only", edit(t, "deployment_success.json", at("commit_url", nil)),
			"dev.evidencepipeline.deployment.finished.v1", map[string]any{"commit": "c0ffee12"}},
		{"deployment created through the API, no job", edit(t, "deployment_success.json", at("deployable_id", nil), at("deployable_url", nil)),
			"dev.evidencepipeline.deployment.finished.v1", map[string]any{
				"deployer":     map[string]any{"login": "project_42_bot_3f9a", "id": "2001", "name": "Deploy bot", "type": "bot"},
				"triggered_by": nil, "run_url": nil}},
		{"deploy job running", edit(t, "job_environment.json", at("build_status", "running"), at("build_finished_at", nil)),
			"dev.evidencepipeline.deployment.started.v1", map[string]any{"started_at": "2025-03-04T07:02:00Z", "outcome": nil}},
		{"deploy job failed", edit(t, "job_environment.json", at("build_status", "failed")),
			"dev.evidencepipeline.deployment.finished.v1", map[string]any{"outcome": "failure"}},
		{"deploy job without project", edit(t, "job_environment.json", at("project", nil)),
			"dev.evidencepipeline.deployment.finished.v1", map[string]any{"repository": repo, "service": "payments-api"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := newProvider().Translate(webhooktest.Header("X-Gitlab-Event-UUID", "uuid-2"), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			if events[0].Type != tc.wantType {
				t.Fatalf("type %s, want %s", events[0].Type, tc.wantType)
			}
			data := webhooktest.DataMap(t, events[0])
			got := map[string]any{}
			for k := range tc.want {
				got[k] = data[k]
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	for name, body := range map[string][]byte{
		"note":                 []byte(`{"object_kind":"note","object_attributes":{"noteable_type":"MergeRequest","note":"LGTM"}}`),
		"tag push":             []byte(`{"object_kind":"tag_push","ref":"refs/tags/v1.0.0"}`),
		"branch deletion":      []byte(`{"object_kind":"push","ref":"refs/heads/old","before":"9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4","after":"0000000000000000000000000000000000000000","project":{"web_url":"https://gitlab.acme.example/a/b"}}`),
		"issue":                []byte(`{"object_kind":"issue","object_attributes":{"action":"open"}}`),
		"system hook":          []byte(`{"event_name":"project_create","name":"x"}`),
		"label change":         edit(t, "mr_update_oldrev.json", at("object_attributes", "oldrev", nil), at("changes", "labels", map[string]any{"previous": []any{}, "current": []any{}})),
		"mr other action":      edit(t, "mr_open.json", at("object_attributes", "action", "update"), at("changes", map[string]any{"description": 1.0})),
		"pipeline created":     edit(t, "pipeline_success.json", at("object_attributes", "status", "created")),
		"pipeline skipped":     edit(t, "pipeline_success.json", at("object_attributes", "status", "skipped")),
		"job without env":      edit(t, "job_environment.json", at("environment", nil)),
		"job stops env":        edit(t, "job_environment.json", at("environment", "action", "stop")),
		"job pending":          edit(t, "job_environment.json", at("build_status", "pending")),
		"deployment created":   edit(t, "deployment_success.json", at("status", "created")),
		"header-only push tag": []byte(`{"ref":"refs/tags/v2","after":"9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4"}`),
	} {
		t.Run(name, func(t *testing.T) {
			h := webhooktest.Header()
			if name == "header-only push tag" {
				h.Set("X-Gitlab-Event", "Push Hook")
			}
			events, err := newProvider().Translate(h, body)
			if !webhooktest.IsIgnored(err) {
				t.Fatalf("Translate() = %d events, %v; want *webhook.Ignored", len(events), err)
			}
		})
	}
}

func TestPushKeepsRaw(t *testing.T) {
	body := []byte(`{"object_kind":"push","ref":"refs/heads/main","before":"9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
		"after":"c0ffee1234567890abcdef1234567890abcdef12","user_username":"alice",
		"project":{"web_url":"https://gitlab.acme.example/Payments/Payments-API","default_branch":"main"}}`)
	events, err := newProvider().Translate(webhooktest.Header("X-Gitlab-Event", "Push Hook"), body)
	if err != nil {
		t.Fatal(err)
	}
	webhooktest.CheckEvents(t, events)
	if len(events) != 1 || events[0].Type != typeRaw {
		t.Fatalf("got %d events, want only webhook.received", len(events))
	}
	e := events[0]
	if e.Subject != repo+"@c0ffee1234567890abcdef1234567890abcdef12" || !e.Time.Equal(received) || e.Source != source {
		t.Errorf("subject %q, time %v, source %q", e.Subject, e.Time, e.Source)
	}
	if got := webhooktest.DataMap(t, e)["event"]; got != "Push Hook" {
		t.Errorf("event %v", got)
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name, body, field string
	}{
		{"not JSON", `{"object_kind":`, "(body)"},
		{"array", `[1,2]`, "(body)"},
		{"no kind", `{"foo":1}`, "object_kind"},
		{"kind not a string", `{"object_kind":5}`, "object_kind"},
		{"iid a string", string(edit(t, "mr_open.json", at("object_attributes", "iid", "42"))), "object_attributes.iid"},
		{"iid missing", string(edit(t, "mr_open.json", at("object_attributes", "iid", nil))), "object_attributes.iid"},
		{"no action", string(edit(t, "mr_open.json", at("object_attributes", "action", nil))), "object_attributes.action"},
		{"bad head", string(edit(t, "mr_open.json", at("object_attributes", "last_commit", "id", "zz"))), "object_attributes.last_commit.id"},
		{"no head", string(edit(t, "mr_approved.json", at("object_attributes", "last_commit", nil))), "object_attributes.last_commit.id"},
		{"bad oldrev", string(edit(t, "mr_update_oldrev.json", at("object_attributes", "oldrev", "HEAD~1"))), "object_attributes.oldrev"},
		{"bad time", string(edit(t, "mr_open.json", at("object_attributes", "created_at", "yesterday"))), "object_attributes.created_at"},
		{"no project", string(edit(t, "mr_open.json", at("project", nil), at("object_attributes", "target", nil))), "project.web_url"},
		{"bad project url", string(edit(t, "pipeline_success.json", at("project", "web_url", "https://gitlab.acme.example"))), "project.web_url"},
		{"user not an object", string(edit(t, "mr_open.json", at("user", "alice"))), "user"},
		{"pipeline no sha", string(edit(t, "pipeline_success.json", at("object_attributes", "sha", nil))), "object_attributes.sha"},
		{"pipeline no id", string(edit(t, "pipeline_success.json", at("object_attributes", "id", nil))), "object_attributes.id"},
		{"deployment no env", string(edit(t, "deployment_success.json", at("environment", nil))), "environment"},
		{"deployment no commit", string(edit(t, "deployment_success.json", at("commit_url", nil), at("short_sha", nil))), "short_sha"},
		{"job bad sha", string(edit(t, "job_environment.json", at("sha", "not-a-sha"))), "sha"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := newProvider().Translate(webhooktest.Header(), []byte(tc.body))
			if err == nil || webhooktest.IsIgnored(err) {
				t.Fatalf("Translate() = %d events, %v; want an error naming %s", len(events), err, tc.field)
			}
			var fe *ce.Error
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %q names %q, want %q", err, fieldOf(err), tc.field)
			}
		})
	}
}

func fieldOf(err error) string {
	var fe *ce.Error
	if errors.As(err, &fe) {
		return fe.Field
	}
	return ""
}

func TestIDs(t *testing.T) {
	p := newProvider()
	body := webhooktest.Testdata(t, "mr_approved.json")
	ids := func(h map[string]string, body []byte) []string {
		t.Helper()
		hh := webhooktest.Header()
		for k, v := range h {
			hh.Set(k, v)
		}
		events, err := p.Translate(hh, body)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range events {
			out = append(out, e.Source+" "+e.ID)
		}
		return out
	}
	sum := sha256.Sum256(body)
	hash := "sha256:" + hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		headers map[string]string
		base    string
	}{
		{"idempotency key wins", map[string]string{"Idempotency-Key": "idem-1", "X-Gitlab-Event-UUID": "uuid-1"}, "idem-1"},
		{"event uuid", map[string]string{"X-Gitlab-Event-UUID": "uuid-1"}, "uuid-1"},
		{"body hash", nil, hash},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := ids(tc.headers, body)
			want := []string{source + " " + tc.base + "/review.submitted", source + " " + tc.base + "/webhook.received"}
			if diff := cmp.Diff(want, first); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(first, ids(tc.headers, body)); diff != "" {
				t.Errorf("a redelivery changed the ids (-first +replay):\n%s", diff)
			}
		})
	}
	// Without a delivery header, another body is another delivery.
	other := edit(t, "mr_approved.json", at("object_attributes", "updated_at", "2025-03-03 15:50:00 UTC"))
	if a, b := ids(nil, body), ids(nil, other); a[0] == b[0] {
		t.Errorf("two different deliveries share the id %s", a[0])
	}
	if !strings.HasPrefix(ids(nil, body)[0], source+" sha256:") {
		t.Error("hash id not prefixed")
	}
}
