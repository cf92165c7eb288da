package correlate

// Which records a new fact may change, and derivation over entries loaded
// on demand (the KV-backed correlator's view of the state).
//
// A record's derivation reads slots: the facts of some kinds filed under
// some key (view.get). Adding a fact f changes the record with ID id only
// if the derivation of id, on the State holding f, reads a slot f is filed
// in: otherwise that derivation reads exactly what it read without f, and
// gives the same result. (A record that disappears, an unmatched
// deployment's or a direct push's, is derived too: to nothing, reading
// slots all the same.) So the records a fact affects are the readers of
// its slots, and the walk below inverts, slot by slot, the reads that
// derivation (derive.go, graph.go) makes:
//
//	commit key, change.merged    the record of that commit (its root: merge
//	                             or direct push, isCovered); unmatched
//	                             deployments of the commit, and of the
//	                             pushes whose head it is (rootsOfCommit)
//	commit key, other change     unmatched deployments of the commit
//	commit key, push             the record of that commit; unmatched
//	                             deployments of the commit
//	commit key, anything else    every record holding the commit
//	change key, change.merged    the pull request's merges; unmatched
//	                             deployments of its commits
//	change key, change, review,  the pull request's merges
//	ticket, exception
//	run key, run                 records holding the commit of an artifact,
//	                             test or scan of the run
//	artifact key, deployment     records holding the artifact's commit
//	artifact key, artifact       every record a deployment of the artifact
//	                             may be in: those holding the commit it
//	                             names or the artifact's commit, and its
//	                             unmatched ids
//	deployment key, deployment   records of the deployments paired there
//	deploy key, deployment       unmatched:<the key's value>, and the ids
//	                             of the deployment's group
//	ticket key, ticket,          records naming the ticket: through the pull
//	exception                    requests, pushes and deployments that
//	                             name it and the changes and commits the
//	                             ticket links
//	env, service, repo key,      every record deploying to the environment
//	exception                    or service, or of the repository: not
//	                             reachable from the entries (only
//	                             exceptions are filed there), so the caller
//	                             lists them (see affectedResult.attrs)
//
// Every other slot (a change fact under a ticket key, a deployment under
// a change key, an exception under its own exception key, ...) is read by
// no derivation. TestAffected checks the walk against the definition on
// random histories: after each event, every record whose derivation
// changed is in the set.

import (
	"context"
	"slices"
	"strings"
)

// Affected returns the IDs of the records that adding facts to s may have
// changed, created or removed, sorted: the records whose derivation reads
// a slot (key and kind) one of the facts is filed in. s must hold the
// facts. It is a superset: some IDs may derive the same record as before,
// or no record at all. Exceptions scoped by environment, service or
// repository only affect every record deploying there or of that
// repository; they are found by scanning s.
func (s *State) Affected(facts []Fact) []string {
	r := s.affected(facts, false)
	if len(r.attrs) == 0 {
		return r.ids
	}
	out := map[string]bool{}
	for _, id := range r.ids {
		out[id] = true
	}
	for _, id := range s.affected(s.attrFacts(r.attrs), false).ids {
		out[id] = true
	}
	return sortedKeys(out)
}

// attrFacts are the facts whose readers are the readers of the attribute
// keys: the deployments to an environment or service; for a repository,
// every fact filed under one of its commits and every deployment.
func (s *State) attrFacts(attrs []Key) []Fact {
	var out []Fact
	for _, f := range s.facts {
		for _, a := range attrs {
			if attrHolds(a, f) {
				out = append(out, *f)
				break
			}
		}
	}
	return out
}

func attrHolds(a Key, f *Fact) bool {
	switch a.Kind() {
	case KeyEnv:
		return f.Kind == KindDeployment && f.Deployment.Environment == a.Value()
	case KeyService:
		return f.Kind == KindDeployment && f.Deployment.Service == a.Value()
	case KeyRepo:
		if f.Kind == KindDeployment {
			return true
		}
		for _, k := range f.Keys {
			if repo, _, ok := commitOf(k); ok && repo == a.Value() && filed(k, f.Kind) {
				return true
			}
		}
	}
	return false
}

// affectedResult is one pass of the backward walk.
type affectedResult struct {
	ids   []string
	attrs []Key // env, service and repo keys of exceptions: callers list their records
	seen  []Key // keys read, when tracked
}

