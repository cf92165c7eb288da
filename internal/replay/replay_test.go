package replay_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/replay"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
	"github.com/evidencepipeline/evidence/processors/evaluate"
	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	fixture   = "../cli/testdata/gate/compliant.events.json"
	changeID  = "github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"
	laterID   = "github.com/acme/ledger@" + "00000000000000000000000000000000000000b2"
	deployed  = "2025-03-03T17:00:00Z"
	laterTime = "2025-05-02T10:00:00Z"
)

// records derives the scenario's change records from real events: the
// compliant pull request of the gate fixture, deployed to production by
// the pipeline on 2025-03-03, and a second change deployed in May.
func records(t *testing.T) map[string]correlate.Record {
	t.Helper()
	events := correlatetest.Events(t, fixture, 0)
	ev := func(id, typ, at, data string) *ce.Event {
		tm, _ := time.Parse(time.RFC3339, at)
		return &ce.Event{ID: id, Source: "https://github.com/acme", Type: typ, Time: tm, Data: []byte(data)}
	}
	events = append(events,
		ev("deploy-1", "dev.evidencepipeline.deployment.finished.v1", deployed, `{"deployment_id":"d-1","environment":"production","service":"payments",`+
			`"digest":"sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899","repository":"github.com/acme/payments",`+
			`"commit":"c0ffee1234567890abcdef1234567890abcdef12","run_id":"9876543211","deployer":{"login":"github-actions[bot]","type":"service"},`+
			`"started_at":"2025-03-03T16:55:00Z","finished_at":"2025-03-03T17:00:00Z","outcome":"success"}`),
		ev("merge-2", "dev.evidencepipeline.change.merged.v1", "2025-05-02T09:00:00Z", `{"repository":"github.com/acme/ledger","change":{"number":7},`+
			`"target_branch":"main","head_commit":"00000000000000000000000000000000000000b1","merge_commit":"00000000000000000000000000000000000000b2",`+
			`"merged_by":{"login":"bob"},"merged_at":"2025-05-02T09:00:00Z"}`),
		ev("deploy-2", "dev.evidencepipeline.deployment.finished.v1", laterTime, `{"deployment_id":"d-2","environment":"production","service":"ledger",`+
			`"repository":"github.com/acme/ledger","commit":"00000000000000000000000000000000000000b2","deployer":{"login":"github-actions[bot]","type":"service"},`+
			`"started_at":"2025-05-02T09:55:00Z","finished_at":"2025-05-02T10:00:00Z","outcome":"success"}`),
	)
	st := correlatetest.State(t, events...)
	out := map[string]correlate.Record{}
	for _, r := range st.Records() {
		out[r.ID] = r
	}
	for _, id := range []string{changeID, laterID} {
		if _, ok := out[id]; !ok {
			t.Fatalf("no record %s among %d", id, len(out))
		}
	}
	return out
}

