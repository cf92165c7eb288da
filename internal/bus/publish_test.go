package bus_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestPublishRefusesWhatNATSWouldNot: a subject past MaxSubjectLen, or a
// message past the server's max_payload, is refused before anything of the
// batch is published, and the connection stays open. Without the bound, a
// subject past 4 KiB makes the server close the connection for good.
func TestPublishRefusesWhatNATSWouldNot(t *testing.T) {
	n := testenv.NATS(t)
	p := bus.NewPublisher(n.JS)
	ctx := context.Background()
	ok := &ce.Event{ID: "ok", Source: "s", Type: "t"}
	stored := func() uint64 {
		s, err := n.JS.Stream(ctx, bus.EventStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}

	for _, tc := range []struct {
		name    string
		e       *ce.Event
		subject bool
	}{
		{"a type of 5,000 bytes", &ce.Event{ID: "long", Source: "s", Type: strings.Repeat("x", 5000)}, true},
		{"data over max_payload", &ce.Event{ID: "big", Source: "s", Type: "t", Data: []byte(`"` + strings.Repeat("x", int(n.Conn.MaxPayload())) + `"`)}, false},
	} {
		_, err := p.Publish(ctx, []*ce.Event{ok, tc.e})
		var tle *bus.TooLargeError
		if !errors.As(err, &tle) || tle.Index != 1 || tle.Subject != tc.subject {
			t.Fatalf("%s: error %v, want a *TooLargeError for event 1 (subject %v)", tc.name, err, tc.subject)
		}
		if got := stored(); got != 0 {
			t.Fatalf("%s: %d events stored, want none of the batch", tc.name, got)
		}
		if st := n.Conn.Status(); st != nats.CONNECTED {
			t.Fatalf("%s: connection %s after the refusal", tc.name, st)
		}
	}
	res, err := p.Publish(ctx, []*ce.Event{ok})
	if err != nil || res[0].Err != nil || res[0].Seq != 1 {
		t.Fatalf("a normal event afterwards: %+v %v", res, err)
	}
}
