package archive

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
)

// GenesisHash is the previous hash of the first row of a chain.
const GenesisHash = ""

// RowHash is the hash of one archived row: the SHA-256, in lower-case hex,
// of
//
//	prev_hash "\n" stream_seq "\n" received_ns "\n" canonical event JSON
//
// where the canonical JSON is the event rebuilt from the row's columns (see
// ce.Event.MarshalCanonical). Every column of the row except hash itself
// takes part, so altering, removing or inserting a row breaks the chain at
// that row.
func RowHash(r *store.EventRow) (string, error) {
	e, err := EventFromRow(r)
	if err != nil {
		return "", err
	}
	return chainHash(r.PrevHash, r.StreamSeq, r.ReceivedNs, e.MarshalCanonical()), nil
}

// chainHash is RowHash over the event's canonical bytes.
func chainHash(prev string, seq uint64, receivedNs int64, canonical []byte) string {
	var buf [128]byte
	b := append(buf[:0], prev...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, '\n')
	b = strconv.AppendInt(b, receivedNs, 10)
	b = append(b, '\n')
	h := sha256.New()
	h.Write(b)
	h.Write(canonical)
	return hex.EncodeToString(h.Sum(nil))
}

// EventFromRow rebuilds the CloudEvent that a row archived.
func EventFromRow(r *store.EventRow) (*ce.Event, error) {
	e := &ce.Event{
		ID: r.EventID, Source: r.Source, Type: r.Type, Subject: r.Subject,
		DataContentType: r.DataContentType, DataSchema: r.DataSchema,
		Data: r.Data, DataBase64: r.DataBase64,
	}
	if r.EventTimeNs != 0 {
		e.Time = time.Unix(0, r.EventTimeNs).UTC()
	}
	if r.Extensions != "" && r.Extensions != "{}" {
		if err := json.Unmarshal([]byte(r.Extensions), &e.Extensions); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// rowFromEvent is the row of an event received at receivedNs with stream
// sequence seq, before it is chained.
func rowFromEvent(e *ce.Event, seq uint64, receivedNs int64) store.EventRow {
	return store.EventRow{
		StreamSeq: seq, EventID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject,
		EventTimeNs: e.TimeNanos(), ReceivedNs: receivedNs,
		DataContentType: e.DataContentType, DataSchema: e.DataSchema,
		Extensions: e.ExtensionsJSON(), Data: e.Data, DataBase64: e.DataBase64,
	}
}

// VerifyChain checks rows given in stream order: each row's prev_hash must
// be the hash of the row before it (prev for the first), and its hash must
// be the recomputation. It returns the index of the first bad row and why,
// or -1.
func VerifyChain(prev string, rows []store.EventRow) (int, string) {
	for i := range rows {
		r := &rows[i]
		if r.PrevHash != prev {
			return i, "prev_hash does not match the hash of the row before it"
		}
		h, err := RowHash(r)
		if err != nil {
			return i, "cannot rebuild the event: " + err.Error()
		}
		if h != r.Hash {
			return i, "hash does not match the row's content"
		}
		prev = r.Hash
	}
	return -1, ""
}
