package store_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

var updated = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func changeRow(id string, version uint64, title string, commits ...string) store.ChangeRow {
	return store.ChangeRow{
		ChangeID: id, Repository: "github.com/acme/pay", Commit: commits[0], Commits: commits,
		PRNumber: 42, PRTitle: title, Author: "ann", MergedBy: "bob",
		MergedNs:   time.Date(2026, 11, 24, 9, 30, 0, 123456789, time.UTC).UnixNano(),
		TicketKeys: []string{"PAY-1", "PAY-2"}, Environments: []string{"production", "staging"}, Services: []string{"pay"},
		FirstDeployedNs: time.Date(2026, 11, 24, 10, 0, 0, 1, time.UTC).UnixNano(),
		LastDeployedNs:  time.Date(2026, 11, 24, 11, 0, 0, 2, time.UTC).UnixNano(),
		Record:          `{"id":"` + id + `","title":"` + title + `"}`, RecordHash: "h-" + title,
		EventCount: 7, Version: version, UpdatedAt: updated,
	}
}

func latest(t *testing.T, st *store.Store, id string) store.ChangeRow {
	t.Helper()
	got, ok, err := st.LatestChange(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("LatestChange(%q) = ok %v, err %v", id, ok, err)
	}
	return got
}

func TestChangesTablesAreReplacing(t *testing.T) {
	st := testenv.Store(t) // 0001 and 0002 applied in order
	rows, err := st.Conn().Query(context.Background(),
		"SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name IN ('changes', 'deployments') ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err != nil {
			t.Fatal(err)
		}
		got = append(got, name+" "+engine)
	}
	want := []string{"changes ReplacingMergeTree", "deployments ReplacingMergeTree"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tables %v, want %v", got, want)
	}
}

func TestChangeRoundTripAndNewestVersionWins(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	if _, ok, err := st.LatestChange(ctx, "github.com/acme/pay@c1"); ok || err != nil {
		t.Fatalf("LatestChange on an empty table: ok %v, err %v", ok, err)
	}
	v1 := changeRow("github.com/acme/pay@c1", 10, "first", "c1", "h1")
	other := changeRow("unmatched:production/pay/sha256:ab", 3, "other", "c9")
	other.Unmatched, other.PRNumber, other.Commits, other.TicketKeys = true, 0, []string{}, []string{}
	if err := st.InsertChanges(ctx, []store.ChangeRow{v1, other}); err != nil {
		t.Fatal(err)
	}
	if got := latest(t, st, v1.ChangeID); !reflect.DeepEqual(got, v1) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, v1)
	}
	if got := latest(t, st, other.ChangeID); !reflect.DeepEqual(got, other) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, other)
	}

	// A newer version, then an older one written after it (a retry, a slow
	// replica), each its own INSERT: the highest version is the newest.
	v3 := changeRow(v1.ChangeID, 30, "third", "c1", "h1", "h2")
	v2 := changeRow(v1.ChangeID, 20, "second", "c1", "h1")
	for _, r := range []store.ChangeRow{v3, v2} {
		if err := st.InsertChanges(ctx, []store.ChangeRow{r}); err != nil {
			t.Fatal(err)
		}
	}
	if got := latest(t, st, v1.ChangeID); got.Version != 30 || got.PRTitle != "third" {
		t.Fatalf("newest = version %d %q, want 30 third", got.Version, got.PRTitle)
	}
	all, err := st.LatestChanges(ctx, []string{"nope", other.ChangeID, v1.ChangeID})
	if err != nil || len(all) != 2 || all[0].ChangeID != v1.ChangeID || all[1].ChangeID != other.ChangeID {
		t.Fatalf("LatestChanges = %d rows, %v", len(all), err)
	}
	// The engine itself keeps the same row when it merges the versions.
	if err := st.Conn().Exec(ctx, "OPTIMIZE TABLE changes FINAL"); err != nil {
		t.Fatal(err)
	}
	var n, version uint64
	if err := st.Conn().QueryRow(ctx, "SELECT count(), max(version) FROM changes WHERE change_id = ?", v1.ChangeID).Scan(&n, &version); err != nil {
		t.Fatal(err)
	}
	if n != 1 || version != 30 {
		t.Fatalf("after OPTIMIZE FINAL: %d rows, version %d; want 1 row, version 30", n, version)
	}
}

func TestChangeTimesOutsideDateTime(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	r := changeRow("github.com/acme/pay@c1", 1, "t", "c1")
	r.MergedNs = -5e9 // before 1970: DateTime holds 0, the nanoseconds the truth
	r.FirstDeployedNs, r.LastDeployedNs = 0, 0
	if err := st.InsertChanges(ctx, []store.ChangeRow{r}); err != nil {
		t.Fatal(err)
	}
	var merged, first uint32
	var mergedNs int64
	if err := st.Conn().QueryRow(ctx, "SELECT toUInt32(merged_at), merged_at_ns, toUInt32(first_deployed_at) FROM changes").Scan(&merged, &mergedNs, &first); err != nil {
		t.Fatal(err)
	}
	if merged != 0 || mergedNs != -5e9 || first != 0 {
		t.Fatalf("merged_at %d, merged_at_ns %d, first_deployed_at %d", merged, mergedNs, first)
	}
}

