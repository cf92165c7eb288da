package jira_test

import (
	"errors"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// TestStoredDeliveryVerifiesAgain: a stored Jira delivery keeps its
// X-Hub-Signature, never the X-Evidence-Token sent beside it (a
// credential), and verifies again with the secret from what is stored.
func TestStoredDeliveryVerifiesAgain(t *testing.T) {
	h := webhooktest.Handler(t, newProvider(), "s3cret")
	body := webhooktest.Testdata(t, "change_approved.json")
	hdr := webhooktest.Header("Content-Type", "application/json",
		"X-Atlassian-Webhook-Identifier", "0b6e2c1d-9a8f-4e7d-8c6b-5a4f3e2d1c0b",
		"X-Hub-Signature", webhooktest.SignHex("s3cret", body), "X-Evidence-Token", "s3cret")
	if code, r := h.Post(t, hdr, body); code != 202 {
		t.Fatalf("signed post: %d %+v, want 202", code, r)
	}
	events := h.StreamEvents(t)
	s := webhooktest.StoredDelivery(t, events[len(events)-1])
	if got := s.Header.Get("X-Hub-Signature"); got != hdr.Get("X-Hub-Signature") {
		t.Errorf("kept X-Hub-Signature %q, want the one sent", got)
	}
	if got := s.Header.Get("X-Evidence-Token"); got != "" {
		t.Errorf("the credential X-Evidence-Token is kept: %q", got)
	}
	p := newProvider()
	if err := p.Verify(s.Header, s.Signed, "s3cret"); err != nil {
		t.Errorf("the stored delivery does not verify again: %v", err)
	}
	if err := p.Verify(s.Header, s.Signed, "guess"); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("with another secret: %v, want ErrBadSignature", err)
	}
}
