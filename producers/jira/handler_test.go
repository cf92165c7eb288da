package jira_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

func TestHandler(t *testing.T) {
	post := func(h *webhooktest.Fixture, signature string, body []byte) (int, webhook.Response) {
		t.Helper()
		hdr := webhooktest.Header("Content-Type", "application/json",
			"X-Atlassian-Webhook-Identifier", "4f1c7c2e-2b7e-4b9e-9d36-0c1b2a3d4e5f")
		if signature != "" {
			hdr.Set("X-Hub-Signature", signature)
		}
		return h.Post(t, hdr, body)
	}
	body := webhooktest.Testdata(t, "change_approved.json")
	h := webhooktest.Handler(t, newProvider(), "s3cret")

	code, r := post(h, webhooktest.SignHex("s3cret", body), body)
	if code != http.StatusAccepted || r.Accepted != 3 || r.Duplicates != 0 {
		t.Fatalf("signed post: %d %+v, want 202 with 3 events accepted", code, r)
	}
	want := []string{"dev.evidencepipeline.ticket.transitioned.v1", "dev.evidencepipeline.ticket.approved.v1", typeRaw}
	if strings.Join(r.Events, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", r.Events, want)
	}
	if n := h.StreamCount(t); n != 3 {
		t.Fatalf("stream holds %d events, want 3", n)
	}

	code, r = post(h, webhooktest.SignHex("s3cret", body), body)
	if code != http.StatusAccepted || r.Duplicates != r.Accepted || r.Accepted != 3 {
		t.Errorf("replay: %d %+v, want every event a duplicate", code, r)
	}
	if n := h.StreamCount(t); n != 3 {
		t.Errorf("after the replay the stream holds %d events, want 3", n)
	}

	code, r = post(h, webhooktest.SignHex("guess", body), body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "X-Hub-Signature") {
		t.Errorf("bad signature: %d %+v, want 401 naming the header", code, r)
	}
	code, r = post(h, "", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "neither") {
		t.Errorf("no signature: %d %+v, want 401 saying it is missing", code, r)
	}

	unconfigured := h.Another(t, newProvider(), "")
	code, r = post(unconfigured, webhooktest.SignHex("s3cret", body), body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "EVIDENCE_JIRA_SECRET") {
		t.Errorf("no secret configured: %d %+v, want 401 naming EVIDENCE_JIRA_SECRET", code, r)
	}
	if n := h.StreamCount(t); n != 3 {
		t.Errorf("refused deliveries stored events: the stream holds %d, want 3", n)
	}
}
