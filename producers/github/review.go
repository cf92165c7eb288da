package github

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

type reviewData struct {
	Repository  string    `json:"repository"`
	Change      change    `json:"change"`
	Reviewer    *identity `json:"reviewer"`
	Decision    string    `json:"decision"`
	HeadCommit  string    `json:"head_commit"`
	SubmittedAt string    `json:"submitted_at,omitempty"`
	ReviewID    string    `json:"review_id,omitempty"`
	ReviewURL   string    `json:"review_url,omitempty"`
	Author      *identity `json:"author,omitempty"`
	DismissedBy *identity `json:"dismissed_by,omitempty"`
}

type ghReview struct {
	ID          int64   `json:"id"`
	User        *ghUser `json:"user"`
	State       string  `json:"state"`
	CommitID    string  `json:"commit_id"`
	SubmittedAt string  `json:"submitted_at"`
	HTMLURL     string  `json:"html_url"`
}

type reviewEvent struct {
	envelope
	Review      *ghReview `json:"review"`
	PullRequest *ghPull   `json:"pull_request"`
}

// decisions maps review.state (lower case in webhooks, upper case in the
// REST API) to the catalog's decision.
var decisions = map[string]string{
	"approved":          "approved",
	"changes_requested": "changes_requested",
	"commented":         "commented",
	"dismissed":         "dismissed",
}

func translateReview(d *delivery) (result, error) {
	var ev reviewEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "submitted", "dismissed":
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("pull_request_review." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	rv, pr := ev.Review, ev.PullRequest
	if rv == nil {
		return result{}, missing("review")
	}
	if pr == nil {
		return result{}, missing("pull_request")
	}
	if pr.Number < 1 {
		return result{}, missing("pull_request.number")
	}
	reviewer, err := requiredIdentity(rv.User, "review.user")
	if err != nil {
		return result{}, err
	}
	data := reviewData{
		Repository: r.key,
		Change:     change{Number: pr.Number, URL: webURL(pr.HTMLURL)},
		Reviewer:   reviewer,
		ReviewURL:  webURL(rv.HTMLURL),
		Author:     identityOf(pr.User),
	}
	if data.Change.URL == "" {
		data.Change.URL = r.pullURL(pr.Number)
	}
	if rv.ID > 0 {
		data.ReviewID = strconv.FormatInt(rv.ID, 10)
	}
	if ev.Action == "dismissed" {
		data.Decision = "dismissed"
		data.DismissedBy = identityOf(ev.Sender)
	} else {
		if strings.TrimSpace(rv.State) == "" {
			return result{}, missing("review.state")
		}
		var ok bool
		if data.Decision, ok = decisions[strings.ToLower(rv.State)]; !ok {
			return result{}, fmt.Errorf("review.state: %q is not a review decision", rv.State)
		}
	}
	// The commit reviewed. Payloads from before 2017 lack commit_id: the
	// pull request's head at delivery is then the best knowledge.
	switch {
	case strings.TrimSpace(rv.CommitID) != "":
		data.HeadCommit, err = requiredSHA(rv.CommitID, "review.commit_id")
	case pr.Head != nil && pr.Head.SHA != "":
		data.HeadCommit, err = requiredSHA(pr.Head.SHA, "pull_request.head.sha")
	default:
		err = missing("review.commit_id")
	}
	if err != nil {
		return result{}, err
	}
	// A dismissal has no time of its own in the payload (submitted_at is
	// the dismissed review's): it happened when it was delivered.
	at := d.ReceivedAt
	if ev.Action == "submitted" {
		at = factTime(d.ReceivedAt, rv.SubmittedAt)
	}
	data.SubmittedAt = at.Format(timeLayout)
	subject := r.key + "/pull/" + strconv.FormatInt(pr.Number, 10)
	return result{
		repo:    r,
		subject: subject,
		facts:   []fact{{typ: webhook.TypeReviewSubmitted, suffix: "review.submitted", subject: subject, time: at, data: data}},
	}, nil
}
