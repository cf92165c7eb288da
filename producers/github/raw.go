package github

import (
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Deliveries kept as webhook.received only: evidence the catalog has no
// type for, which the correlator reads from the raw payload.

type pushEvent struct {
	envelope
	Ref     string `json:"ref"`
	Before  string `json:"before"`
	After   string `json:"after"`
	Deleted bool   `json:"deleted"`
	Forced  bool   `json:"forced"`
}

// translatePush keeps pushes to branches. The correlator reads the raw
// push to detect direct pushes to the default branch (ref ==
// refs/heads/<repository.default_branch>: a change that skipped review) and
// the ticket keys of commit messages.
func translatePush(d *delivery) (result, error) {
	var ev pushEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch {
	case ev.Ref == "":
		return result{}, missing("ref")
	case strings.HasPrefix(ev.Ref, "refs/tags/"):
		return result{}, ignored("push of a tag")
	case !strings.HasPrefix(ev.Ref, "refs/heads/"):
		return result{}, &webhook.Ignored{Reason: "push to a ref that is not a branch carries no evidence"}
	case ev.Deleted || (ev.After != "" && strings.Trim(ev.After, "0") == ""):
		return result{}, ignored("push deleting a branch")
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	after, err := requiredSHA(ev.After, "after")
	if err != nil {
		return result{}, err
	}
	res := result{repo: r, subject: r.key + "/commit/" + after}
	if ev.Forced {
		f, err := forcedPush(d, r, &ev)
		if err != nil {
			return result{}, err
		}
		res.facts = append(res.facts, f)
	}
	return res, nil
}

// translateDeploymentReview keeps approvals and rejections of a
// deployment to a protected environment.
func translateDeploymentReview(d *delivery) (result, error) {
	var ev envelope
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "approved", "rejected":
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("deployment_review." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	return result{repo: r}, nil
}

type releaseEvent struct {
	envelope
	Release *struct {
		TagName string `json:"tag_name"`
	} `json:"release"`
}

// translateRelease keeps published releases: who published which tag.
func translateRelease(d *delivery) (result, error) {
	var ev releaseEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "published":
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("release." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	subject := r.key
	if ev.Release != nil && ev.Release.TagName != "" {
		subject += "/releases/tag/" + ev.Release.TagName
	}
	return result{repo: r, subject: subject}, nil
}
