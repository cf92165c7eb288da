package correlate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// The package's test helpers, for the stage's tests (package
// correlate_test, which an import cycle through internal/testenv and
// internal/store would forbid to be internal).
var (
	// GenHistory is the random history generator of gen_test.go.
	GenHistory = history
	// ReadEvents reads a scenario's events.json.
	ReadEvents = readEvents
	// WithExceptions is withExceptions, for the stage's tests.
	WithExceptions = withExceptions
)

// TestAffected checks Affected against its definition: for random
// histories (in order, and shuffled with duplicates, since a link may
// arrive before or after what it links), after adding each event, every
// record whose derivation changed (created, altered or gone) is in the
// affected set of the event's facts. It also checks that the walk over
// entries loaded on demand (what the KV-backed stage runs) gives the set
// the whole State gives.
func TestAffected(t *testing.T) {
	seeds, size := []uint64{1, 2, 3}, 450
	if testing.Short() {
		seeds, size = seeds[:1], 300
	}
	for _, seed := range seeds {
		events := withExceptions(history(seed, size), seed)
		rng := rand.New(rand.NewPCG(seed, 99))
		shuffled := slices.Clone(events)
		for range len(events) / 10 {
			shuffled = append(shuffled, events[rng.IntN(len(events))])
		}
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		for name, order := range map[string][]*ce.Event{"in-order": events, "shuffled": shuffled} {
			t.Run(fmt.Sprintf("seed=%d/%s", seed, name), func(t *testing.T) {
				checkAffected(t, order)
			})
		}
	}
}

func checkAffected(t *testing.T, events []*ce.Event) {
	s := NewState()
	before := recordMap(t, s)
	total, changedTotal := 0, 0
	for i, e := range events {
		fs, err := Extract(e)
		if err != nil {
			t.Fatal(err)
		}
		s.Add(fs...)
		after := recordMap(t, s)
		affected := s.Affected(fs)
		in := map[string]bool{}
		for _, id := range affected {
			in[id] = true
		}
		for id, b := range after {
			if !bytes.Equal(before[id], b) && !in[id] {
				t.Fatalf("event %d (%s %s): record %s changed and is not in the affected set %v", i, e.Type, e.ID, id, affected)
			}
			if !bytes.Equal(before[id], b) {
				changedTotal++
			}
		}
		for id := range before {
			if _, ok := after[id]; !ok && !in[id] {
				t.Fatalf("event %d (%s %s): record %s is gone and is not in the affected set %v", i, e.Type, e.ID, id, affected)
			}
		}
		total += len(affected)
		if i%7 == 0 {
			// On demand from the entries: the same set.
			l := newLazy(func(_ context.Context, keys []Key) ([]Entry, error) {
				out := make([]Entry, len(keys))
				for j, k := range keys {
					out[j] = s.Entry(k)
				}
				return out, nil
			})
			r, err := l.affected(context.Background(), fs)
			if err != nil {
				t.Fatal(err)
			}
			if whole := s.affected(fs, false); !slices.Equal(r.ids, whole.ids) || !slices.Equal(r.attrs, whole.attrs) {
				t.Fatalf("event %d: on demand %v %v, from the whole state %v %v", i, r.ids, r.attrs, whole.ids, whole.attrs)
			}
			if len(r.seen) > 0 && len(l.loaded) >= len(s.Keys()) && len(s.Keys()) > 50 {
				t.Fatalf("event %d: the walk loaded every key (%d)", i, len(l.loaded))
			}
		}
		before = after
	}
	t.Logf("%d events: %d record changes, %d affected ids (%.1f per event)", len(events), changedTotal, total, float64(total)/float64(len(events)))
}

func recordMap(t *testing.T, s *State) map[string][]byte {
	out := map[string][]byte{}
	for _, r := range s.Records() {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out[r.ID] = b
	}
	return out
}

// withExceptions inserts exception.granted events of every scope (commit,
// ticket, service, environment, repository, and a change) at random
// places of a history, naming what its events name: the generator only
// scopes exceptions to a change.
func withExceptions(events []*ce.Event, seed uint64) []*ce.Event {
	rng := rand.New(rand.NewPCG(seed, 7))
	st := NewState()
	for _, e := range events {
		fs, err := Extract(e)
		if err != nil {
			panic(err)
		}
		st.Add(fs...)
	}
	recs := st.Records()
	out := slices.Clone(events)
	at := time.Date(2025, 3, 10, 8, 0, 0, 0, time.UTC)
	for i := range 12 {
		r := recs[rng.IntN(len(recs))]
		scope := map[string]any{}
		switch i % 6 {
		case 0:
			scope["repository"], scope["commit"] = r.Repository, r.Commit
		case 1:
			if len(r.Tickets) == 0 {
				continue
			}
			scope["ticket_key"] = r.Tickets[0].Key
		case 2:
			if len(r.Deployments) == 0 {
				continue
			}
			scope["service"] = r.Deployments[0].Service
		case 3:
			if len(r.Deployments) == 0 {
				continue
			}
			scope["environment"] = r.Deployments[0].Environment
		case 4:
			scope["repository"] = r.Repository
		case 5:
			if r.PullRequest == nil {
				continue
			}
			scope["repository"], scope["change"] = r.Repository, map[string]any{"number": r.PullRequest.Number}
		}
		if r.Repository == "" {
			continue
		}
		granted := at.Add(time.Duration(i) * time.Hour)
		data, _ := json.Marshal(map[string]any{
			"id": fmt.Sprintf("EXC-T%d", i), "control": "CM-4", "scope": scope, "reason": "test",
			"approver":   map[string]any{"login": "carol.jones", "type": "user"},
			"granted_at": granted.Format(time.RFC3339), "expires_at": granted.Add(48 * time.Hour).Format(time.RFC3339),
		})
		e := &ce.Event{ID: fmt.Sprintf("exception-t%d", i), Source: "https://evidence.acme.example/exceptions",
			Type: TypeExceptionGranted, Time: granted, DataContentType: "application/json", Data: data}
		pos := rng.IntN(len(out) + 1)
		out = slices.Insert(out, pos, e)
	}
	return out
}

// BatchedReads is how many multi_last requests kv sent.
func BatchedReads(kv *KVState) int64 { return kv.multi.reqs.Load() }

// NoBatchedReads makes kv read every key alone, as against a server
// without multi_last.
func NoBatchedReads(kv *KVState) { kv.multi.off.Store(true); kv.recordsMulti.off.Store(true) }
