package jira_test

import (
	"net/http"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// TestReplayWithNewDeliveryID: the same signed body sent again under a
// new X-Atlassian-Webhook-Identifier (not signed) is answered as a
// duplicate and not stored again.
func TestReplayWithNewDeliveryID(t *testing.T) {
	body := webhooktest.Testdata(t, "change_approved.json")
	h := webhooktest.Handler(t, newProvider(), "s3cret")
	for i, id := range []string{"4f1c7c2e-0000-4b9e-9d36-000000000001", "4f1c7c2e-0000-4b9e-9d36-000000000002"} {
		hdr := webhooktest.Header("Content-Type", "application/json", "X-Atlassian-Webhook-Identifier", id,
			"X-Hub-Signature", webhooktest.SignHex("s3cret", body))
		code, r := h.Post(t, hdr, body)
		if want := 3 * i; code != http.StatusAccepted || r.Accepted != 3 || r.Duplicates != want {
			t.Errorf("delivery %s: %d %+v, want 202 with 3 events, %d duplicates", id, code, r, want)
		}
	}
	if n := h.StreamCount(t); n != 3 {
		t.Errorf("the stream holds %d events, want 3", n)
	}
}
