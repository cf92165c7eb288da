package github_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// post sends a delivery to the handler and decodes its answer.
func post(t *testing.T, url string, h http.Header, body []byte) (int, webhook.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r webhook.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, r
}

// stored reads every event of the event stream.
func stored(t *testing.T, js jetstream.JetStream) []*ce.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []*ce.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		e, err := ce.ParseJSON(m.Data)
		if err != nil {
			t.Fatalf("message %d is not an event: %v", seq, err)
		}
		if m.Subject != bus.Subject(e.Type) {
			t.Errorf("message %d on %s, want %s", seq, m.Subject, bus.Subject(e.Type))
		}
		out = append(out, e)
	}
	return out
}

func TestHandler(t *testing.T) {
	js := testenv.NATS(t)
	h := webhook.NewHandler(newProvider(), secret, bus.NewPublisher(js.JS), 0, nil, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()

	body := payload(t, "pull_request.closed.merged")
	hdr := headers("pull_request", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
	sign(hdr, secret, body)

	code, r := post(t, srv.URL, hdr, body)
	want := webhook.Response{Provider: "github", Accepted: 2,
		Events: []string{"dev.evidencepipeline.change.merged.v1", "dev.evidencepipeline.webhook.received.v1"}}
	if code != http.StatusAccepted || !cmp.Equal(want, r) {
		t.Fatalf("first delivery: %d %+v, want 202 %+v", code, r, want)
	}
	events := stored(t, js.JS)
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
	if d := dataOf(t, events[0]); d["merge_commit"] != "c4295bd74fb0f4fda03689c3df3f2803b658fd85" {
		t.Errorf("stored change.merged has merge_commit %v", d["merge_commit"])
	}

	t.Run("redelivery", func(t *testing.T) {
		code, r := post(t, srv.URL, hdr, body)
		if code != http.StatusAccepted || r.Accepted != 2 || r.Duplicates != r.Accepted {
			t.Fatalf("redelivery: %d %+v, want 202 with every event a duplicate", code, r)
		}
		if n := len(stored(t, js.JS)); n != 2 {
			t.Errorf("the stream holds %d events after a redelivery, want 2", n)
		}
	})

	t.Run("unsigned", func(t *testing.T) {
		h := headers("pull_request", "another")
		code, r := post(t, srv.URL, h, body)
		if code != http.StatusUnauthorized || !strings.Contains(r.Error, "X-Hub-Signature-256 header is missing") {
			t.Errorf("unsigned: %d %+v, want 401 naming the header", code, r)
		}
	})

	t.Run("tampered", func(t *testing.T) {
		h := hdr.Clone()
		h.Set("X-GitHub-Delivery", "tampered")
		code, r := post(t, srv.URL, h, append(bytes.Clone(body), ' '))
		if code != http.StatusUnauthorized || !strings.Contains(r.Error, "does not match") {
			t.Errorf("tampered: %d %+v, want 401", code, r)
		}
	})

	t.Run("ping", func(t *testing.T) {
		ping := []byte(`{"zen": "Design for failure.", "hook_id": 531374501, "hook": {"type": "Repository", "events": ["*"]}}`)
		h := headers("ping", "ping-1")
		sign(h, secret, ping)
		code, r := post(t, srv.URL, h, ping)
		if code != http.StatusOK || r.Ignored != "ping carries no evidence" {
			t.Errorf("ping: %d %+v, want 200 ignored", code, r)
		}
	})

	t.Run("form encoded", func(t *testing.T) {
		form := []byte("payload=" + url.QueryEscape(string(payload(t, "push.default_branch"))))
		h := headers("push", "form-1")
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		sign(h, secret, form)
		code, r := post(t, srv.URL, h, form)
		if code != http.StatusAccepted || r.Accepted != 1 || r.Duplicates != 0 {
			t.Errorf("form-encoded push: %d %+v, want 202 with one event", code, r)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		bad := modify(t, body, func(m map[string]any) { delete(obj(m, "pull_request", "head"), "sha") })
		h := headers("pull_request", "bad-1")
		sign(h, secret, bad)
		code, r := post(t, srv.URL, h, bad)
		if code != http.StatusBadRequest || r.Error != "pull_request.head.sha: missing" {
			t.Errorf("malformed: %d %+v, want 400 naming the field", code, r)
		}
	})

	if n := len(stored(t, js.JS)); n != 3 {
		t.Errorf("the stream holds %d events, want 3 (merge, its raw delivery, the form-encoded push)", n)
	}
}

func TestHandlerWithoutSecret(t *testing.T) {
	js := testenv.NATS(t)
	h := webhook.NewHandler(github.New(github.Options{}), "", bus.NewPublisher(js.JS), 0, nil, nil)
	srv := httptest.NewServer(h)
	defer srv.Close()
	body := payload(t, "pull_request.opened")
	hdr := headers("pull_request", "d-1")
	sign(hdr, secret, body)
	code, r := post(t, srv.URL, hdr, body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Error, "EVIDENCE_GITHUB_SECRET") {
		t.Errorf("no secret: %d %+v, want 401 naming EVIDENCE_GITHUB_SECRET", code, r)
	}
	if n := len(stored(t, js.JS)); n != 0 {
		t.Errorf("the stream holds %d events, want none", n)
	}
}