func TestChangesByCommit(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	const (
		merge = "aaaaaaa1111111111111111111111111111111111"
		head  = "bbbbbbb2222222222222222222222222222222222"
		gone  = "ccccccc3333333333333333333333333333333333"
	)
	a := changeRow("github.com/acme/pay@"+merge, 10, "a", merge, head)
	// b held gone in an old version only.
	bOld := changeRow("github.com/acme/pay@"+gone, 1, "b-old", gone)
	bNew := changeRow("github.com/acme/pay@"+gone, 2, "b-new", "ddddddd4444444444444444444444444444444444")
	// u held head, and is retired since.
	u := changeRow("unmatched:production/pay/github.com/acme/pay@"+head, 1, "u", head)
	uRetired := u
	uRetired.Version, uRetired.Retired = 1<<62-1, true
	if err := st.InsertChanges(ctx, []store.ChangeRow{a, bOld, u}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertChanges(ctx, []store.ChangeRow{bNew, uRetired}); err != nil {
		t.Fatal(err)
	}
	ids := func(repo, commit string) []string {
		t.Helper()
		rs, err := st.ChangesByCommit(ctx, repo, commit)
		if err != nil {
			t.Fatal(err)
		}
		out := []string{}
		for _, r := range rs {
			out = append(out, r.ChangeID)
		}
		return out
	}
	for _, tc := range []struct {
		repo, commit string
		want         []string
	}{
		{"github.com/acme/pay", merge, []string{a.ChangeID}},
		{"github.com/acme/pay", head, []string{a.ChangeID}}, // not the retired u
		{"github.com/acme/pay", "BBBBBBB", []string{a.ChangeID}},
		{"github.com/acme/pay", gone, []string{}}, // only an old version of b held it
		{"github.com/acme/pay", "bbbbbb", []string{}},
		{"github.com/acme/other", merge, []string{}},
		{"github.com/acme/pay", "", []string{a.ChangeID, bNew.ChangeID}},
	} {
		if got := ids(tc.repo, tc.commit); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ChangesByCommit(%s, %s) = %v, want %v", tc.repo, tc.commit, got, tc.want)
		}
	}
	if got := latest(t, st, u.ChangeID); !got.Retired || got.PRTitle != "u" {
		t.Errorf("a retired record reads back as %+v, want it retired with its content", got)
	}
}

func TestDeploymentsOfFollowsTheNewestVersion(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	const unmatched, change = "unmatched:production/pay/sha256:ab", "github.com/acme/pay@c1"
	dep := func(changeID string, version uint64, key string) store.DeploymentRow {
		return store.DeploymentRow{
			Environment: "production", Service: "pay", DeploymentKey: key, DeploymentID: "d-" + key,
			ChangeID: changeID, Unmatched: changeID == unmatched, MatchedBy: []string{},
			Repository: "github.com/acme/pay", Commit: "c1", Digest: "sha256:ab", Purl: "pkg:oci/pay",
			RunID: "77", RunURL: "https://ci/77", Deployer: "deploy-bot", Outcome: "success",
			StartedNs:  time.Date(2026, 11, 24, 10, 0, 0, 5, time.UTC).UnixNano(),
			FinishedNs: time.Date(2026, 11, 24, 10, 5, 0, 6, time.UTC).UnixNano(),
			TicketKeys: []string{"PAY-1"}, Deployment: `{"environment":"production"}`, RecordHash: "h", Version: version,
			UpdatedAt: updated,
		}
	}
	before := dep(unmatched, 5, "id:1")
	alone := dep(unmatched, 5, "id:2")
	if err := st.InsertDeployments(ctx, []store.DeploymentRow{before, alone}); err != nil {
		t.Fatal(err)
	}
	got, err := st.DeploymentsOf(ctx, unmatched)
	if err != nil || len(got) != 2 || !reflect.DeepEqual(got[0], before) {
		t.Fatalf("DeploymentsOf(unmatched) = %+v, %v", got, err)
	}
	// Linked to its change (a higher version), then the unmatched version
	// written again late: the deployment stays under the change.
	after := dep(change, 2<<62, "id:1")
	after.Unmatched, after.MatchedBy = false, []string{"artifact", "commit"}
	for _, r := range []store.DeploymentRow{after, before} {
		if err := st.InsertDeployments(ctx, []store.DeploymentRow{r}); err != nil {
			t.Fatal(err)
		}
	}
	got, err = st.DeploymentsOf(ctx, change)
	if err != nil || len(got) != 1 || !reflect.DeepEqual(got[0], after) {
		t.Fatalf("DeploymentsOf(change) = %+v, %v", got, err)
	}
	got, err = st.DeploymentsOf(ctx, unmatched)
	if err != nil || len(got) != 1 || got[0].DeploymentKey != "id:2" {
		t.Fatalf("DeploymentsOf(unmatched) after the link = %+v, %v; want only id:2", got, err)
	}
}
