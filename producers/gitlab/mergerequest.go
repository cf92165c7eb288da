package gitlab

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

type mrPayload struct {
	User       *user    `json:"user"`
	Project    *project `json:"project"`
	Repository struct {
		Homepage string `json:"homepage"`
	} `json:"repository"`
	Attrs struct {
		IID             int64    `json:"iid"`
		Title           string   `json:"title"`
		SourceBranch    string   `json:"source_branch"`
		TargetBranch    string   `json:"target_branch"`
		AuthorID        int64    `json:"author_id"`
		Action          string   `json:"action"`
		OldRev          string   `json:"oldrev"`
		MergeCommitSHA  string   `json:"merge_commit_sha"`
		SquashCommitSHA string   `json:"squash_commit_sha"`
		URL             string   `json:"url"`
		CreatedAt       string   `json:"created_at"`
		UpdatedAt       string   `json:"updated_at"`
		Draft           *bool    `json:"draft"`
		WorkInProgress  *bool    `json:"work_in_progress"`
		Source          *project `json:"source"`
		Target          *project `json:"target"`
		LastCommit      struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
	Changes map[string]json.RawMessage `json:"changes"`
}

type changeRef struct {
	Number int64  `json:"number"`
	URL    string `json:"url,omitempty"`
}

// changeData holds the fields shared by the change.* types; the fields of
// one type only are set by that type's translation.
type changeData struct {
	Repository         string    `json:"repository"`
	Change             changeRef `json:"change"`
	Title              string    `json:"title,omitempty"`
	Author             *identity `json:"author,omitempty"`
	SourceBranch       string    `json:"source_branch,omitempty"`
	SourceRepository   string    `json:"source_repository,omitempty"`
	TargetBranch       string    `json:"target_branch,omitempty"`
	HeadCommit         string    `json:"head_commit,omitempty"`
	TicketKeys         []string  `json:"ticket_keys,omitempty"`
	Draft              *bool     `json:"draft,omitempty"`
	OpenedAt           string    `json:"opened_at,omitempty"`
	PreviousHeadCommit string    `json:"previous_head_commit,omitempty"`
	Actor              *identity `json:"actor,omitempty"`
	UpdatedAt          string    `json:"updated_at,omitempty"`
	MergeCommit        string    `json:"merge_commit,omitempty"`
	Method             string    `json:"method,omitempty"`
	MergedBy           *identity `json:"merged_by,omitempty"`
	MergedAt           string    `json:"merged_at,omitempty"`
	ClosedBy           *identity `json:"closed_by,omitempty"`
	ClosedAt           string    `json:"closed_at,omitempty"`
}

type reviewData struct {
	Repository  string    `json:"repository"`
	Change      changeRef `json:"change"`
	Reviewer    *identity `json:"reviewer"`
	Decision    string    `json:"decision"`
	HeadCommit  string    `json:"head_commit"`
	SubmittedAt string    `json:"submitted_at,omitempty"`
	Author      *identity `json:"author,omitempty"`
	DismissedBy *identity `json:"dismissed_by,omitempty"`
}

// metaChanges are the merge request attributes whose change is reported as
// change.updated even without a new head commit.
var metaChanges = []string{"title", "target_branch", "draft", "work_in_progress"}

func (p *Provider) mergeRequest(d webhook.Delivery) ([]*ce.Event, error) {
	var m mrPayload
	if err := webhook.Decode(d.Body, &m); err != nil {
		return nil, err
	}
	a := &m.Attrs
	action := strings.TrimSpace(a.Action)
	if action == "" {
		return nil, webhook.FieldError("object_attributes.action", "missing: the merge request event does not say what happened")
	}
	var targetURL string
	if a.Target != nil {
		targetURL = a.Target.WebURL
	}
	pl, err := locate(m.Project, [2]string{"object_attributes.target.web_url", targetURL}, [2]string{"repository.homepage", m.Repository.Homepage})
	if err != nil {
		return nil, err
	}
	if a.IID < 1 {
		return nil, webhook.FieldError("object_attributes.iid", "missing or not a merge request iid (an integer ≥ 1)")
	}
	head, err := webhook.CommitSHA("object_attributes.last_commit.id", a.LastCommit.ID)
	if err != nil {
		return nil, err
	}
	created, err := timestamp("object_attributes.created_at", a.CreatedAt)
	if err != nil {
		return nil, err
	}
	updated, err := timestamp("object_attributes.updated_at", a.UpdatedAt)
	if err != nil {
		return nil, err
	}
	ref := changeRef{Number: a.IID, URL: webhook.WebURL(a.URL)}
	subject := pl.repo + "/-/merge_requests/" + strconv.FormatInt(a.IID, 10)
	actor := ident(m.User)
	var author *identity
	if actor != nil && (a.AuthorID == 0 || m.User.ID == a.AuthorID) {
		author = actor
	}
	base := changeData{
		Repository: pl.repo, Change: ref, Title: a.Title, SourceBranch: a.SourceBranch,
		TargetBranch: a.TargetBranch, HeadCommit: head, TicketKeys: p.ticketKeys(a.Title, a.SourceBranch),
	}
	if a.Source != nil && a.Source.WebURL != "" {
		if src, err := webhook.Repository("object_attributes.source.web_url", a.Source.WebURL); err == nil && src != pl.repo {
			base.SourceRepository = src
		}
	}
	switch {
	case a.Draft != nil:
		base.Draft = a.Draft
	case a.WorkInProgress != nil:
		base.Draft = a.WorkInProgress
	}
	needHead := func() error {
		if head == "" {
			return webhook.FieldError("object_attributes.last_commit.id", "missing: the merge request's head commit is required")
		}
		return nil
	}
	needTarget := func() error {
		if strings.TrimSpace(a.TargetBranch) == "" {
			return webhook.FieldError("object_attributes.target_branch", "missing")
		}
		return nil
	}

	var (
		typ, suffix string
		at          time.Time
		data        any
	)
	switch action {
	case "open", "reopen":
		if err := firstErr(needHead(), needTarget()); err != nil {
			return nil, err
		}
		if author == nil {
			// Reopened (or opened) by someone else: the author's login is
			// not in the payload, and change.opened requires it.
			c := base
			c.Actor, c.UpdatedAt = actor, webhook.FormatTime(updated)
			typ, suffix, at, data = webhook.TypeChangeUpdated, "change.updated", updated, c
			break
		}
		c := base
		c.Author = author
		at = updated
		if action == "open" {
			at = webhook.FirstTime(created, updated)
		}
		c.OpenedAt = webhook.FormatTime(at)
		typ, suffix, data = webhook.TypeChangeOpened, "change.opened", c
	case "update":
		oldrev, err := webhook.CommitSHA("object_attributes.oldrev", a.OldRev)
		if err != nil {
			return nil, err
		}
		if oldrev == "" && !changed(m.Changes, metaChanges...) {
			return nil, &webhook.Ignored{Reason: "merge request update without a new commit, title, target branch or draft change"}
		}
		if err := needHead(); err != nil {
			return nil, err
		}
		c := base
		c.Author = author
		c.PreviousHeadCommit, c.Actor, c.UpdatedAt = oldrev, actor, webhook.FormatTime(updated)
		typ, suffix, at, data = webhook.TypeChangeUpdated, "change.updated", updated, c
	case "approved", "approval", "unapproved", "unapproval":
		if err := needHead(); err != nil {
			return nil, err
		}
		if actor == nil {
			return nil, webhook.FieldError("user.username", "missing: the reviewer is required")
		}
		r := reviewData{
			Repository: pl.repo, Change: ref, Reviewer: actor, Decision: "approved",
			HeadCommit: head, SubmittedAt: webhook.FormatTime(updated), Author: author,
		}
		if strings.HasPrefix(action, "un") {
			r.Decision, r.DismissedBy = "dismissed", actor
		}
		typ, suffix, at, data = webhook.TypeReviewSubmitted, "review.submitted", updated, r
	case "merge":
		if err := firstErr(needHead(), needTarget()); err != nil {
			return nil, err
		}
		c := base
		c.Author = author
		mergeSHA, err := webhook.CommitSHA("object_attributes.merge_commit_sha", a.MergeCommitSHA)
		if err != nil {
			return nil, err
		}
		squashSHA, err := webhook.CommitSHA("object_attributes.squash_commit_sha", a.SquashCommitSHA)
		if err != nil {
			return nil, err
		}
		switch {
		case mergeSHA != "":
			c.MergeCommit, c.Method = mergeSHA, "merge"
		case squashSHA != "":
			c.MergeCommit, c.Method = squashSHA, "squash"
		default: // fast-forward: the head commit itself is on the target branch
			c.MergeCommit, c.Method = head, "rebase"
		}
		c.MergedBy, c.MergedAt = actor, webhook.FormatTime(updated)
		typ, suffix, at, data = webhook.TypeChangeMerged, "change.merged", updated, c
	case "close":
		c := base
		c.Author = author
		c.ClosedBy, c.ClosedAt = actor, webhook.FormatTime(updated)
		typ, suffix, at, data = webhook.TypeChangeClosed, "change.closed", updated, c
	default:
		return nil, &webhook.Ignored{Reason: "merge request action " + action + " carries no change evidence"}
	}
	e, err := d.Event(pl.source, suffix, typ, subject, at, data)
	if err != nil {
		return nil, err
	}
	raw, err := d.Raw(pl.source, subject, at)
	if err != nil {
		return nil, err
	}
	return []*ce.Event{e, raw}, nil
}

// ticketKeys finds ticket keys in the title and the source branch.
func (p *Provider) ticketKeys(title, branch string) []string {
	var keys []string
	seen := map[string]bool{}
	add := func(ks []string) {
		for _, k := range ks {
			if k != "" && !seen[k] && !strings.ContainsAny(k, " \t\n\f\r") && len(keys) < 50 {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if title != "" {
		add(p.tickets.Find(title))
	}
	if branch != "" {
		add(p.tickets.FindInBranch(branch))
	}
	return keys
}

// changed reports whether the changes object of an update names one of the
// fields.
func changed(changes map[string]json.RawMessage, fields ...string) bool {
	for _, f := range fields {
		if _, ok := changes[f]; ok {
			return true
		}
	}
	return false
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
