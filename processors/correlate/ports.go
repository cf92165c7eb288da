package correlate

import (
	"context"
	"slices"
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

// ArtifactReader finds change records by artifact digest, across
// repositories: the gate's lookup when a pipeline names only the image it
// is about to deploy. KVReader and StateReader implement it.
type ArtifactReader interface {
	// ChangesOfArtifact are the records that built or deployed the
	// artifact (sha256:<hex>), sorted by ID.
	ChangesOfArtifact(ctx context.Context, digest string) ([]Record, error)
}

// artifactSources are the (repository, commit) pairs an artifact's facts
// name: the commit it was built from, the commit a deployment of it names.
func artifactSources(facts []Fact) [][2]string {
	var out [][2]string
	for _, f := range facts {
		switch {
		case f.Artifact != nil && f.Artifact.Repository != "" && f.Artifact.Commit != "":
			out = append(out, [2]string{f.Artifact.Repository, strings.ToLower(f.Artifact.Commit)})
		case f.Deployment != nil && f.Deployment.Repository != "" && f.Deployment.Commit != "":
			out = append(out, [2]string{f.Deployment.Repository, strings.ToLower(f.Deployment.Commit)})
		}
	}
	slices.SortFunc(out, func(a, b [2]string) int { return strings.Compare(a[0]+"@"+a[1], b[0]+"@"+b[1]) })
	return slices.Compact(out)
}

// changesOfArtifact reads the records of each source through changesOf
// and keeps those carrying the artifact.
func changesOfArtifact(ctx context.Context, digest string, facts []Fact, changesOf func(ctx context.Context, repo, commit string) ([]Record, error)) ([]Record, error) {
	digest = strings.ToLower(digest)
	seen := map[string]bool{}
	var out []Record
	for _, src := range artifactSources(facts) {
		recs, err := changesOf(ctx, src[0], src[1])
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			if !seen[r.ID] && r.Carries(digest) {
				seen[r.ID] = true
				out = append(out, r)
			}
		}
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Carries reports whether the record built or deployed the artifact.
func (r Record) Carries(digest string) bool {
	for _, a := range r.Artifacts {
		if strings.EqualFold(a.Digest, digest) {
			return true
		}
	}
	for _, d := range r.Deployments {
		if strings.EqualFold(d.Digest, digest) {
			return true
		}
	}
	return false
}

// ChangesOfArtifact implements ArtifactReader.
func (r StateReader) ChangesOfArtifact(ctx context.Context, digest string) ([]Record, error) {
	e := r.State.Entry(ArtifactKey(strings.ToLower(digest)))
	return changesOfArtifact(ctx, digest, e.Facts, r.ChangesOf)
}

// ChangesOfArtifact implements ArtifactReader: from the artifact's entry
// (the facts filed under artifact:<digest>) to the commits they name.
func (r KVReader) ChangesOfArtifact(ctx context.Context, digest string) ([]Record, error) {
	e, err := r.KV.Entry(ctx, ArtifactKey(strings.ToLower(digest)))
	if err != nil {
		return nil, err
	}
	return changesOfArtifact(ctx, digest, e.Facts, r.ChangesOf)
}

var (
	_ ArtifactReader = StateReader{}
	_ ArtifactReader = KVReader{}
)
