package evaluate

import (
	"context"
	"fmt"
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
	js := testenv.NATS(t)
	st := testenv.Store(t)
	kv, err := correlate.NewKVState(ctx, js.JS, correlate.KVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	eng := engine(t)
	replica := func(name string) (stop func()) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			done <- RunLeased(rctx, js.JS, Lease{TTL: time.Second, Holder: name}, nil, func(hctx context.Context) error {
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
	// Nothing more arrives from the stand-by replica.
	time.Sleep(500 * time.Millisecond)
	if r, v := counts(); r != 8*40 || v != 40 {
		t.Fatalf("%d results and %d verdicts after both replicas ran, want 320 and 40: judged twice", r, v)
	}

	lease, err := js.JS.KeyValue(ctx, LeaseBucket)
	if err != nil {
		t.Fatal(err)
	}
	e, err := lease.Get(ctx, leaseKey)
	if err != nil {
		t.Fatal(err)
	}
	holder := string(e.Value())
	other := map[string]string{"a": "b", "b": "a"}[holder]
	if other == "" {
		t.Fatalf("lease held by %q, want a or b", holder)
	}
	stops[holder]()
	delete(stops, holder)
	judge(40, 10)
	if e, err := lease.Get(ctx, leaseKey); err != nil || string(e.Value()) != other {
		t.Errorf("after %s stopped the lease is held by %v (%v), want %s", holder, e, err, other)
	}
	for _, stop := range stops {
		stop()
	}
}
