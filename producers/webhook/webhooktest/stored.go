package webhooktest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Stored is a delivery as an auditor reads it back from its
// webhook.received event, to verify it again with the secret: the kept
// headers and the bytes the sender signed.
type Stored struct {
	// Header holds the kept headers.
	Header http.Header
	// Payload is the raw bytes of the payload member, not re-encoded.
	Payload []byte
	// Signed are the bytes the signature covers: body_base64 decoded when
	// the event has it, else Payload.
	Signed []byte
}

// StoredDelivery reads e, a webhook.received event, as an auditor would.
// An event of another type, data that does not decode, or signed bytes
// whose SHA-256 is not payload_sha256 stop the test.
func StoredDelivery(t testing.TB, e *ce.Event) Stored {
	t.Helper()
	if e.Type != webhook.TypeWebhookReceived {
		t.Fatalf("event %s is a %s, not a webhook.received", e.ID, e.Type)
	}
	var d struct {
		Headers       map[string]string `json:"headers"`
		Payload       json.RawMessage   `json:"payload"`
		PayloadSHA256 string            `json:"payload_sha256"`
		BodyBase64    *string           `json:"body_base64"`
	}
	if err := json.Unmarshal(e.Data, &d); err != nil {
		t.Fatalf("data of %s: %v", e.ID, err)
	}
	s := Stored{Header: http.Header{}, Payload: d.Payload, Signed: d.Payload}
	for k, v := range d.Headers {
		s.Header.Set(k, v)
	}
	if d.BodyBase64 != nil {
		b, err := base64.StdEncoding.DecodeString(*d.BodyBase64)
		if err != nil {
			t.Fatalf("body_base64 of %s: %v", e.ID, err)
		}
		if bytes.Equal(b, d.Payload) {
			t.Errorf("%s: body_base64 is the payload member: it should be left out", e.ID)
		}
		s.Signed = b
	}
	if got := webhook.BodySHA(s.Signed); got != d.PayloadSHA256 {
		t.Fatalf("%s: the stored signed bytes have SHA-256 %s, payload_sha256 says %s", e.ID, got, d.PayloadSHA256)
	}
	return s
}
