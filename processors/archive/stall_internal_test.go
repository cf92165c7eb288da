package archive

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestStallWatchLostDeliveries: messages the server counts as delivered
// but that never reached the reader (here: fetched by another client of
// the same durable consumer, as a pull response lost in a failover would
// be) make an idle archive resume; so do events left undelivered; a
// consumer that delivered exactly what was read does not.
func TestStallWatchLostDeliveries(t *testing.T) {
	ctx := context.Background()
	n := testenv.NATS(t)
	for i := range 5 {
		if _, err := n.JS.Publish(ctx, bus.Subject("dev.example.thing.happened"), []byte{byte('0' + i)}); err != nil {
			t.Fatal(err)
		}
	}
	stream, err := n.JS.Stream(ctx, bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "stall", AckPolicy: jetstream.AckAllPolicy, FilterSubject: bus.EventSubjects})
	if err != nil {
		t.Fatal(err)
	}
	b, err := cons.Fetch(5, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for range b.Messages() {
		got++
	}
	if got != 5 {
		t.Fatalf("fetched %d messages, want 5", got)
	}
	w := &stallWatch{last: time.Now().Add(-time.Hour), log: slog.New(slog.DiscardHandler), after: time.Millisecond}

	// Only 3 of the 5 delivered arrived.
	err = w.idle(ctx, cons, 3)
	if err == nil || !strings.Contains(err.Error(), "delivered up to stream sequence 5 but only 3 arrived") {
		t.Fatalf("idle with deliveries lost: %v, want the lost-delivery error", err)
	}
	// All 5 arrived, nothing waits: no stall.
	w.checked = time.Time{}
	if err := w.idle(ctx, cons, 5); err != nil {
		t.Fatalf("idle with everything received: %v", err)
	}
	// Two more wait on the server, never delivered.
	for range 2 {
		if _, err := n.JS.Publish(ctx, bus.Subject("dev.example.thing.happened"), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// The server counts a consumer's pending messages apart from the
	// publish acknowledgement: wait until it sees both, so the check below
	// tests idle and not that race.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the consumer counts %d pending after publishing 2", info.NumPending)
		}
	}
	w.checked = time.Time{}
	err = w.idle(ctx, cons, 5)
	if err == nil || !strings.Contains(err.Error(), "2 events wait on the server") {
		t.Fatalf("idle with events waiting: %v, want the waiting error", err)
	}
	// The reader was active within stallAfter: no check, although two
	// events wait (an hour, so that a pause of the test cannot pass it).
	w.after, w.last, w.checked = time.Hour, time.Now(), time.Time{}
	if err := w.idle(ctx, cons, 5); err != nil {
		t.Fatalf("idle right after a message: %v", err)
	}
}