func (s *State) affected(facts []Fact, track bool) affectedResult {
	w := newWalker(newView(s, track))
	for i := range facts {
		w.affectedBy(&facts[i])
	}
	r := affectedResult{ids: sortedKeys(w.out), attrs: sortedKeys(w.attrs)}
	if track {
		r.seen = sortedKeys(w.v.seen)
	}
	return r
}

// walker is one pass of the backward walk: what it found, and what it
// walked already (a batch's facts share commits and deployments).
type walker struct {
	v         *view
	out       map[string]bool
	attrs     map[Key]bool
	held      map[Key]bool   // commits whose holders were added
	unmatched map[Key]bool   // commits whose unmatched deployments were added
	deps      map[*Fact]bool // deployments whose ids were added
	roots     map[*Fact]bool // deployments whose records were added
}

func newWalker(v *view) *walker {
	return &walker{v: v, out: map[string]bool{}, attrs: map[Key]bool{}, held: map[Key]bool{},
		unmatched: map[Key]bool{}, deps: map[*Fact]bool{}, roots: map[*Fact]bool{}}
}

// commitOf splits a commit key.
func commitOf(k Key) (repo, sha string, ok bool) {
	if k.Kind() != KeyCommit {
		return "", "", false
	}
	repo, sha, ok = strings.Cut(k.Value(), "@")
	return repo, sha, ok && repo != "" && sha != ""
}

func isChangeKind(k Kind) bool { return slices.Contains(changeKinds, k) }

// affectedBy adds the IDs of the records that read a slot f is filed in.
func (w *walker) affectedBy(f *Fact) {
	v, out := w.v, w.out
	for _, k := range f.Keys {
		if !filed(k, f.Kind) {
			continue
		}
		switch k.Kind() {
		case KeyCommit:
			repo, sha, ok := commitOf(k)
			if !ok {
				continue
			}
			switch {
			case f.Kind == KindChangeMerged:
				out[repo+"@"+sha] = true
				w.unmatchedOfCommit(repo, sha)
				w.unmatchedOfPushesTo(repo, sha)
			case isChangeKind(f.Kind):
				w.unmatchedOfCommit(repo, sha)
			case f.Kind == KindPush:
				out[repo+"@"+sha] = true
				w.unmatchedOfCommit(repo, sha)
			default:
				w.holding(repo, sha)
			}
		case KeyChange:
			switch {
			case f.Kind == KindChangeMerged:
				w.mergesOf(k)
				for _, c := range v.get(k, changeKinds...) {
					repo := changeRepo(c)
					for _, sha := range namedCommits(c) {
						w.unmatchedOfCommit(repo, sha)
					}
				}
			case isChangeKind(f.Kind), f.Kind == KindTicketState, f.Kind == KindTicketAppr, f.Kind == KindException:
				w.mergesOf(k)
			}
		case KeyRun:
			if f.Kind != KindRun {
				continue
			}
			for _, g := range v.get(k, KindArtifact, KindTest, KindScan) {
				switch g.Kind {
				case KindArtifact:
					w.holding(g.Artifact.Repository, g.Artifact.Commit)
				case KindTest:
					w.holding(g.Test.Repository, g.Test.Commit)
				case KindScan:
					w.holding(g.Scan.Repository, g.Scan.Commit)
				}
			}
		case KeyArtifact:
			switch f.Kind {
			case KindDeployment:
				for _, a := range v.get(k, KindArtifact) {
					w.holding(a.Artifact.Repository, a.Artifact.Commit)
				}
			case KindArtifact:
				// A build of what a deployment names moves the deployment
				// from the records of the commit it names to those of the
				// build's commit, or to no change (builtElsewhere,
				// groupRoots).
				for _, d := range v.get(k, KindDeployment) {
					w.rootsOfDeployment(d)
				}
			}
		case KeyDeployment:
			if f.Kind != KindDeployment {
				continue
			}
			for _, d := range v.get(k, KindDeployment) {
				w.rootsOfDeployment(d)
			}
		case KeyDeploy:
			if f.Kind != KindDeployment {
				continue
			}
			out["unmatched:"+k.Value()] = true
			w.unmatchedOfDeployment(f)
		case KeyTicket:
			if f.Kind != KindTicketState && f.Kind != KindTicketAppr && f.Kind != KindException {
				continue
			}
			for _, g := range v.get(k, kinds...) {
				switch {
				case isChangeKind(g.Kind):
					w.mergesOf(changeKeyOf(g))
				case g.Kind == KindTicketState || g.Kind == KindTicketAppr:
					for _, gk := range g.Keys {
						if gk.Kind() == KeyChange {
							w.mergesOf(gk)
						} else if repo, sha, ok := commitOf(gk); ok {
							w.holding(repo, sha)
						}
					}
				case g.Kind == KindPush:
					out[g.Push.Repository+"@"+g.Push.After] = true
				case g.Kind == KindDeployment:
					w.rootsOfDeployment(g)
				}
			}
		case KeyEnv, KeyService, KeyRepo:
			w.attrs[k] = true
		}
	}
}

