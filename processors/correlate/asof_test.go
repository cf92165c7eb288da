package correlate_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
)

// gateFacts are the facts of the gate's compliant change and of its
// production deployment (2025-03-04 07:02), the deployment's apart.
func gateFacts(t *testing.T) (rest, deploy []correlate.Fact) {
	t.Helper()
	events := correlatetest.Events(t, "../../internal/cli/testdata/gate/compliant.events.json", 0)
	d, err := ce.ParseJSON([]byte(`{"specversion":"1.0","id":"deploy-118","source":"/ci/github-actions/acme/payments","type":"dev.evidencepipeline.deployment.started.v1",
		"time":"2025-03-04T07:02:00Z","datacontenttype":"application/json","data":{"deployment_id":"payments-production-118","environment":"production",
		"service":"payments","repository":"github.com/acme/payments","commit":"c0ffee1234567890abcdef1234567890abcdef12","run_id":"9876543299",
		"system":"github-actions","deployer":{"login":"github-actions[bot]","type":"service"},"ticket_keys":["PAY-123"],"started_at":"2025-03-04T07:02:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	return correlatetest.Facts(t, events...), correlatetest.Facts(t, d)
}

func withArrival(fs []correlate.Fact, t time.Time) []correlate.Fact {
	out := slices.Clone(fs)
	for i := range out {
		out[i].Arrived = t
	}
	return out
}

const gateChange = "github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"

// TestArrivalNotInID: the arrival is not part of what a fact asserts: the
// same fact arrived at two times has one ID, and verifies.
func TestArrivalNotInID(t *testing.T) {
	_, deploy := gateFacts(t)
	f := deploy[0]
	g := f
	g.Arrived = time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)
	if f.ComputeID() != g.ComputeID() || g.Verify() != nil || string(f.Canonical()) != string(g.Canonical()) {
		t.Errorf("the arrival changes the fact's ID or canonical form")
	}
}

// TestEarliestArrival: where two copies of a fact meet (an entry's merge,
// a State), the earliest arrival is kept, whatever the order; an unknown
// arrival (zero) counts as the earliest.
func TestEarliestArrival(t *testing.T) {
	_, deploy := gateFacts(t)
	t1 := time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	a, b := withArrival(deploy, t1), withArrival(deploy, t2)
	k := deploy[0].Keys[0]
	for _, tc := range []struct {
		name string
		x, y []correlate.Fact
		want time.Time
	}{{"early first", a, b, t1}, {"late first", b, a, t1}, {"unknown", b, deploy, time.Time{}}} {
		e := correlate.Entry{Key: k, Facts: tc.x}.Merge(correlate.Entry{Key: k, Facts: tc.y})
		if len(e.Facts) != len(deploy) || !e.Facts[0].Arrived.Equal(tc.want) {
			t.Errorf("%s: entry merge kept %v, want %v", tc.name, e.Facts[0].Arrived, tc.want)
		}
		st := correlate.NewState()
		st.Add(tc.x...)
		st.Add(tc.y...)
		if got := st.Facts()[0].Arrived; st.Len() != len(deploy) || !got.Equal(tc.want) {
			t.Errorf("%s: state kept %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDeploymentAsOf: a record as it stood at an arrival cutoff. The
// deployment arrives at T0, the merge and the rest at T0+1m. At the cutoff
// T0+30s the deployment matched no change (its record is the unmatched
// one); at T0+2m it is the pull request's, the full record. Over the KV
// bucket (real NATS) and over a State, the same; and the KV bucket keeps
// the earliest arrival when a later copy is merged again.
func TestDeploymentAsOf(t *testing.T) {
	ctx := context.Background()
	rest, deploy := gateFacts(t)
	t0 := time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)
	facts := append(withArrival(deploy, t0), withArrival(rest, t0.Add(time.Minute))...)
	st := correlate.NewState()
	st.Add(facts...)
	env := testenv.NATS(t)
	kv, err := correlate.NewKVState(ctx, env.JS, correlate.KVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Merge(ctx, facts); err != nil {
		t.Fatal(err)
	}
	// A replay: the same events again, later; nothing changes.
	if changed, err := kv.Merge(ctx, withArrival(append(deploy, rest...), t0.Add(time.Hour))); err != nil || len(changed) != 0 {
		t.Fatalf("merging later copies changed %v (%v), want nothing", changed, err)
	}
	for name, r := range map[string]correlate.ArrivalReader{"state": correlate.StateReader{State: st}, "kv": correlate.KVReader{KV: kv}} {
		full, arr, ok, err := r.ChangeArrivals(ctx, gateChange)
		if err != nil || !ok || len(full.Deployments) != 1 {
			t.Fatalf("%s: ChangeArrivals: %v %v", name, ok, err)
		}
		d := full.Deployments[0]
		if a := arr.First(d.Events); !a.Equal(t0) {
			t.Errorf("%s: the deployment arrived at %s, want %s", name, a, t0)
		}
		if late := arr.After(t0.Add(30 * time.Second)); len(late) != len(full.EventRefs())-1 {
			t.Errorf("%s: %d events after T0+30s, want every one but the deployment's (%d)", name, len(late), len(full.EventRefs())-1)
		}
		early, ed, ok, err := r.DeploymentAsOf(ctx, gateChange, d, t0.Add(30*time.Second))
		if err != nil || !ok || !early.Unmatched || len(early.Deployments) != 1 || ed.DeploymentID != d.DeploymentID {
			t.Errorf("%s: as of T0+30s: %s unmatched=%v (%v %v), want the unmatched deployment's record", name, early.ID, early.Unmatched, ok, err)
		}
		later, _, ok, err := r.DeploymentAsOf(ctx, gateChange, d, t0.Add(2*time.Minute))
		if err != nil || !ok || later.Hash() != full.Hash() {
			t.Errorf("%s: as of T0+2m: %s (%v %v), want the full record", name, later.ID, ok, err)
		}
		if _, _, ok, err := r.DeploymentAsOf(ctx, gateChange, d, t0.Add(-time.Second)); err != nil || ok {
			t.Errorf("%s: as of before the deployment arrived: found %v (%v), want none", name, ok, err)
		}
	} // An earlier copy (a batch redelivered to another replica after a
	// later one was merged): the entries take its arrival.
	if changed, err := kv.Merge(ctx, withArrival(deploy, t0.Add(-time.Minute))); err != nil || len(changed) == 0 {
		t.Fatalf("merging an earlier copy changed %v (%v), want its entries", changed, err)
	}
	full, arr, _, err := correlate.KVReader{KV: kv}.ChangeArrivals(ctx, gateChange)
	if err != nil {
		t.Fatal(err)
	}
	if a := arr.First(full.Deployments[0].Events); !a.Equal(t0.Add(-time.Minute)) {
		t.Errorf("after an earlier copy the deployment arrived at %s, want %s", a, t0.Add(-time.Minute))
	}
}
