package correlate

// The items of a record, built from the facts behind them.

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
)

// buildPR builds the pull request from its facts (sorted by time), for the
// merge commit sha.
func buildPR(fs []*Fact, sha string) *PullRequest {
	pr := &PullRequest{MergeCommit: sha, Heads: []Head{}, Reviews: []Review{}, Events: []EventRef{}}
	var merged *Fact
	var reviews, changes []*Fact
	for _, f := range fs {
		if f.Kind == KindReview {
			reviews = append(reviews, f)
			pr.Number = f.Review.Number
			continue
		}
		changes = append(changes, f)
		c := f.Change
		pr.Number = c.Number
		set(&pr.URL, c.URL)
		set(&pr.Title, c.Title)
		set(&pr.SourceBranch, c.SourceBranch)
		set(&pr.SourceRepository, c.SourceRepository)
		set(&pr.TargetBranch, c.TargetBranch)
		set(&pr.BaseCommit, c.BaseCommit)
		if f.Kind == KindChangeOpened && pr.OpenedAt.IsZero() {
			pr.OpenedAt = f.Time
		}
		if f.Kind == KindChangeMerged && c.MergeCommit == sha {
			merged = f
		}
		pr.Events = append(pr.Events, f.Event)
	}
	if merged != nil {
		pr.HeadCommit = merged.Change.HeadCommit
		pr.Method = merged.Change.Method
		pr.MergedBy = merged.Change.MergedBy
		pr.MergedAt = merged.Time
	}
	// The author: as the change was opened, else as any later change
	// event states it, else as a review states it.
	for _, f := range changes {
		if f.Kind == KindChangeOpened && f.Change.Author != nil {
			pr.Author = f.Change.Author
			break
		}
	}
	for i := len(changes) - 1; i >= 0 && pr.Author == nil; i-- {
		pr.Author = changes[i].Change.Author
	}
	for i := len(reviews) - 1; i >= 0 && pr.Author == nil; i-- {
		pr.Author = reviews[i].Review.Author
	}
	pr.Events = sortRefs(pr.Events)

	var heads []*Fact
	for _, f := range changes {
		if f.Change.HeadCommit != "" {
			heads = append(heads, f)
		}
	}
	pr.Heads = dedupe(heads, func(f *Fact) Head {
		c := f.Change
		h := Head{Commit: c.HeadCommit, Previous: c.PreviousHead, At: f.Time}
		switch f.Kind {
		case KindChangeOpened:
			h.Via, h.By = "opened", c.Author
		case KindChangeHead:
			h.Via, h.By = "updated", c.Actor
		case KindChangeMerged:
			h.Via, h.By = "merged", c.MergedBy
		case KindChangeClosed:
			h.Via, h.By = "closed", c.ClosedBy
		}
		return h
	}, func(h Head) time.Time { return h.At }, func(h *Head, ev []EventRef) { h.Events = ev })

	final := pr.HeadCommit
	pr.Reviews = dedupe(reviews, func(f *Fact) Review {
		rv := f.Review
		out := Review{
			Reviewer: rv.Reviewer, Decision: rv.Decision, HeadCommit: rv.HeadCommit, At: f.Time,
			ReviewID: rv.ReviewID, URL: rv.ReviewURL, DismissedBy: rv.DismissedBy,
			Stale: final != "" && rv.HeadCommit != final,
		}
		if rv.Decision != "dismissed" {
			for _, d := range reviews {
				dr := d.Review
				if dr.Decision != "dismissed" || !sameAccount(dr.Reviewer, rv.Reviewer) {
					continue
				}
				if (dr.ReviewID != "" && dr.ReviewID == rv.ReviewID) || (dr.ReviewID == "" && !d.Time.Before(f.Time)) {
					out.Dismissed = true
				}
			}
		}
		out.Superseded = superseded(f, reviews)
		return out
	}, func(r Review) time.Time { return r.At }, func(r *Review, ev []EventRef) { r.Events = ev })
	return pr
}

