package tlog

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func rowHash(seq uint64) string {
	s := sha256.Sum256([]byte("row " + strconv.FormatUint(seq, 10)))
	return hex.EncodeToString(s[:])
}

func insertRows(t *testing.T, st *store.Store, from, to uint64) {
	t.Helper()
	var rows []store.EventRow
	for s := from; s <= to; s++ {
		rows = append(rows, store.EventRow{StreamSeq: s * 2, EventID: "e" + strconv.FormatUint(s, 10), Source: "test", Type: "t",
			ReceivedNs: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano(), Hash: rowHash(s * 2)})
	}
	if err := st.InsertEvents(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
}

// TestOpenMigratesAndResumes builds the log over rows archived before it
// existed (the upgrade), resumes it after more rows, and serves proofs
// from the ClickHouse tiles that the library checks.
func TestOpenMigratesAndResumes(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	insertRows(t, st, 1, 600) // an archive of 600 rows without a log
	l, err := Open(ctx, st.Conn())
	if err != nil {
		t.Fatal(err)
	}
	// The independent expectation: the same leaves in a fresh builder.
	want := NewBuilder()
	for s := uint64(1); s <= 600; s++ {
		h, _ := LeafHash(rowHash(s * 2))
		want.Append(h)
	}
	wr, _ := want.Root()
	if r, _ := l.Root(); l.Size() != 600 || r != wr {
		t.Fatalf("migrated log: %d leaves root %v, want 600 and %v", l.Size(), r, wr)
	}
	old := tlog.Tree{N: 600, Hash: wr}

	// Rows archived while the log was down, then the archive's appends.
	insertRows(t, st, 601, 700)
	l2, err := Open(ctx, st.Conn())
	if err != nil {
		t.Fatal(err)
	}
	insertRows(t, st, 701, 800)
	var seqs []uint64
	var hs []string
	for s := uint64(690); s <= 800; s++ { // 690..700 are already in: skipped
		seqs, hs = append(seqs, s*2), append(hs, rowHash(s*2))
	}
	if err := l2.Append(seqs, hs); err != nil {
		t.Fatal(err)
	}
	if err := l2.Persist(ctx); err != nil {
		t.Fatal(err)
	}
	for s := uint64(601); s <= 800; s++ {
		h, _ := LeafHash(rowHash(s * 2))
		want.Append(h)
	}
	wr, _ = want.Root()
	if r, _ := l2.Root(); l2.Size() != 800 || r != wr {
		t.Fatalf("resumed log: %d leaves, root %v; want 800, %v", l2.Size(), r, wr)
	}
	tiles := NewTiles(st.Conn())
	if got, err := tiles.RootAt(ctx, 600); err != nil || got != old.Hash {
		t.Fatalf("RootAt(600) = %v, %v; want %v", got, err, old.Hash)
	}
	tree := tlog.Tree{N: 800, Hash: wr}
	p, err := tiles.ConsistencyProof(ctx, tree, 600)
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.CheckTree(p, 800, tree.Hash, 600, old.Hash); err != nil {
		t.Fatalf("consistency 600 -> 800: %v", err)
	}
	ip, err := tiles.InclusionProof(ctx, tree, 650)
	if err != nil {
		t.Fatal(err)
	}
	leaf650, _ := LeafHash(rowHash(651 * 2))
	if err := tlog.CheckRecord(ip, 800, tree.Hash, 650, leaf650); err != nil {
		t.Fatalf("inclusion of leaf 650: %v", err)
	}
	// A row altered in ClickHouse recomputes to another leaf: caught.
	altered, _ := LeafHash(rowHash(9999))
	if err := tlog.CheckRecord(ip, 800, tree.Hash, 650, altered); err == nil {
		t.Fatal("inclusion proof accepts an altered row")
	}
	if _, err := tiles.InclusionProof(ctx, tree, 800); err == nil || !strings.Contains(err.Error(), "not in a tree of 800") {
		t.Fatalf("leaf past the tree: %v", err)
	}
	// A tree the tiles do not match (a forged root) gets no proof.
	forged := tree
	forged.Hash[0] ^= 1
	if _, err := tiles.InclusionProof(ctx, forged, 3); err == nil {
		t.Fatal("proof against a root the tiles do not hash to")
	}
}

// TestCheckpointNote signs a checkpoint and reads it back with the note
// library alone, as an independent reader would.
func TestCheckpointNote(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	s, err := NewSigner("evidence.example/log", priv)
	if err != nil {
		t.Fatal(err)
	}
	tree := tlog.Tree{N: 8}
	d, _ := hex.DecodeString(rfcRoots[7])
	copy(tree.Hash[:], d)
	msg, err := s.Sign(tree)
	if err != nil {
		t.Fatal(err)
	}
	wantBody := "evidence.example/log\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
	if !strings.HasPrefix(string(msg), wantBody+"\n\u2014 evidence.example/log ") {
		t.Fatalf("note:\n%s", msg)
	}
	vkey, _ := note.NewEd25519VerifierKey("evidence.example/log", pub)
	v, _ := note.NewVerifier(vkey)
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil || n.Text != wantBody {
		t.Fatalf("note.Open: %v, %q", err, n.Text)
	}
	c, _, err := OpenCheckpoint(msg, vkey)
	if err != nil || c.Tree != tree || c.Origin != "evidence.example/log" {
		t.Fatalf("OpenCheckpoint = %+v, %v", c, err)
	}
	tampered := strings.Replace(string(msg), "\n8\n", "\n9\n", 1)
	if _, _, err := OpenCheckpoint([]byte(tampered), vkey); err == nil {
		t.Fatal("an altered checkpoint opens")
	}
	_, other, _ := ed25519.GenerateKey(nil)
	o, _ := NewSigner("evidence.example/log", other)
	if _, _, err := OpenCheckpoint(msg, o.VerifierKey()); err == nil {
		t.Fatal("a checkpoint opens with another key")
	}
	if _, err := NewSigner("bad origin", priv); err == nil || !strings.Contains(err.Error(), "origin") {
		t.Fatalf("origin with a space: %v", err)
	}
}
