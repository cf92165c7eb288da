package tlog

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/mod/sumdb/tlog"
)

// StoredCheckpoint is a row of log_checkpoints: a signed checkpoint of
// the log.
type StoredCheckpoint struct {
	Size      int64
	Root      tlog.Hash
	LastSeq   uint64
	Note      []byte
	CreatedNs int64
}

// StoreCheckpoint inserts a signed checkpoint into log_checkpoints.
func StoreCheckpoint(ctx context.Context, conn driver.Conn, c StoredCheckpoint) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO log_checkpoints (tree_size, root_hash, last_seq, note, created_at, created_ns)")
	if err != nil {
		return fmt.Errorf("prepare insert into log_checkpoints: %w", err)
	}
	defer b.Close()
	if err := b.Append(uint64(c.Size), hex.EncodeToString(c.Root[:]), c.LastSeq, string(c.Note), time.Unix(0, c.CreatedNs).UTC().Truncate(time.Second), c.CreatedNs); err != nil {
		return fmt.Errorf("insert into log_checkpoints: %w", err)
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into log_checkpoints: %w", err)
	}
	return nil
}

// LatestCheckpoint reads the newest signed checkpoint (the largest tree)
// from log_checkpoints, with every witness cosignature stored for it
// (CheckpointAt); ok is false when there is none.
func LatestCheckpoint(ctx context.Context, conn driver.Conn) (note []byte, ok bool, err error) {
	return CheckpointAt(ctx, conn, 0)
}

// CheckpointAt reads the signed checkpoint of a tree of size leaves (0:
// the largest) from log_checkpoints: the newest row's note, with the
// signature lines of every other row of the same checkpoint text (the
// witness cosignatures stored by AddCosignatures) appended once each.
func CheckpointAt(ctx context.Context, conn driver.Conn, size int64) (note []byte, ok bool, err error) {
	q := "SELECT note FROM log_checkpoints WHERE tree_size = (SELECT max(tree_size) FROM log_checkpoints) ORDER BY created_ns DESC"
	var args []any
	if size > 0 {
		q = "SELECT note FROM log_checkpoints WHERE tree_size = ? ORDER BY created_ns DESC"
		args = append(args, uint64(size))
	}
	rows, err := conn.Query(ctx, q, args...)
	if err != nil {
		return nil, false, fmt.Errorf("read log_checkpoints: %w", err)
	}
	defer rows.Close()
	var text string
	var sigs []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, false, fmt.Errorf("read log_checkpoints: %w", err)
		}
		if !ok {
			ok = true
			note = []byte(s)
			if text, sigs, err = SplitNote(note); err != nil {
				// Served as stored: the reader's verifier names the problem.
				return note, true, rows.Err()
			}
			continue
		}
		t, more, err := SplitNote([]byte(s))
		if err != nil || t != text {
			continue // another checkpoint of that size (a fork): not merged
		}
		sigs = append(sigs, more...)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("read log_checkpoints: %w", err)
	}
	if !ok {
		return nil, false, nil
	}
	return JoinNote(text, sigs), true, nil
}

// MaxCosignatures bounds the witness signature lines stored for one
// checkpoint.
const MaxCosignatures = 64

// ErrUnknownCheckpoint means a cosigned checkpoint is not one the log
// signed.
var ErrUnknownCheckpoint = errors.New("not a checkpoint this log signed")

// AddCosignatures stores the witness cosignatures of a cosigned
// checkpoint (its note with the witness's signature lines) beside the
// checkpoint in log_checkpoints: the text must be exactly that of a
// stored checkpoint, and the lines not the log's own must have the form of
// ed25519 cosignature/v1 signatures (the signatures themselves are checked
// by whoever verifies with the witness's key). It returns how many lines
// were new.
func AddCosignatures(ctx context.Context, conn driver.Conn, cosigned []byte) (int, error) {
	text, sigs, err := SplitNote(cosigned)
	if err != nil {
		return 0, err
	}
	c, err := ParseCheckpoint(text)
	if err != nil {
		return 0, err
	}
	stored, ok, err := CheckpointAt(ctx, conn, c.Tree.N)
	if err != nil {
		return 0, err
	}
	if !ok {
		return 0, fmt.Errorf("%w: the log has no checkpoint of %d leaves", ErrUnknownCheckpoint, c.Tree.N)
	}
	stext, ssigs, err := SplitNote(stored)
	if err != nil {
		return 0, fmt.Errorf("the stored checkpoint of %d leaves: %w", c.Tree.N, err)
	}
	if stext != text {
		return 0, fmt.Errorf("%w: its text differs from the log's checkpoint of %d leaves (another origin or root)", ErrUnknownCheckpoint, c.Tree.N)
	}
	have := map[string]bool{}
	for _, s := range ssigs {
		have[s] = true
	}
	var add []string
	for _, s := range sigs {
		if have[s] {
			continue
		}
		if err := CheckCosignatureLine(s, c.Origin); err != nil {
			return 0, err
		}
		have[s] = true
		add = append(add, s)
	}
	if len(add) == 0 {
		return 0, nil
	}
	if len(ssigs)+len(add) > MaxCosignatures+1 {
		return 0, fmt.Errorf("the checkpoint of %d leaves already has %d signatures: at most %d cosignatures are stored", c.Tree.N, len(ssigs), MaxCosignatures)
	}
	var lastSeq uint64
	if err := conn.QueryRow(ctx, "SELECT last_seq FROM log_checkpoints WHERE tree_size = ? ORDER BY created_ns LIMIT 1", uint64(c.Tree.N)).Scan(&lastSeq); err != nil {
		return 0, fmt.Errorf("read log_checkpoints: %w", err)
	}
	now := time.Now().UnixNano()
	err = StoreCheckpoint(ctx, conn, StoredCheckpoint{Size: c.Tree.N, Root: c.Tree.Hash, LastSeq: lastSeq, Note: JoinNote(text, append(ssigs, add...)), CreatedNs: now})
	if err != nil {
		return 0, err
	}
	return len(add), nil
}