// decisive reports whether a review decision is one that the platforms
// keep as the reviewer's state: an approval or a request for changes.
// A comment neither approves nor withdraws an approval; a dismissal
// withdraws the review it names (Review.Dismissed), it is not a review
// of its own.
func decisive(decision string) bool {
	return decision == "approved" || decision == "changes_requested"
}

// superseded reports whether a later decisive review by the same reviewer
// replaces the decisive review f: the platforms keep only each reviewer's
// latest approval or request for changes (GitHub: approved, then changes
// requested, is no approval; GitLab has approvals only, which a later
// unapproval dismisses). The head a review was given on does not matter
// here: a request for changes given on an earlier head still withdraws a
// later-dated approval, and whether the surviving approval is on the final
// head is Review.Stale. Two decisive reviews at the same instant: a
// request for changes is taken as the later, so a tie never yields an
// approval.
func superseded(f *Fact, reviews []*Fact) bool {
	rv := f.Review
	if !decisive(rv.Decision) {
		return false
	}
	for _, g := range reviews {
		gr := g.Review
		if g == f || !decisive(gr.Decision) || !sameAccount(gr.Reviewer, rv.Reviewer) {
			continue
		}
		switch c := g.Time.Compare(f.Time); {
		case c > 0:
			return true
		case c == 0 && gr.Decision == "changes_requested" && rv.Decision == "approved":
			return true
		}
	}
	return false
}

// sameAccount reports whether two identities of one reporting system name
// the same account: the same immutable id, or the same login ignoring case
// (GitHub and GitLab logins are case-insensitive).
func sameAccount(a, b Identity) bool {
	if a.ID != "" && a.ID == b.ID {
		return true
	}
	return a.Login != "" && strings.EqualFold(a.Login, b.Login)
}

// buildTicket builds a ticket from its facts.
func buildTicket(key string, foundIn []string, facts []*Fact) Ticket {
	fs := slices.Clone(facts)
	slices.SortFunc(fs, compareFacts)
	t := Ticket{Key: key, FoundIn: foundIn}
	var states, approvals, rejections []*Fact
	for _, f := range fs {
		tf := f.Ticket
		set(&t.System, tf.System)
		set(&t.Type, tf.Type)
		set(&t.RawType, tf.RawType)
		set(&t.Status, tf.Status)
		set(&t.Summary, tf.Summary)
		set(&t.URL, tf.URL)
		if tf.RequestedBy != nil {
			t.RequestedBy = tf.RequestedBy
		}
		if tf.PlannedWindow != nil {
			t.PlannedWindow = tf.PlannedWindow
		}
		switch tf.Action {
		case "created":
			if t.CreatedAt.IsZero() {
				t.CreatedAt = f.Time
			}
			states = append(states, f)
		case "transitioned":
			states = append(states, f)
		case "approved":
			approvals = append(approvals, f)
		case "rejected":
			rejections = append(rejections, f)
		}
	}
	t.History = dedupe(states, func(f *Fact) StatusChange {
		tf := f.Ticket
		return StatusChange{Action: tf.Action, Status: tf.Status, Previous: tf.PreviousStatus, By: tf.By, At: f.Time}
	}, func(s StatusChange) time.Time { return s.At }, func(s *StatusChange, ev []EventRef) { s.Events = ev })
	approval := func(f *Fact) Approval {
		tf := f.Ticket
		a := Approval{At: f.Time, Group: tf.ApprovalGroup, Status: tf.Status, Comment: tf.Comment, Reason: tf.Reason}
		if tf.By != nil {
			a.By = *tf.By
		}
		return a
	}
	at := func(a Approval) time.Time { return a.At }
	ev := func(a *Approval, ev []EventRef) { a.Events = ev }
	t.Approvals = dedupe(approvals, approval, at, ev)
	t.Rejections = dedupe(rejections, approval, at, ev)
	return t
}

