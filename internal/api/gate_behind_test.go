package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// TestGateWaitsForTheStream: events have arrived that the correlation
// stage (its durable consumer on a real stream) has not taken in yet. The
// gate does not answer from that older state, even though the state it
// reads would allow: it waits, then denies saying it is behind. Once the
// consumer has acknowledged every event, the same question is answered
// from the state: allow.
func TestGateWaitsForTheStream(t *testing.T) {
	ctx := context.Background()
	n := testenv.NATS(t)
	base, approval := gateFacts(t)
	full := correlate.NewState()
	full.Add(base...)
	full.Add(approval...)
	e, err := evaluate.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := n.JS.Stream(ctx, bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := stream.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: "correlate", AckPolicy: jetstream.AckExplicitPolicy})
	if err != nil {
		t.Fatal(err)
	}
	// What the pipeline just sent: in the stream, not correlated.
	if _, err := bus.NewPublisher(n.JS).Publish(ctx, []*ce.Event{{ID: "just-sent", Source: "https://ci.example", Type: "t"}}); err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, api.New(api.Config{Changes: correlate.StateReader{State: full}, Gate: e,
		Watermark: correlate.StreamWatermark{JS: n.JS}.Watermark, GateCatchUp: 300 * time.Millisecond}))
	defer srv.Close()

	start := time.Now()
	code, g, raw := askGate(t, srv, gateQ, "")
	if code != 200 || g.Decision != api.GateDeny || g.Behind == nil || len(g.Controls) != 0 ||
		!strings.Contains(strings.Join(g.Reasons, " "), "has not yet taken in every event that arrived before this question") {
		t.Fatalf("behind the stream: %d %s, want deny naming the lag", code, raw)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("answered behind after %s, before the catch-up wait of 300ms", waited)
	}
	if !g.Behind.Watermark.Before(g.Behind.AskedAt) {
		t.Fatalf("behind: watermark %s not before the question %s", g.Behind.Watermark, g.Behind.AskedAt)
	}

	// The stage takes the event in.
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
	}
	code, g, raw = askGate(t, srv, gateQ, "")
	if code != 200 || g.Decision != api.GateAllow || g.Behind != nil {
		t.Fatalf("caught up: %d %s, want allow from the state", code, raw)
	}
}
