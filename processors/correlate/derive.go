package correlate

// Derivation: the walk from a record's root over the keys it reaches.

import (
	"slices"
	"strings"
	"time"
)

// Records derives every change record from the facts, sorted by ID.
func (s *State) Records() []Record {
	v := newView(s, false)
	ids := v.rootIDs()
	out := make([]Record, 0, len(ids))
	for _, id := range ids {
		if r, ok := v.derive(id); ok {
			out = append(out, r)
		}
	}
	return out
}

// Record derives the record with the given ID; false when the facts hold
// no such record (an unmatched deployment's record is gone once the
// deployment matches a change).
func (s *State) Record(id string) (Record, bool) {
	return newView(s, false).derive(id)
}

// Reachable returns the keys whose facts the record's derivation reads,
// sorted. A State holding only the entries of these keys derives the same
// record: the KV-backed correlator loads them, derives, and repeats until
// no new key is needed.
func (s *State) Reachable(id string) []Key {
	v := newView(s, true)
	v.derive(id)
	out := make([]Key, 0, len(v.seen))
	for k := range v.seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func (v *view) derive(id string) (Record, bool) {
	if strings.HasPrefix(id, "unmatched:") {
		return v.deriveUnmatched(id)
	}
	repo, sha, ok := splitID(id)
	if !ok {
		return Record{}, false
	}
	if m := v.mergeFacts(repo, sha); len(m) > 0 {
		return v.deriveMerge(repo, sha, m), true
	}
	if v.isCovered(repo, sha) {
		return Record{}, false
	}
	if p := v.pushFacts(repo, sha); len(p) > 0 {
		return v.derivePush(repo, sha, p), true
	}
	return Record{}, false
}

// builder gathers what a record's walk reaches.
type builder struct {
	v          *view
	repo       string
	commits    map[string]map[string]bool // sha -> roles
	tickets    map[string]map[string]bool // key -> found in
	exceptions map[*Fact]bool
	artifacts  map[*Fact]bool
	runs       map[*Fact]bool
	tests      map[*Fact]bool
	scans      map[*Fact]bool
	runKeys    map[Key]bool
	groups     map[string]*found
	services   map[string]bool
	envs       map[string]bool
}

type found struct {
	g       group
	matched map[string]bool
}

func newBuilder(v *view, repo string) *builder {
	return &builder{
		v: v, repo: repo,
		commits: map[string]map[string]bool{}, tickets: map[string]map[string]bool{},
		exceptions: map[*Fact]bool{}, artifacts: map[*Fact]bool{}, runs: map[*Fact]bool{},
		tests: map[*Fact]bool{}, scans: map[*Fact]bool{}, runKeys: map[Key]bool{},
		groups: map[string]*found{}, services: map[string]bool{}, envs: map[string]bool{},
	}
}

func addTo(m map[string]map[string]bool, k, v string) {
	if k == "" {
		return
	}
	if m[k] == nil {
		m[k] = map[string]bool{}
	}
	m[k][v] = true
}

func (b *builder) role(sha, role string) { addTo(b.commits, sha, role) }

func (b *builder) deployment(f *Fact, how string) {
	pk := f.Deployment.pairKey()
	id := string(pk)
	if pk == "" {
		id = "fact:" + f.ID
	}
	fd := b.groups[id]
	if fd == nil {
		fd = &found{g: b.v.deploymentGroup(f), matched: map[string]bool{}}
		b.groups[id] = fd
	}
	if how != "" {
		fd.matched[how] = true
	}
}

// walkCommits gathers the evidence filed under the record's commits: runs,
// artifacts, tests, scans, tickets that link to a commit, exceptions
// scoped to one, and (unless the record is an unmatched deployment's)
// deployments of the commits and of the artifacts built from them.
func (b *builder) walkCommits(deployments bool) {
	v := b.v
	for _, sha := range sortedKeys(b.commits) {
		k := CommitKey(b.repo, sha)
		for _, f := range v.get(k, KindRun, KindArtifact, KindTest, KindScan, KindTicketState, KindTicketAppr, KindException) {
			switch f.Kind {
			case KindRun:
				b.runs[f] = true
			case KindArtifact:
				b.artifacts[f] = true
				b.runKeys[RunKey(f.Artifact.Repository, f.Artifact.RunID)] = true
			case KindTest:
				b.tests[f] = true
				if f.Test.RunID != "" {
					b.runKeys[RunKey(f.Test.Repository, f.Test.RunID)] = true
				}
			case KindScan:
				b.scans[f] = true
				if f.Scan.RunID != "" {
					b.runKeys[RunKey(f.Scan.Repository, f.Scan.RunID)] = true
				}
			case KindTicketState, KindTicketAppr:
				addTo(b.tickets, f.Ticket.Key, "ticket_link")
			case KindException:
				b.exceptions[f] = true
			}
		}
		if deployments {
			for _, f := range v.get(k, KindDeployment) {
				if b.builtElsewhere(f) {
					continue
				}
				b.deployment(f, "commit")
			}
		}
	}
	if deployments {
		for _, a := range sortedFacts(b.artifacts) {
			for _, ak := range []string{a.Artifact.Digest, a.Artifact.Purl} {
				if ak == "" {
					continue
				}
				for _, f := range v.get(ArtifactKey(ak), KindDeployment) {
					b.deployment(f, "artifact")
				}
			}
		}
	}
	for _, rk := range sortedKeys(b.runKeys) {
		for _, f := range v.get(rk, KindRun) {
			b.runs[f] = true
		}
	}
}

// builtElsewhere reports whether a deployment found under one of the
// record's commits deployed another change's build: the artifact it names
// was built from a commit that a change record holds, and not this one.
// What was deployed is the artifact, not the commit the event names (a
// rollback workflow run on main's head names that head and deploys an
// earlier build). Such a deployment is in the records of the build's
// commit instead (walkCommits finds it there through the artifact). A
// build from a commit no record holds (a branch's) does not move it: the
// commit it names keeps it, so no change record ever loses a deployment
// to an unmatched one (see groupRoots).
func (b *builder) builtElsewhere(f *Fact) bool {
	elsewhere := false
	for _, a := range f.Deployment.artifacts() {
		for _, af := range b.v.get(ArtifactKey(a), KindArtifact) {
			if af.Artifact.Repository == b.repo && b.commits[af.Artifact.Commit] != nil {
				return false
			}
			if len(b.v.rootsOfCommit(af.Artifact.Repository, af.Artifact.Commit)) > 0 {
				elsewhere = true
			}
		}
	}
	return elsewhere
}

// finish builds the lists of the record, in dependency order: deployments
// (which add tickets, services and environments), tickets, exceptions.
func (b *builder) finish(r *Record) {
	v := b.v
	r.Deployments = []Deployment{}
	for _, id := range sortedKeys(b.groups) {
		fd := b.groups[id]
		d := buildDeployment(fd.g, sortedKeys(fd.matched))
		r.Deployments = append(r.Deployments, d)
		b.services[d.Service] = true
		b.envs[d.Environment] = true
		for _, k := range d.TicketKeys {
			addTo(b.tickets, k, "deployment")
		}
	}
	sortByTime(r.Deployments, func(d Deployment) time.Time { return firstTime(d.StartedAt, d.FinishedAt) })

	r.Tickets = []Ticket{}
	for _, key := range sortedKeys(b.tickets) {
		tk := TicketKey(key)
		r.Tickets = append(r.Tickets, buildTicket(key, sortedKeys(b.tickets[key]), v.get(tk, KindTicketState, KindTicketAppr)))
		for _, f := range v.get(tk, KindException) {
			b.exceptions[f] = true
		}
	}
	for _, s := range sortedKeys(b.services) {
		for _, f := range v.get(ServiceKey(s), KindException) {
			b.exceptions[f] = true
		}
	}
	for _, e := range sortedKeys(b.envs) {
		for _, f := range v.get(EnvKey(e), KindException) {
			b.exceptions[f] = true
		}
	}
	if b.repo != "" {
		for _, f := range v.get(RepoKey(b.repo), KindException) {
			b.exceptions[f] = true
		}
	}
	var exc []*Fact
	for f := range b.exceptions {
		if b.inScope(r, f.Exception.Scope) {
			exc = append(exc, f)
		}
	}
	r.Exceptions = buildExceptions(exc)

	r.Commits = make([]Commit, 0, len(b.commits))
	for _, sha := range sortedKeys(b.commits) {
		r.Commits = append(r.Commits, Commit{SHA: sha, Roles: sortedKeys(b.commits[sha])})
	}
	r.Runs = buildRuns(sortedFacts(b.runs))
	r.Artifacts = dedupe(sortedFacts(b.artifacts), func(f *Fact) Artifact { return Artifact{ArtifactFact: *f.Artifact, At: f.Time} },
		func(a Artifact) time.Time { return a.At }, func(a *Artifact, ev []EventRef) { a.Events = ev })
	r.Tests = dedupe(sortedFacts(b.tests), func(f *Fact) Test { return Test{TestFact: *f.Test, At: f.Time} },
		func(t Test) time.Time { return t.At }, func(t *Test, ev []EventRef) { t.Events = ev })
	r.Scans = dedupe(sortedFacts(b.scans), func(f *Fact) Scan { return Scan{ScanFact: *f.Scan, At: f.Time} },
		func(s Scan) time.Time { return s.At }, func(s *Scan, ev []EventRef) { s.Events = ev })
	if r.Pushes == nil {
		r.Pushes = []Push{}
	}
}

// inScope reports whether every field the exception's scope gives matches
// the record.
func (b *builder) inScope(r *Record, s ExceptionScope) bool {
	switch {
	case s.Repository != "" && s.Repository != r.Repository,
		s.Change != 0 && (r.PullRequest == nil || r.PullRequest.Number != s.Change),
		s.Commit != "" && b.commits[s.Commit] == nil,
		s.TicketKey != "" && b.tickets[s.TicketKey] == nil,
		s.Service != "" && !b.services[s.Service],
		s.Environment != "" && !b.envs[s.Environment]:
		return false
	}
	return s != ExceptionScope{}
}

// deriveMerge builds the record of a merged pull request.
func (v *view) deriveMerge(repo, sha string, merged []*Fact) Record {
	b := newBuilder(v, repo)
	r := Record{ID: repo + "@" + sha, Repository: repo, Commit: sha}
	b.role(sha, "merge_commit")
	var changeKeys []Key
	for _, m := range merged {
		changeKeys = append(changeKeys, changeKeyOf(m))
	}
	slices.Sort(changeKeys)
	changeKeys = slices.Compact(changeKeys)
	for i, ck := range changeKeys {
		fs := slices.Clone(v.get(ck, changeKinds...))
		slices.SortFunc(fs, compareFacts)
		for _, f := range fs {
			switch {
			case f.Kind == KindReview:
				b.role(f.Review.HeadCommit, "reviewed")
			case f.Kind == KindChangeMerged:
				b.role(f.Change.MergeCommit, "merge_commit")
				b.role(f.Change.HeadCommit, "final_head")
				for _, c := range f.Change.Commits {
					b.role(c, "change_commit")
				}
			default:
				b.role(f.Change.HeadCommit, "head")
				b.role(f.Change.PreviousHead, "head")
			}
			if f.Change != nil {
				for _, m := range f.Change.Tickets {
					for _, in := range m.In {
						addTo(b.tickets, m.Key, in)
					}
				}
			}
		}
		for _, f := range v.get(ck, KindTicketState, KindTicketAppr) {
			addTo(b.tickets, f.Ticket.Key, "ticket_link")
		}
		for _, f := range v.get(ck, KindException) {
			b.exceptions[f] = true
		}
		if i == 0 {
			r.PullRequest = buildPR(fs, sha)
		}
	}
	b.walkCommits(true)
	b.finish(&r)
	return r
}

// derivePush builds the record of a direct push to the default branch.
func (v *view) derivePush(repo, sha string, pushes []*Fact) Record {
	b := newBuilder(v, repo)
	r := Record{ID: repo + "@" + sha, Repository: repo, Commit: sha, DirectPush: true}
	b.role(sha, "pushed_head")
	for _, p := range pushes {
		for _, c := range p.Push.Commits {
			b.role(c.SHA, "pushed")
			for _, k := range c.TicketKeys {
				addTo(b.tickets, k, "commit_message")
			}
		}
	}
	r.Pushes = dedupe(pushes, func(f *Fact) Push { return Push{PushFact: *f.Push, At: f.Time} },
		func(p Push) time.Time { return p.At }, func(p *Push, ev []EventRef) { p.Events = ev })
	b.walkCommits(true)
	b.finish(&r)
	return r
}

// deriveUnmatched builds the record of deployments that match no change,
// with what is known of what they deployed (the artifact's build, tests
// and scans of its commit).
func (v *view) deriveUnmatched(id string) (Record, bool) {
	target := strings.TrimPrefix(id, "unmatched:")
	var groups []group
	done := map[string]bool{}
	fs := slices.Clone(v.get(deployKey(target), KindDeployment))
	slices.SortFunc(fs, compareFacts)
	for _, f := range fs {
		g := v.deploymentGroup(f)
		if done[g.id] {
			continue
		}
		done[g.id] = true
		if unmatchedID(g) == id && len(v.groupRoots(g)) == 0 {
			groups = append(groups, g)
		}
	}
	if len(groups) == 0 {
		return Record{}, false
	}
	r := Record{ID: id, Unmatched: true}
	var repos, commits, artifacts []string
	for _, g := range groups {
		for _, f := range g.facts {
			d := f.Deployment
			if d.Repository != "" {
				repos = append(repos, d.Repository)
				if d.Commit != "" {
					commits = append(commits, d.Repository+"@"+d.Commit)
				}
			}
			for _, a := range []string{d.Digest, d.Purl} {
				if a != "" {
					artifacts = append(artifacts, a)
				}
			}
		}
	}
	slices.Sort(artifacts)
	var built []*Fact
	for _, a := range slices.Compact(artifacts) {
		for _, f := range v.get(ArtifactKey(a), KindArtifact) {
			built = append(built, f)
			repos = append(repos, f.Artifact.Repository)
		}
	}
	slices.Sort(repos)
	if len(repos) > 0 {
		r.Repository = repos[0]
	}
	b := newBuilder(v, r.Repository)
	for _, c := range commits {
		if repo, sha, _ := splitID(c); repo == r.Repository {
			b.role(sha, "deployed")
		}
	}
	for _, f := range built {
		b.artifacts[f] = true
		if f.Artifact.Repository == r.Repository {
			b.role(f.Artifact.Commit, "built")
		}
	}
	if cs := sortedKeys(b.commits); len(cs) == 1 {
		r.Commit = cs[0]
	}
	for _, g := range groups {
		b.groups[g.id] = &found{g: g, matched: map[string]bool{}}
	}
	b.walkCommits(false)
	b.finish(&r)
	return r, true
}