// record stores the records and, for each, the results the engine of
// policies dir v1 gives as of at: what evidenced would have recorded.
func record(t *testing.T, st *store.Store, recs map[string]correlate.Record, at map[string]time.Time) *evaluate.Engine {
	t.Helper()
	ctx := context.Background()
	v1, err := evaluate.LoadDir(ctx, "testdata/v1")
	if err != nil {
		t.Fatal(err)
	}
	var changes []store.ChangeRow
	var results []store.ControlResultRow
	for id, r := range recs {
		row, _, err := chsink.Rows(r, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		changes = append(changes, row)
		res, err := v1.Evaluate(ctx, r, at[id], evaluate.Params{})
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range res {
			results = append(results, store.ControlResultRow{ChangeID: id, ControlID: x.Control.ID, ControlTitle: x.Control.Title,
				Severity: x.Control.Severity, Status: string(x.Status), Reasons: x.Reasons, Evidence: x.Evidence,
				Repository: r.Repository, RecordHash: x.RecordHash, BundleHash: x.BundleHash, Trigger: evaluate.TriggerUpdate,
				EvaluatedNs: x.EvaluatedAt.UnixNano()})
		}
	}
	if err := st.InsertChanges(ctx, changes); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertControlResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	return v1
}

func counts(t *testing.T, st *store.Store) string {
	t.Helper()
	var out string
	for _, table := range []string{"events", "changes", "deployments", "control_results", "deployment_verdicts"} {
		var n uint64
		if err := st.Conn().QueryRow(context.Background(), "SELECT count() FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out += fmt.Sprintf("%s=%d ", table, n)
	}
	return out
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestReplayReportsWhatTheNewPoliciesChange: history recorded under
// policies v1 (one approving review) replayed under v2 (two, and a new
// control): the March change's CUST-1 goes pass -> fail, CUST-2 is new,
// every built-in control agrees, the May change is outside the period,
// and nothing is written.
func TestReplayReportsWhatTheNewPoliciesChange(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	recs := records(t)
	evaluatedAt := mustTime(deployed).Add(2 * time.Hour)
	v1 := record(t, st, recs, map[string]time.Time{changeID: evaluatedAt, laterID: mustTime(laterTime).Add(time.Hour)})
	before := counts(t, st)

	custom, _, err := policies.ReadDir("testdata/v2")
	if err != nil {
		t.Fatal(err)
	}
	v2, err := policies.Load(ctx, custom)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.Run(ctx, st, v2, policies.Params{}, mustTime("2025-03-01T00:00:00Z"), mustTime("2025-04-01T00:00:00Z"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if after := counts(t, st); after != before {
		t.Fatalf("replay wrote: rows before %s, after %s", before, after)
	}
	if rep.Changes != 1 || rep.Differing != 1 || rep.ControlsDiffering != 1 {
		t.Fatalf("changes %d, differing %d, controls differing %d; want 1, 1, 1: %+v", rep.Changes, rep.Differing, rep.ControlsDiffering, rep)
	}
	if rep.BundleHash != v2.Hash() || len(rep.RecordedBundles) != 1 || rep.RecordedBundles[0] != v1.BundleHash() || v1.BundleHash() == v2.Hash() {
		t.Fatalf("bundles: replayed %s recorded %v; want %s and [%s]", rep.BundleHash, rep.RecordedBundles, v2.Hash(), v1.BundleHash())
	}
	if len(rep.NewControls) != 1 || rep.NewControls[0] != "CUST-2" || len(rep.RemovedControls) != 0 {
		t.Fatalf("new %v removed %v; want [CUST-2] []", rep.NewControls, rep.RemovedControls)
	}
	d := rep.Diffs[0]
	if d.Change != changeID || !d.AsOf.Equal(evaluatedAt) || d.RecordChanged || d.RecordHash != recs[changeID].Hash() {
		t.Fatalf("diff of %s as of %s (record changed %v, hash %s); want %s as of %s, unchanged", d.Change, d.AsOf, d.RecordChanged, d.RecordHash, changeID, evaluatedAt)
	}
	if len(d.Controls) != 2 {
		t.Fatalf("%d controls differ, want CUST-1 and CUST-2: %+v", len(d.Controls), d.Controls)
	}
	c1, c2 := d.Controls[0], d.Controls[1]
	if c1.Control != "CUST-1" || c1.Recorded != policies.Pass || c1.Replayed != policies.Fail || c1.Reasons[0] != "1 approving reviews, 2 required" ||
		c1.RecordedReasons[0] != "1 approving reviews (1 required)" || c1.RecordedBundle != v1.BundleHash() {
		t.Fatalf("CUST-1: %+v", c1)
	}
	if c2.Control != "CUST-2" || c2.Recorded != "" || c2.Replayed != policies.Pass {
		t.Fatalf("CUST-2: %+v", c2)
	}

	// The same bundle as recorded finds no difference.
	same, err := policies.Load(ctx, mustRead(t, "testdata/v1"))
	if err != nil {
		t.Fatal(err)
	}
	rep, err = replay.Run(ctx, st, same, policies.Params{}, mustTime("2025-03-01T00:00:00Z"), mustTime("2025-06-01T00:00:00Z"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Changes != 2 || rep.Differing != 0 || len(rep.Diffs) != 0 || len(rep.NewControls) != 0 {
		t.Fatalf("replay under the recorded bundle: %+v", rep)
	}
	if _, err := replay.Run(ctx, st, same, policies.Params{}, mustTime("2025-03-01T00:00:00Z"), mustTime("2025-03-01T00:00:00Z"), time.Now()); err == nil {
		t.Fatal("an empty period was accepted")
	}
}

func mustRead(t *testing.T, dir string) map[string]string {
	t.Helper()
	p, _, err := policies.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
