package store_test

import (
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// The population joins four tables on the 18.16 server: the newest
// version of each deployment and change (FINAL), the verdict at
// deployment, and the newest control result per control. Deployments
// outside the period or the environment are left out; one without a
// verdict is listed with an empty verdict.
func TestPopulationJoinsTheNewestVersions(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	at := func(day, hour int) int64 { return time.Date(2026, 3, day, hour, 0, 0, 0, time.UTC).UnixNano() }
	dep := func(env, key, change string, startNs, finishNs int64, version uint64, deployer string) store.DeploymentRow {
		return store.DeploymentRow{Environment: env, Service: "pay", DeploymentKey: key, DeploymentID: strings.TrimPrefix(key, "id:"),
			ChangeID: change, Commit: "c1", Deployer: deployer, Outcome: "success", StartedNs: startNs, FinishedNs: finishNs,
			Deployment: "{}", RecordHash: "h", Version: version, UpdatedAt: updated}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	a := changeRow("r@a", 1, "first title", "aaaaaaa1")
	a2 := changeRow("r@a", 2, "newer title", "aaaaaaa1")
	b := changeRow("r@b", 1, "b", "bbbbbbb1")
	must(st.InsertChanges(ctx, []store.ChangeRow{a, b}))
	must(st.InsertChanges(ctx, []store.ChangeRow{a2}))
	must(st.InsertDeployments(ctx, []store.DeploymentRow{
		dep("production", "id:1", "unmatched:x", at(2, 10), 0, 1, "old"),
		dep("production", "id:2", "r@b", 0, at(3, 9), 1, "bot"),   // no start: dated by its finish
		dep("production", "id:3", "r@a", at(1, 0)-1, 0, 1, "bot"), // before the period
		dep("staging", "id:4", "r@a", at(2, 12), 0, 1, "bot"),     // another environment
		dep("production", "id:5", "r@a", at(10, 0), 0, 1, "bot"),  // at the end: excluded
	}))
	// id:1 is later linked to r@a: its newest version counts.
	must(st.InsertDeployments(ctx, []store.DeploymentRow{dep("production", "id:1", "r@a", at(2, 10), 0, 5, "bot")}))
	must(st.InsertDeploymentVerdicts(ctx, []store.DeploymentVerdictRow{{Environment: "production", Service: "pay",
		DeploymentKey: "id:1", ChangeID: "r@a", DeployedNs: at(2, 10), Verdict: "fail", Failing: []string{"CM-2"},
		Results: "[]", RecordHash: "h1", BundleHash: "b1", DecidedAt: updated}}))
	must(st.InsertControlResults(ctx, []store.ControlResultRow{
		{ChangeID: "r@a", ControlID: "CM-2", Status: "fail", EvaluatedNs: at(2, 10)},
		{ChangeID: "r@a", ControlID: "CM-2", Status: "pass", EvaluatedNs: at(4, 0)},
		{ChangeID: "r@a", ControlID: "CM-1", Status: "pending", EvaluatedNs: at(2, 10)},
		{ChangeID: "r@b", ControlID: "CM-1", Status: "pass", EvaluatedNs: at(3, 9)},
	}))

	var got []store.PopulationRow
	must(st.Population(ctx, "production", at(1, 0), at(10, 0), func(r store.PopulationRow) error {
		got = append(got, r)
		return nil
	}))
	if len(got) != 2 {
		t.Fatalf("population has %d rows, want 2 (id:1 and id:2): %+v", len(got), got)
	}
	r1, r2 := got[0], got[1]
	if r1.DeploymentKey != "id:1" || r2.DeploymentKey != "id:2" {
		t.Fatalf("order = %s, %s; want id:1 (2 March) then id:2 (3 March)", r1.DeploymentKey, r2.DeploymentKey)
	}
	if r1.ChangeID != "r@a" || r1.Deployer != "bot" || r1.PRTitle != "newer title" {
		t.Errorf("id:1 = change %q deployer %q title %q; want the newest versions (r@a, bot, newer title)", r1.ChangeID, r1.Deployer, r1.PRTitle)
	}
	if r1.Verdict != "fail" || !reflect.DeepEqual(r1.Failing, []string{"CM-2"}) || r1.BundleHash != "b1" {
		t.Errorf("id:1 verdict at deployment = %q %v %q; want fail [CM-2] b1", r1.Verdict, r1.Failing, r1.BundleHash)
	}
	if !reflect.DeepEqual(r1.NowControls, []string{"CM-1", "CM-2"}) || !reflect.DeepEqual(r1.NowStatuses, []string{"pending", "pass"}) {
		t.Errorf("id:1 now = %v %v; want [CM-1 CM-2] [pending pass]", r1.NowControls, r1.NowStatuses)
	}
	if r2.DeployedNs != at(3, 9) || r2.Verdict != "" || r2.PRNumber != 42 || !reflect.DeepEqual(r2.TicketKeys, []string{"PAY-1", "PAY-2"}) {
		t.Errorf("id:2 = at %d verdict %q pr %d tickets %v; want dated by its finish, no verdict, PR 42, PAY-1 PAY-2",
			r2.DeployedNs, r2.Verdict, r2.PRNumber, r2.TicketKeys)
	}

	var inForce []store.ResultInForce
	must(st.ResultsInForce(ctx, "production", at(1, 0), at(10, 0), func(r store.ResultInForce) error {
		inForce = append(inForce, r)
		return nil
	}))
	var keys []string
	for _, r := range inForce {
		keys = append(keys, r.ControlID+" "+r.ChangeID+" "+r.Status)
	}
	if want := []string{"CM-1 r@a pending", "CM-1 r@b pass", "CM-2 r@a pass"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("results in force = %v, want %v", keys, want)
	}

	hist, err := st.ControlResultsOf(ctx, "r@a")
	must(err)
	if len(hist) != 3 || hist[2].Status != "pass" || hist[0].ControlID != "CM-1" {
		t.Errorf("history of r@a = %+v; want 3 rows, oldest first, CM-1 before CM-2 at the same time", hist)
	}
	vs, err := st.DeploymentVerdictsOf(ctx, "r@a")
	must(err)
	if len(vs) != 1 || vs[0].DeploymentKey != "id:1" || !vs[0].DecidedAt.Equal(updated) {
		t.Errorf("verdicts of r@a = %+v", vs)
	}
}

// EventsByKey matches source and id together: an event with the right id
// from another source is not returned.
func TestEventsByKey(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	ns := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	ev := func(seq uint64, src, id string) store.EventRow {
		return store.EventRow{StreamSeq: seq, EventID: id, Source: src, Type: "t", EventTimeNs: ns, ReceivedNs: ns,
			Extensions: "{}", Data: []byte(`{"n":` + id + `}`)}
	}
	if err := st.InsertEvents(ctx, []store.EventRow{ev(1, "/a", "1"), ev(2, "/b", "1"), ev(3, "/a", "2"), ev(4, "/a", "3")}); err != nil {
		t.Fatal(err)
	}
	got, err := st.EventsByKey(ctx, []store.EventKey{{"/a", "1"}, {"/a", "3"}, {"/c", "9"}})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range got {
		seqs = append(seqs, e.StreamSeq)
	}
	if !reflect.DeepEqual(seqs, []uint64{1, 4}) || string(got[1].Data) != `{"n":3}` {
		t.Errorf("EventsByKey = seqs %v, want [1 4] with their data", seqs)
	}
}

// OpenReadOnly does not create a database: a missing one is an error that
// names it.
func TestOpenReadOnlyNeedsTheDatabase(t *testing.T) {
	s := testenv.ClickHouse(t)
	ctx := context.Background()
	_, err := store.OpenReadOnly(ctx, s.URL("no_such_database_here"), nil)
	if err == nil || !strings.Contains(err.Error(), "no_such_database_here") {
		t.Fatalf("OpenReadOnly of a missing database: err = %v, want one naming it", err)
	}
	st, err := store.OpenReadOnly(ctx, s.URL("default"), nil)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
}
