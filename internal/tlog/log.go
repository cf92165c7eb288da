package tlog

import (
	"context"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/mod/sumdb/tlog"
)

// Log is the archive's writer of the tree: a Builder over the rows of
// events, resumed from and written to the tile store.
type Log struct {
	conn    driver.Conn
	tiles   *Tiles
	b       *Builder
	lastSeq uint64
}

// Open resumes the log from its tiles and appends the archived rows the
// tiles do not cover yet, streaming them from events in stream order: a
// restart after a crash between the events insert and the tiles', and the
// upgrade of an archive written before the log (the whole tree is built
// over its rows, in bounded memory). The rows caught up are written to the
// tile store before Open returns.
func Open(ctx context.Context, conn driver.Conn) (*Log, error) {
	tiles := NewTiles(conn)
	size, lastSeq, err := tiles.State(ctx)
	if err != nil {
		return nil, err
	}
	b := NewBuilder()
	if size > 0 {
		partial := map[int][]tlog.Hash{}
		for L := 0; size>>(TileHeight*L) > 0; L++ {
			count := size >> (TileHeight * L)
			if w := int(count % tileWidth); w > 0 {
				d, err := tiles.Read(ctx, tlog.Tile{H: TileHeight, L: L, N: count / tileWidth, W: w})
				if err != nil {
					return nil, fmt.Errorf("tlog: resume at %d leaves: %w", size, err)
				}
				partial[L] = bytesHashes(d)
			}
		}
		if err := b.Restore(size, partial); err != nil {
			return nil, err
		}
	}
	l := &Log{conn: conn, tiles: tiles, b: b, lastSeq: lastSeq}
	if err := l.catchUp(ctx); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Log) catchUp(ctx context.Context) error {
	rows, err := l.conn.Query(ctx, "SELECT stream_seq, hash FROM events WHERE stream_seq > ? ORDER BY stream_seq", l.lastSeq)
	if err != nil {
		return fmt.Errorf("tlog: read events after %d: %w", l.lastSeq, err)
	}
	defer rows.Close()
	const chunk = 1 << 16
	n := 0
	for rows.Next() {
		var seq uint64
		var hash string
		if err := rows.Scan(&seq, &hash); err != nil {
			return fmt.Errorf("tlog: read events: %w", err)
		}
		if err := l.append(seq, hash); err != nil {
			return err
		}
		if n++; n%chunk == 0 {
			if err := l.Persist(ctx); err != nil {
				return err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("tlog: read events: %w", err)
	}
	return l.Persist(ctx)
}

func (l *Log) append(seq uint64, rowHash string) error {
	if seq <= l.lastSeq {
		return fmt.Errorf("tlog: row of stream sequence %d after %d: leaves go in stream order", seq, l.lastSeq)
	}
	h, err := LeafHash(rowHash)
	if err != nil {
		return fmt.Errorf("tlog: row %d: %w", seq, err)
	}
	l.b.Append(h)
	l.lastSeq = seq
	return nil
}

// Append adds archived rows (stream sequence and chain hash, in stream
// order) to the tree in memory; Persist writes them. Rows at or below the
// log's last sequence (already in the tree) are skipped.
func (l *Log) Append(seqs []uint64, hashes []string) error {
	for i := range seqs {
		if seqs[i] <= l.lastSeq {
			continue
		}
		if err := l.append(seqs[i], hashes[i]); err != nil {
			return err
		}
	}
	return nil
}

// Persist writes the tiles changed since the last Persist. On failure the
// tiles are kept and written by the next call.
func (l *Log) Persist(ctx context.Context) error {
	tiles := l.b.Flush()
	if err := l.tiles.Write(ctx, tiles, l.b.Size(), l.lastSeq); err != nil {
		l.b.pending = append(tiles, l.b.pending...) // retry them all
		return err
	}
	return nil
}

// Size is the number of leaves.
func (l *Log) Size() int64 { return l.b.Size() }

// Root is the current root hash.
func (l *Log) Root() (tlog.Hash, error) { return l.b.Root() }

// Tiles is the log's tile store.
func (l *Log) Tiles() *Tiles { return l.tiles }
