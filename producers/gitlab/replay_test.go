package gitlab_test

import (
	"net/http"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// TestReplayWithNewDeliveryID: the same body sent again under a new
// Idempotency-Key or X-Gitlab-Event-UUID (neither is covered by the
// token) is answered as a duplicate and not stored again.
func TestReplayWithNewDeliveryID(t *testing.T) {
	body := webhooktest.Testdata(t, "mr_merge.json")
	h := webhooktest.Handler(t, newProvider(), "s3cret")
	hdr := func(kv ...string) http.Header {
		return webhooktest.Header(append([]string{"Content-Type", "application/json",
			"X-Gitlab-Event", "Merge Request Hook", "X-Gitlab-Token", "s3cret"}, kv...)...)
	}
	code, r := h.Post(t, hdr("Idempotency-Key", "idem-1", "X-Gitlab-Event-UUID", "uuid-1"), body)
	if code != http.StatusAccepted || r.Accepted != 2 || r.Duplicates != 0 {
		t.Fatalf("first delivery: %d %+v, want 202 with 2 events stored", code, r)
	}
	for name, replay := range map[string]http.Header{
		"new Idempotency-Key":       hdr("Idempotency-Key", "idem-2", "X-Gitlab-Event-UUID", "uuid-1"),
		"new X-Gitlab-Event-UUID":   hdr("X-Gitlab-Event-UUID", "uuid-2"),
		"no delivery id (body key)": hdr(),
	} {
		code, r := h.Post(t, replay, body)
		if code != http.StatusAccepted || r.Accepted != 2 || r.Duplicates != 2 {
			t.Errorf("same body, %s: %d %+v, want 202 with both events duplicates", name, code, r)
		}
	}
	if n := h.StreamCount(t); n != 2 {
		t.Errorf("the stream holds %d events after the replays, want 2", n)
	}
}
