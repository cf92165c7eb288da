package verify

import (
	"context"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/evidencepipeline/evidence/internal/store"
)

// CheckpointColumns are the columns of checkpoints in the order
// InsertCheckpoints writes and the readers scan.
const CheckpointColumns = "stream_seq, event_count, head_hash, created_at, created_ns, key_id, signature"

// InsertCheckpoints writes checkpoints as one INSERT.
func InsertCheckpoints(ctx context.Context, conn driver.Conn, cps []Checkpoint) error {
	if len(cps) == 0 {
		return nil
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO checkpoints ("+CheckpointColumns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into checkpoints: %w", err)
	}
	defer b.Close()
	for _, c := range cps {
		if err := b.Append(c.Seq, c.Count, c.Head, time.Unix(c.CreatedNs/1e9, 0).UTC(), c.CreatedNs, c.KeyID, c.Signature); err != nil {
			return fmt.Errorf("insert checkpoint at seq %d: %w", c.Seq, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d checkpoints: %w", len(cps), err)
	}
	return nil
}

func scanCheckpoint(rows driver.Rows) (Checkpoint, error) {
	var c Checkpoint
	var at time.Time
	err := rows.Scan(&c.Seq, &c.Count, &c.Head, &at, &c.CreatedNs, &c.KeyID, &c.Signature)
	return c, err
}

// LastCheckpoint is the checkpoint with the highest stream_seq, if any.
func LastCheckpoint(ctx context.Context, conn driver.Conn) (Checkpoint, bool, error) {
	return oneCheckpoint(ctx, conn, "SELECT "+CheckpointColumns+" FROM checkpoints ORDER BY stream_seq DESC, created_ns DESC LIMIT 1")
}

func oneCheckpoint(ctx context.Context, conn driver.Conn, q string, args ...any) (Checkpoint, bool, error) {
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return Checkpoint{}, false, rows.Err()
	}
	c, err := scanCheckpoint(rows)
	if err != nil {
		return Checkpoint{}, false, fmt.Errorf("read checkpoints: %w", err)
	}
	return c, true, nil
}

// ScanCheckpoints calls fn for each checkpoint with from <= stream_seq <=
// to (to = 0: no upper bound), in stream_seq order. It streams.
func ScanCheckpoints(ctx context.Context, conn driver.Conn, from, to uint64, fn func(Checkpoint) error) error {
	q := "SELECT " + CheckpointColumns + " FROM checkpoints WHERE stream_seq >= ?"
	args := []any{from}
	if to > 0 {
		q += " AND stream_seq <= ?"
		args = append(args, to)
	}
	rows, err := conn.Query(ctx, q+" ORDER BY stream_seq, created_ns, signature", args...)
	if err != nil {
		return fmt.Errorf("read checkpoints: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		if err := fn(c); err != nil {
			return err
		}
	}
	return rows.Err()
}

// scanPage is the span of stream sequences ScanEvents asks for at once:
// each query sorts one page (18.16 sorts an ORDER BY in memory), so neither
// the server's memory nor the client's grows with the number of rows. No
// query setting is changed (max_block_size stays the server's), because
// the read-only auditor user (readonly = 1) may not change settings.
const scanPage = 16_384

// ScanEvents calls fn for each events row with from <= stream_seq <= to
// (to = 0: up to the newest row when the scan starts), in stream order
// (rows of equal stream_seq by hash). It streams, one page of stream
// sequences at a time: memory does not grow with the number of rows. fn
// must not keep r beyond the call, except r.Data.
func ScanEvents(ctx context.Context, conn driver.Conn, from, to uint64, fn func(r *store.EventRow) error) error {
	if to == 0 {
		var last uint64
		if err := conn.QueryRow(ctx, "SELECT max(stream_seq) FROM events WHERE stream_seq >= ?", from).Scan(&last); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		if last < from {
			return nil
		}
		to = last
	}
	qctx := clickhouse.Context(ctx, clickhouse.WithBlockBufferSize(2))
	var r store.EventRow
	var et, ra time.Time
	var data string
	var b64 uint8
	for lo := from; lo <= to; {
		hi := min(to, lo+scanPage-1)
		rows, err := conn.Query(qctx, "SELECT "+store.EventColumns+" FROM events WHERE stream_seq >= ? AND stream_seq <= ? ORDER BY stream_seq, hash", lo, hi)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		n := 0
		for rows.Next() {
			n++
			if err := rows.Scan(&r.StreamSeq, &r.EventID, &r.Source, &r.Type, &r.Subject, &et, &r.EventTimeNs,
				&ra, &r.ReceivedNs, &r.DataContentType, &r.DataSchema, &r.Extensions, &data, &b64, &r.PrevHash, &r.Hash); err != nil {
				rows.Close()
				return fmt.Errorf("read events: %w", err)
			}
			r.Data, r.DataBase64 = []byte(data), b64 == 1
			if err := fn(&r); err != nil {
				rows.Close()
				return err
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		if hi == to {
			break
		}
		lo = hi + 1
		if n == 0 {
			// A stretch without rows (retention, a long outage of the
			// archive): go on from the next row there is.
			var next uint64
			if err := conn.QueryRow(ctx, "SELECT min(stream_seq) FROM events WHERE stream_seq >= ?", lo).Scan(&next); err != nil {
				return fmt.Errorf("read events: %w", err)
			}
			if next == 0 {
				break
			}
			lo = next
		}
	}
	return nil
}

// SeqRange maps a period of archive time (received_at, from inclusive, to
// exclusive; a zero time leaves that side open) to stream sequences: from
// is one past the last row received before the period, to is one before the
// first row received at or after its end (0: no upper bound). Taking the
// neighbours, rather than the rows inside, keeps a period whose rows were
// all deleted from looking empty.
func SeqRange(ctx context.Context, conn driver.Conn, from, to time.Time) (fromSeq, toSeq uint64, err error) {
	fromSeq = 1
	if !from.IsZero() {
		var before uint64
		if err := conn.QueryRow(ctx, "SELECT max(stream_seq) FROM events WHERE received_ns < ?", from.UnixNano()).Scan(&before); err != nil {
			return 0, 0, fmt.Errorf("find the first row of the period: %w", err)
		}
		fromSeq = before + 1
	}
	if !to.IsZero() {
		var after uint64
		if err := conn.QueryRow(ctx, "SELECT min(stream_seq) FROM events WHERE received_ns >= ?", to.UnixNano()).Scan(&after); err != nil {
			return 0, 0, fmt.Errorf("find the last row of the period: %w", err)
		}
		if after > 0 {
			toSeq = after - 1
			if toSeq < fromSeq {
				toSeq = fromSeq // an empty period: still check the row after it is linked
			}
		}
	}
	return fromSeq, toSeq, nil
}
