package chsink_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
)

// The correlator's scenarios (processors/correlate/testdata/scenarios):
// events.json is a JSON array of CloudEvents in the order they arrive.
const scenarioDir = "../testdata/scenarios"

func scenarioNames(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(scenarioDir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatal("no scenarios")
	}
	return out
}

// scenarioFacts reads a scenario's events and extracts the facts of each,
// in arrival order (an event without a fact gives none).
func scenarioFacts(t *testing.T, name string) [][]correlate.Fact {
	t.Helper()
	events := correlatetest.Events(t, filepath.Join(scenarioDir, name, "events.json"), 0)
	out := make([][]correlate.Fact, 0, len(events))
	for _, e := range events {
		out = append(out, correlatetest.Facts(t, e))
	}
	return out
}

// recordsOf derives the records of the facts of the given events.
func recordsOf(events [][]correlate.Fact) []correlate.Record {
	s := correlate.NewState()
	for _, fs := range events {
		s.Add(fs...)
	}
	return s.Records()
}

// history is the records after each event of one arrival order:
// history[i] is what the correlator shows after events[:i+1].
func history(events [][]correlate.Fact) [][]correlate.Record {
	s := correlate.NewState()
	out := make([][]correlate.Record, 0, len(events))
	for _, fs := range events {
		s.Add(fs...)
		out = append(out, s.Records())
	}
	return out
}

// orders are arrival orders of n events: as given, reversed, and a few
// seeded shuffles.
func orders(n int) [][]int {
	given := make([]int, n)
	for i := range given {
		given[i] = i
	}
	rev := slices.Clone(given)
	slices.Reverse(rev)
	out := [][]int{given, rev}
	r := rand.New(rand.NewPCG(1, 2))
	for range 6 {
		p := slices.Clone(given)
		r.Shuffle(n, func(i, j int) { p[i], p[j] = p[j], p[i] })
		out = append(out, p)
	}
	return out
}

func permute[T any](xs []T, order []int) []T {
	out := make([]T, len(order))
	for i, j := range order {
		out[i] = xs[j]
	}
	return out
}

func byID(rs []correlate.Record) map[string]correlate.Record {
	m := make(map[string]correlate.Record, len(rs))
	for _, r := range rs {
		m[r.ID] = r
	}
	return m
}
