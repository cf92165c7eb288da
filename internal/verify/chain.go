package verify

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
)

// RowHash is the hash of one archived row, the link of the archive's hash
// chain (docs/architecture.md "The hash chain"): the SHA-256, in
// lower-case hex, of
//
//	prev_hash "\n" stream_seq "\n" received_ns "\n" canonical event JSON
//
// where the canonical JSON is the event rebuilt from the row's columns
// (ce.Event.WriteCanonical). Every column of the row but hash takes part,
// so altering, removing or inserting a row breaks the chain at that row.
// The archive (processors/archive) chains rows with ChainHash, this
// package checks them with RowHash: one definition.
func RowHash(r *store.EventRow) (string, error) {
	var h RowHasher
	return h.Hash(r)
}

// ChainHash is the hash of a row from its previous hash, stream sequence,
// receive time and its event's canonical JSON: RowHash, for a writer that
// holds the canonical bytes already.
func ChainHash(prev string, seq uint64, receivedNs int64, canonical []byte) string {
	var buf [128]byte
	d := sha256.New()
	d.Write(appendHead(buf[:0], prev, seq, receivedNs))
	d.Write(canonical)
	return hex.EncodeToString(d.Sum(nil))
}

func appendHead(b []byte, prev string, seq uint64, receivedNs int64) []byte {
	b = append(b, prev...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, receivedNs, 10)
	return append(b, '\n')
}

// EventFromRow rebuilds the CloudEvent that a row archived.
func EventFromRow(r *store.EventRow) (*ce.Event, error) {
	e := &ce.Event{}
	if err := fillEvent(e, r); err != nil {
		return nil, err
	}
	return e, nil
}

func fillEvent(e *ce.Event, r *store.EventRow) error {
	*e = ce.Event{
		ID: r.EventID, Source: r.Source, Type: r.Type, Subject: r.Subject,
		DataContentType: r.DataContentType, DataSchema: r.DataSchema,
		Data: r.Data, DataBase64: r.DataBase64,
	}
	if r.EventTimeNs != 0 {
		e.Time = time.Unix(0, r.EventTimeNs).UTC()
	}
	if r.Extensions != "" && r.Extensions != "{}" {
		if err := json.Unmarshal([]byte(r.Extensions), &e.Extensions); err != nil {
			return err
		}
	}
	return nil
}

// RowHasher computes RowHash reusing its buffers from one row to the next;
// its zero value is ready. Not for concurrent use.
type RowHasher struct {
	event ce.Event
	canon bytes.Buffer
	head  []byte
	sum   [sha256.Size]byte
	hex   [2 * sha256.Size]byte
}

// Hash is RowHash(r).
func (h *RowHasher) Hash(r *store.EventRow) (string, error) {
	if err := fillEvent(&h.event, r); err != nil {
		return "", err
	}
	h.head = appendHead(h.head[:0], r.PrevHash, r.StreamSeq, r.ReceivedNs)
	h.canon.Reset()
	h.event.WriteCanonical(&h.canon)
	d := sha256.New()
	d.Write(h.head)
	d.Write(h.canon.Bytes())
	d.Sum(h.sum[:0])
	hex.Encode(h.hex[:], h.sum[:])
	return string(h.hex[:]), nil
}
