package chsink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func newSink(t *testing.T) (*chsink.Sink, *store.Store) {
	t.Helper()
	return newSinkKeeping(t, chsink.DefaultRecentBytes)
}

// newSinkKeeping is newSink keeping n bytes of the rows it wrote last
// (0: none, so that Retire always reads changes).
func newSinkKeeping(t *testing.T, n int64) (*chsink.Sink, *store.Store) {
	t.Helper()
	st := testenv.Store(t) // a fresh database, every migration applied
	s, err := chsink.New(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.KeepRecent(n)
	return s, st
}

func put(t *testing.T, s *chsink.Sink, rs ...correlate.Record) {
	t.Helper()
	if err := s.Put(context.Background(), rs); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

func latest(t *testing.T, st *store.Store, id string) store.ChangeRow {
	t.Helper()
	row, ok, err := st.LatestChange(context.Background(), id)
	if err != nil || !ok {
		t.Fatalf("LatestChange(%s): ok %v, err %v", id, ok, err)
	}
	return row
}

func deploymentsOf(t *testing.T, st *store.Store, id string) []store.DeploymentRow {
	t.Helper()
	rows, err := st.DeploymentsOf(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// liveCount is the auditors' population query of the migration's comment.
func liveCount(t *testing.T, st *store.Store) uint64 {
	t.Helper()
	var n uint64
	if err := st.Conn().QueryRow(context.Background(), "SELECT count() FROM changes FINAL WHERE retired = 0").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// checkStored asserts that the newest rows of r are r: its changes row
// (the canonical JSON, its hash, the columns drawn from it) and one
// deployments row per deployment.
func checkStored(t *testing.T, st *store.Store, r correlate.Record) {
	t.Helper()
	row := latest(t, st, r.ID)
	canon, _ := json.Marshal(r)
	if row.Record != string(canon) {
		t.Fatalf("%s: record column differs from the record:\n got %s\nwant %s", r.ID, row.Record, canon)
	}
	var back correlate.Record
	if err := json.Unmarshal([]byte(row.Record), &back); err != nil {
		t.Fatalf("%s: record column: %v", r.ID, err)
	}
	if again, _ := json.Marshal(back); string(again) != row.Record {
		t.Errorf("%s: the stored JSON does not survive a round trip through Record", r.ID)
	}
	if row.RecordHash != r.Hash() || row.Version != chsink.Version(r, r.Hash()) || row.Retired {
		t.Errorf("%s: hash %s version %#x retired %v; want %s %#x false", r.ID, row.RecordHash, row.Version, row.Retired, r.Hash(), chsink.Version(r, r.Hash()))
	}
	var sqlHash string
	if err := st.Conn().QueryRow(context.Background(),
		"SELECT lower(hex(SHA256(record))) FROM changes FINAL WHERE change_id = ?", r.ID).Scan(&sqlHash); err != nil || sqlHash != row.RecordHash {
		t.Errorf("%s: SHA256 in SQL = %s (%v), record_hash %s", r.ID, sqlHash, err, row.RecordHash)
	}

	var commits, tickets, envs, services []string
	for _, c := range r.Commits {
		commits = append(commits, c.SHA)
	}
	for _, tk := range r.Tickets {
		tickets = append(tickets, tk.Key)
	}
	for _, d := range r.Deployments {
		envs, services = append(envs, d.Environment), append(services, d.Service)
	}
	slices.Sort(envs)
	slices.Sort(services)
	envs, services = slices.Compact(envs), slices.Compact(services)
	var number int64
	var author, mergedBy string
	if pr := r.PullRequest; pr != nil {
		number, author, mergedBy = pr.Number, login(pr.Author), login(pr.MergedBy)
	} else if r.DirectPush {
		author, mergedBy = login(r.Pushes[0].Pusher), login(r.Pushes[0].Pusher)
	}
	eq := func(col string, got, want any) {
		t.Helper()
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) && !(string(gj) == "[]" && string(wj) == "null") {
			t.Errorf("%s: %s = %s, want %s", r.ID, col, gj, wj)
		}
	}
	eq("repository", row.Repository, r.Repository)
	eq("commit", row.Commit, r.Commit)
	eq("commits", row.Commits, commits)
	eq("pr_number", row.PRNumber, number)
	eq("author", row.Author, author)
	eq("merged_by", row.MergedBy, mergedBy)
	eq("direct_push", row.DirectPush, r.DirectPush)
	eq("unmatched", row.Unmatched, r.Unmatched)
	eq("ticket_keys", row.TicketKeys, tickets)
	eq("environments", row.Environments, envs)
	eq("services", row.Services, services)
	if r.PullRequest != nil && row.MergedNs != r.PullRequest.MergedAt.UnixNano() {
		t.Errorf("%s: merged_at_ns %d, want %d", r.ID, row.MergedNs, r.PullRequest.MergedAt.UnixNano())
	}
	if len(r.Deployments) > 0 && (row.FirstDeployedNs == 0 || row.LastDeployedNs < row.FirstDeployedNs) {
		t.Errorf("%s: deployed from %d to %d", r.ID, row.FirstDeployedNs, row.LastDeployedNs)
	}

	deps := deploymentsOf(t, st, r.ID)
	if len(deps) != len(r.Deployments) {
		t.Fatalf("%s: %d deployments rows, want %d", r.ID, len(deps), len(r.Deployments))
	}
	for _, d := range r.Deployments {
		key := chsink.DeploymentKey(d)
		i := slices.IndexFunc(deps, func(row store.DeploymentRow) bool {
			return row.Environment == d.Environment && row.Service == d.Service && row.DeploymentKey == key
		})
		if i < 0 {
			t.Errorf("%s: no row for deployment %s/%s/%s", r.ID, d.Environment, d.Service, key)
			continue
		}
		dr := deps[i]
		dj, _ := json.Marshal(d)
		if dr.Deployment != string(dj) || dr.Outcome != d.Outcome || dr.Unmatched != r.Unmatched ||
			!slices.Equal(dr.MatchedBy, d.MatchedBy) || dr.Deployer != login(d.Deployer) || dr.Commit != d.Commit ||
			dr.Digest != d.Digest || dr.StartedNs != ns(d.StartedAt) || dr.FinishedNs != ns(d.FinishedAt) || dr.RecordHash != r.Hash() || dr.Version != row.Version {
			t.Errorf("%s: deployment row %+v does not hold %s", r.ID, dr, dj)
		}
	}
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func login(id *correlate.Identity) string {
	if id == nil {
		return ""
	}
	return id.Login
}

func TestPutScenarios(t *testing.T) {
	s, st := newSink(t)
	var all []correlate.Record
	for _, name := range scenarioNames(t) {
		all = append(all, recordsOf(scenarioFacts(t, name))...)
	}
	put(t, s, all...) // one Put: one INSERT per table
	for _, r := range all {
		checkStored(t, st, r)
	}
	if n := liveCount(t, st); n != uint64(len(all)) {
		t.Errorf("population query counts %d changes, want %d", n, len(all))
	}
	// Put again (a redelivery): nothing changes.
	put(t, s, all...)
	for _, r := range all {
		checkStored(t, st, r)
	}
	if n := liveCount(t, st); n != uint64(len(all)) {
		t.Errorf("after the same Put again, population query counts %d changes, want %d", n, len(all))
	}
}

// TestNewestWinsWhateverTheWriteOrder writes every version a scenario's
// records went through, one Put per step, newest first and then in a
// shuffled order: the rows read back are the final records.
func TestNewestWinsWhateverTheWriteOrder(t *testing.T) {
	for _, name := range scenarioNames(t) {
		t.Run(name, func(t *testing.T) {
			events := scenarioFacts(t, name)
			h := history(events)
			final := h[len(h)-1]
			for oi, order := range orders(len(h))[1:3] { // reversed, then one shuffle
				s, st := newSink(t)
				for _, step := range permute(h, order) {
					put(t, s, step...)
				}
				// Records that no longer exist are the stage's to retire.
				var gone []string
				finals := byID(final)
				for _, step := range h {
					for _, r := range step {
						if _, ok := finals[r.ID]; !ok {
							gone = append(gone, r.ID)
						}
					}
				}
				if err := s.Retire(context.Background(), gone); err != nil {
					t.Fatal(err)
				}
				for _, r := range final {
					checkStored(t, st, r)
				}
				if n := liveCount(t, st); n != uint64(len(final)) {
					t.Errorf("order %d: population query counts %d changes, want %d", oi, n, len(final))
				}
			}
		})
	}
}

// TestUnmatchedDeploymentRelinked follows unmatched_relinked: a production
// deployment of a commit no change holds yet is an unmatched record; the
// merge arrives and the deployment belongs to its change. The stage Puts
// the change's record and retires the unmatched one's id.
func TestUnmatchedDeploymentRelinked(t *testing.T) {
	events := scenarioFacts(t, "unmatched_relinked")
	early := recordsOf(events[:1])
	final := recordsOf(events)
	if len(early) != 1 || !early[0].Unmatched || len(final) != 1 || final[0].Unmatched {
		t.Fatalf("scenario changed: early %d records, final %d", len(early), len(final))
	}
	u, r := early[0], final[0]
	for _, keep := range []int64{chsink.DefaultRecentBytes, 0} {
		t.Run(fmt.Sprintf("keep=%d", keep), func(t *testing.T) { unmatchedRelinked(t, u, r, keep) })
	}
}

func unmatchedRelinked(t *testing.T, u, r correlate.Record, keep int64) {
	ctx := context.Background()
	newSink := func(t *testing.T) (*chsink.Sink, *store.Store) { return newSinkKeeping(t, keep) }

	t.Run("in order", func(t *testing.T) {
		s, st := newSink(t)
		put(t, s, u)
		checkStored(t, st, u)
		if d := deploymentsOf(t, st, u.ID); len(d) != 1 || !d[0].Unmatched || d[0].ChangeID != u.ID {
			t.Fatalf("unmatched deployment rows %+v", d)
		}
		put(t, s, r)
		if err := s.Retire(ctx, []string{u.ID}); err != nil {
			t.Fatal(err)
		}
		checkRelinked(t, st, u, r)

		// A late write of the unmatched version (a slow replica) changes
		// nothing; retiring again writes nothing.
		put(t, s, u)
		if err := s.Retire(ctx, []string{u.ID}); err != nil {
			t.Fatal(err)
		}
		checkRelinked(t, st, u, r)
		var tombstones uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM changes WHERE change_id = ? AND retired = 1", u.ID).Scan(&tombstones); err != nil {
			t.Fatal(err)
		}
		if tombstones != 1 {
			t.Errorf("%d retired rows for %s, want 1", tombstones, u.ID)
		}
	})

	t.Run("retired before anything", func(t *testing.T) {
		s, st := newSink(t)
		if err := s.Retire(ctx, []string{u.ID}); err != nil {
			t.Fatal(err)
		}
		put(t, s, r)
		put(t, s, u) // the unmatched version arrives last
		got := latest(t, st, u.ID)
		if !got.Retired || !got.Unmatched || got.Version != chsink.Tombstone(chsink.ClassUnmatched) {
			t.Errorf("retired before written: %+v", got)
		}
		if d := deploymentsOf(t, st, u.ID); len(d) != 0 {
			t.Errorf("deployments still under %s: %+v", u.ID, d)
		}
		checkStored(t, st, r)
	})
}

func checkRelinked(t *testing.T, st *store.Store, u, r correlate.Record) {
	t.Helper()
	checkStored(t, st, r)
	d := deploymentsOf(t, st, r.ID)
	if len(d) != 1 || d[0].Unmatched || d[0].ChangeID != r.ID || !slices.Equal(d[0].MatchedBy, []string{"commit"}) {
		t.Errorf("deployment under the change: %+v", d)
	}
	if d := deploymentsOf(t, st, u.ID); len(d) != 0 {
		t.Errorf("deployment still under %s: %+v", u.ID, d)
	}
	old := latest(t, st, u.ID)
	canon, _ := json.Marshal(u)
	if !old.Retired || old.Record != string(canon) || old.RecordHash != u.Hash() || old.Version != chsink.Tombstone(chsink.ClassUnmatched) {
		t.Errorf("the unmatched record: retired %v, version %#x, keeps its content %v", old.Retired, old.Version, old.Record == string(canon))
	}
	byCommit, err := st.ChangesByCommit(context.Background(), r.Repository, r.Commit)
	if err != nil || len(byCommit) != 1 || byCommit[0].ChangeID != r.ID {
		t.Errorf("ChangesByCommit(%s, %s) = %d rows (%v), want only %s", r.Repository, r.Commit, len(byCommit), err, r.ID)
	}
	if n := liveCount(t, st); n != 1 {
		t.Errorf("population query counts %d changes, want 1", n)
	}
}

// TestRetireFromRecentRows: the tombstone of a record the sink wrote
// recently is made from the row it kept, not read back from changes. Seen
// through the documented difference: another replica's newer version of
// the same class (more events) is in changes; the sink keeping its rows
// retires the record with its own last content, the sink keeping none
// with the newest row's. Both retire it.
func TestRetireFromRecentRows(t *testing.T) {
	ctx := context.Background()
	u := recordsOf(scenarioFacts(t, "unmatched_relinked")[:1])[0]
	for _, c := range []struct {
		keep        int64
		wantNewest  bool
		description string
	}{{chsink.DefaultRecentBytes, false, "from the row it kept"}, {0, true, "from changes FINAL"}} {
		t.Run(fmt.Sprintf("keep=%d", c.keep), func(t *testing.T) {
			s, st := newSinkKeeping(t, c.keep)
			put(t, s, u)
			other := latest(t, st, u.ID)
			other.Version += 1 << 32 // one event more: newer, same class
			other.Record, other.RecordHash = `{"id":"`+u.ID+`","written_by":"another replica"}`, "ff"
			if err := st.InsertChanges(ctx, []store.ChangeRow{other}); err != nil {
				t.Fatal(err)
			}
			if err := s.Retire(ctx, []string{u.ID}); err != nil {
				t.Fatal(err)
			}
			got := latest(t, st, u.ID)
			canon, _ := json.Marshal(u)
			want := string(canon)
			if c.wantNewest {
				want = other.Record
			}
			if !got.Retired || got.Version != chsink.Tombstone(chsink.ClassUnmatched) || got.Record != want {
				t.Errorf("tombstone %s: retired %v, version %#x, record %s; want retired, %#x, %s",
					c.description, got.Retired, got.Version, got.Record, chsink.Tombstone(chsink.ClassUnmatched), want)
			}
		})
	}
}

func TestRetireLeavesMergedChanges(t *testing.T) {
	s, st := newSink(t)
	r := recordsOf(scenarioFacts(t, "squash_merge"))[0]
	put(t, s, r)
	if err := s.Retire(context.Background(), []string{r.ID, ""}); err != nil {
		t.Fatal(err)
	}
	checkStored(t, st, r)
}

func TestPutRefusesARecordWithoutID(t *testing.T) {
	s, st := newSink(t)
	good := recordsOf(scenarioFacts(t, "squash_merge"))[0]
	if err := s.Put(context.Background(), []correlate.Record{good, {}}); err == nil {
		t.Fatal("Put accepted a record without an id")
	}
	if _, ok, err := st.LatestChange(context.Background(), good.ID); ok || err != nil {
		t.Fatalf("a refused Put stored rows (ok %v, err %v)", ok, err)
	}
	if err := s.Put(context.Background(), nil); err != nil {
		t.Fatalf("Put of nothing: %v", err)
	}
}