// buildDeployment merges the facts of one deployment: the latest fact
// that states a field gives it; the outcome is the latest finished
// event's.
func buildDeployment(g group, matched []string) Deployment {
	d := Deployment{MatchedBy: matched, Events: []EventRef{}}
	var keys []string
	var firstStart, lastFinish time.Time
	for _, f := range g.facts { // sorted by time
		df := f.Deployment
		d.Environment, d.Service = df.Environment, df.Service
		set(&d.DeploymentID, df.DeploymentID)
		set(&d.Digest, df.Digest)
		set(&d.Purl, df.Purl)
		set(&d.Artifact, df.Artifact)
		set(&d.Repository, df.Repository)
		set(&d.Commit, df.Commit)
		set(&d.RunID, df.RunID)
		set(&d.RunURL, df.RunURL)
		set(&d.Pipeline, df.Pipeline)
		set(&d.System, df.System)
		if df.Deployer != nil {
			d.Deployer = df.Deployer
		}
		if df.TriggeredBy != nil {
			d.TriggeredBy = df.TriggeredBy
		}
		set(&d.Trigger, df.Trigger)
		if df.Change != 0 {
			d.Change = df.Change
		}
		if !df.StartedAt.IsZero() {
			d.StartedAt = df.StartedAt
		}
		keys = append(keys, df.TicketKeys...)
		switch df.Phase {
		case "started":
			if firstStart.IsZero() {
				firstStart = f.Time
			}
		case "finished":
			d.Outcome = df.Outcome
			lastFinish = f.Time
			if !df.FinishedAt.IsZero() {
				d.FinishedAt = df.FinishedAt
			}
		}
		d.Events = append(d.Events, f.Event)
	}
	if d.StartedAt.IsZero() {
		d.StartedAt = firstStart
	}
	if d.FinishedAt.IsZero() {
		d.FinishedAt = lastFinish
	}
	slices.Sort(keys)
	d.TicketKeys = slices.Compact(keys)
	if len(d.TicketKeys) == 0 {
		d.TicketKeys = nil
	}
	if d.MatchedBy == nil {
		d.MatchedBy = []string{}
	}
	d.Events = sortRefs(d.Events)
	return d
}

// buildRuns groups run facts by repository, run id and attempt.
func buildRuns(fs []*Fact) []Run {
	type rk struct {
		repo, id string
		attempt  int
	}
	groups := map[rk][]*Fact{}
	for _, f := range fs {
		k := rk{f.Run.Repository, f.Run.RunID, f.Run.Attempt}
		groups[k] = append(groups[k], f)
	}
	out := make([]Run, 0, len(groups))
	for k, g := range groups {
		slices.SortFunc(g, compareFacts)
		r := Run{Repository: k.repo, RunID: k.id, Attempt: k.attempt, Events: []EventRef{}}
		var firstStart, lastFinish time.Time
		for _, f := range g {
			rf := f.Run
			set(&r.Commit, rf.Commit)
			set(&r.Branch, rf.Branch)
			set(&r.Tag, rf.Tag)
			set(&r.URL, rf.URL)
			set(&r.Pipeline, rf.Pipeline)
			set(&r.System, rf.System)
			set(&r.Trigger, rf.Trigger)
			if rf.Actor != nil {
				r.Actor = rf.Actor
			}
			if rf.Change != 0 {
				r.Change = rf.Change
			}
			if !rf.StartedAt.IsZero() {
				r.StartedAt = rf.StartedAt
			}
			if rf.Phase == "started" && firstStart.IsZero() {
				firstStart = f.Time
			}
			if rf.Phase == "finished" {
				r.Outcome = rf.Outcome
				lastFinish = f.Time
				if !rf.FinishedAt.IsZero() {
					r.FinishedAt = rf.FinishedAt
				}
			}
			r.Events = append(r.Events, f.Event)
		}
		if r.StartedAt.IsZero() {
			r.StartedAt = firstStart
		}
		if r.FinishedAt.IsZero() {
			r.FinishedAt = lastFinish
		}
		r.Events = sortRefs(r.Events)
		out = append(out, r)
	}
	sortByTime(out, func(r Run) time.Time { return firstTime(r.StartedAt, r.FinishedAt) })
	return out
}

