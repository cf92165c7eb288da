package archive

import (
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// GenesisHash is the previous hash of the first row of a chain.
const GenesisHash = ""

// RowHash is the hash of one archived row: verify.RowHash, where the
// chain is defined (the archive writes it, evidence verify checks it).
func RowHash(r *store.EventRow) (string, error) { return verify.RowHash(r) }

// chainHash is RowHash over the event's canonical bytes.
func chainHash(prev string, seq uint64, receivedNs int64, canonical []byte) string {
	return verify.ChainHash(prev, seq, receivedNs, canonical)
}

// EventFromRow rebuilds the CloudEvent that a row archived.
func EventFromRow(r *store.EventRow) (*ce.Event, error) { return verify.EventFromRow(r) }

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
