package tlog

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// The RFC 6962 test vectors of Certificate Transparency (the leaves of
// merkle_tree_test.cc and their roots, as transparency-dev/merkle's
// testonly package has them).
var rfcLeaves = []string{"", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"}

var rfcRoots = []string{
	"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
	"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
	"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
	"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
	"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
	"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
	"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
	"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
}

func TestRFC6962Vectors(t *testing.T) {
	b := NewBuilder()
	root, err := b.Root()
	if err != nil || hex.EncodeToString(root[:]) != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Fatalf("empty root %x, %v", root, err)
	}
	for i, l := range rfcLeaves {
		d, _ := hex.DecodeString(l)
		b.Append(tlog.RecordHash(d))
		root, err := b.Root()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(root[:]); got != rfcRoots[i] {
			t.Errorf("root of %d leaves = %s, RFC 6962 vector %s", i+1, got, rfcRoots[i])
		}
	}
}

func leaf(i int64) tlog.Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(i))
	s := sha256.Sum256(b[:])
	return tlog.RecordHash(s[:])
}

// memHashes is the library's own storage of every hash (tlog.StoredHashes),
// an implementation independent of the Builder.
type memHashes []tlog.Hash

func (m memHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = m[x]
	}
	return out, nil
}

// memTiles keeps the Builder's tiles in memory, the widest of each.
type memTiles map[[2]int64][]byte

func (m memTiles) put(tds []TileData) {
	for _, td := range tds {
		k := [2]int64{int64(td.Tile.L), td.Tile.N}
		if len(td.Data) > len(m[k]) {
			m[k] = td.Data
		}
	}
}

func (m memTiles) Height() int { return TileHeight }
func (m memTiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	for i, tl := range ts {
		d := m[[2]int64{int64(tl.L), tl.N}]
		if len(d) < tl.W*tlog.HashSize {
			return nil, fmt.Errorf("no tile %s", tl.Path())
		}
		out[i] = d[:tl.W*tlog.HashSize]
	}
	return out, nil
}
func (m memTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// TestBuilderMatchesLibrary compares the Builder's roots and tiles with
// tlog's stored hashes at every size across two tile levels, and checks
// that its tiles serve proofs the library accepts.
func TestBuilderMatchesLibrary(t *testing.T) {
	const n = 256*3 + 77
	b := NewBuilder()
	var stored memHashes
	tiles := memTiles{}
	for i := int64(0); i < n; i++ {
		h := leaf(i)
		hs, err := tlog.StoredHashesForRecordHash(i, h, stored)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
		b.Append(h)
		if i%37 == 0 || i == n-1 {
			tiles.put(b.Flush())
		}
		want, err := tlog.TreeHash(i+1, stored)
		if err != nil {
			t.Fatal(err)
		}
		got, err := b.Root()
		if err != nil {
			t.Fatalf("root at %d: %v", i+1, err)
		}
		if got != want {
			t.Fatalf("root at %d = %v, library %v", i+1, got, want)
		}
	}
	tree := tlog.Tree{N: n}
	tree.Hash, _ = b.Root()
	thr := tlog.TileHashReader(tree, tiles)
	for _, i := range []int64{0, 1, 255, 256, 600, n - 1} {
		p, err := tlog.ProveRecord(n, i, thr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckRecord(p, n, tree.Hash, i, leaf(i)); err != nil {
			t.Errorf("leaf %d: %v", i, err)
		}
		if err := tlog.CheckRecord(p, n, tree.Hash, i, leaf(i+1)); err == nil {
			t.Errorf("leaf %d: proof accepts another leaf", i)
		}
	}
	for _, old := range []int64{1, 255, 256, 513} {
		oldRoot, _ := tlog.TreeHash(old, stored)
		p, err := tlog.ProveTree(n, old, thr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tlog.CheckTree(p, n, tree.Hash, old, oldRoot); err != nil {
			t.Errorf("consistency %d -> %d: %v", old, n, err)
		}
	}
}

// TestRestore resumes a builder from its partial tiles and checks it
// continues exactly as one that never stopped.
func TestRestore(t *testing.T) {
	a := NewBuilder()
	tiles := memTiles{}
	const cut = 256*2 + 5
	for i := int64(0); i < cut; i++ {
		a.Append(leaf(i))
	}
	tiles.put(a.Flush())
	partial := map[int][]tlog.Hash{}
	for L := 0; cut>>(TileHeight*L) > 0; L++ {
		count := int64(cut) >> (TileHeight * L)
		if w := int(count % 256); w > 0 {
			d, err := tiles.ReadTiles([]tlog.Tile{{H: TileHeight, L: L, N: count / 256, W: w}})
			if err != nil {
				t.Fatal(err)
			}
			partial[L] = bytesHashes(d[0])
		}
	}
	b := NewBuilder()
	if err := b.Restore(cut, partial); err != nil {
		t.Fatal(err)
	}
	for i := int64(cut); i < 300*256; i++ {
		a.Append(leaf(i))
		b.Append(leaf(i))
	}
	ra, _ := a.Root()
	rb, err := b.Root()
	if err != nil || ra != rb {
		t.Fatalf("restored root %v (%v), want %v", rb, err, ra)
	}
	if err := NewBuilder().Restore(cut, nil); err == nil {
		t.Error("restore without its partial tiles: no error")
	}
}

// TestMillionLeavesConsistency proves that a tree of a million leaves
// extends one of a thousand and of 999,999, from tiles, and that proofs
// stay a few dozen hashes.
func TestMillionLeavesConsistency(t *testing.T) {
	const n = 1_000_000
	b := NewBuilder()
	tiles := memTiles{}
	roots := map[int64]tlog.Hash{}
	for i := int64(0); i < n; i++ {
		b.Append(leaf(i))
		if s := i + 1; s == 1000 || s == n-1 {
			roots[s], _ = b.Root()
		}
		if i%100_000 == 0 {
			tiles.put(b.Flush())
		}
	}
	tiles.put(b.Flush())
	tree := tlog.Tree{N: n}
	tree.Hash, _ = b.Root()
	thr := tlog.TileHashReader(tree, tiles)
	for old, oldRoot := range roots {
		p, err := tlog.ProveTree(n, old, thr)
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 2*20 {
			t.Errorf("consistency proof %d -> %d has %d hashes", old, n, len(p))
		}
		if err := tlog.CheckTree(p, n, tree.Hash, old, oldRoot); err != nil {
			t.Errorf("consistency %d -> %d: %v", old, n, err)
		}
		bad := oldRoot
		bad[0] ^= 1
		if err := tlog.CheckTree(p, n, tree.Hash, old, bad); err == nil {
			t.Errorf("consistency %d -> %d accepts an altered old root", old, n)
		}
	}
	p, err := tlog.ProveRecord(n, 123_456, thr)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckRecord(p, n, tree.Hash, 123_456, leaf(123_456)); err != nil {
		t.Error(err)
	}
}
