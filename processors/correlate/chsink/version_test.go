package chsink_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
)

func ref(i int) correlate.EventRef { return correlate.EventRef{Source: "/s", ID: fmt.Sprint(i)} }

func refs(ids ...int) []correlate.EventRef {
	out := []correlate.EventRef{}
	for _, i := range ids {
		out = append(out, ref(i))
	}
	return out
}

func version(r correlate.Record) uint64 { return chsink.Version(r, r.Hash()) }

func TestEventCountFindsEveryList(t *testing.T) {
	r := correlate.Record{
		ID: "r@1",
		PullRequest: &correlate.PullRequest{
			Events:  refs(1, 2),
			Heads:   []correlate.Head{{Events: refs(2, 3)}},
			Reviews: []correlate.Review{{Events: refs(4)}},
		},
		Pushes:      []correlate.Push{{Events: refs(5)}},
		Tickets:     []correlate.Ticket{{History: []correlate.StatusChange{{Events: refs(6)}}, Approvals: []correlate.Approval{{Events: refs(7)}}, Rejections: []correlate.Approval{{Events: refs(8)}}}},
		Runs:        []correlate.Run{{Events: refs(9)}},
		Artifacts:   []correlate.Artifact{{Events: refs(10)}},
		Tests:       []correlate.Test{{Events: refs(11)}},
		Scans:       []correlate.Scan{{Events: refs(12)}},
		Deployments: []correlate.Deployment{{Events: refs(13, 1)}},
		Exceptions:  []correlate.Exception{{Events: refs(14)}},
	}
	if n := chsink.EventCount(r); n != 14 {
		t.Fatalf("EventCount = %d, want 14 (each event once)", n)
	}
}

func TestVersionRanksClassFirst(t *testing.T) {
	many := refs(1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	unmatched := correlate.Record{ID: "unmatched:p/s/x", Unmatched: true, Deployments: []correlate.Deployment{{Events: many, StartedAt: at}}}
	push := correlate.Record{ID: "r@1", DirectPush: true, Pushes: []correlate.Push{{Events: many}}}
	smallPush := correlate.Record{ID: "r@1", DirectPush: true, Pushes: []correlate.Push{{Events: refs(1)}}}
	pr := correlate.Record{ID: "r@1", PullRequest: &correlate.PullRequest{Number: 1, Events: refs(1)}}
	for _, tc := range []struct {
		name      string
		low, high uint64
	}{
		{"a small push above a large unmatched record", version(unmatched), version(smallPush)},
		{"a small pull request above a large push of the same id", version(push), version(pr)},
		{"more events above fewer, same class", version(smallPush), version(push)},
		{"an unmatched record's tombstone above its versions", version(unmatched), chsink.Tombstone(chsink.ClassUnmatched)},
		{"a push above an unmatched record's tombstone", chsink.Tombstone(chsink.ClassUnmatched), version(smallPush)},
		{"a push's tombstone above its versions", version(push), chsink.Tombstone(chsink.ClassPush)},
		{"a pull request above a push's tombstone", chsink.Tombstone(chsink.ClassPush), version(pr)},
	} {
		if tc.low >= tc.high {
			t.Errorf("%s: %#x >= %#x", tc.name, tc.low, tc.high)
		}
	}
	if c := chsink.ClassOfVersion(version(pr)); c != chsink.ClassMerge {
		t.Errorf("class of a pull request's version = %d", c)
	}
}

// TestVersionFollowsTheEvidence checks, on the correlator's scenarios in
// several arrival orders, what the versions rely on: as events arrive, a
// record that changes gets a higher version (an unchanged one the same),
// a deployment's row never goes to a lower version, and a record that
// disappears does not come back.
func TestVersionFollowsTheEvidence(t *testing.T) {
	disappeared := 0
	for _, name := range scenarioNames(t) {
		t.Run(name, func(t *testing.T) {
			events := scenarioFacts(t, name)
			for oi, order := range orders(len(events)) {
				h := history(permute(events, order))
				newest := map[string]correlate.Record{}
				retired := map[string]bool{}
				deps := map[string]uint64{} // deployment -> version of the row written last
				for step, rs := range h {
					now := byID(rs)
					for id, r := range now {
						if retired[id] {
							t.Errorf("order %d, step %d: %s came back after it disappeared", oi, step, id)
						}
						if old, ok := newest[id]; ok {
							vo, vn := version(old), version(r)
							same := bytes.Equal(old.Canonical(), r.Canonical())
							if same && vo != vn || !same && vo >= vn {
								t.Errorf("order %d, step %d: %s changed=%v, version %#x -> %#x", oi, step, id, !same, vo, vn)
							}
						}
						newest[id] = r
						for _, d := range r.Deployments {
							k := d.Environment + "/" + d.Service + "/" + chsink.DeploymentKey(d)
							if v := version(r); v < deps[k] {
								t.Errorf("order %d, step %d: deployment %s went from version %#x to %#x (%s)", oi, step, k, deps[k], v, id)
							} else {
								deps[k] = v
							}
						}
					}
					for id := range newest {
						if _, ok := now[id]; !ok && !retired[id] {
							retired[id] = true
							disappeared++
						}
					}
				}
			}
		})
	}
	if disappeared == 0 {
		t.Error("no record disappeared in any scenario: the test no longer covers retirement")
	}
}
