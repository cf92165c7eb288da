package gitlab_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

func TestHandler(t *testing.T) {
	post := func(h *webhooktest.Fixture, token string, body []byte) (int, webhook.Response) {
		t.Helper()
		hdr := webhooktest.Header("Content-Type", "application/json", "X-Gitlab-Event", "Merge Request Hook",
			"X-Gitlab-Event-UUID", "7f3c2a10-1b2c-4d5e-8f90-0a1b2c3d4e5f")
		if token != "" {
			hdr.Set("X-Gitlab-Token", token)
		}
		return h.Post(t, hdr, body)
	}
	body := webhooktest.Testdata(t, "mr_merge.json")
	h := webhooktest.Handler(t, newProvider(), "s3cret")

	code, r := post(h, "s3cret", body)
	if code != http.StatusAccepted || r.Accepted != 2 || r.Duplicates != 0 {
		t.Fatalf("signed post: %d %+v, want 202 with 2 events accepted", code, r)
	}
	if want := []string{"dev.evidencepipeline.change.merged.v1", typeRaw}; strings.Join(r.Events, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", r.Events, want)
	}
	if n := h.StreamCount(t); n != 2 {
		t.Fatalf("stream holds %d events, want 2", n)
	}

	code, r = post(h, "s3cret", body)
	if code != http.StatusAccepted || r.Duplicates != r.Accepted || r.Accepted != 2 {
		t.Errorf("replay: %d %+v, want every event a duplicate", code, r)
	}
	if n := h.StreamCount(t); n != 2 {
		t.Errorf("after the replay the stream holds %d events, want 2", n)
	}

	code, r = post(h, "guess", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "X-Gitlab-Token") {
		t.Errorf("bad token: %d %+v, want 401 naming the header", code, r)
	}
	code, r = post(h, "", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "missing") {
		t.Errorf("no token: %d %+v, want 401 saying it is missing", code, r)
	}

	unconfigured := h.Another(t, newProvider(), "")
	code, r = post(unconfigured, "s3cret", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Detail, "EVIDENCE_GITLAB_TOKEN") {
		t.Errorf("no secret configured: %d %+v, want 401 naming EVIDENCE_GITLAB_TOKEN", code, r)
	}
	if n := h.StreamCount(t); n != 2 {
		t.Errorf("refused deliveries stored events: the stream holds %d, want 2", n)
	}
}
