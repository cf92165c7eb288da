package correlate

import (
	"context"
	"testing"
)

func TestStateReader(t *testing.T) {
	s := NewState()
	for _, e := range readEvents(t, "testdata/scenarios/squash_merge/events.json") {
		fs, err := Extract(e)
		if err != nil {
			t.Fatal(err)
		}
		s.Add(fs...)
	}
	r := StateReader{State: s}
	all := s.Records()
	if len(all) != 1 {
		t.Fatalf("%d records, want 1", len(all))
	}
	rec := all[0]
	got, ok, err := r.Change(context.Background(), rec.ID)
	if err != nil || !ok || got.ID != rec.ID {
		t.Fatalf("Change(%q) = %v %v %v", rec.ID, got.ID, ok, err)
	}
	if _, ok, _ := r.Change(context.Background(), "nope@0000000"); ok {
		t.Fatal("Change found a record that does not exist")
	}
	// Every commit of the change finds it, also abbreviated; others do not.
	for _, c := range rec.Commits {
		for _, sha := range []string{c.SHA, c.SHA[:7]} {
			rs, err := r.ChangesOf(context.Background(), rec.Repository, sha)
			if err != nil || len(rs) != 1 || rs[0].ID != rec.ID {
				t.Fatalf("ChangesOf(%s, %s) = %d records, %v", rec.Repository, sha, len(rs), err)
			}
		}
	}
	for _, q := range [][2]string{{rec.Repository, "deadbeef"}, {"github.com/other/repo", rec.Commit}, {rec.Repository, "abc"}} {
		if rs, _ := r.ChangesOf(context.Background(), q[0], q[1]); len(rs) != 0 {
			t.Fatalf("ChangesOf(%s, %s) found %d records", q[0], q[1], len(rs))
		}
	}
	if rs, _ := r.ChangesOf(context.Background(), rec.Repository, ""); len(rs) != 1 {
		t.Fatalf("ChangesOf(repo, \"\") = %d records", len(rs))
	}
}
