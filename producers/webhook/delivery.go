package webhook

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// Delivery is what one HTTP delivery contributes to every event an
// adapter makes from it. NewDelivery fills it in; the adapter then sets
// what its sender gives (ID, Key, RawID, Payload).
type Delivery struct {
	Provider string // the provider's name, as in /webhooks/<name>
	Name     string // the provider's name of the kind of delivery (X-GitHub-Event)
	// Key is the base of the event ids: an event's id is Key + "/" +
	// suffix. A redelivery must have the same key, so that JetStream
	// stores its events once.
	Key string
	// ID is the sender's id of the delivery, "" when it gives none.
	ID string
	// RawID is the id of the webhook.received event, "" for Key +
	// "/webhook.received".
	RawID string
	// Headers are the kept request headers, names in lower case; nil when
	// none was sent.
	Headers map[string]string
	// Body is the body as received (what the sender signed).
	Body []byte
	// Payload is the JSON payload: Body itself, or the field of a
	// form-encoded Body that holds it.
	Payload    []byte
	ReceivedAt time.Time // UTC
}

// NewDelivery returns the delivery of body from provider, received at
// now. Of the headers of h, it keeps those named in keep (an allow-list:
// never name a header that carries a credential). Its key is "sha256:"
// and the SHA-256 of the body, which a retry of the same body has too;
// it has no ID.
func NewDelivery(provider, name string, h http.Header, keep []string, body []byte, now time.Time) Delivery {
	d := Delivery{Provider: provider, Name: name, Key: "sha256:" + BodySHA(body),
		Body: body, Payload: body, ReceivedAt: now.UTC()}
	for _, k := range keep {
		if v := h.Get(k); v != "" {
			if d.Headers == nil {
				d.Headers = make(map[string]string)
			}
			d.Headers[strings.ToLower(k)] = v
		}
	}
	return d
}

// BodySHA is the SHA-256 of body in lower-case hex.
func BodySHA(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// Event builds one CloudEvent of the delivery, with data encoded as JSON.
// Its id is Key + "/" + suffix: suffix tells it from the other events of
// the same delivery.
func (d Delivery) Event(source, suffix, typ, subject string, t time.Time, data any) (*ce.Event, error) {
	return d.event(d.Key+"/"+suffix, source, typ, subject, t, data)
}

func (d Delivery) event(id, source, typ, subject string, t time.Time, data any) (*ce.Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", typ, err)
	}
	return &ce.Event{
		ID:              id,
		Source:          source,
		Type:            typ,
		Subject:         subject,
		Time:            t,
		DataContentType: "application/json",
		Data:            b,
	}, nil
}

// rawHead and rawTail are the data of webhook.received around its
// payload, which is written between them as it was received (see Raw).
type rawHead struct {
	Provider   string            `json:"provider"`
	Event      string            `json:"event"`
	DeliveryID string            `json:"delivery_id,omitempty"`
	Headers    map[string]string `json:"headers,omitempty"`
}

type rawTail struct {
	PayloadSHA256     string `json:"payload_sha256"`
	SignatureVerified bool   `json:"signature_verified"`
	ReceivedAt        string `json:"received_at"`
	// BodyBase64 is the body as received when the payload member is not
	// byte for byte the body (a form-encoded GitHub delivery, whitespace
	// around the JSON): what the signature covers.
	BodyBase64 string `json:"body_base64,omitempty"`
}

// Raw is the webhook.received event that keeps the payload, its kept
// headers and the SHA-256 of the body as received. Its time is t, the
// fact's time when the delivery has one, else (t zero) the time it was
// received. Call it only for a delivery that Provider.Verify accepted:
// it records signature_verified.
//
// The payload is written into the data byte for byte as it was received
// (not re-encoded: no whitespace removed inside it, no character
// escaped), so that the raw bytes of the payload member of a JSON
// delivery are the body the sender signed: with the kept signature header
// and the secret, an auditor verifies it again. When they are not the body
// (a form-encoded delivery, or a body with whitespace around the JSON),
// body_base64 holds the body as received. The payload must be valid JSON.
func (d Delivery) Raw(source, subject string, t time.Time) (*ce.Event, error) {
	if t.IsZero() {
		t = d.ReceivedAt
	}
	id := d.RawID
	if id == "" {
		id = d.Key + "/webhook.received"
	}
	// The payload member holds the payload without the whitespace around
	// it, which a JSON reader would not give back.
	payload := bytes.Trim(d.Payload, " \t\r\n")
	if !json.Valid(payload) {
		return nil, fmt.Errorf("encoding %s: the payload is not valid JSON", TypeWebhookReceived)
	}
	head, err := json.Marshal(rawHead{Provider: d.Provider, Event: d.Name, DeliveryID: d.ID, Headers: d.Headers})
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", TypeWebhookReceived, err)
	}
	tail := rawTail{
		// The handler calls Translate only after Verify succeeded.
		PayloadSHA256:     BodySHA(d.Body),
		SignatureVerified: true,
		ReceivedAt:        d.ReceivedAt.Format(time.RFC3339Nano),
	}
	if !bytes.Equal(d.Body, payload) {
		tail.BodyBase64 = base64.StdEncoding.EncodeToString(d.Body)
	}
	rest, err := json.Marshal(tail)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", TypeWebhookReceived, err)
	}
	// {head...,"payload":<payload>,tail...}
	data := make([]byte, 0, len(head)+len(payload)+len(rest)+len(`,"payload":,`))
	data = append(data, head[:len(head)-1]...)
	data = append(data, `,"payload":`...)
	data = append(data, payload...)
	data = append(data, ',')
	data = append(data, rest[1:]...)
	return &ce.Event{
		ID:              id,
		Source:          source,
		Type:            TypeWebhookReceived,
		Subject:         subject,
		Time:            t,
		DataContentType: "application/json",
		Data:            data,
	}, nil
}