// changeRepo is the repository of a change-kind fact.
func changeRepo(f *Fact) string {
	if f.Review != nil {
		return f.Review.Repository
	}
	return f.Change.Repository
}

// mergesOf adds the records of the merges of a pull request.
func (w *walker) mergesOf(change Key) {
	for _, m := range w.v.get(change, KindChangeMerged) {
		w.out[m.Change.Repository+"@"+m.Change.MergeCommit] = true
	}
}

// holding adds every record whose commits include sha: the merges and
// direct pushes holding it (rootsOfCommit) and the unmatched deployments
// of it or of an artifact built from it.
func (w *walker) holding(repo, sha string) {
	if repo == "" || sha == "" || w.held[CommitKey(repo, sha)] {
		return
	}
	w.held[CommitKey(repo, sha)] = true
	for _, id := range w.v.rootsOfCommit(repo, sha) {
		w.out[id] = true
	}
	w.unmatchedOfCommit(repo, sha)
}

// unmatchedOfCommit adds the unmatched-deployment ids of the deployments
// of the commit and of the artifacts built from it, and the records
// holding the commits that deployments of those artifacts name: whether
// the commit is in a record decides which records such a deployment is in
// (groupRoots, builtElsewhere).
func (w *walker) unmatchedOfCommit(repo, sha string) {
	k := CommitKey(repo, sha)
	if w.unmatched[k] {
		return
	}
	w.unmatched[k] = true
	v := w.v
	for _, d := range v.get(k, KindDeployment) {
		w.unmatchedOfDeployment(d)
	}
	for _, a := range v.get(k, KindArtifact) {
		for _, ak := range []string{a.Artifact.Digest, a.Artifact.Purl} {
			if ak == "" {
				continue
			}
			for _, d := range v.get(ArtifactKey(ak), KindDeployment) {
				w.unmatchedOfDeployment(d)
				// The records holding the commit the deployment names ask
				// whether the build's commit is a change's (builtElsewhere).
				w.holding(d.Deployment.Repository, d.Deployment.Commit)
			}
		}
	}
}

// unmatchedOfPushesTo adds the unmatched deployments whose matching asks
// whether sha is covered: those of the commits of the pushes whose head
// is sha.
func (w *walker) unmatchedOfPushesTo(repo, sha string) {
	for _, p := range w.v.get(CommitKey(repo, sha), KindPush) {
		if p.Push.After != sha {
			continue
		}
		for _, c := range p.Push.commits() {
			w.unmatchedOfCommit(p.Push.Repository, c)
		}
	}
}

// unmatchedOfDeployment adds the ids the deployment's group may have as
// an unmatched record: one per target its facts name (the group's id is
// the best of them, and was another one before a better target arrived).
func (w *walker) unmatchedOfDeployment(d *Fact) {
	if w.deps[d] {
		return
	}
	w.deps[d] = true
	add := func(f *Fact) {
		t, _ := f.Deployment.target()
		w.out["unmatched:"+f.Deployment.Environment+"/"+f.Deployment.Service+"/"+t] = true
	}
	add(d)
	for _, f := range w.v.deploymentGroup(d).facts {
		add(f)
	}
}

