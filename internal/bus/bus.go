// Package bus is the project's use of NATS JetStream: the embedded server,
// the connection, the streams (events and dead letters) created or updated
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
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
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

// Embedded is an in-process NATS server with JetStream.
type Embedded struct {
	Server *server.Server
	users  *Users
}

// EmbeddedConfig configures the embedded server.
type EmbeddedConfig struct {
	// StoreDir is the JetStream file store directory.
	StoreDir string
	// Listen is host:port for NATS clients; empty: no listener, in-process
	// connections only. Port -1 picks a random port (tests).
	Listen string
	// Users, when set, are the only clients the server accepts, each
	// with its role's permissions; the in-process connection is
	// evidenced's user.
	Users *Users
	Log   *slog.Logger
}

// StartEmbedded starts a NATS server with JetStream in this process and
// waits until it is ready.
func StartEmbedded(c EmbeddedConfig) (*Embedded, error) {
	opts := &server.Options{
		ServerName: "evidenced-embedded",
		JetStream:  true,
		StoreDir:   c.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Webhook payloads are kept whole as evidence: allow up to 32 MiB.
		MaxPayload: 32 << 20,
	}
	if c.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", c.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	if c.Users != nil {
		opts.Users = c.Users.ServerUsers()
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	if c.Log != nil {
		c.Log.Info("embedded NATS started", "store_dir", c.StoreDir, "client_url", clientURL(s, c.Listen))
	}
	return &Embedded{Server: s, users: c.Users}, nil
}

func clientURL(s *server.Server, listen string) string {
	if listen == "" {
		return "(in-process only)"
	}
	return s.ClientURL()
}

// Connect opens a client connection to the embedded server.
func (e *Embedded) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.InProcessServer(e.Server), nats.Name(name), nats.MaxReconnects(-1)}
	if e.users != nil {
		opts = append(opts, nats.UserInfo(UserEvidenced, e.users.Password(UserEvidenced)))
	}
	return nats.Connect("", opts...)
}

// Shutdown stops the server and waits for it to end.
func (e *Embedded) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
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
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	return nc, nil
}
