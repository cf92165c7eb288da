package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// SeenBucket is the JetStream KV bucket of the seen markers: one entry
// per delivery body stored, keyed by provider and the body's SHA-256.
const SeenBucket = "EVIDENCE_WEBHOOK_SEEN"

// DefaultSeenMaxAge is how long a seen marker is kept when
// SeenOptions.MaxAge is zero: the default --stream-max-age.
const DefaultSeenMaxAge = 720 * time.Hour

// SeenOptions configures the bucket of the seen markers.
type SeenOptions struct {
	// MaxAge is how long a marker is kept (the bucket's TTL); 0 means
	// DefaultSeenMaxAge. evidenced passes its --stream-max-age, so that a
	// replay is recognized as long as the events it would duplicate are
	// in the stream.
	MaxAge time.Duration
	// Replicas is the bucket's number of replicas (0 means 1).
	Replicas int
}

// Seen is the durable record of the webhook deliveries whose events are
// stored, by what their signature covers (the body), not by the
// sender's delivery id, which is not signed: a signed body replayed with
// a new delivery id, or after JetStream's duplicate window, is recognized
// and not stored again. Its markers expire after MaxAge.
type Seen struct {
	kv     jetstream.KeyValue
	maxAge time.Duration
}

// NewSeen creates the bucket of the seen markers, or binds to it and
// updates its configuration: safe to run at every start, by every
// replica. One Seen serves the handlers of every provider.
func NewSeen(ctx context.Context, js jetstream.JetStream, opts SeenOptions) (*Seen, error) {
	if js == nil {
		return nil, errors.New("webhook: seen markers: no JetStream to keep them in")
	}
	if opts.MaxAge < 0 {
		return nil, fmt.Errorf("webhook: seen markers: MaxAge %s is negative", opts.MaxAge)
	}
	if opts.MaxAge == 0 {
		opts.MaxAge = DefaultSeenMaxAge
	}
	if opts.Replicas < 1 {
		opts.Replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SeenBucket,
		Description: "evidenced webhooks: the delivery bodies already stored (provider.sha256 of the body), kept for the stream's max age",
		History:     1,
		TTL:         opts.MaxAge,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("webhook: create or update KV bucket %s: %w", SeenBucket, err)
	}
	return &Seen{kv: kv, maxAge: opts.MaxAge}, nil
}

// MaxAge is how long a marker is kept.
func (s *Seen) MaxAge() time.Duration { return s.maxAge }

// seenKey is the marker's key of a body from provider: provider, a dot,
// the body's SHA-256 in hex.
func seenKey(provider string, body []byte) string { return provider + "." + BodySHA(body) }

// seenMark is a marker's value: which webhook.received event holds the
// body, for whoever looks a marker up.
type seenMark struct {
	Source   string `json:"source"`
	ID       string `json:"id"`
	StoredAt string `json:"stored_at"`
}

// has reports whether key is marked.
func (s *Seen) has(ctx context.Context, key string) (bool, error) {
	_, err := s.kv.Get(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	}
	return false, fmt.Errorf("read seen marker %s: %w", key, err)
}

// mark marks key. A marker already there (a concurrent delivery of the
// same body) is kept.
func (s *Seen) mark(ctx context.Context, key string, m seenMark) error {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode seen marker %s: %w", key, err)
	}
	if _, err := s.kv.Create(ctx, key, b); err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("write seen marker %s: %w", key, err)
	}
	return nil
}
