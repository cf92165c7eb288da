package checkpoint_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func publish(t *testing.T, js jetstream.JetStream, from, n int) {
	t.Helper()
	evs := make([]*ce.Event, n)
	for i := range evs {
		k := from + i
		evs[i] = &ce.Event{ID: fmt.Sprintf("ev-%04d", k), Source: "test/checkpoint", Type: "dev.example.thing.happened",
			Time: time.Date(2026, 11, 25, 10, 0, 0, k, time.UTC), Data: fmt.Appendf(nil, `{"n":%d}`, k)}
	}
	res, err := bus.NewPublisher(js).Publish(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("publish %d: %v", i, r.Err)
		}
	}
}

// pipeline runs an archive (small batches, so checkpoints fall inside
// them) and a checkpointer until stop, which stops both like evidenced
// does: the archive first, then the checkpointer's last checkpoint.
func pipeline(t *testing.T, js jetstream.JetStream, st *store.Store, key *verify.SigningKey, cfg checkpoint.Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cp := checkpoint.New(js, st, key, cfg, nil)
	a := archive.New(js, st, archive.Config{BatchSize: 7, FlushInterval: 20 * time.Millisecond}, nil, nil, archive.Hooks{Committed: cp.Hook(nil)})
	archived, ran := make(chan error, 1), make(chan struct{})
	go func() { archived <- a.Run(ctx) }()
	go func() { defer close(ran); cp.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-archived; err != nil {
			t.Errorf("archive: %v", err)
		}
		<-ran
		sctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		if err := cp.Stop(sctx); err != nil {
			t.Errorf("checkpointer stop: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func stored(t *testing.T, st *store.Store) []verify.Checkpoint {
	t.Helper()
	var out []verify.Checkpoint
	if err := verify.ScanCheckpoints(context.Background(), st.Conn(), 0, 0, func(c verify.Checkpoint) error {
		out = append(out, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func seqs(cps []verify.Checkpoint) []uint64 {
	var s []uint64
	for _, c := range cps {
		s = append(s, c.Seq)
	}
	return s
}

func waitSeqs(t *testing.T, st *store.Store, want []uint64) []verify.Checkpoint {
	t.Helper()
	var got []verify.Checkpoint
	testenv.Eventually(t, 30*time.Second, func() error {
		got = stored(t, st)
		if !slices.Equal(seqs(got), want) {
			return fmt.Errorf("checkpoints at %v, want %v", seqs(got), want)
		}
		return nil
	})
	return got
}

// published reads every message of the checkpoint stream.
func published(t *testing.T, js jetstream.JetStream) []verify.Checkpoint {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, checkpoint.Stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []verify.Checkpoint
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != checkpoint.Subject {
			continue // the log's checkpoints (publishedLog)
		}
		var c verify.Checkpoint
		if err := json.Unmarshal(m.Data, &c); err != nil {
			t.Fatalf("stream message %d: %v", seq, err)
		}
		out = append(out, c)
	}
	return out
}

// Checkpoints fall exactly every N events of the chain, whatever the
// batches, sign the rows the archive stored, are published to a stream
// that refuses deletes and purges, and continue after a restart.
func TestCheckpointsEveryN(t *testing.T) {
	ctx := context.Background()
	js := testenv.NATS(t)
	st := testenv.Store(t)
	if err := checkpoint.EnsureStream(ctx, js.JS, 1); err != nil {
		t.Fatal(err)
	}
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := verify.PublicKeys{key.ID: key.Public()}
	cfg := checkpoint.Config{Every: 5, Interval: time.Hour}

	stop := pipeline(t, js.JS, st, key, cfg)
	publish(t, js.JS, 1, 23)
	testenv.WaitForRows(t, st, 23, 30*time.Second)
	got := waitSeqs(t, st, []uint64{5, 10, 15, 20})
	rows := testenv.ArchivedRows(t, st)
	for _, c := range got {
		if c.Count != c.Seq || c.Head != rows[c.Seq-1].Hash || c.KeyID != key.ID {
			t.Fatalf("checkpoint %+v does not sign row %d (hash %s)", c, c.Seq, rows[c.Seq-1].Hash)
		}
		if err := c.CheckSignature(keys); err != nil {
			t.Fatalf("checkpoint at %d: %v", c.Seq, err)
		}
	}
	// At stop the unsigned head (23) is signed.
	stop()
	waitSeqs(t, st, []uint64{5, 10, 15, 20, 23})
	if pub := published(t, js.JS); !slices.Equal(pub, stored(t, st)) {
		t.Fatalf("stream holds %+v\nClickHouse %+v", pub, stored(t, st))
	}

	// The stream refuses to lose a checkpoint.
	s, err := js.JS.Stream(ctx, checkpoint.Stream)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, 1); err == nil {
		t.Fatal("the checkpoint stream deleted a message")
	}
	if err := s.SecureDeleteMsg(ctx, 2); err == nil {
		t.Fatal("the checkpoint stream erased a message")
	}
	if err := s.Purge(ctx); err == nil {
		t.Fatal("the checkpoint stream was purged")
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 10 || !info.Config.DenyDelete || !info.Config.DenyPurge {
		t.Fatalf("stream after the attempts: %+v %v", info, err)
	}

	// A restart continues from ClickHouse: five events after the last
	// checkpoint (23), then the head at stop.
	stop = pipeline(t, js.JS, st, key, cfg)
	publish(t, js.JS, 24, 12)
	testenv.WaitForRows(t, st, 35, 30*time.Second)
	waitSeqs(t, st, []uint64{5, 10, 15, 20, 23, 28, 33})
	stop()
	waitSeqs(t, st, []uint64{5, 10, 15, 20, 23, 28, 33, 35})
	if n := len(published(t, js.JS)); n != 8 {
		t.Fatalf("stream holds %d checkpoints, want 8", n)
	}
	checkLogCheckpoints(t, js.JS, st, key, []int64{5, 10, 15, 20, 23, 28, 33, 35})
	res, err := verify.Verify(ctx, st.Conn(), verify.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Events != 35 || res.Checkpoints != 8 || res.Unsigned != 0 {
		t.Fatalf("verify: %+v", res)
	}
}

// The interval signs the head when events were archived since the last
// checkpoint, and only then.
func TestCheckpointInterval(t *testing.T) {
	ctx := context.Background()
	js := testenv.NATS(t)
	st := testenv.Store(t)
	if err := checkpoint.EnsureStream(ctx, js.JS, 1); err != nil {
		t.Fatal(err)
	}
	key, _ := verify.GenerateKey()
	interval := 100 * time.Millisecond
	pipeline(t, js.JS, st, key, checkpoint.Config{Every: 1000, Interval: interval})
	publish(t, js.JS, 1, 3)
	waitSeqs(t, st, []uint64{3})
	// No new events: several intervals pass without a checkpoint.
	time.Sleep(5 * interval)
	if got := seqs(stored(t, st)); !slices.Equal(got, []uint64{3}) {
		t.Fatalf("checkpoints without new events: %v", got)
	}
	publish(t, js.JS, 4, 2)
	cps := waitSeqs(t, st, []uint64{3, 5})
	if gap := cps[1].Created().Sub(cps[0].Created()); gap < interval {
		t.Fatalf("second checkpoint %s after the first, interval %s", gap, interval)
	}
}

// evidenced's key: the flag's file, else one made in the data directory
// at first start; a bad file is refused naming the flag.
func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	k1, err := checkpoint.LoadKey("", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := checkpoint.LoadKey("", dir, nil)
	if err != nil || k2.ID != k1.ID {
		t.Fatalf("second start: %v, ids %s %s", err, k1.ID, k2.ID)
	}
	path := dir + "/" + verify.PrivateKeyFile
	if k3, err := checkpoint.LoadKey(path, "/nonexistent", nil); err != nil || k3.ID != k1.ID {
		t.Fatalf("--signing-key: %v", err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	for _, flagPath := range []string{path, ""} {
		_, err := checkpoint.LoadKey(flagPath, dir, nil)
		if err == nil || !strings.Contains(err.Error(), "--signing-key (EVIDENCE_SIGNING_KEY)") || !strings.Contains(err.Error(), "mode 0640") {
			t.Fatalf("group-readable key (flag %q): %v", flagPath, err)
		}
	}
}
