package tlog

import (
	"context"
	"encoding/hex"
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
// from log_checkpoints; ok is false when there is none.
func LatestCheckpoint(ctx context.Context, conn driver.Conn) (note []byte, ok bool, err error) {
	rows, err := conn.Query(ctx, "SELECT note FROM log_checkpoints ORDER BY tree_size DESC, created_ns DESC LIMIT 1")
	if err != nil {
		return nil, false, fmt.Errorf("read log_checkpoints: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, false, rows.Err()
	}
	var s string
	if err := rows.Scan(&s); err != nil {
		return nil, false, fmt.Errorf("read log_checkpoints: %w", err)
	}
	return []byte(s), true, nil
}
