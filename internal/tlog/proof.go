package tlog

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// InclusionProof proves that leaf index is in tree, reading the tiles
// (each checked against tree).
func (t *Tiles) InclusionProof(ctx context.Context, tree tlog.Tree, index int64) (tlog.RecordProof, error) {
	if index < 0 || index >= tree.N {
		return nil, fmt.Errorf("leaf index %d is not in a tree of %d leaves", index, tree.N)
	}
	p, err := tlog.ProveRecord(tree.N, index, tlog.TileHashReader(tree, t.TileReader(ctx)))
	if err != nil {
		return nil, fmt.Errorf("inclusion proof of leaf %d in tree %d: %w", index, tree.N, err)
	}
	return p, nil
}

// ConsistencyProof proves that tree extends the tree of its first old
// leaves.
func (t *Tiles) ConsistencyProof(ctx context.Context, tree tlog.Tree, old int64) (tlog.TreeProof, error) {
	if old < 0 || old > tree.N {
		return nil, fmt.Errorf("old tree size %d is not within a tree of %d leaves", old, tree.N)
	}
	p, err := tlog.ProveTree(tree.N, old, tlog.TileHashReader(tree, t.TileReader(ctx)))
	if err != nil {
		return nil, fmt.Errorf("consistency proof from %d to %d: %w", old, tree.N, err)
	}
	return p, nil
}
