package bus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestLeaseFencesAHolderCutOff: replica a holds the lease, b stands by.
// a's connection to NATS is cut (as when its machine is partitioned): its
// fence refuses writes within half the time to live, before b can take
// the lease (a full time to live after a's last renewal), and b takes it.
func TestLeaseFencesAHolderCutOff(t *testing.T) {
	ctx := context.Background()
	n := testenv.NATS(t)
	const ttl = time.Second
	l := bus.Lease{Bucket: "TEST_LEASE", Key: "k", TTL: ttl}

	ncA, err := nats.Connect(n.URL, nats.NoReconnect())
	if err != nil {
		t.Fatal(err)
	}
	jsA, err := jetstream.New(ncA)
	if err != nil {
		t.Fatal(err)
	}
	heldA := make(chan *bus.Held, 1)
	aDone := make(chan error, 1)
	actx, acancel := context.WithCancel(ctx)
	defer acancel()
	la := l
	la.Holder = "a"
	go func() {
		aDone <- bus.RunLeased(actx, jsA, la, nil, func(ctx context.Context, h *bus.Held) error {
			heldA <- h
			<-ctx.Done()
			return nil
		})
	}()
	h := <-heldA
	until, err := h.Valid()
	if err != nil || time.Until(until) > ttl/2 {
		t.Fatalf("a fresh hold: valid until %s (in %s), %v; want within %s", until, time.Until(until), err, ttl/2)
	}

	standby := make(chan string, 100)
	bTook := make(chan time.Time, 1)
	lb := l
	lb.Holder = "b"
	lb.Standby = func(holder string) {
		select {
		case standby <- holder:
		default:
		}
	}
	bctx, bcancel := context.WithCancel(ctx)
	defer bcancel()
	go func() {
		_ = bus.RunLeased(bctx, n.JS, lb, nil, func(ctx context.Context, _ *bus.Held) error {
			bTook <- time.Now()
			<-ctx.Done()
			return nil
		})
	}()
	if holder := <-standby; holder != "a" {
		t.Fatalf("b stands by for %q, want a", holder)
	}

	cut := time.Now()
	ncA.Close()
	var fenced time.Time
	testenv.Eventually(t, 5*time.Second, func() error {
		if _, err := h.Valid(); !errors.Is(err, bus.ErrLeaseLost) {
			return errors.New("a's fence still allows writes")
		}
		fenced = time.Now()
		return nil
	})
	took := <-bTook
	if !fenced.Before(took) {
		t.Fatalf("a fenced at %s after the cut, b took over at %s: both could write", fenced.Sub(cut), took.Sub(cut))
	}
	if fenced.Sub(cut) > ttl/2+100*time.Millisecond {
		t.Errorf("a fenced %s after the cut, want within %s", fenced.Sub(cut), ttl/2)
	}
	t.Logf("a fenced %s after the cut; b took over %s after it", fenced.Sub(cut).Round(time.Millisecond), took.Sub(cut).Round(time.Millisecond))
}
