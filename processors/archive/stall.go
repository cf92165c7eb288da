package archive

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// stallAfter is how long the archive waits idle, with events waiting for
// it on the server, before it takes its consumer for stuck.
const stallAfter = 10 * time.Second

// stallWatch notices a consumer that stopped delivering while events wait.
// After a NATS cluster's node goes, a pull request can be lost with its
// leader and the client left waiting; and messages the server counts as
// delivered can be lost on their way (a pull response dropped in a
// reconnect or a leader change). Lost deliveries are only redelivered
// after AckWait (minutes), and when they were the last events of a burst
// no later message reveals the gap. The archive then resumes from
// ClickHouse with a new consumer rather than wait.
type stallWatch struct {
	last    time.Time // a message was received, or the last check
	log     *slog.Logger
	checked time.Time
	after   time.Duration // stallAfter; shorter in tests
}

func (w *stallWatch) received() { w.last = time.Now() }

// idle is called when the reader waited a flush interval for nothing,
// with no batch in hand; readSeq is the highest stream sequence it has
// received. It returns an error (the archive resumes) when, idle for
// stallAfter, the server still has events for the consumer or has
// delivered one beyond readSeq that never arrived.
func (w *stallWatch) idle(ctx context.Context, cons jetstream.Consumer, readSeq uint64) error {
	after := w.after
	if after <= 0 {
		after = stallAfter
	}
	if time.Since(w.last) < after || time.Since(w.checked) < after {
		return nil
	}
	w.checked = time.Now()
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := cons.Info(ictx)
	if err != nil {
		return fmt.Errorf("archive: consumer info while idle: %w", err)
	}
	idle := time.Since(w.last).Round(time.Second)
	if info.Delivered.Stream > readSeq {
		w.log.Warn("archive: events delivered by the server never arrived; resuming from ClickHouse with a new consumer", "idle", idle, "delivered_seq", info.Delivered.Stream, "received_seq", readSeq)
		return fmt.Errorf("archive: the server delivered up to stream sequence %d but only %d arrived (lost on the way); resuming", info.Delivered.Stream, readSeq)
	}
	if info.NumPending == 0 {
		return nil
	}
	w.log.Warn("archive: nothing delivered while events wait; resuming from ClickHouse with a new consumer", "idle", idle, "pending", info.NumPending)
	return fmt.Errorf("archive: nothing delivered for %s while %d events wait on the server; resuming", idle, info.NumPending)
}
