package correlate

import (
	"slices"
	"strings"
)

// view is one derivation's read access to a State. Every read goes through
// get, by key: a record is a function of the facts filed under the keys it
// visits, which is what lets the KV-backed correlator load just those
// entries (see [State.Reachable]). The memos only avoid repeating walks
// within one derivation.
type view struct {
	s       *State
	seen    map[Key]struct{} // keys read, when tracking
	covered map[Key]bool
	roots   map[Key][]string
}

func newView(s *State, track bool) *view {
	v := &view{s: s, covered: map[Key]bool{}, roots: map[Key][]string{}}
	if track {
		v.seen = map[Key]struct{}{}
	}
	return v
}

func (v *view) get(k Key, ks ...Kind) []*Fact {
	if v.seen != nil {
		v.seen[k] = struct{}{}
	}
	return v.s.lookup(k, ks...)
}

// changeKeyOf is the pull request a change-kind fact is about.
func changeKeyOf(f *Fact) Key {
	if f.Review != nil {
		return ChangeKey(f.Review.Repository, f.Review.Number)
	}
	return ChangeKey(f.Change.Repository, f.Change.Number)
}

// namedCommits is every commit a change-kind fact names.
func namedCommits(f *Fact) []string {
	if f.Review != nil {
		return []string{f.Review.HeadCommit}
	}
	return f.Change.commits()
}

// isCovered reports whether a merged pull request names the commit (as its
// merge commit, final head or one of its commits): a push of it to the
// default branch is that pull request's merge, not a direct push.
func (v *view) isCovered(repo, sha string) bool {
	k := CommitKey(repo, sha)
	if c, ok := v.covered[k]; ok {
		return c
	}
	c := len(v.get(k, KindChangeMerged)) > 0
	v.covered[k] = c
	return c
}

// mergeFacts are the change.merged facts whose merge commit is sha.
func (v *view) mergeFacts(repo, sha string) []*Fact {
	var out []*Fact
	for _, f := range v.get(CommitKey(repo, sha), KindChangeMerged) {
		if f.Change.MergeCommit == sha && f.Change.Repository == repo {
			out = append(out, f)
		}
	}
	return out
}

// pushFacts are the pushes to the default branch whose head (after) is sha.
func (v *view) pushFacts(repo, sha string) []*Fact {
	var out []*Fact
	for _, f := range v.get(CommitKey(repo, sha), KindPush) {
		if f.Push.After == sha && f.Push.Repository == repo {
			out = append(out, f)
		}
	}
	return out
}

// rootsOfCommit returns the ids of the change records whose commits
// include sha: the merged pull requests that name it (directly, or through
// any fact of theirs that names it as a head), and the uncovered direct
// pushes that pushed it. It is the inverse of the commit set a record is
// derived with, so a deployment is in a record exactly when the record's
// walk reaches it.
func (v *view) rootsOfCommit(repo, sha string) []string {
	k := CommitKey(repo, sha)
	if r, ok := v.roots[k]; ok {
		return r
	}
	var out []string
	seenChange := map[Key]bool{}
	for _, f := range v.get(k, changeKinds...) {
		ck := changeKeyOf(f)
		if seenChange[ck] {
			continue
		}
		seenChange[ck] = true
		for _, m := range v.get(ck, KindChangeMerged) {
			out = append(out, m.Change.Repository+"@"+m.Change.MergeCommit)
		}
	}
	for _, p := range v.get(k, KindPush) {
		if !v.isCovered(p.Push.Repository, p.Push.After) {
			out = append(out, p.Push.Repository+"@"+p.Push.After)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	v.roots[k] = out
	return out
}

// group is the facts of one deployment: started and finished events paired
// by deployment_id (or run), or one fact alone.
type group struct {
	id    string
	facts []*Fact
}

// deploymentGroup returns the group of a deployment fact.
func (v *view) deploymentGroup(f *Fact) group {
	pk := f.Deployment.pairKey()
	if pk == "" {
		return group{id: "fact:" + f.ID, facts: []*Fact{f}}
	}
	fs := slices.Clone(v.get(pk, KindDeployment))
	slices.SortFunc(fs, compareFacts)
	return group{id: string(pk), facts: fs}
}

// unmatchedID is the id of the record of a deployment that matches no
// change: unmatched:<environment>/<service>/<target>, the target being the
// best one any of its facts names (digest, purl, repository@commit, commit).
func unmatchedID(g group) string {
	var best *Fact
	bt, br := "", 99
	for _, f := range g.facts {
		t, r := f.Deployment.target()
		if r < br || (r == br && t < bt) {
			best, bt, br = f, t, r
		}
	}
	return "unmatched:" + best.Deployment.Environment + "/" + best.Deployment.Service + "/" + bt
}

// groupRoots returns the change records a deployment reaches: through the
// artifacts it names to the records holding the commits they were built
// from; when those are none (no build of them known, or built from a
// commit no record holds), through the commit it names. What was deployed
// is the artifact: a deployment naming one change's commit and another's
// build is the other's (builtElsewhere).
func (v *view) groupRoots(g group) []string {
	var out []string
	for _, f := range g.facts {
		d := f.Deployment
		var built []string
		for _, a := range d.artifacts() {
			for _, af := range v.get(ArtifactKey(a), KindArtifact) {
				built = append(built, v.rootsOfCommit(af.Artifact.Repository, af.Artifact.Commit)...)
			}
		}
		out = append(out, built...)
		if len(built) == 0 && d.Repository != "" && d.Commit != "" {
			out = append(out, v.rootsOfCommit(d.Repository, d.Commit)...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// splitID splits a change record id <repository>@<sha>.
func splitID(id string) (repo, sha string, ok bool) {
	i := strings.LastIndexByte(id, '@')
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}

// rootIDs returns the ids of every record the State derives: merged pull
// requests, uncovered direct pushes, and unmatched deployments.
func (v *view) rootIDs() []string {
	ids := map[string]bool{}
	doneGroup := map[string]bool{}
	for _, f := range v.s.facts {
		switch f.Kind {
		case KindChangeMerged:
			ids[f.Change.Repository+"@"+f.Change.MergeCommit] = true
		case KindPush:
			if !v.isCovered(f.Push.Repository, f.Push.After) {
				ids[f.Push.Repository+"@"+f.Push.After] = true
			}
		case KindDeployment:
			if pk := f.Deployment.pairKey(); pk != "" {
				if doneGroup[string(pk)] {
					continue
				}
				doneGroup[string(pk)] = true
			}
			g := v.deploymentGroup(f)
			if len(v.groupRoots(g)) == 0 {
				ids[unmatchedID(g)] = true
			}
		}
	}
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}
