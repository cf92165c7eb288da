package correlate

import (
	"bytes"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// TestRollback follows testdata/rollback: pull requests #70 (A, merged as
// 70ffee…) and #71 (B, 71ffee…), each built by the pipeline and deployed
// (payments-production-170, -171); then two deployments by runs on main's
// head whose events name that head, B's merge commit, as evidence emit
// deploy does: a rollback to A's build (-172) and a build of a branch no
// pull request holds (-173). What a deployment deployed is its artifact,
// so the rollback is A's deployment, not B's; the branch's build, from a
// commit in no record, stays with the commit it names (B, where CM-6
// finds no build of it).
//
// It is not one of testdata/scenarios: in an arrival order where the
// rollback comes before A's merge or build, it is B's until they arrive
// and then moves to A, so B's record loses a deployment, which the
// ClickHouse versions do not follow (chsink's known limits).
func TestRollback(t *testing.T) {
	const (
		a = "github.com/acme/payments@70ffee00112233445566778899aabbccddeeff70"
		b = "github.com/acme/payments@71ffee00112233445566778899aabbccddeeff71"
		// A's build, deployed by -170 (the commit it names is mA) once
		// A's merge is not known.
		unmatchedA = "unmatched:production/payments/sha256:70aa0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab"
	)
	events := readEvents(t, "testdata/rollback/events.json")
	final := stateOf(t, events).Records()
	golden(t, "testdata/rollback/record.golden.json", final)
	rev := slices.Clone(events)
	slices.Reverse(rev)
	rev = append(rev, events...)
	if !bytes.Equal(encodeRecords(t, stateOf(t, rev).Records()), encodeRecords(t, final)) {
		t.Error("the events in reverse order, each twice, give other records")
	}
	// In every arrival order, the records a deployment moves out of are
	// among those its evidence affects (the stage re-derives them).
	rng := rand.New(rand.NewPCG(70, 71))
	for i := range 20 {
		order := slices.Clone(events)
		if i == 0 {
			slices.Reverse(order)
		} else {
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
		}
		checkAffected(t, order)
	}
	for _, tc := range []struct {
		name    string
		without string // an event left out
		want    map[string][]string
	}{
		{"every event", "", map[string][]string{
			a: {"payments-production-170 artifact,commit", "payments-production-172 artifact"},
			b: {"payments-production-171 artifact,commit", "payments-production-173 commit"},
		}},
		// A's build is known but not the merge of its commit: the build
		// leads to no change, and the commit each deployment names
		// decides.
		{"before A's merge", "r70-0001/change.merged", map[string][]string{
			unmatchedA: {"payments-production-170 "},
			b:          {"payments-production-171 artifact,commit", "payments-production-172 commit", "payments-production-173 commit"},
		}},
		{"before A's build", "70000001-image", map[string][]string{
			a: {"payments-production-170 commit"},
			b: {"payments-production-171 artifact,commit", "payments-production-172 commit", "payments-production-173 commit"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			es := slices.DeleteFunc(slices.Clone(events), func(e *ce.Event) bool { return e.ID == tc.without })
			if tc.without != "" && len(es) != len(events)-1 {
				t.Fatalf("no event %s in the fixture", tc.without)
			}
			got := map[string][]string{}
			for _, r := range stateOf(t, es).Records() {
				var ds []string
				for _, d := range r.Deployments {
					ds = append(ds, d.DeploymentID+" "+strings.Join(d.MatchedBy, ","))
				}
				got[r.ID] = ds
			}
			if len(got) != len(tc.want) {
				t.Errorf("records %q, want %q", got, tc.want)
			}
			for id, w := range tc.want {
				if !slices.Equal(got[id], w) {
					t.Errorf("%s: deployments %q, want %q", id, got[id], w)
				}
			}
		})
	}
}
