package correlate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// propertySeeds are fixed: a failure names its seed and permutation, and
// replays.
var propertySeeds = []uint64{1, 2, 3, 5, 8, 13, 21, 34}

// TestOrderIndependence is the correlator's central property: the same
// set of events, in any order, with any duplicates (re-extracted, or
// re-parsed from their canonical JSON as a redelivery would be), spread
// over several States merged in any order, gives byte-identical records.
func TestOrderIndependence(t *testing.T) {
	seeds, size, perms := propertySeeds, 3000, 5
	if testing.Short() {
		seeds, size, perms = seeds[:3], 1200, 3
	}
	cover := coverage{}
	for _, seed := range seeds {
		events := history(seed, size)
		base := stateOf(t, events)
		want := encodeRecords(t, base.Records())
		cover.add(base.Records())
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			for p := range perms {
				rng := rand.New(rand.NewPCG(seed, uint64(p)+1))
				got := encodeRecords(t, shuffled(t, rng, events).Records())
				if !bytes.Equal(got, want) {
					t.Fatalf("permutation %d: records differ from in-order ones:\n%s", p, firstDiff(t, got, want))
				}
			}
		})
	}
	cover.check(t)
}

// shuffled builds the State of events in a random order with random
// duplicates, split over 1 to 4 States that are merged in a random order;
// records are also derived half-way, as the live correlator does.
func shuffled(t *testing.T, rng *rand.Rand, events []*ce.Event) *State {
	t.Helper()
	order := make([]*ce.Event, 0, len(events)*13/10)
	order = append(order, events...)
	for range rng.IntN(len(events)/3 + 1) {
		e := events[rng.IntN(len(events))]
		if rng.IntN(2) == 0 {
			// A redelivery: the same event through the bus's canonical form.
			p, err := ce.ParseJSON(e.MarshalCanonical())
			if err != nil {
				t.Fatal(err)
			}
			e = p
		}
		order = append(order, e)
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	parts := make([]*State, 1+rng.IntN(4))
	for i := range parts {
		parts[i] = NewState()
	}
	for i, e := range order {
		fs, err := Extract(e)
		if err != nil {
			t.Fatalf("%s %s: %v", e.Type, e.ID, err)
		}
		parts[rng.IntN(len(parts))].Add(fs...)
		if i == len(order)/2 {
			for _, s := range parts {
				s.Records() // derivation does not change the State
			}
		}
	}
	rng.Shuffle(len(parts), func(i, j int) { parts[i], parts[j] = parts[j], parts[i] })
	for _, s := range parts[1:] {
		parts[0].Merge(s)
	}
	return parts[0]
}

func stateOf(t testing.TB, events []*ce.Event) *State {
	t.Helper()
	s := NewState()
	for _, e := range events {
		fs, err := Extract(e)
		if err != nil {
			t.Fatalf("%s %s: %v", e.Type, e.ID, err)
		}
		s.Add(fs...)
	}
	return s
}

func encodeRecords(t testing.TB, rs []Record) []byte {
	t.Helper()
	b, err := json.Marshal(rs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDiff names the first record that differs.
func firstDiff(t *testing.T, got, want []byte) string {
	var g, w []json.RawMessage
	if json.Unmarshal(got, &g) != nil || json.Unmarshal(want, &w) != nil {
		return "(undecodable)"
	}
	for i := range min(len(g), len(w)) {
		if !bytes.Equal(g[i], w[i]) {
			return fmt.Sprintf("record %d:\n got %s\nwant %s", i, g[i], w[i])
		}
	}
	return fmt.Sprintf("%d records, want %d", len(g), len(w))
}

// TestRecordMatchesRecords checks that deriving one record by its ID gives
// what Records gives, and that a State holding only the entries of the
// record's reachable keys derives it identically: what the KV-backed
// correlator will rely on.
func TestRecordMatchesRecords(t *testing.T) {
	seeds := propertySeeds[:3]
	if testing.Short() {
		seeds = seeds[:1]
	}
	for _, seed := range seeds {
		s := stateOf(t, history(seed, 1500))
		for i, r := range s.Records() {
			want := encodeRecords(t, []Record{r})
			one, ok := s.Record(r.ID)
			if !ok {
				t.Fatalf("seed %d: Record(%q) not found", seed, r.ID)
			}
			if one.Hash() != r.Hash() || !bytes.Equal(one.Canonical(), want[1:len(want)-1]) {
				t.Fatalf("seed %d: %q: Hash or Canonical differ from json.Marshal", seed, r.ID)
			}
			if got := encodeRecords(t, []Record{one}); !bytes.Equal(got, want) {
				t.Fatalf("seed %d: Record(%q) differs from Records():\n got %s\nwant %s", seed, r.ID, got, want)
			}
			if i%3 != 0 {
				continue
			}
			partial := NewState()
			for _, k := range s.Reachable(r.ID) {
				partial.Add(s.Entry(k).Facts...)
			}
			got, ok := partial.Record(r.ID)
			if !ok {
				t.Fatalf("seed %d: %q not derivable from its reachable entries", seed, r.ID)
			}
			if g := encodeRecords(t, []Record{got}); !bytes.Equal(g, want) {
				t.Fatalf("seed %d: %q from its reachable entries differs:\n got %s\nwant %s", seed, r.ID, g, want)
			}
		}
		if _, ok := s.Record("github.com/acme/payments@0000000000000000000000000000000000000000"); ok {
			t.Error("Record of an unknown commit found")
		}
	}
}

// TestStateRoundTrip checks that a State survives its JSON form, and that
// a tampered fact is refused.
func TestStateRoundTrip(t *testing.T) {
	s := stateOf(t, history(7, 800))
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Len() != s.Len() {
		t.Fatalf("%d facts back, want %d", back.Len(), s.Len())
	}
	if !bytes.Equal(encodeRecords(t, back.Records()), encodeRecords(t, s.Records())) {
		t.Fatal("records differ after a JSON round trip")
	}
	b2, _ := json.Marshal(&back)
	if !bytes.Equal(b, b2) {
		t.Fatal("State JSON is not canonical")
	}
	tampered := bytes.Replace(b, []byte(`"decision":"approved"`), []byte(`"decision":"commented"`), 1)
	if err := json.Unmarshal(tampered, new(State)); err == nil {
		t.Fatal("a tampered fact was accepted")
	}
	// Entries merge as sets.
	for _, k := range s.Keys()[:50] {
		e := s.Entry(k)
		half := Entry{Key: k, Facts: e.Facts[:len(e.Facts)/2]}
		rest := Entry{Key: k, Facts: e.Facts[len(e.Facts)/3:]}
		if m := rest.Merge(half); !slices.EqualFunc(m.Facts, e.Facts, func(a, b Fact) bool { return a.ID == b.ID }) {
			t.Fatalf("%s: entry merge is not the union", k)
		}
	}
}

// coverage checks that the generated histories exercise every rule.
type coverage map[string]int

func (c coverage) add(rs []Record) {
	ticketUse := map[string]int{}
	for _, r := range rs {
		switch {
		case r.DirectPush:
			c["direct push"]++
		case r.Unmatched:
			c["unmatched deployment"]++
		}
		if pr := r.PullRequest; pr != nil {
			c["merge method "+pr.Method]++
			for _, rv := range pr.Reviews {
				if rv.Stale && rv.Decision == "approved" {
					c["stale approval"]++
				}
				if rv.Dismissed {
					c["dismissed approval"]++
				}
				if rv.Superseded && rv.Decision == "approved" {
					c["superseded approval"]++
				}
				if pr.Author != nil && rv.Reviewer.Login == pr.Author.Login && rv.Decision == "approved" {
					c["self-approval"]++
				}
			}
			if len(pr.Heads) > 2 {
				c["several pushes"]++
			}
		}
		failedEarly, passedOnMerge := false, false
		for _, tr := range r.Tests {
			if tr.Outcome == "failed" && tr.Commit != r.Commit {
				failedEarly = true
			}
			if tr.Outcome == "passed" && tr.Commit == r.Commit {
				passedOnMerge = true
			}
		}
		if failedEarly && passedOnMerge {
			c["tests failing then passing"]++
		}
		envs := map[string]bool{}
		for _, d := range r.Deployments {
			envs[d.Environment] = true
			if slices.Contains(d.MatchedBy, "artifact") && !slices.Contains(d.MatchedBy, "commit") {
				c["deployment matched by artifact only"]++
			}
		}
		if envs["staging"] && envs["production"] {
			c["deployed to two environments"]++
		}
		for _, tk := range r.Tickets {
			if slices.Equal(tk.FoundIn, []string{"branch"}) {
				c["ticket only in branch"]++
			}
			if len(tk.Approvals) > 0 && len(tk.Rejections) > 0 {
				c["ticket rejected then approved"]++
			}
			if !r.Unmatched {
				ticketUse[tk.Key]++
			}
		}
		if len(r.Scans) > 0 {
			c["scans"]++
		}
		if len(r.Exceptions) > 0 {
			c["exception"]++
		}
	}
	for _, n := range ticketUse {
		if n > 1 {
			c["ticket of two changes"]++
		}
	}
}

func (c coverage) check(t *testing.T) {
	for _, want := range []string{
		"direct push", "unmatched deployment", "merge method merge", "merge method squash", "merge method rebase",
		"stale approval", "dismissed approval", "superseded approval", "self-approval", "several pushes", "tests failing then passing",
		"deployment matched by artifact only", "deployed to two environments", "ticket only in branch",
		"ticket rejected then approved", "scans", "exception", "ticket of two changes",
	} {
		if c[want] == 0 {
			t.Errorf("the generated histories have no %s", want)
		}
	}
}
