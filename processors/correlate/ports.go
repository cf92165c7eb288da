package correlate

import (
	"context"
	"strings"
)

// Sink receives change records as they change: the ClickHouse writer, the
// live page. Put is given the current version of each record (it replaces
// the earlier version of the same ID) and returns once they are durable.
type Sink interface {
	Put(ctx context.Context, records []Record) error
}

// Reader answers questions about change records from the live state (the
// API and the gate read through it, not from a lagging store).
type Reader interface {
	// Change is the record with this ID, and whether there is one.
	Change(ctx context.Context, id string) (Record, bool, error)
	// ChangesOf are the records of repository repo that hold commit (in
	// any role: merge commit, head, pushed, deployed), sorted by ID. An
	// empty commit lists every record of the repository.
	ChangesOf(ctx context.Context, repo, commit string) ([]Record, error)
}

// StateReader is a Reader over an in-memory State.
type StateReader struct{ State *State }

// Change implements Reader.
func (r StateReader) Change(_ context.Context, id string) (Record, bool, error) {
	rec, ok := r.State.Record(id)
	return rec, ok, nil
}

// ChangesOf implements Reader.
func (r StateReader) ChangesOf(_ context.Context, repo, commit string) ([]Record, error) {
	var out []Record
	for _, rec := range r.State.Records() {
		if rec.Repository == repo && (commit == "" || rec.HasCommit(commit)) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// HasCommit reports whether the record holds the commit in any role; an
// abbreviated SHA (7 or more hex digits) matches as a prefix.
func (r Record) HasCommit(sha string) bool {
	sha = strings.ToLower(sha)
	if len(sha) < 7 {
		return false
	}
	if strings.HasPrefix(r.Commit, sha) {
		return true
	}
	for _, c := range r.Commits {
		if strings.HasPrefix(c.SHA, sha) {
			return true
		}
	}
	return false
}

var _ Reader = StateReader{}
