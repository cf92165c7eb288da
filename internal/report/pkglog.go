package report

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/store"
	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// The package's inclusion proofs (docs/reports.md, docs/tamper-evidence.md):
// log/checkpoint.note is the newest signed checkpoint of the
// transparency log when the package was built, and each trace folder's
// inclusion.json proves every event of its trace.json to be a leaf of the
// tree that checkpoint signs. Each proof carries the row's canonical
// CloudEvent, previous hash, stream sequence and arrival time, so the
// verifier recomputes the row's chain hash (the leaf) itself, then checks
// that trace.json shows that same event: no ClickHouse is needed.

const (
	// LogCheckpointFile is the package's signed log checkpoint.
	LogCheckpointFile = "log/checkpoint.note"
	// InclusionFile is, in each trace folder, its events' proofs.
	InclusionFile = "inclusion.json"
)

// ManifestLog is manifest.json's "log": the checkpoint the package's
// proofs are against.
type ManifestLog struct {
	Checkpoint string `json:"checkpoint"`
	Origin     string `json:"origin"`
	TreeSize   int64  `json:"tree_size"`
	Root       string `json:"root"`
	Events     int    `json:"events"`
}

// TraceInclusion is a trace folder's inclusion.json.
type TraceInclusion struct {
	ChangeID string           `json:"change_id"`
	TreeSize int64            `json:"tree_size"`
	Events   []EventInclusion `json:"events"`
}

// EventInclusion proves one archived row is leaf LeafIndex of the tree:
// the row's chain hash is SHA-256(prev_hash "\n" stream_seq "\n"
// received_ns "\n" canonical), its leaf hash SHA-256(0x00 || chain hash).
type EventInclusion struct {
	StreamSeq  uint64 `json:"stream_seq"`
	Source     string `json:"source"`
	ID         string `json:"id"`
	ReceivedNs int64  `json:"received_ns"`
	PrevHash   string `json:"prev_hash"`
	RowHash    string `json:"row_hash"`
	// Canonical is the canonical CloudEvent JSON of the row, base64.
	Canonical string      `json:"canonical_base64"`
	LeafIndex int64       `json:"leaf_index"`
	Proof     []tlog.Hash `json:"proof"`
}

// ErrNoLogCheckpoint means the log has no signed checkpoint to prove a
// package's events against.
var ErrNoLogCheckpoint = fmt.Errorf("the transparency log has no signed checkpoint yet (log_checkpoints is empty): evidenced signs one every --checkpoint-interval while events arrive")

