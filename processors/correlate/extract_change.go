package correlate

// Pull and merge requests and their reviews: change.opened, change.updated,
// change.merged, change.closed and review.submitted.

import (
	"slices"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// ---- change.* ----

type changeData struct {
	Repository       string        `json:"repository"`
	Change           *changeJSON   `json:"change"`
	Title            string        `json:"title"`
	Author           *identityJSON `json:"author"`
	SourceBranch     string        `json:"source_branch"`
	SourceRepository string        `json:"source_repository"`
	TargetBranch     string        `json:"target_branch"`
	HeadCommit       string        `json:"head_commit"`
	BaseCommit       string        `json:"base_commit"`
	TicketKeys       []string      `json:"ticket_keys"`
	Draft            *bool         `json:"draft"`
	PreviousHead     string        `json:"previous_head_commit"`
	Actor            *identityJSON `json:"actor"`
	MergeCommit      string        `json:"merge_commit"`
	Method           string        `json:"method"`
	MergedBy         *identityJSON `json:"merged_by"`
	Commits          []string      `json:"commits"`
	ClosedBy         *identityJSON `json:"closed_by"`
	OpenedAt         string        `json:"opened_at"`
	UpdatedAt        string        `json:"updated_at"`
	MergedAt         string        `json:"merged_at"`
	ClosedAt         string        `json:"closed_at"`
}

func (x *Extractor) change(e *ce.Event) (*Fact, error) {
	var d changeData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	cf := &ChangeFact{
		Repository:       c.repo("repository", d.Repository, true),
		Title:            d.Title,
		SourceBranch:     d.SourceBranch,
		SourceRepository: c.repo("source_repository", d.SourceRepository, false),
		TargetBranch:     d.TargetBranch,
		BaseCommit:       c.sha("base_commit", d.BaseCommit),
		Draft:            d.Draft,
	}
	cf.Number, cf.URL = c.change("change", d.Change, true)
	f := &Fact{Change: cf}
	switch e.Type {
	case TypeChangeOpened:
		f.Kind = KindChangeOpened
		cf.Author = c.identity("author", d.Author, true)
		c.required("target_branch", d.TargetBranch)
		cf.HeadCommit = c.requiredSHA("head_commit", d.HeadCommit)
		f.Time = c.time("opened_at", d.OpenedAt)
	case TypeChangeUpdated:
		f.Kind = KindChangeHead
		cf.Author = c.identity("author", d.Author, false)
		cf.HeadCommit = c.requiredSHA("head_commit", d.HeadCommit)
		cf.PreviousHead = c.sha("previous_head_commit", d.PreviousHead)
		cf.Actor = c.identity("actor", d.Actor, false)
		f.Time = c.time("updated_at", d.UpdatedAt)
	case TypeChangeMerged:
		f.Kind = KindChangeMerged
		cf.Author = c.identity("author", d.Author, false)
		c.required("target_branch", d.TargetBranch)
		cf.HeadCommit = c.requiredSHA("head_commit", d.HeadCommit)
		cf.MergeCommit = c.requiredSHA("merge_commit", d.MergeCommit)
		cf.Method = c.oneOf("method", d.Method, "merge", "squash", "rebase")
		cf.MergedBy = c.identity("merged_by", d.MergedBy, false)
		cf.Commits = c.shas("commits", d.Commits)
		slices.Sort(cf.Commits)
		cf.Commits = slices.Compact(cf.Commits)
		f.Time = c.time("merged_at", d.MergedAt)
	case TypeChangeClosed:
		f.Kind = KindChangeClosed
		cf.Author = c.identity("author", d.Author, false)
		cf.HeadCommit = c.sha("head_commit", d.HeadCommit)
		cf.ClosedBy = c.identity("closed_by", d.ClosedBy, false)
		f.Time = c.time("closed_at", d.ClosedAt)
	}
	m := mentions{}
	m.add("ticket_keys", c.ticketKeys("ticket_keys", d.TicketKeys)...)
	m.add("title", x.Tickets.Find(d.Title)...)
	m.add("branch", x.Tickets.FindInBranch(d.SourceBranch)...)
	cf.Tickets = m.list()
	if c.err != nil {
		return nil, c.err
	}
	f.Keys = append(f.Keys, ChangeKey(cf.Repository, cf.Number), RepoKey(cf.Repository))
	for _, s := range cf.commits() {
		f.Keys = append(f.Keys, CommitKey(cf.Repository, s))
	}
	for _, t := range cf.Tickets {
		f.Keys = append(f.Keys, TicketKey(t.Key))
	}
	return f, nil
}

// ---- review.submitted ----

type reviewData struct {
	Repository  string        `json:"repository"`
	Change      *changeJSON   `json:"change"`
	Reviewer    *identityJSON `json:"reviewer"`
	Decision    string        `json:"decision"`
	HeadCommit  string        `json:"head_commit"`
	SubmittedAt string        `json:"submitted_at"`
	ReviewID    string        `json:"review_id"`
	ReviewURL   string        `json:"review_url"`
	Author      *identityJSON `json:"author"`
	DismissedBy *identityJSON `json:"dismissed_by"`
}

func (x *Extractor) review(e *ce.Event) (*Fact, error) {
	var d reviewData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	r := &ReviewFact{
		Repository:  c.repo("repository", d.Repository, true),
		Decision:    c.oneOf("decision", c.required("decision", d.Decision), "approved", "changes_requested", "commented", "dismissed"),
		HeadCommit:  c.requiredSHA("head_commit", d.HeadCommit),
		ReviewID:    d.ReviewID,
		ReviewURL:   d.ReviewURL,
		Author:      c.identity("author", d.Author, false),
		DismissedBy: c.identity("dismissed_by", d.DismissedBy, false),
	}
	r.Number, _ = c.change("change", d.Change, true)
	if id := c.identity("reviewer", d.Reviewer, true); id != nil {
		r.Reviewer = *id
	}
	t := c.time("submitted_at", d.SubmittedAt)
	if c.err != nil {
		return nil, c.err
	}
	return &Fact{
		Kind:   KindReview,
		Time:   t,
		Keys:   []Key{ChangeKey(r.Repository, r.Number), CommitKey(r.Repository, r.HeadCommit), RepoKey(r.Repository)},
		Review: r,
	}, nil
}
