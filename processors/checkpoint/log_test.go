package checkpoint_test

import (
	"context"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

// checkLogCheckpoints reads the log's checkpoints from the stream and
// ClickHouse, opens each with the note library alone (an independent
// reader) and checks it signs the tree of the rows up to its size,
// recomputed from the archived rows.
func checkLogCheckpoints(t *testing.T, js jetstream.JetStream, st *store.Store, key *verify.SigningKey, sizes []int64) {
	t.Helper()
	ctx := context.Background()
	vkey, err := note.NewEd25519VerifierKey(checkpoint.Origin(key), key.Public())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := note.NewVerifier(vkey)
	rows := testenv.ArchivedRows(t, st)
	roots := map[int64]tlog.Hash{}
	b := itlog.NewBuilder()
	for i := range rows {
		h, _ := itlog.LeafHash(rows[i].Hash)
		b.Append(h)
		roots[b.Size()], _ = b.Root()
	}
	s, err := js.Stream(ctx, checkpoint.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	var got []int64
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != checkpoint.LogSubject {
			continue
		}
		n, err := note.Open(m.Data, note.VerifierList(v))
		if err != nil {
			t.Fatalf("stream message %d: %v\n%s", seq, err, m.Data)
		}
		c, err := itlog.ParseCheckpoint(n.Text)
		if err != nil {
			t.Fatal(err)
		}
		if c.Origin != checkpoint.Origin(key) || c.Tree.Hash != roots[c.Tree.N] {
			t.Fatalf("log checkpoint %d: origin %q root %v, want %v", c.Tree.N, c.Origin, c.Tree.Hash, roots[c.Tree.N])
		}
		got = append(got, c.Tree.N)
	}
	if !slices.Equal(got, sizes) {
		t.Fatalf("log checkpoints at sizes %v, want %v", got, sizes)
	}
	latest, ok, err := checkpoint.LatestLogCheckpoint(ctx, st)
	if err != nil || !ok {
		t.Fatalf("latest log checkpoint: %v %v", ok, err)
	}
	c, _, err := itlog.OpenCheckpoint(latest, vkey)
	if err != nil || c.Tree.N != sizes[len(sizes)-1] {
		t.Fatalf("latest log checkpoint in ClickHouse: %+v %v", c, err)
	}
}
