package api

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/internal/store"
	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// The transparency log's routes (role auditor; docs/tamper-evidence.md):
//
//	GET /v1/log/checkpoint                                 the newest signed checkpoint (C2SP note)
//	GET /v1/log/proof/inclusion?seq=STREAM_SEQ&size=N      the row's leaf and its inclusion proof
//	GET /v1/log/proof/consistency?old=M&size=N             tree N extends tree M
//	GET /v1/log/checkpoint?size=N                          the signed checkpoint of tree N
//	POST /v1/log/cosignature                               a witness's cosigned checkpoint (C2SP note)
//
// Checkpoints are served with every witness cosignature stored for them.
// size defaults to the newest checkpoint's size.

// LogSource is where the log routes read: ClickHouse (nil while not
// connected) and the newest signed checkpoint.
type LogSource interface {
	Conn() driver.Conn
	Latest(ctx context.Context) (note []byte, ok bool, err error)
}

func (s *Server) logCheckpoint(w http.ResponseWriter, r *http.Request) {
	var note []byte
	var ok bool
	var err error
	if v := r.URL.Query().Get("size"); v != "" {
		n, perr := strconv.ParseInt(v, 10, 64)
		if perr != nil || n < 1 {
			invalidParameters(w, r, []problem.FieldError{{Field: "size", Detail: "size " + strconv.Quote(v) + ": want a tree size, a positive integer"}})
			return
		}
		conn := s.cfg.TLog.Conn()
		if conn == nil {
			fail(w, r, problem.Unavailable, "ClickHouse not connected yet")
			return
		}
		if note, ok, err = itlog.CheckpointAt(r.Context(), conn, n); err == nil && !ok {
			fail(w, r, problem.NotFound, "the log has no checkpoint of "+v+" leaves")
			return
		}
	} else {
		note, ok, err = s.cfg.TLog.Latest(r.Context())
	}
	switch {
	case err != nil:
		fail(w, r, problem.Unavailable, "reading the log's checkpoints: "+err.Error())
	case !ok:
		fail(w, r, problem.NotFound, "the log has no checkpoint yet")
	default:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write(note)
	}
}

// logTree is the tree a proof is asked against: size (default: the newest
// checkpoint's), its root from the tiles.
func (s *Server) logTree(w http.ResponseWriter, r *http.Request, tiles *itlog.Tiles) (tlog.Tree, bool) {
	var n int64
	if v := r.URL.Query().Get("size"); v != "" {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil || x < 1 {
			invalidParameters(w, r, []problem.FieldError{{Field: "size", Detail: "size " + strconv.Quote(v) + ": want a tree size, a positive integer"}})
			return tlog.Tree{}, false
		}
		n = x
	} else {
		note, ok, err := s.cfg.TLog.Latest(r.Context())
		if err != nil || !ok {
			fail(w, r, problem.NotFound, "no size given and the log has no checkpoint yet")
			return tlog.Tree{}, false
		}
		c, err := itlog.ParseCheckpoint(noteText(note))
		if err != nil {
			fail(w, r, problem.Internal, "the newest checkpoint: "+err.Error())
			return tlog.Tree{}, false
		}
		n = c.Tree.N
	}
	size, _, err := tiles.State(r.Context())
	if err != nil {
		fail(w, r, problem.Unavailable, err.Error())
		return tlog.Tree{}, false
	}
	if n > size {
		fail(w, r, problem.NotFound, "size "+strconv.FormatInt(n, 10)+": the log has "+strconv.FormatInt(size, 10)+" leaves")
		return tlog.Tree{}, false
	}
	root, err := tiles.RootAt(r.Context(), n)
	if err != nil {
		fail(w, r, problem.Internal, err.Error())
		return tlog.Tree{}, false
	}
	return tlog.Tree{N: n, Hash: root}, true
}

