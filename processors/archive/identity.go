package archive

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
)

// ErrStreamReplaced: the event stream is not the one the archive's rows
// came from (replaced, reset or recreated), or it no longer holds events
// the archive has not stored. The archive refuses to go on rather than
// skip or mix events; the events wait in the stream.
var ErrStreamReplaced = errors.New("the event stream is not the one archived")

// howToContinue is said with every refusal.
const howToContinue = "evidenced does not archive it, so that no event is skipped (ingestion goes on; the events wait in the stream). " +
	"To continue: point evidenced back at the stream the archive came from (its --data-dir with the embedded NATS, or its --nats-url), " +
	"or restore that stream from a backup (nats stream restore keeps sequences and times); " +
	"or archive the new stream into a new ClickHouse database (--clickhouse-url), which starts a new chain verified on its own (docs/scale-out.md)"

// checkStream makes sure the stream is the one the archived rows came
// from, before the archive resumes after its newest row (a.lastSeq): the
// stream's message at that sequence must be the archived event (same
// source, id and arrival time, to the nanosecond), and the stream must
// still hold every sequence after it. A stream restored from a backup
// passes; a new one (a new --data-dir, another NATS, a stream deleted and
// created again) does not, whatever its length.
func (a *Archive) checkStream(ctx context.Context, stream jetstream.Stream) error {
	if a.lastSeq == 0 {
		return nil // nothing archived yet
	}
	info, err := stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("archive: stream %s: %w", bus.EventStream, err)
	}
	created := info.Created.UTC().Format(time.RFC3339)
	var id, source string
	var receivedNs int64
	if err := a.st.Conn().QueryRow(ctx, "SELECT event_id, source, received_ns FROM events WHERE stream_seq = ? LIMIT 1", a.lastSeq).
		Scan(&id, &source, &receivedNs); err != nil {
		return fmt.Errorf("archive: read the newest archived row: %w", err)
	}
	archived := fmt.Sprintf("event %q from %q received %s", id, source, time.Unix(0, receivedNs).UTC().Format(time.RFC3339Nano))
	st := info.State
	switch {
	case st.LastSeq < a.lastSeq:
		return fmt.Errorf("archive: %w: ClickHouse holds events up to stream_seq %d (the last: %s), but stream %s (created %s) ends at %d: it was replaced or reset (a new --data-dir, another NATS server, a stream created again). %s",
			ErrStreamReplaced, a.lastSeq, archived, bus.EventStream, created, st.LastSeq, howToContinue)
	case st.FirstSeq > a.lastSeq+1:
		return fmt.Errorf("archive: %w: ClickHouse holds events up to stream_seq %d, but stream %s (created %s) starts at %d: events %d to %d were removed from it before they were archived (--stream-max-age or a limit shorter than the archive's delay), or the stream was replaced. %s",
			ErrStreamReplaced, a.lastSeq, bus.EventStream, created, st.FirstSeq, a.lastSeq+1, st.FirstSeq-1, howToContinue)
	case st.FirstSeq > a.lastSeq:
		return nil // the newest archived event aged out; the stream goes on right after it
	}
	msg, err := stream.GetMsg(ctx, a.lastSeq)
	if err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return fmt.Errorf("archive: %w: stream %s (created %s) has no message at stream_seq %d, the newest archived (%s). %s",
				ErrStreamReplaced, bus.EventStream, created, a.lastSeq, archived, howToContinue)
		}
		return fmt.Errorf("archive: read stream_seq %d of %s: %w", a.lastSeq, bus.EventStream, err)
	}
	e, perr := ce.ParseStored(msg.Data)
	if perr == nil && e.ID == id && e.Source == source && msg.Time.UnixNano() == receivedNs {
		return nil
	}
	found := fmt.Sprintf("a message that is not a valid event (%v)", perr)
	if perr == nil {
		found = fmt.Sprintf("event %q from %q received %s", e.ID, e.Source, msg.Time.UTC().Format(time.RFC3339Nano))
	}
	return fmt.Errorf("archive: %w: at stream_seq %d ClickHouse holds %s, but stream %s (created %s) holds %s: the stream was replaced (a new --data-dir, another NATS server, a stream created again). %s",
		ErrStreamReplaced, a.lastSeq, archived, bus.EventStream, created, found, howToContinue)
}

// maxSkipCheck bounds how many skipped sequences checkSkipped looks up one
// by one; a longer jump is taken as lost messages.
const maxSkipCheck = 10000

// checkSkipped is called when the consumer delivers a sequence after from
// to (inclusive) without them. The consumer takes every event subject, so
// a skipped sequence holding an event was lost on the way (a slow-consumer
// drop in the client when a cluster's leader changes): the archive must
// stop and resume from ClickHouse, which redelivers it. Sequences holding
// another subject (a stream an operator gave more subjects) are skipped
// rightly.
func (a *Archive) checkSkipped(ctx context.Context, from, to uint64) error {
	lost := func() error {
		return fmt.Errorf("archive: stream_seq %d to %d were not delivered; resuming from ClickHouse so that they are archived", from, to)
	}
	if to-from >= maxSkipCheck {
		return lost()
	}
	stream, err := a.js.Stream(ctx, bus.EventStream)
	if err != nil {
		return fmt.Errorf("archive: stream %s: %w", bus.EventStream, err)
	}
	for seq := from; seq <= to; seq++ {
		msg, err := stream.GetMsg(ctx, seq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
			continue
		case err != nil:
			return fmt.Errorf("archive: read skipped stream_seq %d: %w", seq, err)
		case strings.HasPrefix(msg.Subject, "evidence.events."):
			a.log.Warn("archive: an event was not delivered; resuming from ClickHouse", "stream_seq", seq, "skipped_from", from, "skipped_to", to)
			return lost()
		}
	}
	return nil
}
