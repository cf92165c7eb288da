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

// stallWatch notices a consumer that stopped delivering while events wait:
// after a NATS cluster's node goes, a pull request can be lost with its
// leader and the client left waiting. The archive then resumes from
// ClickHouse with a new consumer rather than wait forever.
type stallWatch struct {
	last    time.Time // a message was received, or the last check
	log     *slog.Logger
	checked time.Time
}

func (w *stallWatch) received() { w.last = time.Now() }

// idle is called when the reader waited a flush interval for nothing, with
// no batch in hand.
func (w *stallWatch) idle(ctx context.Context, cons jetstream.Consumer) error {
	if time.Since(w.last) < stallAfter || time.Since(w.checked) < stallAfter {
		return nil
	}
	w.checked = time.Now()
	ictx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	info, err := cons.Info(ictx)
	if err != nil {
		return fmt.Errorf("archive: consumer info while idle: %w", err)
	}
	if info.NumPending == 0 {
		return nil
	}
	w.log.Warn("archive: nothing delivered while events wait; resuming from ClickHouse with a new consumer", "idle", time.Since(w.last).Round(time.Second), "pending", info.NumPending)
	return fmt.Errorf("archive: nothing delivered for %s while %d events wait on the server; resuming", time.Since(w.last).Round(time.Second), info.NumPending)
}
