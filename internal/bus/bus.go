// Package bus is the project's use of NATS JetStream: the connection, the streams (events and dead letters) created or updated
// idempotently at start, and the acknowledged publish of events.
//
// Subjects: every event is stored on evidence.events.<type tokens>; dead
// letters on evidence.dlq.<stage>. A publish is only successful once
// JetStream has acknowledged it; the message id (Nats-Msg-Id) is derived
// from the CloudEvent's source and id so that a retried publish within the
// duplicate window is stored once.
package bus

import (
	"context"
	"fmt"
	"log/slog"
	neturl "net/url"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	// EventStream holds every accepted event.
	EventStream = "EVIDENCE_EVENTS"
	// EventSubjects is the subject filter of the event stream.
	EventSubjects = "evidence.events.>"
	// DLQStream holds what a stage could not process, with the reason in
	// headers.
	DLQStream = "EVIDENCE_DLQ"
	// DLQSubjects is the subject filter of the dead-letter stream.
	DLQSubjects = "evidence.dlq.>"
)

// Header names set on messages.
const (
	HeaderContentType = "Content-Type"
	// Dead-letter headers.
	HeaderDLQReason      = "Evidence-Dlq-Reason"
	HeaderDLQStage       = "Evidence-Dlq-Stage"
	HeaderDLQOriginalSeq = "Evidence-Dlq-Stream-Seq"
	HeaderDLQOriginalSub = "Evidence-Dlq-Subject"
	HeaderDLQTime        = "Evidence-Dlq-Time"
)

// StreamConfig is what the operator may tune of the streams.
type StreamConfig struct {
	// MaxAge bounds how long events stay in the event stream (0: forever).
	// The archive must catch up within it.
	MaxAge time.Duration
	// Duplicates is the de-duplication window of the event stream.
	Duplicates time.Duration
	// Replicas is the number of stream replicas (1 for a single server).
	Replicas int
}

// EnsureStreams creates the event and dead-letter streams or updates their
// configuration: safe to run at every start, by every replica.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, c StreamConfig) error {
	if c.Replicas < 1 {
		c.Replicas = 1
	}
	streams := []jetstream.StreamConfig{{
		Name:        EventStream,
		Description: "Every accepted evidence event (CloudEvents, canonical JSON).",
		Subjects:    []string{EventSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		MaxAge:      c.MaxAge,
		Duplicates:  c.Duplicates,
		Replicas:    c.Replicas,
		Discard:     jetstream.DiscardOld,
		// Evidence is not removed by hand.
		DenyDelete: true,
		DenyPurge:  true,
	}, {
		Name:        DLQStream,
		Description: "Events a stage could not process; the reason is in the Evidence-Dlq-* headers.",
		Subjects:    []string{DLQSubjects},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    c.Replicas,
	}}
	for _, sc := range streams {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("create or update stream %s: %w", sc.Name, err)
		}
	}
	return nil
}

// Subject is the subject an event of the given type is published on:
// evidence.events. followed by the type's dot-separated tokens, each
// reduced to the characters NATS allows.
func Subject(eventType string) string {
	var b strings.Builder
	b.Grow(len("evidence.events.") + len(eventType))
	b.WriteString("evidence.events")
	for _, tok := range strings.Split(eventType, ".") {
		b.WriteByte('.')
		if tok == "" {
			b.WriteByte('_')
			continue
		}
		for _, r := range tok {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
				b.WriteRune(r)
			default:
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

// Connect opens a connection to an external NATS server, reconnecting
// forever on loss.
func Connect(ctx context.Context, url, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.RetryOnFailedConnect(false),
	}
	if log != nil {
		opts = append(opts,
			nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("NATS disconnected", "err", err) }),
			nats.ReconnectHandler(func(c *nats.Conn) { log.Info("NATS reconnected", "url", c.ConnectedUrlRedacted()) }),
		)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", RedactedURL(url), err)
	}
	return nc, nil
}

// RedactedURL is a NATS server URL, or a comma-separated list of them,
// with any password hidden, for errors and logs.
func RedactedURL(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		u, err := neturl.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(unparsable URL)"
			continue
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}
