package archive

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

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
	// The query id names the database's archive, so that a writer taking
	// over can see this INSERT while ClickHouse still runs it.
	ictx = clickhouse.Context(ictx, clickhouse.WithQueryID(a.queryIDPrefix()+strconv.FormatUint(rows[0].StreamSeq, 10)+"-"+strconv.FormatInt(time.Now().UnixNano(), 10)))
	return a.st.InsertEvents(ictx, rows)
}

func (a *Archive) queryIDPrefix() string { return "evidence-archive-" + a.st.Database() + "-" }

// awaitInflight waits, before a writer taking over reads the chain's head,
// until ClickHouse runs no INSERT of another writer into this database's
// events: one sent by a writer just before it lost its lease (killed,
// paused, cut off) could otherwise still land after the head was read,
// and the chain would fork. The fence keeps a writer from starting an
// INSERT once a standby may hold the lease; this covers the one already
// under way.
func (a *Archive) awaitInflight(ctx context.Context) error {
	if a.cfg.Fence == nil {
		return nil
	}
	q := "SELECT count() FROM system.processes WHERE startsWith(query_id, ?)"
	start := time.Now()
	for warned := false; ; {
		var n uint64
		if err := a.st.Conn().QueryRow(ctx, q, a.queryIDPrefix()).Scan(&n); err != nil {
			return fmt.Errorf("archive: look for INSERTs still running: %w", err)
		}
		if n == 0 {
			if warned {
				a.log.Info("archive: the previous writer's INSERT ended; taking over", "waited", time.Since(start))
			}
			return nil
		}
		if !warned && time.Since(start) > time.Second {
			a.log.Warn("archive: waiting for an INSERT of the previous writer that ClickHouse still runs", "inserts", n)
			warned = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
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
