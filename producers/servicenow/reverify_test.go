package servicenow_test

import (
	"errors"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// TestStoredDeliveryVerifiesAgain: a stored ServiceNow delivery keeps its
// X-Evidence-Signature, never the X-Evidence-Token or Authorization sent
// beside it (credentials), and verifies again with the secret from what
// is stored.
func TestStoredDeliveryVerifiesAgain(t *testing.T) {
	h := webhooktest.Handler(t, newProvider(), "s3cret")
	body := webhooktest.Testdata(t, "approved.json")
	hdr := webhooktest.Header("Content-Type", "application/json",
		"X-Evidence-Signature", webhooktest.SignBase64("s3cret", body),
		"X-Evidence-Token", "s3cret", "Authorization", "Basic eDp5")
	if code, r := h.Post(t, hdr, body); code != 202 {
		t.Fatalf("signed post: %d %+v, want 202", code, r)
	}
	events := h.StreamEvents(t)
	s := webhooktest.StoredDelivery(t, events[len(events)-1])
	if got := s.Header.Get("X-Evidence-Signature"); got != hdr.Get("X-Evidence-Signature") {
		t.Errorf("kept X-Evidence-Signature %q, want the one sent", got)
	}
	for _, k := range []string{"X-Evidence-Token", "Authorization"} {
		if got := s.Header.Get(k); got != "" {
			t.Errorf("the credential %s is kept: %q", k, got)
		}
	}
	p := newProvider()
	if err := p.Verify(s.Header, s.Signed, "s3cret"); err != nil {
		t.Errorf("the stored delivery does not verify again: %v", err)
	}
	if err := p.Verify(s.Header, s.Signed, "guess"); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("with another secret: %v, want ErrBadSignature", err)
	}
}