func (s *Server) logInclusion(w http.ResponseWriter, r *http.Request) {
	conn := s.cfg.TLog.Conn()
	if conn == nil {
		fail(w, r, problem.Unavailable, "ClickHouse not connected yet")
		return
	}
	v := r.URL.Query().Get("seq")
	seq, err := strconv.ParseUint(v, 10, 64)
	if err != nil || seq == 0 {
		invalidParameters(w, r, []problem.FieldError{{Field: "seq", Detail: "seq " + strconv.Quote(v) + ": want the row's stream sequence, a positive integer"}})
		return
	}
	tiles := itlog.NewTiles(conn)
	tree, ok := s.logTree(w, r, tiles)
	if !ok {
		return
	}
	idx, rowHash, err := itlog.Leaf(r.Context(), conn, seq)
	if errors.Is(err, itlog.ErrNoRow) {
		fail(w, r, problem.NotFound, err.Error())
		return
	}
	if err != nil {
		fail(w, r, problem.Unavailable, err.Error())
		return
	}
	if idx >= tree.N {
		fail(w, r, problem.NotFound, "row "+v+" is leaf "+strconv.FormatInt(idx, 10)+", not in the tree of "+strconv.FormatInt(tree.N, 10)+" leaves (ask a larger size)")
		return
	}
	p, err := tiles.InclusionProof(r.Context(), tree, idx)
	if err != nil {
		fail(w, r, problem.Internal, err.Error())
		return
	}
	ip := itlog.InclusionProof{TreeSize: tree.N, LeafIndex: idx, StreamSeq: seq, RowHash: rowHash, Proof: p}
	// The row, so that the reader recomputes its chain hash.
	err = verify.ScanEvents(r.Context(), conn, seq, seq, func(row *store.EventRow) error {
		if row.Hash != rowHash {
			return nil
		}
		ev, err := verify.EventFromRow(row)
		if err != nil {
			return err
		}
		ip.Source, ip.ID, ip.PrevHash, ip.ReceivedNs = row.Source, row.EventID, row.PrevHash, row.ReceivedNs
		ip.Canonical = base64.StdEncoding.EncodeToString(ev.MarshalCanonical())
		return nil
	})
	if err != nil {
		fail(w, r, problem.Unavailable, "reading the row of stream sequence "+v+": "+err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ip)
}

func (s *Server) logConsistency(w http.ResponseWriter, r *http.Request) {
	conn := s.cfg.TLog.Conn()
	if conn == nil {
		fail(w, r, problem.Unavailable, "ClickHouse not connected yet")
		return
	}
	v := r.URL.Query().Get("old")
	old, err := strconv.ParseInt(v, 10, 64)
	if err != nil || old < 1 {
		invalidParameters(w, r, []problem.FieldError{{Field: "old", Detail: "old " + strconv.Quote(v) + ": want the older tree size, a positive integer"}})
		return
	}
	tiles := itlog.NewTiles(conn)
	tree, ok := s.logTree(w, r, tiles)
	if !ok {
		return
	}
	if old > tree.N {
		invalidParameters(w, r, []problem.FieldError{{Field: "old", Detail: "old " + v + " is larger than size " + strconv.FormatInt(tree.N, 10)}})
		return
	}
	p, err := tiles.ConsistencyProof(r.Context(), tree, old)
	if err != nil {
		fail(w, r, problem.Internal, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, itlog.ConsistencyProof{OldSize: old, TreeSize: tree.N, Proof: p})
}

// noteText is the text of a signed note: up to the blank line before the
// signatures.
func noteText(note []byte) string {
	for i := 0; i+1 < len(note); i++ {
		if note[i] == '\n' && note[i+1] == '\n' {
			return string(note[:i+1])
		}
	}
	return string(note)
}

// maxCosignedNote bounds a posted cosigned checkpoint.
const maxCosignedNote = 64 << 10

// logCosignature stores a witness's cosignature of a checkpoint: the body
// is the checkpoint's signed note with the witness's signature line added
// (evidence witness), text/plain.
func (s *Server) logCosignature(w http.ResponseWriter, r *http.Request) {
	conn := s.cfg.TLog.Conn()
	if conn == nil {
		fail(w, r, problem.Unavailable, "ClickHouse not connected yet")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxCosignedNote+1))
	if err != nil {
		fail(w, r, problem.MalformedBody, "reading the cosigned checkpoint: "+err.Error())
		return
	}
	if len(body) > maxCosignedNote {
		fail(w, r, problem.BodyTooLarge, "a cosigned checkpoint is at most 64 KiB")
		return
	}
	n, err := itlog.AddCosignatures(r.Context(), conn, body)
	switch {
	case errors.Is(err, itlog.ErrUnknownCheckpoint):
		fail(w, r, problem.NotFound, err.Error())
	case err != nil && strings.Contains(err.Error(), "log_checkpoints"):
		fail(w, r, problem.Unavailable, err.Error())
	case err != nil:
		fail(w, r, problem.MalformedBody, "cosigned checkpoint: "+err.Error())
	default:
		writeJSON(w, http.StatusOK, map[string]int{"stored": n})
	}
}