// rootsOfDeployment adds every record a deployment may be in: the records
// holding its commit or the commit its artifact was built from, and its
// unmatched ids.
func (w *walker) rootsOfDeployment(d *Fact) {
	if w.roots[d] {
		return
	}
	w.roots[d] = true
	v, dp := w.v, d.Deployment
	if dp.Repository != "" && dp.Commit != "" {
		w.holding(dp.Repository, dp.Commit)
	}
	for _, a := range []string{dp.Digest, dp.Purl} {
		if a == "" {
			continue
		}
		for _, af := range v.get(ArtifactKey(a), KindArtifact) {
			w.holding(af.Artifact.Repository, af.Artifact.Commit)
		}
	}
	w.unmatchedOfDeployment(d)
}

// deriveTracked derives one record and returns the keys its derivation
// read.
func (s *State) deriveTracked(id string) (Record, bool, []Key) {
	v := newView(s, true)
	r, ok := v.derive(id)
	return r, ok, sortedKeys(v.seen)
}

// lazy is a State filled on demand from a store of entries (the KV
// bucket): a computation over it (a derivation, the affected walk) reads
// what is loaded and names the keys it read; the keys not loaded yet are
// loaded and the computation repeats, until it read only loaded keys. It
// then gives what it would give on the whole state, since it reads
// nothing but the entries of those keys (TestRecordMatchesRecords,
// TestAffected).
type lazy struct {
	load   func(ctx context.Context, keys []Key) ([]Entry, error)
	st     *State
	loaded map[Key]bool
}

func newLazy(load func(ctx context.Context, keys []Key) ([]Entry, error)) *lazy {
	return &lazy{load: load, st: NewState(), loaded: map[Key]bool{}}
}

// ensure loads the keys not loaded yet and returns how many there were.
func (l *lazy) ensure(ctx context.Context, keys []Key) (int, error) {
	var miss []Key
	for _, k := range keys {
		if !l.loaded[k] {
			miss = append(miss, k)
		}
	}
	if len(miss) == 0 {
		return 0, nil
	}
	slices.Sort(miss)
	miss = slices.Compact(miss)
	es, err := l.load(ctx, miss)
	if err != nil {
		return 0, err
	}
	for _, e := range es {
		l.st.Add(e.Facts...)
	}
	for _, k := range miss {
		l.loaded[k] = true
	}
	return len(miss), nil
}

// affected is State.affected over the whole state, loading what it reads.
func (l *lazy) affected(ctx context.Context, facts []Fact) (affectedResult, error) {
	l.st.Add(facts...)
	for {
		r := l.st.affected(facts, true)
		n, err := l.ensure(ctx, r.seen)
		if err != nil || n == 0 {
			return r, err
		}
	}
}

// records derives the records of ids (sorted by ID) and returns the ids
// that derive no record.
func (l *lazy) records(ctx context.Context, ids []string) ([]Record, []string, error) {
	var recs []Record
	var none []string
	pending := ids
	for len(pending) > 0 {
		var need []Key
		var again []string
		for _, id := range pending {
			r, ok, seen := l.st.deriveTracked(id)
			missing := false
			for _, k := range seen {
				if !l.loaded[k] {
					need = append(need, k)
					missing = true
				}
			}
			switch {
			case missing:
				again = append(again, id)
			case ok:
				recs = append(recs, r)
			default:
				none = append(none, id)
			}
		}
		if _, err := l.ensure(ctx, need); err != nil {
			return nil, nil, err
		}
		pending = again
	}
	slices.SortFunc(recs, func(a, b Record) int { return strings.Compare(a.ID, b.ID) })
	slices.Sort(none)
	return recs, none, nil
}

// record derives one record.
func (l *lazy) record(ctx context.Context, id string) (Record, bool, error) {
	recs, _, err := l.records(ctx, []string{id})
	if err != nil || len(recs) == 0 {
		return Record{}, false, err
	}
	return recs[0], true, nil
}

// holding returns the IDs of the records that may hold the commit: its
// own record, the merges and pushes holding it, its unmatched deployments.
func (l *lazy) holding(ctx context.Context, repo, sha string) ([]string, error) {
	for {
		w := newWalker(newView(l.st, true))
		w.out[repo+"@"+sha] = true
		w.holding(repo, sha)
		n, err := l.ensure(ctx, sortedKeys(w.v.seen))
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return sortedKeys(w.out), nil
		}
	}
}
