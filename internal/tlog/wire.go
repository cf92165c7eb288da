package tlog

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/verify"
)

// InclusionProof is the answer of GET /v1/log/proof/inclusion and the
// input of evidence verify inclusion: the leaf (its index, its row's
// stream sequence and chain hash), the archived row the chain hash is
// computed from (previous hash, arrival, canonical CloudEvent) and the
// proof against the tree of TreeSize leaves. Proof hashes are standard
// base64, as in checkpoints.
type InclusionProof struct {
	TreeSize  int64       `json:"tree_size"`
	LeafIndex int64       `json:"leaf_index"`
	StreamSeq uint64      `json:"stream_seq"`
	RowHash   string      `json:"row_hash"`
	Proof     []tlog.Hash `json:"proof"`
	// The row: its event's source and id, and what its chain hash is
	// SHA-256 of (prev_hash "\n" stream_seq "\n" received_ns "\n"
	// canonical JSON).
	Source     string `json:"source,omitempty"`
	ID         string `json:"id,omitempty"`
	PrevHash   string `json:"prev_hash,omitempty"`
	ReceivedNs int64  `json:"received_ns,omitempty"`
	Canonical  string `json:"canonical_base64,omitempty"`
}

// ConsistencyProof is the answer of GET /v1/log/proof/consistency and the
// input of evidence verify consistency: the tree of TreeSize leaves
// extends the tree of its first OldSize.
type ConsistencyProof struct {
	OldSize  int64       `json:"old_size"`
	TreeSize int64       `json:"tree_size"`
	Proof    []tlog.Hash `json:"proof"`
}

// ErrNoRow means no archived row has the stream sequence asked for.
var ErrNoRow = errors.New("no archived row with that stream sequence")

// Leaf finds the leaf of the row of stream sequence seq: its index (the
// rows before it) and its chain hash.
func Leaf(ctx context.Context, conn driver.Conn, seq uint64) (index int64, rowHash string, err error) {
	err = conn.QueryRow(ctx, "SELECT hash FROM events WHERE stream_seq = ? LIMIT 1", seq).Scan(&rowHash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", fmt.Errorf("%w: %d", ErrNoRow, seq)
	}
	if err != nil {
		return 0, "", fmt.Errorf("read the row of stream sequence %d: %w", seq, err)
	}
	idx, err := LeafIndexes(ctx, conn, []uint64{seq})
	if err != nil {
		return 0, "", err
	}
	return idx[seq], rowHash, nil
}

// LeafIndexes gives the leaf index of each stream sequence (the number of
// archived rows before it) in one pass over events, whatever the number
// of sequences: the rows before the highest one are counted per interval
// between consecutive sequences, and the counts summed.
func LeafIndexes(ctx context.Context, conn driver.Conn, seqs []uint64) (map[uint64]int64, error) {
	sorted := slices.Clone(seqs)
	slices.Sort(sorted)
	sorted = slices.Compact(sorted)
	out := make(map[uint64]int64, len(sorted))
	if len(sorted) == 0 {
		return out, nil
	}
	// Interval k (1-based) holds the rows at or after sorted[k-2] and
	// before sorted[k-1]: arrayFirstIndex names the first sequence a row
	// is before.
	rows, err := conn.Query(ctx, "SELECT arrayFirstIndex(x -> stream_seq < x, ?) AS k, count() FROM events WHERE stream_seq < ? GROUP BY k",
		sorted, sorted[len(sorted)-1])
	if err != nil {
		return nil, fmt.Errorf("count the rows before %d stream sequences: %w", len(sorted), err)
	}
	defer rows.Close()
	per := make([]uint64, len(sorted)+1)
	for rows.Next() {
		var k uint32
		var n uint64
		if err := rows.Scan(&k, &n); err != nil {
			return nil, fmt.Errorf("count the rows before %d stream sequences: %w", len(sorted), err)
		}
		if k >= 1 && int(k) <= len(sorted) {
			per[k] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count the rows before %d stream sequences: %w", len(sorted), err)
	}
	var before uint64
	for i, s := range sorted {
		before += per[i+1]
		out[s] = int64(before)
	}
	return out, nil
}

// VerifyInclusion checks p against the tree of a checkpoint: the proof
// is for that size, and the leaf of p.RowHash at p.LeafIndex hashes up to
// the checkpoint's root.
func VerifyInclusion(c Checkpoint, p InclusionProof) error {
	if p.TreeSize != c.Tree.N {
		return fmt.Errorf("the proof is for a tree of %d leaves, the checkpoint signs %d", p.TreeSize, c.Tree.N)
	}
	h, err := LeafHash(p.RowHash)
	if err != nil {
		return err
	}
	if err := tlog.CheckRecord(p.Proof, c.Tree.N, c.Tree.Hash, p.LeafIndex, h); err != nil {
		return fmt.Errorf("row of stream sequence %d (leaf %d) is not in the tree of %d leaves the checkpoint signs: %w", p.StreamSeq, p.LeafIndex, c.Tree.N, err)
	}
	return nil
}

// VerifyRowInclusion is VerifyInclusion after recomputing the row's chain
// hash from the row the proof carries: a row altered after it was
// archived, or a proof of another row's hash, fails here.
func VerifyRowInclusion(c Checkpoint, p InclusionProof) error {
	if p.Canonical == "" {
		return fmt.Errorf("the proof of stream sequence %d carries no row (canonical_base64, prev_hash, received_ns): its row hash cannot be recomputed; fetch the proof again from GET /v1/log/proof/inclusion", p.StreamSeq)
	}
	canon, err := base64.StdEncoding.DecodeString(p.Canonical)
	if err != nil {
		return fmt.Errorf("the proof of stream sequence %d: canonical_base64 is not base64: %v", p.StreamSeq, err)
	}
	if h := verify.ChainHash(p.PrevHash, p.StreamSeq, p.ReceivedNs, canon); h != p.RowHash {
		return fmt.Errorf("the row of stream sequence %d (event %s %s) was altered: it hashes to %s, not to the row hash %s the proof is for", p.StreamSeq, p.Source, p.ID, h, p.RowHash)
	}
	return VerifyInclusion(c, p)
}

// VerifyConsistency checks that newer extends older with p.
func VerifyConsistency(older, newer Checkpoint, p ConsistencyProof) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("the checkpoints are of two logs: %q and %q", older.Origin, newer.Origin)
	}
	if p.OldSize != older.Tree.N || p.TreeSize != newer.Tree.N {
		return fmt.Errorf("the proof is from %d to %d leaves, the checkpoints sign %d and %d", p.OldSize, p.TreeSize, older.Tree.N, newer.Tree.N)
	}
	if err := tlog.CheckTree(p.Proof, newer.Tree.N, newer.Tree.Hash, older.Tree.N, older.Tree.Hash); err != nil {
		return fmt.Errorf("the tree of %d leaves does not extend the tree of %d: history was rewritten (%w)", newer.Tree.N, older.Tree.N, err)
	}
	return nil
}
