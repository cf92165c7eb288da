package bus

import (
	"context"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// Published is the outcome of publishing one event.
type Published struct {
	// Seq is the event's stream sequence (for a duplicate: the sequence of
	// the copy stored first).
	Seq uint64
	// Duplicate is set when the stream already held this event.
	Duplicate bool
	// Err is set when JetStream did not acknowledge the event.
	Err error
}

// Publisher publishes events to the event stream and waits for
// JetStream's acknowledgements.
type Publisher struct {
	js jetstream.JetStream
}

// NewPublisher returns a publisher on js.
func NewPublisher(js jetstream.JetStream) *Publisher { return &Publisher{js: js} }

// Message is the NATS message that carries an event: its canonical JSON,
// with the de-duplication id derived from source and id.
func Message(e *ce.Event) *nats.Msg {
	m := nats.NewMsg(Subject(e.Type))
	m.Data = e.MarshalCanonical()
	m.Header.Set(HeaderContentType, "application/cloudevents+json")
	m.Header.Set(jetstream.MsgIDHeader, e.MsgID())
	return m
}

// TooLargeError is returned by Publish, before anything is published,
// when an event does not fit in one NATS message (the server's
// max_payload) or its subject is longer than MaxSubjectLen.
type TooLargeError struct {
	Index int // the event's position
	Size  int // its message's size, or its subject's length
	Limit int
	// Subject is set when the subject is what is too long.
	Subject bool
}

func (e *TooLargeError) Error() string {
	if e.Subject {
		return fmt.Sprintf("event %d: its NATS subject would be %d bytes, at most %d (shorten the type)", e.Index, e.Size, e.Limit)
	}
	return fmt.Sprintf("event %d: %d bytes as a NATS message, more than the server's max_payload of %d bytes", e.Index, e.Size, e.Limit)
}

// MaxSubjectLen bounds the subject of a published event: NATS closes a
// connection whose protocol line (subject included) passes 4 KiB, which
// would stop every stage. The receiver bounds type well inside it
// (ce.MaxTypeLen); this is the last line of defence.
const MaxSubjectLen = 1024

// Publish publishes the events concurrently and returns one result per
// event, in order, once every acknowledgement (or error) is in. It returns
// an error only when ctx ends first, or (a *TooLargeError, nothing
// published) when an event cannot be one NATS message; per-event
// failures are in the results.
func (p *Publisher) Publish(ctx context.Context, events []*ce.Event) ([]Published, error) {
	msgs := make([]*nats.Msg, len(events))
	limit := int64(0)
	if nc := p.js.Conn(); nc != nil {
		limit = nc.MaxPayload()
	}
	for i, e := range events {
		m := Message(e)
		if len(m.Subject) > MaxSubjectLen {
			return nil, &TooLargeError{Index: i, Size: len(m.Subject), Limit: MaxSubjectLen, Subject: true}
		}
		if size := messageSize(m); limit > 0 && int64(size) > limit {
			return nil, &TooLargeError{Index: i, Size: size, Limit: int(limit)}
		}
		msgs[i] = m
	}
	out := make([]Published, len(events))
	futures := make([]jetstream.PubAckFuture, len(events))
	for i, m := range msgs {
		f, err := p.js.PublishMsgAsync(m)
		if err != nil {
			out[i].Err = fmt.Errorf("publish: %w", err)
			continue
		}
		futures[i] = f
	}
	for i, f := range futures {
		if f == nil {
			continue
		}
		select {
		case ack := <-f.Ok():
			out[i] = Published{Seq: ack.Sequence, Duplicate: ack.Duplicate}
		case err := <-f.Err():
			out[i].Err = fmt.Errorf("not acknowledged by JetStream: %w", err)
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
	return out, nil
}

// messageSize is what NATS counts against max_payload: the data and the
// encoded headers.
func messageSize(m *nats.Msg) int {
	n := len(m.Data) + len("NATS/1.0\r\n\r\n")
	for k, vs := range m.Header {
		for _, v := range vs {
			n += len(k) + len(": ") + len(v) + len("\r\n")
		}
	}
	return n
}

// DeadLetter stores a message that a stage could not process in the
// dead-letter stream, with the reason, and waits for the acknowledgement.
func DeadLetter(ctx context.Context, js jetstream.JetStream, stage string, orig jetstream.Msg, reason string) error {
	m := nats.NewMsg("evidence.dlq." + stage)
	m.Data = orig.Data()
	for k, v := range orig.Headers() {
		m.Header[k] = v
	}
	m.Header.Del(jetstream.MsgIDHeader)
	m.Header.Set(HeaderDLQStage, stage)
	m.Header.Set(HeaderDLQReason, reason)
	m.Header.Set(HeaderDLQOriginalSub, orig.Subject())
	if md, err := orig.Metadata(); err == nil {
		m.Header.Set(HeaderDLQOriginalSeq, strconv.FormatUint(md.Sequence.Stream, 10))
		m.Header.Set(HeaderDLQTime, md.Timestamp.UTC().Format("2006-01-02T15:04:05.000000000Z07:00"))
	}
	if _, err := js.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("dead-letter to %s: %w", m.Subject, err)
	}
	return nil
}
