package archive

import (
	"context"
	"fmt"

	"github.com/evidencepipeline/evidence/internal/store"
)

// insert stores rows, only while the archive may write: with a Fence (the
// archive lease, bus.Held.Valid), an insert starts only if the fence
// allows it and is given the fence's deadline, so that a replica that lost
// its lease (paused, cut off from NATS) cannot add a row after a standby
// took over: the chain has one writer, whatever the timing. A refusal by
// the fence stops the archive; it is never retried.
func (a *Archive) insert(ctx context.Context, rows []store.EventRow) error {
	if a.cfg.Fence == nil {
		return a.st.InsertEvents(ctx, rows)
	}
	until, err := a.cfg.Fence()
	if err != nil {
		return errFenced{err}
	}
	ictx, cancel := context.WithDeadline(ctx, until)
	defer cancel()
	return a.st.InsertEvents(ictx, rows)
}

// errFenced: the fence refused a write.
type errFenced struct{ err error }

func (e errFenced) Error() string { return fmt.Sprintf("archive: not writing: %v", e.err) }
func (e errFenced) Unwrap() error { return e.err }

// mayWrite asks the fence, if any, whether the archive may act as the
// writer (reposition the shared consumer).
func (a *Archive) mayWrite() error {
	if a.cfg.Fence == nil {
		return nil
	}
	if _, err := a.cfg.Fence(); err != nil {
		return errFenced{err}
	}
	return nil
}
