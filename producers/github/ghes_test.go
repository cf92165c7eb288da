package github_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// GitHub Enterprise Server 3.1 to 3.5 send deployment and
// deployment_status payloads without an action field. The fixtures
// testdata/deployment.ghes.json and testdata/deployment_status.ghes.json
// are written for these tests on the shape of the examples of
// octokit/webhooks, payload-examples/ghes-31 to ghes-35 (deployment and
// deployment_status; the five versions give the same example): no action,
// an enterprise object, an installation, API links under /api/v3 of the
// server's host, deployment.payload {} and description null. The values
// (host, repository, users, SHAs, times) are our own.

// ghesHeaders are the headers of a GitHub Enterprise Server delivery.
func ghesHeaders(event, delivery string) http.Header {
	h := headers(event, delivery)
	h.Set("User-Agent", "GitHub-Hookshot/5b6a1c0")
	h.Set("X-GitHub-Enterprise-Version", "3.5.0")
	h.Set("X-GitHub-Enterprise-Host", "github.acme.example")
	return h
}

const ghesSHA = "5d1c2b3a4e5f60718293a4b5c6d7e8f901234567"

// TestGHESDeploymentsThroughHandler posts GHES-shaped deployment and
// deployment_status deliveries, which have no action, to the real handler
// and reads the deployment evidence back from the stream.
func TestGHESDeploymentsThroughHandler(t *testing.T) {
	srv := webhooktest.Handler(t, newProvider(), secret)
	mona := map[string]any{"login": "mona", "id": "42", "type": "user"}
	for _, tc := range []struct {
		event, file, delivery string
		typ, id               string
		time                  string
		want                  map[string]any
	}{{
		event: "deployment", file: "deployment.ghes", delivery: "6a1d2c30-e1a5-11ec-8b7e-1f2e3d4c5b6a",
		typ: webhook.TypeDeploymentStarted, id: "6a1d2c30-e1a5-11ec-8b7e-1f2e3d4c5b6a/deployment.started",
		time: "2022-06-01T09:30:00Z",
		want: map[string]any{
			"deployment_id": "7",
			"environment":   "production",
			"service":       "ledger", // deployment.payload is {}: the repository's name
			"repository":    "github.acme.example/payments/ledger",
			"commit":        ghesSHA,
			"deployer":      mona,
			"started_at":    "2022-06-01T09:30:00Z",
		},
	}, {
		event: "deployment_status", file: "deployment_status.ghes", delivery: "7b2e3d41-e1a5-11ec-8b7e-1f2e3d4c5b6a",
		typ: webhook.TypeDeploymentFinished, id: "7b2e3d41-e1a5-11ec-8b7e-1f2e3d4c5b6a/deployment.finished",
		time: "2022-06-01T09:34:10Z",
		want: map[string]any{
			"deployment_id": "7",
			"environment":   "production",
			"service":       "ledger",
			"repository":    "github.acme.example/payments/ledger",
			"commit":        ghesSHA,
			"deployer":      mona,
			"started_at":    "2022-06-01T09:30:00Z",
			"outcome":       "success",
			"finished_at":   "2022-06-01T09:34:10Z",
		},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			body := payload(t, tc.file)
			var m map[string]any
			if err := json.Unmarshal(body, &m); err != nil {
				t.Fatal(err)
			}
			if _, ok := m["action"]; ok {
				t.Fatalf("fixture %s has an action: it must have the GHES shape, without one", tc.file)
			}
			before := srv.StreamCount(t)
			h := ghesHeaders(tc.event, tc.delivery)
			sign(h, secret, body)
			code, r := srv.Post(t, h, body)
			wantResp := webhook.Response{Provider: "github", Accepted: 2, Events: []string{tc.typ, webhook.TypeWebhookReceived}}
			if code != http.StatusAccepted || !cmp.Equal(wantResp, r) {
				t.Fatalf("GHES %s without action: %d %+v, want 202 %+v", tc.event, code, r, wantResp)
			}
			if n := srv.StreamCount(t); n != before+2 {
				t.Fatalf("the stream holds %d messages, want %d", n, before+2)
			}
			e := eventWithID(t, srv.StreamEvents(t), tc.id)
			wantTime, _ := time.Parse(time.RFC3339, tc.time)
			got := []any{e.Type, e.Source, e.Subject, e.Time}
			want := []any{tc.typ, "https://github.acme.example/payments/ledger", "ledger", wantTime}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("type, source, subject, time (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.want, webhooktest.DataMap(t, e)); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
			raw := webhooktest.DataMap(t, eventWithID(t, srv.StreamEvents(t), tc.delivery))
			hdrs, _ := raw["headers"].(map[string]any)
			if hdrs["x-github-enterprise-version"] != "3.5.0" || hdrs["x-github-enterprise-host"] != "github.acme.example" {
				t.Errorf("webhook.received headers %v lack the GHES version and host", hdrs)
			}
		})
	}
}

// TestGHESMissingActionOnlyForDeployments: a missing action is read as
// created for deployment and deployment_status only; an explicit other
// action is ignored as before, and other events still need an action.
func TestGHESMissingActionOnlyForDeployments(t *testing.T) {
	p := newProvider()
	for _, tc := range []struct {
		name, event string
		body        []byte
		ignored     string // the Ignored reason, or
		err         string // the error
	}{
		{name: "deployment deleted", event: "deployment",
			body:    modify(t, payload(t, "deployment.ghes"), func(m map[string]any) { m["action"] = "deleted" }),
			ignored: "deployment.deleted carries no evidence"},
		{name: "deployment_status edited", event: "deployment_status",
			body:    modify(t, payload(t, "deployment_status.ghes"), func(m map[string]any) { m["action"] = "edited" }),
			ignored: "deployment_status.edited carries no evidence"},
		{name: "pull_request without action", event: "pull_request",
			body: modify(t, payload(t, "pull_request.opened"), func(m map[string]any) { delete(m, "action") }),
			err:  "action: missing"},
		{name: "deployment_review without action", event: "deployment_review",
			body: modify(t, payload(t, "deployment.ghes"), func(m map[string]any) {}),
			err:  "action: missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := p.Translate(ghesHeaders(tc.event, "d-1"), tc.body)
			var ign *webhook.Ignored
			switch {
			case events != nil:
				t.Fatalf("Translate gave %v, want none", webhooktest.Types(events))
			case tc.ignored != "":
				if !errors.As(err, &ign) || ign.Reason != tc.ignored {
					t.Errorf("Translate: %v, want ignored: %s", err, tc.ignored)
				}
			case err == nil || errors.As(err, &ign) || err.Error() != tc.err:
				t.Errorf("Translate: %v, want the error %q", err, tc.err)
			}
		})
	}
}

// eventWithID is the event of events with the id, or stops the test.
func eventWithID(t *testing.T, events []*ce.Event, id string) *ce.Event {
	t.Helper()
	for _, e := range events {
		if e.ID == id {
			return e
		}
	}
	t.Fatalf("no event %s among %d", id, len(events))
	return nil
}
