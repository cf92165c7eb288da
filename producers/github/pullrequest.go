package github

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// change is the catalog's reference to a pull request.
type change struct {
	Number int64  `json:"number"`
	URL    string `json:"url,omitempty"`
}

// changeData is the data of the change.* events; each type uses its
// subset (the schemas list them).
type changeData struct {
	Repository       string    `json:"repository"`
	Change           change    `json:"change"`
	Title            string    `json:"title,omitempty"`
	Author           *identity `json:"author,omitempty"`
	SourceBranch     string    `json:"source_branch,omitempty"`
	SourceRepository string    `json:"source_repository,omitempty"`
	TargetBranch     string    `json:"target_branch,omitempty"`
	HeadCommit       string    `json:"head_commit,omitempty"`
	BaseCommit       string    `json:"base_commit,omitempty"`
	TicketKeys       []string  `json:"ticket_keys,omitempty"`
	Draft            bool      `json:"draft"`

	OpenedAt string `json:"opened_at,omitempty"` // change.opened

	PreviousHeadCommit string    `json:"previous_head_commit,omitempty"` // change.updated
	Actor              *identity `json:"actor,omitempty"`
	UpdatedAt          string    `json:"updated_at,omitempty"`

	MergeCommit string    `json:"merge_commit,omitempty"` // change.merged
	MergedBy    *identity `json:"merged_by,omitempty"`
	MergedAt    string    `json:"merged_at,omitempty"`

	ClosedBy *identity `json:"closed_by,omitempty"` // change.closed
	ClosedAt string    `json:"closed_at,omitempty"`
}

type pullRequestEvent struct {
	envelope
	PullRequest *ghPull                    `json:"pull_request"`
	Before      string                     `json:"before"`
	Changes     map[string]json.RawMessage `json:"changes"`
}

// maxTicketKeys is the schemas' bound on ticket_keys.
const maxTicketKeys = 50

func translatePullRequest(d *delivery) (result, error) {
	var ev pullRequestEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	var typ, suffix string
	switch ev.Action {
	case "opened", "reopened", "ready_for_review":
		typ, suffix = webhook.TypeChangeOpened, "change.opened"
	case "synchronize", "converted_to_draft":
		typ, suffix = webhook.TypeChangeUpdated, "change.updated"
	case "edited":
		_, title := ev.Changes["title"]
		_, base := ev.Changes["base"]
		if !title && !base {
			return result{}, ignored("pull_request.edited of the description")
		}
		typ, suffix = webhook.TypeChangeUpdated, "change.updated"
	case "closed":
		typ, suffix = webhook.TypeChangeClosed, "change.closed"
		if ev.PullRequest != nil && ev.PullRequest.Merged {
			typ, suffix = webhook.TypeChangeMerged, "change.merged"
		}
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("pull_request." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	pr := ev.PullRequest
	if pr == nil {
		return result{}, missing("pull_request")
	}
	data, err := d.changeOf(r, pr, "pull_request")
	if err != nil {
		return result{}, err
	}
	if pr.Head == nil {
		return result{}, missing("pull_request.head")
	}
	if data.HeadCommit, err = requiredSHA(pr.Head.SHA, "pull_request.head.sha"); err != nil {
		return result{}, err
	}
	at := factTime(d.ReceivedAt, pr.UpdatedAt)
	switch typ {
	case webhook.TypeChangeOpened:
		if data.Author == nil {
			return result{}, missing("pull_request.user.login")
		}
		if data.TargetBranch == "" {
			return result{}, missing("pull_request.base.ref")
		}
		// opened_at: when it was opened, or reopened or made ready (the
		// moment of this action, which updated_at records).
		if ev.Action == "opened" {
			at = factTime(d.ReceivedAt, pr.CreatedAt, pr.UpdatedAt)
		}
		data.OpenedAt = at.Format(timeLayout)
	case webhook.TypeChangeUpdated:
		data.PreviousHeadCommit = sha(ev.Before)
		if data.PreviousHeadCommit == data.HeadCommit {
			data.PreviousHeadCommit = ""
		}
		data.Actor = identityOf(ev.Sender)
		data.UpdatedAt = at.Format(timeLayout)
	case webhook.TypeChangeMerged:
		if data.TargetBranch == "" {
			return result{}, missing("pull_request.base.ref")
		}
		if data.MergeCommit, err = requiredSHA(pr.MergeCommitSHA, "pull_request.merge_commit_sha"); err != nil {
			return result{}, err
		}
		data.MergedBy = identityOf(pr.MergedBy)
		at = factTime(d.ReceivedAt, pr.MergedAt, pr.ClosedAt, pr.UpdatedAt)
		data.MergedAt = at.Format(timeLayout)
	case webhook.TypeChangeClosed:
		data.ClosedBy = identityOf(ev.Sender)
		at = factTime(d.ReceivedAt, pr.ClosedAt, pr.UpdatedAt)
		data.ClosedAt = at.Format(timeLayout)
	}
	subject := r.key + "/pull/" + strconv.FormatInt(pr.Number, 10)
	return result{
		repo:    r,
		subject: subject,
		facts:   []fact{{typ: typ, suffix: suffix, subject: subject, time: at, data: data}},
	}, nil
}

// changeOf fills what every change event says of a pull request. field is
// the JSON path of pr, for errors.
func (d *delivery) changeOf(r repo, pr *ghPull, field string) (changeData, error) {
	if pr.Number < 1 {
		return changeData{}, missing(field + ".number")
	}
	data := changeData{
		Repository: r.key,
		Change:     change{Number: pr.Number, URL: webURL(pr.HTMLURL)},
		Title:      pr.Title,
		Author:     identityOf(pr.User),
		Draft:      pr.Draft,
	}
	if data.Change.URL == "" {
		data.Change.URL = r.pullURL(pr.Number)
	}
	if pr.Head != nil {
		data.SourceBranch = strings.TrimPrefix(pr.Head.Ref, "refs/heads/")
		if hr, err := repoOf(pr.Head.Repo); err == nil && hr.key != r.key {
			data.SourceRepository = hr.key
		}
	}
	if pr.Base != nil {
		data.TargetBranch = strings.TrimPrefix(pr.Base.Ref, "refs/heads/")
		data.BaseCommit = sha(pr.Base.SHA)
	}
	data.TicketKeys = d.ticketKeys(pr.Title, data.SourceBranch)
	return data, nil
}

// ticketKeys finds the keys of a change in its title and its branch.
func (d *delivery) ticketKeys(title, branch string) []string {
	keys := d.p.tickets.Find(title)
	for _, k := range d.p.tickets.FindInBranch(branch) {
		if !contains(keys, k) {
			keys = append(keys, k)
		}
	}
	if len(keys) > maxTicketKeys {
		keys = keys[:maxTicketKeys]
	}
	return keys
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
