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

// RowHash is the hash of one archived row, as the archive computes it
// (processors/archive.RowHash, docs/architecture.md "The hash chain"):
// hex(SHA-256(prev_hash "\n" stream_seq "\n" received_ns "\n"
// canonical_event_json)), the event rebuilt from the row's columns.
func RowHash(r *store.EventRow) (string, error) {
	var h RowHasher
	return h.Hash(r)
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
	e := &h.event
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
			return "", err
		}
	}
	b := append(h.head[:0], r.PrevHash...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, r.StreamSeq, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, r.ReceivedNs, 10)
	b = append(b, '\n')
	h.head = b
	h.canon.Reset()
	e.WriteCanonical(&h.canon)
	d := sha256.New()
	d.Write(h.head)
	d.Write(h.canon.Bytes())
	d.Sum(h.sum[:0])
	hex.Encode(h.hex[:], h.sum[:])
	return string(h.hex[:]), nil
}
