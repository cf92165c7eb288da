package github_test

import (
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

func TestHandler(t *testing.T) {
	srv := webhooktest.Handler(t, newProvider(), secret)

	body := payload(t, "pull_request.closed.merged")
	hdr := headers("pull_request", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	sign(hdr, secret, body)

	code, r := srv.Post(t, hdr, body)
	want := webhook.Response{Provider: "github", Accepted: 2,
		Events: []string{"dev.evidencepipeline.change.merged.v1", "dev.evidencepipeline.webhook.received.v1"}}
	if code != http.StatusAccepted || !cmp.Equal(want, r) {
		t.Fatalf("first delivery: %d %+v, want 202 %+v", code, r, want)
	}
	events := srv.StreamEvents(t)
	got := make([]string, len(events))
	for i, e := range events {
		got[i] = e.Type + " " + e.ID
	}
	wantStored := []string{
		"dev.evidencepipeline.change.merged.v1 72d3162e-cc78-11e3-81ab-4c9367dc0958/change.merged",
		"dev.evidencepipeline.webhook.received.v1 72d3162e-cc78-11e3-81ab-4c9367dc0958",
	}
	if diff := cmp.Diff(wantStored, got); diff != "" {
		t.Fatalf("stored events (-want +got):\n%s", diff)
	}
	if d := webhooktest.DataMap(t, events[0]); d["merge_commit"] != "c4295bd74fb0f4fda03689c3df3f2803b658fd85" {
		t.Errorf("stored change.merged has merge_commit %v", d["merge_commit"])
	}

	t.Run("redelivery", func(t *testing.T) {
		code, r := srv.Post(t, hdr, body)
		if code != http.StatusAccepted || r.Accepted != 2 || r.Duplicates != r.Accepted {
			t.Fatalf("redelivery: %d %+v, want 202 with every event a duplicate", code, r)
		}
		if n := len(srv.StreamEvents(t)); n != 2 {
			t.Errorf("the stream holds %d events after a redelivery, want 2", n)
		}
	})

	t.Run("same body, new delivery id", func(t *testing.T) {
		// X-GitHub-Delivery is not signed: a replay of the signed body
		// under another id is the same delivery.
		h := hdr.Clone()
		h.Set("X-GitHub-Delivery", "0b8f7e6d-0000-4000-8000-000000000009")
		code, r := srv.Post(t, h, body)
		if code != http.StatusAccepted || r.Accepted != 2 || r.Duplicates != 2 {
			t.Fatalf("replay with a new id: %d %+v, want 202 with every event a duplicate", code, r)
		}
		if n := len(srv.StreamEvents(t)); n != 2 {
			t.Errorf("the stream holds %d events after a replay with a new id, want 2", n)
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		h := headers("pull_request", "another")
		code, r := srv.Post(t, h, body)
		if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "X-Hub-Signature-256 header is missing") {
			t.Errorf("unsigned: %d %+v, want 401 naming the header", code, r)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		h := hdr.Clone()
		h.Set("X-GitHub-Delivery", "tampered")
		code, r := srv.Post(t, h, append(bytes.Clone(body), ' '))
		if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "does not match") {
			t.Errorf("tampered: %d %+v, want 401", code, r)
		}
	})

	t.Run("ping", func(t *testing.T) {
		ping := []byte(`{"zen": "Design for failure.", "hook_id": 531374501, "hook": {"type": "Repository", "events": ["*"]}}`)
		h := headers("ping", "ping-1")
		sign(h, secret, ping)
		code, r := srv.Post(t, h, ping)
		if code != http.StatusOK || r.Ignored != "ping carries no evidence" {
			t.Errorf("ping: %d %+v, want 200 ignored", code, r)
		}
	})

	t.Run("form encoded", func(t *testing.T) {
		form := []byte("payload=" + url.QueryEscape(string(payload(t, "push.default_branch"))))
		h := headers("push", "form-1")
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		sign(h, secret, form)
		code, r := srv.Post(t, h, form)
		if code != http.StatusAccepted || r.Accepted != 1 || r.Duplicates != 0 {
			t.Errorf("form-encoded push: %d %+v, want 202 with one event", code, r)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		bad := modify(t, body, func(m map[string]any) { delete(obj(m, "pull_request", "head"), "sha") })
		h := headers("pull_request", "bad-1")
		sign(h, secret, bad)
		code, r := srv.Post(t, h, bad)
		if code != http.StatusBadRequest || r.Detail != "pull_request.head.sha: missing" {
			t.Errorf("malformed: %d %+v, want 400 naming the field", code, r)
		}
	})

	if n := len(srv.StreamEvents(t)); n != 3 {
		t.Errorf("the stream holds %d events, want 3 (merge, its raw delivery, the form-encoded push)", n)
	}
}

func TestHandlerWithoutSecret(t *testing.T) {
	srv := webhooktest.Handler(t, github.New(github.Options{}), "")
	body := payload(t, "pull_request.opened")
	hdr := headers("pull_request", "d-1")
	sign(hdr, secret, body)
	code, r := srv.Post(t, hdr, body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "EVIDENCE_GITHUB_SECRET") {
		t.Errorf("no secret: %d %+v, want 401 naming EVIDENCE_GITHUB_SECRET", code, r)
	}
	if n := len(srv.StreamEvents(t)); n != 0 {
		t.Errorf("the stream holds %d events, want none", n)
	}
}
