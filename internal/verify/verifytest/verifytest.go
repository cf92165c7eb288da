// Package verifytest writes hash-chained events and signed checkpoints
// straight into ClickHouse, with the archive's own chain code
// (processors/archive.RowHash), for the tests and benchmarks of evidence
// verify. Only tests import it.
package verifytest

import (
	"context"
	"fmt"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/archive"
)

// Base is when the first generated event was received; rows follow 1ms
// apart (so a million rows stay within one month's partition).
var Base = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// Chain describes rows to generate.
type Chain struct {
	// Events is the number of rows.
	Events int
	// Gaps, when > 0, leaves out every Gaps-th stream sequence, as
	// dead-lettered events leave gaps in a real chain.
	Gaps int
	// Every signs a checkpoint every so many rows with Key (0: none).
	Every int
	Key   *verify.SigningKey
	// Batch is the rows per INSERT (default 10000).
	Batch int
}

// Written is what Write stored.
type Written struct {
	Rows        []Ref // every row, in order (only when keep is true)
	Checkpoints []verify.Checkpoint
	HeadSeq     uint64
	HeadHash    string
}

// Ref names a row.
type Ref struct {
	Seq  uint64
	ID   string
	Hash string
}

// Row is the k-th generated event (k from 1) at stream sequence seq,
// before it is chained.
func Row(k int, seq uint64) store.EventRow {
	r := store.EventRow{
		StreamSeq: seq, EventID: fmt.Sprintf("ev-%07d", k), Source: "https://ci.example/acme/payments",
		Type: "dev.evidencepipeline.pipelinerun.finished.v1", Subject: fmt.Sprintf("run-%d", k%13),
		EventTimeNs:     Base.Add(time.Duration(k) * time.Millisecond).Add(-time.Second).UnixNano(),
		ReceivedNs:      Base.Add(time.Duration(k) * time.Millisecond).UnixNano(),
		DataContentType: "application/json",
		Extensions:      "{}",
		Data:            fmt.Appendf(nil, `{"repository":"github.com/acme/payments","commit":"%040x","run_id":"%d","outcome":"success"}`, k*7919, k),
	}
	if k%5 == 0 {
		r.Extensions = `{"attempt":3,"team":"payments"}`
	}
	if k%11 == 0 {
		r.DataContentType = "application/octet-stream"
		r.Data = fmt.Appendf(nil, "binary-%d\x00\xff", k)
		r.DataBase64 = true
	}
	return r
}

// Write generates c's rows and checkpoints into st; keep keeps every
// row's Ref in the answer (not for a million rows).
func Write(ctx context.Context, st *store.Store, c Chain, keep bool) (Written, error) {
	if c.Batch <= 0 {
		c.Batch = 10000
	}
	var w Written
	batch := make([]store.EventRow, 0, c.Batch)
	prev := archive.GenesisHash
	seq := uint64(0)
	for k := 1; k <= c.Events; k++ {
		seq++
		if c.Gaps > 0 && seq%uint64(c.Gaps) == 0 {
			seq++ // a dead-lettered event's sequence
		}
		r := Row(k, seq)
		r.PrevHash = prev
		h, err := archive.RowHash(&r)
		if err != nil {
			return w, err
		}
		r.Hash, prev = h, h
		batch = append(batch, r)
		if keep {
			w.Rows = append(w.Rows, Ref{Seq: seq, ID: r.EventID, Hash: h})
		}
		if c.Every > 0 && k%c.Every == 0 {
			cp := verify.Checkpoint{Seq: seq, Count: uint64(k), Head: h, CreatedNs: r.ReceivedNs + int64(time.Millisecond)/2}
			cp.Sign(c.Key)
			w.Checkpoints = append(w.Checkpoints, cp)
		}
		if len(batch) == c.Batch {
			if err := st.InsertEvents(ctx, batch); err != nil {
				return w, err
			}
			batch = batch[:0]
		}
	}
	if err := st.InsertEvents(ctx, batch); err != nil {
		return w, err
	}
	if err := verify.InsertCheckpoints(ctx, st.Conn(), w.Checkpoints); err != nil {
		return w, err
	}
	w.HeadSeq, w.HeadHash = seq, prev
	return w, nil
}
