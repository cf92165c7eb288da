package evaluate

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// TestStageLease: two replicas run the evaluation stage over the same
// queue; one holds the lease and judges, the other stands by, so every
// change gets its results once. When the holder stops, the other takes
// over and judges what is queued next.
func TestStageLease(t *testing.T) {
	ctx := context.Background()
	js, st, kv := stageEnv(t)
	now := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	eng := engine(t)
	// Per replica: how often it found the lease held by another and stood
	// by, and how often it ran the stage.
	standbys := map[string]*atomic.Int64{"a": {}, "b": {}}
	holds := map[string]*atomic.Int64{"a": {}, "b": {}}
	replica := func(name string) (stop func()) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			l := Lease{TTL: time.Second, Holder: name, Standby: func() { standbys[name].Add(1) }}
			done <- RunLeased(rctx, js.JS, l, nil, func(hctx context.Context) error {
				holds[name].Add(1)
				s, err := NewStage(hctx, js.JS, eng, correlate.KVReader{KV: kv}, StoreWriter{Get: func() *store.Store { return st }},
					StageConfig{Now: func() time.Time { return now }}, nil, nil)
				if err != nil {
					return err
				}
				return s.Run(hctx)
			})
		}()
		return func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("replica %s: %v", name, err)
			}
		}
	}
	counts := func() (results, verdicts uint64) {
		if err := st.Conn().QueryRow(ctx, `SELECT count() FROM control_results`).Scan(&results); err != nil {
			t.Fatal(err)
		}
		if err := st.Conn().QueryRow(ctx, `SELECT count() FROM deployment_verdicts`).Scan(&verdicts); err != nil {
			t.Fatal(err)
		}
		return
	}
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	judge := func(from, n int) {
		t.Helper()
		facts, ids := genChanges(t, from, n)
		if _, err := kv.Merge(ctx, facts); err != nil {
			t.Fatal(err)
		}
		if err := Enqueue(ctx, queue, ids, now); err != nil {
			t.Fatal(err)
		}
		want := uint64(from + n)
		testenv.Eventually(t, 30*time.Second, func() error {
			if r, v := counts(); r != 8*want || v != want {
				return fmt.Errorf("%d results and %d verdicts, want %d and %d", r, v, 8*want, want)
			}
			return nil
		})
	}
	// A replica that crashed holding the lease: it never renews, and the
	// lease expires after its time to live.
	ghost, err := js.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: LeaseBucket, Storage: jetstream.FileStorage, History: 1, TTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ghost.Create(ctx, leaseKey, []byte("crashed")); err != nil {
		t.Fatal(err)
	}
	started := time.Now()
	stops := map[string]func(){"a": replica("a"), "b": replica("b")}
	judge(0, 40)
	if el := time.Since(started); el < 500*time.Millisecond {
		t.Errorf("judged %s after start while a crashed replica's lease was still live", el)
	}
	lease, err := js.JS.KeyValue(ctx, LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	holderNow := func() string {
		e, err := lease.Get(ctx, leaseKey)
		if err != nil {
			return ""
		}
		return string(e.Value())
	}
	holder := holderNow()
	other := map[string]string{"a": "b", "b": "a"}[holder]
	if other == "" {
		t.Fatalf("lease held by %q, want a or b", holder)
	}
	// The stand-by replica finds the held lease twice more after the
	// judging: it has stood by all along, and ran no stage.
	seen := standbys[other].Load()
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := standbys[other].Load(); n < seen+2 {
			return fmt.Errorf("stand-by %s found the lease held %d times since the judging, want 2", other, n-seen)
		}
		return nil
	})
	if h, o := holds[holder].Load(), holds[other].Load(); h != 1 || o != 0 {
		t.Fatalf("the stage ran %d times on the holder %s and %d on the stand-by %s, want 1 and 0", h, holder, o, other)
	}
	if r, v := counts(); r != 8*40 || v != 40 {
		t.Fatalf("%d results and %d verdicts after both replicas ran, want 320 and 40: judged twice", r, v)
	}

	stops[holder]()
	delete(stops, holder)
	testenv.Eventually(t, 30*time.Second, func() error {
		if h := holderNow(); h != other {
			return fmt.Errorf("after %s stopped the lease is held by %q, want %s", holder, h, other)
		}
		return nil
	})
	judge(40, 10)
	if h := holds[other].Load(); h != 1 {
		t.Errorf("the stage ran %d times on %s after it took over, want 1", h, other)
	}
	if h := holderNow(); h != other {
		t.Errorf("after judging the lease is held by %q, want %s", h, other)
	}
	for _, stop := range stops {
		stop()
	}
}
