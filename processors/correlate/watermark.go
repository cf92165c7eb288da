package correlate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
)

// StreamWatermark is how far the correlation stage has come, in stream
// time: a time W such that every event that arrived in the stream before
// W has been correlated (its facts are in the bucket, its records given
// to the sink). It is read from the stage's durable consumer:
//
//   - nothing pending and nothing unacknowledged: W is the server's time
//     of the consumer's info (every later arrival is after it);
//   - else W is the stream timestamp of the first message after the
//     consumer's ack floor: every message before it is acknowledged, and
//     the stage acknowledges a message only once it is correlated.
//
// The evaluation stage decides a deployment's verdict once W is past the
// deployment's arrival plus the verdict delay (docs/evaluation.md).
type StreamWatermark struct {
	JS jetstream.JetStream
	// Consumer is the correlation stage's durable consumer (default
	// "correlate", as StageConfig).
	Consumer string
}

// ErrNoWatermark: the correlation consumer does not exist yet (the
// stage never ran): no event is known to be correlated.
var ErrNoWatermark = errors.New("correlate: no watermark yet: the correlation consumer does not exist")

// Watermark returns W (see StreamWatermark).
func (w StreamWatermark) Watermark(ctx context.Context) (time.Time, error) {
	name := w.Consumer
	if name == "" {
		name = "correlate"
	}
	stream, err := w.JS.Stream(ctx, bus.EventStream)
	if err != nil {
		return time.Time{}, fmt.Errorf("correlate: watermark: stream %s: %w", bus.EventStream, err)
	}
	cons, err := stream.Consumer(ctx, name)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return time.Time{}, ErrNoWatermark
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("correlate: watermark: consumer %s: %w", name, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		return time.Time{}, fmt.Errorf("correlate: watermark: consumer %s: %w", name, err)
	}
	if info.NumPending == 0 && info.NumAckPending == 0 {
		if info.TimeStamp.IsZero() {
			return time.Now().UTC(), nil
		}
		return info.TimeStamp.UTC(), nil
	}
	// The first message after the ack floor that the consumer takes (the
	// next by its filter, so a gap of deleted messages is skipped).
	m, err := stream.GetMsg(ctx, info.AckFloor.Stream+1, jetstream.WithGetMsgSubject(bus.EventSubjects))
	if err != nil {
		return time.Time{}, fmt.Errorf("correlate: watermark: message after the ack floor (%d): %w", info.AckFloor.Stream, err)
	}
	return m.Time.UTC(), nil
}
