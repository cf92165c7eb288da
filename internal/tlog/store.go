package tlog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/mod/sumdb/tlog"
)

// Tiles stores and reads the log's tiles in the ClickHouse table
// log_tiles (schemas/clickhouse/0008_log.sql).
type Tiles struct{ conn driver.Conn }

// NewTiles returns the tile store on conn.
func NewTiles(conn driver.Conn) *Tiles { return &Tiles{conn: conn} }

// Write stores tiles written by a Builder that has size leaves, the last
// of stream sequence lastSeq, in one INSERT. Writing a tile again is
// harmless: a tile's content is fixed by the leaves below it.
func (t *Tiles) Write(ctx context.Context, tiles []TileData, size int64, lastSeq uint64) error {
	if len(tiles) == 0 {
		return nil
	}
	b, err := t.conn.PrepareBatch(ctx, "INSERT INTO log_tiles (level, tile_index, width, hashes, tree_size, last_seq)")
	if err != nil {
		return fmt.Errorf("prepare insert into log_tiles: %w", err)
	}
	defer b.Close()
	for _, td := range tiles {
		if err := b.Append(uint8(td.Tile.L), uint64(td.Tile.N), uint16(td.Tile.W), string(td.Data), uint64(size), lastSeq); err != nil {
			return fmt.Errorf("insert into log_tiles: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert into log_tiles: %w", err)
	}
	return nil
}

// ErrNoTile means a tile the log should have is not stored.
var ErrNoTile = errors.New("tlog: tile not stored")

// Read returns the hashes of tile tl (its first tl.W): from the
// narrowest stored row at least that wide.
func (t *Tiles) Read(ctx context.Context, tl tlog.Tile) ([]byte, error) {
	var data string
	err := t.conn.QueryRow(ctx, "SELECT hashes FROM log_tiles WHERE level = ? AND tile_index = ? AND width >= ? ORDER BY width LIMIT 1",
		uint8(tl.L), uint64(tl.N), uint16(tl.W)).Scan(&data)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: %s", ErrNoTile, tl.Path())
		}
		return nil, fmt.Errorf("read tile %s: %w", tl.Path(), err)
	}
	if len(data) < tl.W*tlog.HashSize {
		return nil, fmt.Errorf("tile %s: stored row has %d bytes, want at least %d", tl.Path(), len(data), tl.W*tlog.HashSize)
	}
	return []byte(data[:tl.W*tlog.HashSize]), nil
}

// State is the log's stored size and the stream sequence of its last leaf
// (0, 0 when empty).
func (t *Tiles) State(ctx context.Context) (size int64, lastSeq uint64, err error) {
	var n, seq uint64
	err = t.conn.QueryRow(ctx, "SELECT max(tree_size), argMax(last_seq, tree_size) FROM log_tiles").Scan(&n, &seq)
	if err != nil {
		return 0, 0, fmt.Errorf("read the log's size: %w", err)
	}
	return int64(n), seq, nil
}

// TileReader returns a tlog.TileReader over the store, for
// tlog.TileHashReader (which checks every tile against the tree).
func (t *Tiles) TileReader(ctx context.Context) tlog.TileReader { return tileReader{ctx: ctx, t: t} }

type tileReader struct {
	ctx context.Context
	t   *Tiles
}

func (r tileReader) Height() int { return TileHeight }

func (r tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, tl := range tiles {
		d, err := r.t.Read(r.ctx, tl)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

func (r tileReader) SaveTiles([]tlog.Tile, [][]byte) {}

// HashReader reads stored hashes from the tiles without checking them
// against a tree: for computing the root of a size the log has reached
// (RootAt). Proofs use TileHashReader, which checks.
func (t *Tiles) HashReader(ctx context.Context) tlog.HashReader { return hashReader{ctx: ctx, t: t} }

type hashReader struct {
	ctx context.Context
	t   *Tiles
}

func (r hashReader) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	cache := map[tlog.Tile][]byte{}
	for i, idx := range indexes {
		tl := tlog.TileForIndex(TileHeight, idx)
		d, ok := cache[tl]
		if !ok {
			var err error
			if d, err = r.t.Read(r.ctx, tl); err != nil {
				return nil, err
			}
			cache[tl] = d
		}
		h, err := tlog.HashFromTile(tl, d, idx)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

// RootAt is the root of the tree of the first n leaves; n must not
// exceed the stored size.
func (t *Tiles) RootAt(ctx context.Context, n int64) (tlog.Hash, error) {
	if n == 0 {
		return emptyRoot, nil
	}
	return tlog.TreeHash(n, t.HashReader(ctx))
}
