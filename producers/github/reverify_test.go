package github_test

import (
	"bytes"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// TestStoredDeliveryVerifiesAgain posts signed deliveries through the real
// handler, reads their webhook.received events back from JetStream, and
// verifies each stored delivery again with the secret, as an auditor
// would: the kept X-Hub-Signature-256 and the stored bytes must satisfy
// Provider.Verify, and the stored bytes must be the body as sent.
func TestStoredDeliveryVerifiesAgain(t *testing.T) {
	srv := webhooktest.Handler(t, newProvider(), secret)
	// The fixture is indented JSON; the title adds characters that a JSON
	// encoder would escape (<, >, &, U+2028) and an escape that it would
	// rewrite (\u00e9): the stored payload must keep them all as sent.
	// (The file's final newline is removed: whitespace around the JSON is
	// the third case.)
	pretty := bytes.Replace(bytes.TrimRight(payload(t, "pull_request.opened"), "\n"),
		[]byte(`"PAY-123 Retry card captures on gateway timeout"`),
		[]byte(`"PAY-123 Retry <captures> & caf\u00e9`+"\u2028"+`timeouts"`), 1)
	if !bytes.Contains(pretty, []byte("<captures>")) {
		t.Fatal("the title to replace is not in the fixture")
	}
	form := []byte("payload=" + url.QueryEscape(string(pretty)))
	for _, tc := range []struct {
		name, delivery, contentType string
		body                        []byte
		kept                        bool // body_base64 expected: the payload member is not the body
	}{
		{"json", "5f0c1e2a-0000-4000-8000-000000000001", "application/json", pretty, false},
		{"form encoded", "5f0c1e2a-0000-4000-8000-000000000002", "application/x-www-form-urlencoded", form, true},
		{"json with a final newline", "5f0c1e2a-0000-4000-8000-000000000003", "application/json", append(bytes.Clone(pretty), '\n'), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := headers("pull_request", tc.delivery)
			h.Set("Content-Type", tc.contentType)
			sign(h, secret, tc.body)
			h.Set("X-Hub-Signature", "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6") // kept as sent, not checked
			if code, r := srv.Post(t, h, tc.body); code != http.StatusAccepted {
				t.Fatalf("delivery: %d %+v, want 202", code, r)
			}
			var raw *ce.Event
			for _, e := range srv.StreamEvents(t) {
				if e.ID == tc.delivery && e.Type == webhook.TypeWebhookReceived {
					raw = e
				}
			}
			if raw == nil {
				t.Fatalf("no webhook.received %s in the stream", tc.delivery)
			}
			s := webhooktest.StoredDelivery(t, raw)
			if got := s.Header.Get("X-Hub-Signature-256"); got != h.Get("X-Hub-Signature-256") {
				t.Fatalf("kept X-Hub-Signature-256 %q, want the one sent, %q", got, h.Get("X-Hub-Signature-256"))
			}
			if got := s.Header.Get("X-Hub-Signature"); got != h.Get("X-Hub-Signature") {
				t.Errorf("kept X-Hub-Signature %q, want the one sent, %q", got, h.Get("X-Hub-Signature"))
			}
			if kept := !bytes.Equal(s.Signed, s.Payload); kept != tc.kept {
				t.Errorf("body kept beside the payload: %v, want %v", kept, tc.kept)
			}
			if !bytes.Equal(s.Payload, pretty) {
				t.Errorf("the stored payload is not byte for byte the payload sent:\n got %.200q\nwant %.200q", s.Payload, pretty)
			}
			if !bytes.Equal(s.Signed, tc.body) {
				t.Fatalf("the stored signed bytes are not the body sent")
			}
			p := newProvider()
			if err := p.Verify(s.Header, s.Signed, secret); err != nil {
				t.Errorf("the stored delivery does not verify again with the secret: %v", err)
			}
			if err := p.Verify(s.Header, s.Signed, "another secret"); !errors.Is(err, webhook.ErrBadSignature) {
				t.Errorf("with another secret: %v, want ErrBadSignature", err)
			}
		})
	}
}
