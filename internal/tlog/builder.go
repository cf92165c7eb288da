package tlog

import (
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// TileHeight is the height of the log's tiles (C2SP tlog-tiles: 8, so a
// full tile holds 256 hashes).
const TileHeight = 8

const tileWidth = 1 << TileHeight

// LeafHash is the RFC 6962 leaf hash of a row whose chain hash is
// rowHash (hex): SHA-256(0x00 || the 32 bytes of rowHash).
func LeafHash(rowHash string) (tlog.Hash, error) {
	b, err := hex.DecodeString(rowHash)
	if err != nil || len(b) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("row hash %q is not %d bytes of hex", rowHash, tlog.HashSize)
	}
	return tlog.RecordHash(b), nil
}

// TileData is a tile written by the Builder: its coordinates (C2SP path:
// Tile.Path()) and its hashes.
type TileData struct {
	Tile tlog.Tile
	Data []byte
}

// Builder appends leaves to the tree, keeping only its frontier: the tile
// being filled at each level.
type Builder struct {
	n       int64
	levels  [][]tlog.Hash // levels[L]: hashes of the partial tile at level L
	pending []TileData    // full tiles made since the last Flush
	dirty   []bool        // levels whose partial tile changed since the last Flush
}

// NewBuilder returns an empty tree.
func NewBuilder() *Builder { return &Builder{} }

// Size is the number of leaves.
func (b *Builder) Size() int64 { return b.n }

// Append adds a leaf hash (LeafHash).
func (b *Builder) Append(h tlog.Hash) {
	b.n++
	for L := 0; ; L++ {
		if L == len(b.levels) {
			b.levels = append(b.levels, make([]tlog.Hash, 0, tileWidth))
			b.dirty = append(b.dirty, false)
		}
		b.levels[L] = append(b.levels[L], h)
		b.dirty[L] = true
		if len(b.levels[L]) < tileWidth {
			return
		}
		// The tile is full: write it and carry its root up a level.
		full := b.levels[L]
		count := b.n >> (TileHeight * L) // hashes at this level so far
		b.pending = append(b.pending, TileData{
			Tile: tlog.Tile{H: TileHeight, L: L, N: count/tileWidth - 1, W: tileWidth},
			Data: hashBytes(full),
		})
		h = subtreeHash(full)
		b.levels[L] = make([]tlog.Hash, 0, tileWidth)
	}
}

// Flush returns the tiles to store since the last Flush: the full tiles
// completed and the partial tile of each level that changed, in order of
// level and index.
func (b *Builder) Flush() []TileData {
	out := b.pending
	b.pending = nil
	for L := range b.levels {
		if !b.dirty[L] {
			continue
		}
		b.dirty[L] = false
		if w := len(b.levels[L]); w > 0 {
			count := b.n >> (TileHeight * L)
			out = append(out, TileData{
				Tile: tlog.Tile{H: TileHeight, L: L, N: count / tileWidth, W: w},
				Data: hashBytes(b.levels[L]),
			})
		}
	}
	return out
}

// Root is the tree's root hash (RFC 6962 MTH; for the empty tree the
// hash of the empty string).
func (b *Builder) Root() (tlog.Hash, error) {
	if b.n == 0 {
		return emptyRoot, nil
	}
	return tlog.TreeHash(b.n, frontierReader{b})
}

// Restore sets the builder to a tree of n leaves whose partial tiles are
// given by partial (level -> hashes of the partial tile at that level, as
// stored). It is how a log resumes from its tiles.
func (b *Builder) Restore(n int64, partial map[int][]tlog.Hash) error {
	b.n, b.levels, b.dirty, b.pending = n, nil, nil, nil
	for L := 0; n>>(TileHeight*L) > 0; L++ {
		w := int((n >> (TileHeight * L)) % tileWidth)
		hs := partial[L]
		if len(hs) != w {
			return fmt.Errorf("tlog: restore %d leaves: the partial tile at level %d has %d hashes, want %d", n, L, len(hs), w)
		}
		lv := make([]tlog.Hash, w, tileWidth)
		copy(lv, hs)
		b.levels = append(b.levels, lv)
		b.dirty = append(b.dirty, false)
	}
	return nil
}

// frontierReader reads the stored hashes a tree hash of the whole tree
// needs from the partial tiles in memory.
type frontierReader struct{ b *Builder }

var errNotInFrontier = errors.New("tlog: hash not in the frontier")

func (r frontierReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, idx := range indexes {
		level, k := tlog.SplitStoredHashIndex(idx)
		L, s := level/TileHeight, level%TileHeight
		if L >= len(r.b.levels) {
			return nil, errNotInFrontier
		}
		count := r.b.n >> (TileHeight * L)
		base := (count / tileWidth) * tileWidth
		lo, hi := k<<s, (k+1)<<s
		if lo < base || hi > count {
			return nil, errNotInFrontier
		}
		out[i] = subtreeHash(r.b.levels[L][lo-base : hi-base])
	}
	return out, nil
}

// subtreeHash is the RFC 6962 hash of a perfect subtree over hs (a power
// of two of them).
func subtreeHash(hs []tlog.Hash) tlog.Hash {
	if len(hs) == 1 {
		return hs[0]
	}
	buf := make([]tlog.Hash, len(hs)/2)
	for i := range buf {
		buf[i] = tlog.NodeHash(hs[2*i], hs[2*i+1])
	}
	for len(buf) > 1 {
		for i := 0; i < len(buf)/2; i++ {
			buf[i] = tlog.NodeHash(buf[2*i], buf[2*i+1])
		}
		buf = buf[:len(buf)/2]
	}
	return buf[0]
}

func hashBytes(hs []tlog.Hash) []byte {
	out := make([]byte, 0, len(hs)*tlog.HashSize)
	for i := range hs {
		out = append(out, hs[i][:]...)
	}
	return out
}

func bytesHashes(b []byte) []tlog.Hash {
	out := make([]tlog.Hash, len(b)/tlog.HashSize)
	for i := range out {
		copy(out[i][:], b[i*tlog.HashSize:])
	}
	return out
}

// emptyRoot is SHA-256 of the empty string, RFC 6962's MTH({}).
var emptyRoot = tlog.Hash{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24, 0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
