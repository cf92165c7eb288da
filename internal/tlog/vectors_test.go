package tlog

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// rfcVectors are the RFC 6962 reference vectors of
// github.com/transparency-dev/merkle (testdata/rfc6962-vectors.json
// names the file they were copied from).
type rfcVectors struct {
	Source    string   `json:"source"`
	Leaves    []string `json:"leaves_hex"`
	Roots     []string `json:"roots_hex"`
	Inclusion []struct {
		Leaf, Size int64
		Proof      []string `json:"proof_hex"`
	} `json:"inclusion"`
	Consistency []struct {
		Size1, Size2 int64
		Proof        []string `json:"proof_hex"`
	} `json:"consistency"`
}

func loadVectors(t *testing.T) rfcVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/rfc6962-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v rfcVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Leaves) != 8 || len(v.Roots) != 8 || len(v.Inclusion) == 0 || len(v.Consistency) == 0 {
		t.Fatalf("vectors: %d leaves, %d roots, %d inclusion, %d consistency", len(v.Leaves), len(v.Roots), len(v.Inclusion), len(v.Consistency))
	}
	return v
}

func hexHashes(t *testing.T, hs []string) []tlog.Hash {
	t.Helper()
	out := make([]tlog.Hash, len(hs))
	for i, h := range hs {
		b, err := hex.DecodeString(h)
		if err != nil || len(b) != tlog.HashSize {
			t.Fatalf("vector hash %q", h)
		}
		copy(out[i][:], b)
	}
	return out
}

// vectorTree is the Builder's tree of the first n vector leaves, its
// tiles and its root.
func vectorTree(t *testing.T, v rfcVectors, n int64) (tlog.Tree, tlog.HashReader) {
	t.Helper()
	b := NewBuilder()
	tiles := memTiles{}
	for i := int64(0); i < n; i++ {
		d, _ := hex.DecodeString(v.Leaves[i])
		b.Append(tlog.RecordHash(d))
	}
	tiles.put(b.Flush())
	root, err := b.Root()
	if err != nil {
		t.Fatal(err)
	}
	tree := tlog.Tree{N: n, Hash: root}
	return tree, tlog.TileHashReader(tree, tiles)
}

// TestProofsMatchRFC6962Vectors: the proofs served from the Builder's
// tiles are exactly the published vectors, and the verifiers accept them
// and refuse them altered.
func TestProofsMatchRFC6962Vectors(t *testing.T) {
	v := loadVectors(t)
	roots := hexHashes(t, v.Roots)
	checked := 0
	for _, c := range v.Inclusion {
		if c.Leaf < 1 || c.Size < 1 {
			continue // the vector of an invalid path
		}
		tree, thr := vectorTree(t, v, c.Size)
		if tree.Hash != roots[c.Size-1] {
			t.Fatalf("root of %d leaves %x, vector %s", c.Size, tree.Hash, v.Roots[c.Size-1])
		}
		want := hexHashes(t, c.Proof)
		got, err := tlog.ProveRecord(c.Size, c.Leaf-1, thr)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("inclusion of leaf %d in %d: %d hashes, vector %d", c.Leaf, c.Size, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("inclusion of leaf %d in %d: hash %d is %x, vector %x", c.Leaf, c.Size, i, got[i], want[i])
			}
		}
		d, _ := hex.DecodeString(v.Leaves[c.Leaf-1])
		if err := tlog.CheckRecord(want, c.Size, roots[c.Size-1], c.Leaf-1, tlog.RecordHash(d)); err != nil {
			t.Errorf("vector inclusion of leaf %d in %d refused: %v", c.Leaf, c.Size, err)
		}
		if len(want) > 0 {
			bad := append([]tlog.Hash(nil), want...)
			bad[len(bad)-1][0] ^= 1
			if tlog.CheckRecord(bad, c.Size, roots[c.Size-1], c.Leaf-1, tlog.RecordHash(d)) == nil {
				t.Errorf("altered inclusion of leaf %d in %d accepted", c.Leaf, c.Size)
			}
		}
		checked++
	}
	for _, c := range v.Consistency {
		tree, thr := vectorTree(t, v, c.Size2)
		want := hexHashes(t, c.Proof)
		got, err := tlog.ProveTree(c.Size2, c.Size1, thr)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("consistency %d -> %d: %d hashes, vector %d", c.Size1, c.Size2, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("consistency %d -> %d: hash %d is %x, vector %x", c.Size1, c.Size2, i, got[i], want[i])
			}
		}
		older := Checkpoint{Origin: "o", Tree: tlog.Tree{N: c.Size1, Hash: roots[c.Size1-1]}}
		newer := Checkpoint{Origin: "o", Tree: tree}
		if err := VerifyConsistency(older, newer, ConsistencyProof{OldSize: c.Size1, TreeSize: c.Size2, Proof: want}); err != nil {
			t.Errorf("vector consistency %d -> %d refused: %v", c.Size1, c.Size2, err)
		}
		if c.Size1 < c.Size2 {
			bad := append([]tlog.Hash(nil), want...)
			bad[0][0] ^= 1
			if VerifyConsistency(older, newer, ConsistencyProof{OldSize: c.Size1, TreeSize: c.Size2, Proof: bad}) == nil {
				t.Errorf("altered consistency %d -> %d accepted", c.Size1, c.Size2)
			}
		}
		checked++
	}
	if checked < 9 {
		t.Fatalf("checked %d vectors", checked)
	}
}