// buildExceptions groups exception facts by exception id.
func buildExceptions(fs []*Fact) []Exception {
	slices.SortFunc(fs, compareFacts)
	byID := map[string]*Exception{}
	var ids []string
	for _, f := range fs {
		x := f.Exception
		e := byID[x.ID]
		if e == nil {
			e = &Exception{ID: x.ID, Status: "requested", Events: []EventRef{}}
			byID[x.ID] = e
			ids = append(ids, x.ID)
		}
		set(&e.Control, x.Control)
		e.Scope = x.Scope
		set(&e.Reason, x.Reason)
		set(&e.TicketKey, x.TicketKey)
		if x.RequestedBy != nil {
			e.RequestedBy = x.RequestedBy
		}
		if !x.RequestedAt.IsZero() {
			e.RequestedAt = x.RequestedAt
		}
		if x.Phase == "granted" {
			e.Status = "granted"
			e.Approver = x.Approver
			e.GrantedAt = x.GrantedAt
			e.ExpiresAt = x.ExpiresAt
		}
		e.Events = append(e.Events, f.Event)
	}
	slices.Sort(ids)
	out := make([]Exception, 0, len(ids))
	for _, id := range ids {
		e := byID[id]
		e.Events = sortRefs(e.Events)
		out = append(out, *e)
	}
	return out
}

// dedupe builds one item per fact, merges items that are equal but for the
// events behind them, and sorts them by time, then by their JSON.
func dedupe[T any](facts []*Fact, build func(*Fact) T, at func(T) time.Time, events func(*T, []EventRef)) []T {
	type acc struct {
		v  T
		js string
		ev []EventRef
	}
	byJSON := make(map[string]*acc, len(facts))
	list := make([]*acc, 0, len(facts))
	for _, f := range facts {
		v := build(f)
		js := canonical(v)
		a := byJSON[js]
		if a == nil {
			a = &acc{v: v, js: js}
			byJSON[js] = a
			list = append(list, a)
		}
		a.ev = append(a.ev, f.Event)
	}
	slices.SortFunc(list, func(x, y *acc) int {
		if c := at(x.v).Compare(at(y.v)); c != 0 {
			return c
		}
		return strings.Compare(x.js, y.js)
	})
	out := make([]T, len(list))
	for i, a := range list {
		events(&a.v, sortRefs(a.ev))
		out[i] = a.v
	}
	return out
}

// sortByTime sorts items by a time, then by their JSON.
func sortByTime[T any](items []T, at func(T) time.Time) {
	type kv struct {
		v  T
		js string
	}
	tmp := make([]kv, len(items))
	for i, it := range items {
		tmp[i] = kv{it, canonical(it)}
	}
	slices.SortFunc(tmp, func(x, y kv) int {
		if c := at(x.v).Compare(at(y.v)); c != 0 {
			return c
		}
		return strings.Compare(x.js, y.js)
	})
	for i := range tmp {
		items[i] = tmp[i].v
	}
}

func canonical(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("correlate: encoding a record item: " + err.Error())
	}
	return string(b)
}

func sortRefs(refs []EventRef) []EventRef {
	out := slices.Clone(refs)
	slices.SortFunc(out, compareRefs)
	out = slices.Compact(out)
	if out == nil {
		out = []EventRef{}
	}
	return out
}

func sortedKeys[K ~string, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedFacts(m map[*Fact]bool) []*Fact {
	out := make([]*Fact, 0, len(m))
	for f := range m {
		out = append(out, f)
	}
	slices.SortFunc(out, compareFacts)
	return out
}

// set overwrites *dst with v when v is given: applied to facts in time
// order, the latest fact that states a field gives it.
func set(dst *string, v string) {
	if v != "" {
		*dst = v
	}
}

func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
