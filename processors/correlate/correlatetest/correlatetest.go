// Package correlatetest reads CloudEvents fixtures (a JSON batch, as the
// scenarios' events.json) into events, facts and states for the tests of
// the packages that build on the correlator.
package correlatetest

import (
	"os"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// Events reads the JSON batch of CloudEvents at path; n > 0 keeps the first
// n. A problem fails tb, naming the file and the event.
func Events(tb testing.TB, path string, n int) []*ce.Event {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	raws, err := ce.ParseBatch(b)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	if n > 0 && n < len(raws) {
		raws = raws[:n]
	}
	out := make([]*ce.Event, 0, len(raws))
	for i, raw := range raws {
		e, err := ce.ParseJSON(raw)
		if err != nil {
			tb.Fatalf("%s: event %d: %v", path, i, err)
		}
		out = append(out, e)
	}
	return out
}

// Facts are the facts of the events, in order. A problem fails tb, naming
// the event.
func Facts(tb testing.TB, events ...*ce.Event) []correlate.Fact {
	tb.Helper()
	var out []correlate.Fact
	for _, e := range events {
		fs, err := correlate.Extract(e)
		if err != nil {
			tb.Fatalf("event %s (%s): %v", e.ID, e.Type, err)
		}
		out = append(out, fs...)
	}
	return out
}

// State is the correlator's state of the events.
func State(tb testing.TB, events ...*ce.Event) *correlate.State {
	tb.Helper()
	s := correlate.NewState()
	s.Add(Facts(tb, events...)...)
	return s
}
