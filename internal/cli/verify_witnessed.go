package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// witnessedResult is what evidence verify --witness found: the witnessed
// checkpoint and whether the archive's rows hash to its root.
type witnessedResult struct {
	lines    []string
	problems []string
}

var errEnoughRows = errors.New("enough rows")

// checkWitnessed finds a checkpoint with need valid cosignatures of the
// witnesses (held, the auditor's own copy, else the newest such in
// log_checkpoints), and recomputes the root of the tree of its size from
// the archive's rows (each row's chain hash recomputed from its content),
// streaming: a history rewritten and re-signed after the witness
// cosigned does not hash to the root the witness cosigned.
func checkWitnessed(ctx context.Context, conn driver.Conn, keys verify.PublicKeys, wkeys []string, need int, held string) (witnessedResult, error) {
	var res witnessedResult
	var logKeys []string
	for id, pub := range keys {
		k, err := tlog.VerifierKey(tlog.OriginFor(id), pub)
		if err != nil {
			return res, err
		}
		logKeys = append(logKeys, k)
	}
	var cp tlog.Checkpoint
	var cosigs []tlog.Cosignature
	from := ""
	if held != "" {
		b, err := os.ReadFile(held)
		if err != nil {
			return res, fmt.Errorf("--witnessed-checkpoint: %v", err)
		}
		if cp, cosigs, err = tlog.OpenWitnessed(b, logKeys, wkeys, need); err != nil {
			res.problems = append(res.problems, fmt.Sprintf("TAMPERED: --witnessed-checkpoint %s: %v", held, err))
			return res, nil
		}
		from = held
	} else {
		rows, err := conn.Query(ctx, "SELECT DISTINCT tree_size FROM log_checkpoints ORDER BY tree_size DESC")
		if err != nil {
			return res, fmt.Errorf("read log_checkpoints: %w", err)
		}
		var sizes []int64
		for rows.Next() {
			var n uint64
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return res, fmt.Errorf("read log_checkpoints: %w", err)
			}
			sizes = append(sizes, int64(n))
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return res, fmt.Errorf("read log_checkpoints: %w", err)
		}
		found := false
		for _, n := range sizes {
			note, ok, err := tlog.CheckpointAt(ctx, conn, n)
			if err != nil {
				return res, err
			}
			if !ok {
				continue
			}
			if c, cs, err := tlog.OpenWitnessed(note, logKeys, wkeys, need); err == nil {
				cp, cosigs, found = c, cs, true
				break
			}
		}
		if !found {
			res.problems = append(res.problems, fmt.Sprintf("TAMPERED: no log checkpoint in ClickHouse (%d sizes) carries %d valid cosignatures of the witnesses given: they were deleted, or the witnesses never cosigned this log (give the checkpoint you hold with --witnessed-checkpoint)", len(sizes), need))
			return res, nil
		}
		from = "log_checkpoints"
	}
	for _, c := range cosigs {
		res.lines = append(res.lines, fmt.Sprintf("witness: %s cosigned the checkpoint of %d leaves (%s) at %s", c.Name, cp.Tree.N, from, c.Time.Format("2006-01-02T15:04:05Z")))
	}
	b := tlog.NewBuilder()
	var h verify.RowHasher
	var lastSeq uint64
	err := verify.ScanEvents(ctx, conn, 1, 0, func(r *store.EventRow) error {
		if b.Size() == cp.Tree.N {
			return errEnoughRows
		}
		rh, err := h.Hash(r)
		if err != nil {
			return fmt.Errorf("row %d: %w", r.StreamSeq, err)
		}
		lh, err := tlog.LeafHash(rh)
		if err != nil {
			return err
		}
		b.Append(lh)
		lastSeq = r.StreamSeq
		return nil
	})
	if err != nil && !errors.Is(err, errEnoughRows) {
		return res, err
	}
	if b.Size() < cp.Tree.N {
		res.problems = append(res.problems, fmt.Sprintf("TAMPERED: the archive has %d rows, the checkpoint cosigned by the witnesses signs %d: rows were deleted after the witnesses cosigned", b.Size(), cp.Tree.N))
		return res, nil
	}
	root, err := b.Root()
	if err != nil {
		return res, err
	}
	if root != cp.Tree.Hash {
		res.problems = append(res.problems, fmt.Sprintf("TAMPERED: the archive's first %d rows (up to stream_seq %d), each hash recomputed from its content, do not hash to the root of the checkpoint the witnesses cosigned: the history was rewritten after they cosigned it", cp.Tree.N, lastSeq))
		return res, nil
	}
	res.lines = append(res.lines, fmt.Sprintf("witnessed: the archive's first %d rows (up to stream_seq %d), each hash recomputed from its content, hash to the root the witnesses cosigned", cp.Tree.N, lastSeq))
	return res, nil
}
