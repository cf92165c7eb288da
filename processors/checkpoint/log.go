package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/store"
	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// LogSubject is where the transparency log's checkpoints are published
// (C2SP signed notes, text/plain), in the checkpoint stream beside the
// chain's JSON checkpoints.
const LogSubject = Subject + ".log"

// Origin is the log's origin line (and the note key's name):
// evidenced/<key id>, so a new signing key starts a new log name.
func Origin(key *verify.SigningKey) string { return itlog.OriginFor(key.ID) }

// LogCheckpoint is a signed checkpoint of the transparency log.
type LogCheckpoint struct {
	Size      int64
	Root      tlog.Hash
	LastSeq   uint64
	Note      []byte
	CreatedNs int64
}

// writeLog signs the log at the chain checkpoint's count (the tree of the
// same rows), publishes the note and stores it in log_checkpoints. The note
// is the same on a retry (ed25519 is deterministic), and the publish is
// de-duplicated by message id.
func (c *Checkpointer) writeLog(ctx context.Context, cp verify.Checkpoint) error {
	tiles := itlog.NewTiles(c.st.Conn())
	size, _, err := tiles.State(ctx)
	if err != nil {
		return err
	}
	if size < int64(cp.Count) {
		return fmt.Errorf("the log has %d leaves, the checkpoint signs %d rows: waiting for the archive's tiles", size, cp.Count)
	}
	root, err := tiles.RootAt(ctx, int64(cp.Count))
	if err != nil {
		return fmt.Errorf("root of the log at %d: %w", cp.Count, err)
	}
	msgBody, err := c.logSigner.Sign(tlog.Tree{N: int64(cp.Count), Hash: root})
	if err != nil {
		return err
	}
	msg := nats.NewMsg(LogSubject)
	msg.Data = msgBody
	msg.Header.Set(jetstream.MsgIDHeader, "log-checkpoint-"+strconv.FormatUint(cp.Count, 10)+"-"+cp.KeyID+"-"+strconv.FormatInt(cp.CreatedNs, 10))
	msg.Header.Set("Content-Type", "text/plain; charset=utf-8")
	if _, err := c.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("publish to %s: %w", LogSubject, err)
	}
	return insertLogCheckpoint(ctx, c.st, LogCheckpoint{Size: int64(cp.Count), Root: root, LastSeq: cp.Seq, Note: msgBody, CreatedNs: cp.CreatedNs})
}

func insertLogCheckpoint(ctx context.Context, st *store.Store, lc LogCheckpoint) error {
	return itlog.StoreCheckpoint(ctx, st.Conn(), itlog.StoredCheckpoint(lc))
}

// LatestLogCheckpoint reads the newest signed log checkpoint from
// ClickHouse; ok is false when there is none.
func LatestLogCheckpoint(ctx context.Context, st *store.Store) (note []byte, ok bool, err error) {
	return itlog.LatestCheckpoint(ctx, st.Conn())
}

// LogSource serves the log routes of the HTTP API (api.LogSource) from
// the store Store returns (nil while ClickHouse is not connected).
type LogSource struct{ Store func() *store.Store }

// Conn is the store's connection, or nil.
func (s LogSource) Conn() driver.Conn {
	if st := s.Store(); st != nil {
		return st.Conn()
	}
	return nil
}

// Latest is the newest signed log checkpoint.
func (s LogSource) Latest(ctx context.Context) ([]byte, bool, error) {
	st := s.Store()
	if st == nil {
		return nil, false, errors.New("ClickHouse not connected yet")
	}
	return LatestLogCheckpoint(ctx, st)
}