// loadInclusions reads the newest signed checkpoint and proves every event
// of traces against it, reading the tiles (cached) and the events table.
func loadInclusions(ctx context.Context, st *store.Store, traces []Trace) ([]byte, itlog.Checkpoint, []TraceInclusion, error) {
	conn := st.Conn()
	note, ok, err := itlog.LatestCheckpoint(ctx, conn)
	if err != nil {
		return nil, itlog.Checkpoint{}, nil, err
	}
	if !ok {
		return nil, itlog.Checkpoint{}, nil, ErrNoLogCheckpoint
	}
	cp, err := itlog.ParseCheckpoint(noteText(note))
	if err != nil {
		return nil, itlog.Checkpoint{}, nil, fmt.Errorf("the newest log checkpoint: %w", err)
	}
	var keys []store.EventKey
	seen := map[store.EventKey]bool{}
	for _, t := range traces {
		for _, e := range t.Events {
			k := store.EventKey{Source: e.Source, ID: e.ID}
			if !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	rows, err := st.EventsByKey(ctx, keys)
	if err != nil {
		return nil, cp, nil, err
	}
	bySeq := map[uint64]*store.EventRow{}
	for i := range rows {
		bySeq[rows[i].StreamSeq] = &rows[i]
	}
	seqs := make([]uint64, 0, len(rows))
	for _, r := range rows {
		seqs = append(seqs, r.StreamSeq)
	}
	leaves, err := itlog.LeafIndexes(ctx, conn, seqs)
	if err != nil {
		return nil, cp, nil, fmt.Errorf("leaf indexes of the sampled events: %w", err)
	}
	thr := tlog.TileHashReader(cp.Tree, &cachedTiles{r: itlog.NewTiles(conn).TileReader(ctx), m: map[tlog.Tile][]byte{}})
	proven := map[uint64]EventInclusion{}
	out := make([]TraceInclusion, len(traces))
	for i, t := range traces {
		ti := TraceInclusion{ChangeID: t.ChangeID, TreeSize: cp.Tree.N, Events: []EventInclusion{}}
		for _, e := range t.Events {
			ei, done := proven[e.StreamSeq]
			if !done {
				r := bySeq[e.StreamSeq]
				if r == nil {
					return nil, cp, nil, fmt.Errorf("event %s (stream_seq %d): not found again in events", e.Ref(), e.StreamSeq)
				}
				idx := leaves[r.StreamSeq]
				if idx >= cp.Tree.N {
					return nil, cp, nil, fmt.Errorf("event %s (stream_seq %d) is leaf %d, after the newest signed log checkpoint (%d leaves): build the package after the next checkpoint (--checkpoint-interval)",
						e.Ref(), r.StreamSeq, idx, cp.Tree.N)
				}
				p, err := tlog.ProveRecord(cp.Tree.N, idx, thr)
				if err != nil {
					return nil, cp, nil, fmt.Errorf("inclusion proof of event %s (leaf %d) in the tree of %d leaves: %w", e.Ref(), idx, cp.Tree.N, err)
				}
				ev, err := verify.EventFromRow(r)
				if err != nil {
					return nil, cp, nil, fmt.Errorf("event %s (stream_seq %d): %w", e.Ref(), r.StreamSeq, err)
				}
				ei = EventInclusion{StreamSeq: r.StreamSeq, Source: r.Source, ID: r.EventID, ReceivedNs: r.ReceivedNs, PrevHash: r.PrevHash,
					RowHash: r.Hash, Canonical: base64.StdEncoding.EncodeToString(ev.MarshalCanonical()), LeafIndex: idx, Proof: p}
				proven[e.StreamSeq] = ei
			}
			ti.Events = append(ti.Events, ei)
		}
		out[i] = ti
	}
	return note, cp, out, nil
}

// cachedTiles keeps each tile read: the proofs of one package share most
// of their upper tiles.
type cachedTiles struct {
	r tlog.TileReader
	m map[tlog.Tile][]byte
}

func (c *cachedTiles) Height() int { return c.r.Height() }

func (c *cachedTiles) ReadTiles(ts []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(ts))
	var miss []tlog.Tile
	for i, t := range ts {
		if d, ok := c.m[t]; ok {
			out[i] = d
		} else {
			miss = append(miss, t)
		}
	}
	if len(miss) > 0 {
		ds, err := c.r.ReadTiles(miss)
		if err != nil {
			return nil, err
		}
		for i, t := range miss {
			c.m[t] = ds[i]
		}
		for i, t := range ts {
			out[i] = c.m[t]
		}
	}
	return out, nil
}

func (c *cachedTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// noteText is a signed note's text: up to the blank line before its
// signatures.
func noteText(note []byte) string {
	if i := bytes.Index(note, []byte("\n\n")); i >= 0 {
		return string(note[:i+1])
	}
	return string(note)
}

// PackageLogKey is the note verifier key of the log evidenced signs with
// pub (origin evidenced/<key id>): what verify package uses when it is not
// given the log's key.
func PackageLogKey(pub ed25519.PublicKey) (string, error) {
	return itlog.VerifierKey(itlog.OriginFor(verify.KeyID(pub)), pub)
}

// verifyInclusions checks the package's log checkpoint with logKeys and
// every trace's events against it. It returns the number of events proven.
func verifyInclusions(files map[string]*zip.File, m Manifest, logKeys []string, w Witnesses, bad func(string, ...any)) (int, *itlog.Checkpoint, []itlog.Cosignature) {
	if m.Log == nil {
		bad("%s: no \"log\": the package carries no inclusion proofs", ManifestFile)
		return 0, nil, nil
	}
	f := files[m.Log.Checkpoint]
	if f == nil {
		bad("%s is missing: the package's inclusion proofs have no checkpoint", m.Log.Checkpoint)
		return 0, nil, nil
	}
	nb, err := readAll(f)
	if err != nil {
		bad("%s: unreadable: %v", m.Log.Checkpoint, err)
		return 0, nil, nil
	}
	cp, _, err := itlog.OpenCheckpoint(nb, logKeys...)
	if err != nil {
		bad("%s: %v (give the log's key with --log-key)", m.Log.Checkpoint, err)
		return 0, nil, nil
	}
	var cosigs []itlog.Cosignature
	if len(w.Keys) > 0 || w.Need > 0 {
		if _, cosigs, err = itlog.OpenWitnessed(nb, logKeys, w.Keys, w.Need); err != nil {
			bad("%s: %v", m.Log.Checkpoint, err)
		}
	}
	if cp.Tree.N != m.Log.TreeSize || cp.Origin != m.Log.Origin {
		bad("%s: signs %d leaves of %s, the manifest says %d of %s", m.Log.Checkpoint, cp.Tree.N, cp.Origin, m.Log.TreeSize, m.Log.Origin)
	}
	var dirs []string
	for name := range files {
		if dir, ok := strings.CutSuffix(name, "/trace.json"); ok && strings.HasPrefix(name, "traces/") {
			dirs = append(dirs, dir)
		}
	}
	slices.Sort(dirs)
	proven := 0
	for _, dir := range dirs {
		proven += verifyTraceInclusion(files, dir, cp, bad)
	}
	return proven, &cp, cosigs
}

func verifyTraceInclusion(files map[string]*zip.File, dir string, cp itlog.Checkpoint, bad func(string, ...any)) int {
	var tr Trace
	if err := readJSON(files[dir+"/trace.json"], &tr); err != nil {
		bad("%s/trace.json: not a trace: %v", dir, err)
		return 0
	}
	inFile := dir + "/" + InclusionFile
	var ti TraceInclusion
	if files[inFile] == nil {
		bad("%s is missing: the events of change %s are not proven in the log", inFile, tr.ChangeID)
		return 0
	}
	if err := readJSON(files[inFile], &ti); err != nil {
		bad("%s: not inclusion proofs: %v", inFile, err)
		return 0
	}
	bySeq := map[uint64]EventInclusion{}
	for _, ei := range ti.Events {
		bySeq[ei.StreamSeq] = ei
	}
	proven := 0
	for _, e := range tr.Events {
		name := fmt.Sprintf("%s: event %s (stream_seq %d)", dir, e.Ref(), e.StreamSeq)
		ei, ok := bySeq[e.StreamSeq]
		if !ok {
			bad("%s has no inclusion proof in %s", name, InclusionFile)
			continue
		}
		canon, err := base64.StdEncoding.DecodeString(ei.Canonical)
		if err != nil {
			bad("%s: its canonical event in %s is not base64: %v", name, InclusionFile, err)
			continue
		}
		if h := verify.ChainHash(ei.PrevHash, ei.StreamSeq, ei.ReceivedNs, canon); h != ei.RowHash {
			bad("%s was altered: its row in %s hashes to %s, not to the row hash %s its proof is for", name, InclusionFile, h, ei.RowHash)
			continue
		}
		if err := itlog.VerifyInclusion(cp, itlog.InclusionProof{TreeSize: ti.TreeSize, LeafIndex: ei.LeafIndex, StreamSeq: ei.StreamSeq,
			RowHash: ei.RowHash, Proof: ei.Proof}); err != nil {
			bad("%s is not proven in the log: %v", name, err)
			continue
		}
		if why := sameEvent(e, ei, canon); why != "" {
			bad("%s was altered: trace.json %s, the event proven in the log does not", name, why)
			continue
		}
		proven++
	}
	return proven
}

// sameEvent says how the trace's event differs from the proven row ("" if
// it does not): hash, previous hash, arrival, and the CloudEvent compared
// as JSON values (trace.json indents the data).
func sameEvent(e TraceEvent, ei EventInclusion, canon []byte) string {
	switch {
	case e.Hash != ei.RowHash:
		return "gives hash " + e.Hash
	case e.PrevHash != ei.PrevHash:
		return "gives prev_hash " + e.PrevHash
	case e.ReceivedAt != stampNs(ei.ReceivedNs):
		return "gives received_at " + e.ReceivedAt
	}
	var proven map[string]any
	if err := decodeNumbers(canon, &proven); err != nil {
		return "cannot be compared: the proven event is not JSON"
	}
	shown := map[string]any{"specversion": "1.0", "id": e.ID, "source": e.Source, "type": e.Type}
	opt := func(k, v string) {
		if v != "" {
			shown[k] = v
		}
	}
	opt("subject", e.Subject)
	opt("time", e.Time)
	opt("datacontenttype", e.DataContentType)
	opt("dataschema", e.DataSchema)
	opt("data_base64", e.DataBase64)
	if len(e.Extensions) > 0 {
		var ext map[string]any
		if err := decodeNumbers(e.Extensions, &ext); err != nil {
			return "has extensions that are not a JSON object"
		}
		for k, v := range ext {
			shown[k] = v
		}
	}
	if len(e.Data) > 0 {
		var d any
		if err := decodeNumbers(e.Data, &d); err != nil {
			return "has data that is not JSON"
		}
		shown["data"] = d
	} else if e.DataText != "" {
		shown["data"] = e.DataText
	}
	for k, v := range proven {
		if !reflect.DeepEqual(shown[k], v) {
			return fmt.Sprintf("shows another %q", k)
		}
	}
	for k := range shown {
		if _, ok := proven[k]; !ok {
			return fmt.Sprintf("shows %q, which the event has not", k)
		}
	}
	return ""
}

func decodeNumbers(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	return d.Decode(v)
}

func readJSON(f *zip.File, v any) error {
	if f == nil {
		return fmt.Errorf("missing")
	}
	b, err := readAll(f)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// CurrentLogCheckpoint is the log's newest signed checkpoint, for a
// report to state (nil, nil when the log has none).
func CurrentLogCheckpoint(ctx context.Context, st *store.Store) (*LogCheckpoint, error) {
	note, ok, err := itlog.LatestCheckpoint(ctx, st.Conn())
	if err != nil || !ok {
		return nil, err
	}
	cp, err := itlog.ParseCheckpoint(noteText(note))
	if err != nil {
		return nil, fmt.Errorf("the newest log checkpoint: %w", err)
	}
	return &LogCheckpoint{Origin: cp.Origin, TreeSize: cp.Tree.N, Root: base64.StdEncoding.EncodeToString(cp.Tree.Hash[:]), Note: string(note)}, nil
}
