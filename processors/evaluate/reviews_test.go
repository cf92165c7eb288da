package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/gitlab"
	"github.com/evidencepipeline/evidence/producers/jira"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// The review-semantics tests post signed deliveries to the real webhook
// handlers (GitHub: X-Hub-Signature-256; GitLab: X-Gitlab-Token; Jira:
// X-Hub-Signature), read the events the handlers stored back from
// JetStream, correlate them into the change record and judge it. Every
// case's expected verdict and reason is worked out by hand from the rule
// in docs/evaluation.md ("Which reviews count"), in the case's comment,
// not computed by the code under test.
//
// The story of every case: alice opens pull (merge) request #42 at 09:00
// on head H1 (111…), pushes H2 (222…) at 11:00 unless the case says
// otherwise, the change is merged at 17:00 as M (ccc…) with H2 as its
// final head, and the pipeline deploys M to production on 2025-03-04 at
// 09:00. It is judged as of 2025-03-07T09:00:00Z, past every deadline: a
// control missing evidence fails.

const (
	h1         = "1111111111111111111111111111111111111111"
	h2         = "2222222222222222222222222222222222222222"
	mergeSHA   = "cccccccccccccccccccccccccccccccccccccccc"
	ghRepo     = "github.com/acme/payments"
	glRepo     = "gitlab.acme.example/payments/payments-api"
	hookSecret = "s3cret"
)

// judgedAt is when the cases are judged: past every deadline.
var judgedAt = time.Date(2025, 3, 7, 9, 0, 0, 0, time.UTC)

// The GitHub accounts of the cases.
var (
	ghAlice      = map[string]any{"login": "alice", "id": 1001, "type": "User"}
	ghBob        = map[string]any{"login": "bob", "id": 1002, "type": "User"}
	ghCarol      = map[string]any{"login": "carol", "id": 1003, "type": "User"}
	ghActions    = map[string]any{"login": "github-actions[bot]", "id": 41898282, "type": "Bot"}
	ghDependabot = map[string]any{"login": "dependabot[bot]", "id": 49699333, "type": "Bot"}
	ghAppBot     = map[string]any{"login": "acme-release-app", "id": 77000001, "type": "Bot"} // type Bot, no [bot] suffix
)

// verdict is what a case expects of one control.
type verdict struct {
	control string
	status  Status
	reasons []string // each must be one of the result's reasons, exactly
}

func TestGitHubReviewSemantics(t *testing.T) {
	cases := []struct {
		name    string
		steps   func(g *ghStory)
		want    verdict
		noWants []string // substrings no reason may contain
	}{{
		// bob approves H2 at 16:00, then requests changes on H2 at
		// 16:30. bob's latest decisive review is the request for
		// changes: his approval no longer stands. Nobody else approved:
		// no valid approval, missing evidence past the deadline
		// (deployment 2025-03-04T09:00 + 1h) fails.
		name: "approved then changes requested by the same reviewer: fail",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h2, "16:00", 501)
			g.review(ghBob, "changes_requested", h2, "16:30", 502)
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by bob at 2025-03-03T16:00:00Z was withdrawn: bob requested changes at 2025-03-03T16:30:00Z",
			"deadline 2025-03-04T10:00:00Z passed",
		}},
	}, {
		// bob requests changes at 15:00, approves H2 at 16:00: the
		// approval is his latest decisive review, on the final head,
		// bob is not the author: pass.
		name: "changes requested then approved: pass",
		steps: func(g *ghStory) {
			g.review(ghBob, "changes_requested", h2, "15:00", 501)
			g.review(ghBob, "approved", h2, "16:00", 502)
		},
		want: verdict{"CM-2", Pass, []string{"approved by bob at 2025-03-03T16:00:00Z on the final head 222222222222"}},
	}, {
		// bob approves H2 at 16:00 (review 501); carol dismisses review
		// 501 (the dismissal is dated when it is received, 16:45). No
		// approval stands: fail.
		name: "approval dismissed: fail",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h2, "16:00", 501)
			g.dismiss(ghBob, h2, "16:00", 501, ghCarol)
		},
		want: verdict{"CM-2", Fail, []string{"approval by bob was dismissed", "deadline 2025-03-04T10:00:00Z passed"}},
	}, {
		// bob approves H2 at 16:00 and comments at 16:30: a comment is
		// not decisive, the approval stands: pass.
		name: "comment after an approval: still pass",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h2, "16:00", 501)
			g.review(ghBob, "commented", h2, "16:30", 502)
		},
		want: verdict{"CM-2", Pass, []string{"approved by bob at 2025-03-03T16:00:00Z on the final head 222222222222"}},
	}, {
		// A comment alone approves nothing: no approving review at all.
		name: "comment only: fail",
		steps: func(g *ghStory) {
			g.review(ghBob, "commented", h2, "16:30", 502)
		},
		want: verdict{"CM-2", Fail, []string{"pull request #42 has no approving review", "deadline 2025-03-04T10:00:00Z passed"}},
	}, {
		// bob approves H1 at 10:00; alice pushes H2 at 11:00; the
		// final head is H2: the approval is stale: fail.
		name: "approval stale after a push: fail",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h1, "10:00", 501)
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by bob on 111111111111 is stale: the final head is 222222222222",
			"deadline 2025-03-04T10:00:00Z passed",
		}},
	}, {
		// As above, and bob approves again on H2 at 12:00: that is his
		// latest decisive review, on the final head: pass.
		name: "approval renewed on the new head: pass",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h1, "10:00", 501)
			g.review(ghBob, "approved", h2, "12:00", 502)
		},
		want: verdict{"CM-2", Pass, []string{"approved by bob at 2025-03-03T12:00:00Z on the final head 222222222222"}},
	}, {
		// github-actions[bot] is the default pipeline identity (and a
		// [bot] account): never a peer reviewer. No other approval: fail.
		name: "approval by github-actions[bot]: fail",
		steps: func(g *ghStory) {
			g.review(ghActions, "approved", h2, "16:00", 501)
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by github-actions[bot] does not count: github-actions[bot] is a pipeline identity (--pipeline-identities), not a peer reviewer",
			"deadline 2025-03-04T10:00:00Z passed",
		}},
	}, {
		// dependabot[bot] is an app's account (type Bot): fail.
		name: "approval by dependabot[bot]: fail",
		steps: func(g *ghStory) {
			g.review(ghDependabot, "approved", h2, "16:00", 501)
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by dependabot[bot] does not count: dependabot[bot] is a bot account, not a peer reviewer",
			"deadline 2025-03-04T10:00:00Z passed",
		}},
	}, {
		// An account GitHub says is of type Bot, whatever its login: fail.
		name: "approval by a type: Bot account: fail",
		steps: func(g *ghStory) {
			g.review(ghAppBot, "approved", h2, "16:00", 501)
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by acme-release-app does not count: acme-release-app is a bot account, not a peer reviewer",
			"deadline 2025-03-04T10:00:00Z passed",
		}},
	}, {
		// A bot's approval beside bob's: bob's counts, the bot's is not
		// named among the reasons of the pass.
		name: "a bot's approval beside a person's: pass on the person's",
		steps: func(g *ghStory) {
			g.review(ghDependabot, "approved", h2, "15:00", 500)
			g.review(ghBob, "approved", h2, "16:00", 501)
		},
		want:    verdict{"CM-2", Pass, []string{"approved by bob at 2025-03-03T16:00:00Z on the final head 222222222222"}},
		noWants: []string{"dependabot"},
	}, {
		// bob approves H2 at 16:00; carol requests changes at 16:10 and
		// never approves. CM-2 asks for one approval by someone other
		// than the author: bob's stands: pass. (GitHub itself blocks
		// such a merge only when the branch requires reviews and carol
		// has write access; the webhooks say neither, and the merge
		// happened.) The standing request is shown beside the pass.
		name: "two reviewers, one approves and one requests changes: pass, the request shown",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h2, "16:00", 501)
			g.review(ghCarol, "changes_requested", h2, "16:10", 502)
		},
		want: verdict{"CM-2", Pass, []string{
			"approved by bob at 2025-03-03T16:00:00Z on the final head 222222222222",
			"note: changes requested by carol at 2025-03-03T16:10:00Z on 222222222222 still stand (not dismissed, no later approval by carol)",
		}},
	}, {
		// The worked example of docs/evaluation.md ("Which reviews
		// count"): bob's 10:00 approval of H1 is stale and superseded by
		// his 15:00 approval of H2, which stands and counts;
		// dependabot's approval is a bot's; carol's approval is
		// superseded by her request for changes, which stands and is
		// shown; dave's comment changes nothing. Pass.
		name: "the docs' worked example: pass",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h1, "10:00", 501)
			g.review(ghDependabot, "approved", h2, "12:00", 502)
			g.review(ghCarol, "approved", h2, "13:00", 503)
			g.review(ghCarol, "changes_requested", h2, "13:30", 504)
			g.review(map[string]any{"login": "dave", "id": 1004, "type": "User"}, "commented", h2, "14:00", 505)
			g.review(ghBob, "approved", h2, "15:00", 506)
		},
		want: verdict{"CM-2", Pass, []string{
			"approved by bob at 2025-03-03T15:00:00Z on the final head 222222222222",
			"note: changes requested by carol at 2025-03-03T13:30:00Z on 222222222222 still stand (not dismissed, no later approval by carol)",
		}},
		noWants: []string{"dependabot", "dave"},
	}, {
		// The same without bob's 15:00 approval: bob's 10:00 approval
		// is his standing review but stale; dependabot is a bot; carol
		// withdrew hers. No approval counts: fail, each reason given.
		name: "the docs' worked example without the renewed approval: fail",
		steps: func(g *ghStory) {
			g.review(ghBob, "approved", h1, "10:00", 501)
			g.review(ghDependabot, "approved", h2, "12:00", 502)
			g.review(ghCarol, "approved", h2, "13:00", 503)
			g.review(ghCarol, "changes_requested", h2, "13:30", 504)
			g.review(map[string]any{"login": "dave", "id": 1004, "type": "User"}, "commented", h2, "14:00", 505)
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by bob on 111111111111 is stale: the final head is 222222222222",
			"approval by dependabot[bot] does not count: dependabot[bot] is a bot account, not a peer reviewer",
			"approval by carol at 2025-03-03T13:00:00Z was withdrawn: carol requested changes at 2025-03-03T13:30:00Z",
			"deadline 2025-03-04T10:00:00Z passed",
		}},
	}, {
		// alice approves her own pull request: not a peer review: fail.
		name: "self-approval: fail",
		steps: func(g *ghStory) {
			g.review(ghAlice, "approved", h2, "16:00", 501)
		},
		want: verdict{"CM-2", Fail, []string{"approval by alice is the author's own", "deadline 2025-03-04T10:00:00Z passed"}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGHStory(t)
			g.opened()
			g.pushed(h1, h2, "11:00")
			c.steps(g)
			g.merged(h2)
			g.deployed()
			res := judge(t, g.fx, ghRepo+"@"+mergeSHA, Params{})
			expect(t, res, c.want, c.noWants...)
		})
	}
}

// The GitLab story's deployment is known by its Deployment Hook of
// status success only (status_changed_at 2025-03-04 09:05): the change is
// judged as of 09:05, so missing evidence fails after 10:05.
func TestGitLabApprovalSemantics(t *testing.T) {
	cases := []struct {
		name  string
		steps func(s *glStory)
		want  verdict
	}{{
		// bob approves at 16:00 (on H2, the head then), unapproves at
		// 16:30: the unapproval withdraws his approvals until then. No
		// approval stands: fail.
		name: "approved then unapproved by the same user: fail",
		steps: func(s *glStory) {
			s.approval("approved", "bob", 1002, nil, "16:00")
			s.approval("unapproved", "bob", 1002, nil, "16:30")
		},
		want: verdict{"CM-2", Fail, []string{"approval by bob was dismissed", "deadline 2025-03-04T10:05:00Z passed"}},
	}, {
		// ... and approves again at 16:45, after the unapproval: that
		// approval stands, on the final head H2: pass.
		name: "approved, unapproved, approved again: pass",
		steps: func(s *glStory) {
			s.approval("approved", "bob", 1002, nil, "16:00")
			s.approval("unapproved", "bob", 1002, nil, "16:30")
			s.approval("approval", "bob", 1002, nil, "16:45")
		},
		want: verdict{"CM-2", Pass, []string{"approved by bob at 2025-03-03T16:45:00Z on the final head 222222222222"}},
	}, {
		// bob's unapproval withdraws bob's approval only: carol's
		// approval at 16:10 stands: pass.
		name: "one reviewer unapproves, another's approval stands: pass",
		steps: func(s *glStory) {
			s.approval("approved", "bob", 1002, nil, "16:00")
			s.approval("approved", "carol", 1003, nil, "16:10")
			s.approval("unapproved", "bob", 1002, nil, "16:30")
		},
		want: verdict{"CM-2", Pass, []string{"approved by carol at 2025-03-03T16:10:00Z on the final head 222222222222"}},
	}, {
		// A project access token's user (project_42_bot_…) approves:
		// a bot, not a peer reviewer: fail.
		name: "approval by a project access token's bot user: fail",
		steps: func(s *glStory) {
			s.approval("approved", "project_42_bot_3f9a", 2001, nil, "16:00")
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by project_42_bot_3f9a does not count: project_42_bot_3f9a is a bot account, not a peer reviewer",
			"deadline 2025-03-04T10:05:00Z passed",
		}},
	}, {
		// The payload says the user is a bot ("bot": true): fail.
		name: "approval by a user the payload marks as a bot: fail",
		steps: func(s *glStory) {
			s.approval("approved", "release-automation", 2002, true, "16:00")
		},
		want: verdict{"CM-2", Fail, []string{
			"approval by release-automation does not count: release-automation is a bot account, not a peer reviewer",
			"deadline 2025-03-04T10:05:00Z passed",
		}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newGLStory(t)
			c.steps(s)
			s.merged()
			res := judge(t, s.fx, glRepo+"@"+mergeSHA, Params{})
			expect(t, res, c.want)
		})
	}
}

func TestTicketApproverSemantics(t *testing.T) {
	carol := map[string]any{"accountId": "712020:carol", "displayName": "Carol Jones", "emailAddress": "carol@acme.example", "accountType": "atlassian"}
	automation := map[string]any{"accountId": "557058:f58131cb-b67d-43c7-b30d-6b58d40bd077", "displayName": "Automation for Jira", "accountType": "app"}
	cases := []struct {
		name     string
		approver map[string]any
		want     verdict
	}{{
		// carol, a person, moves PAY-123 to Approved at 16:00 on
		// 2025-03-03, before the deployment (2025-03-04T09:00): pass.
		name: "a person approves the ticket: pass", approver: carol,
		want: verdict{"CM-1", Pass, []string{"ticket PAY-123 approved by 712020:carol at 2025-03-03T16:00:00Z (deployment at 2025-03-04T09:00:00Z)"}},
	}, {
		// An Automation for Jira rule (an app account) makes the same
		// transition: a bot approves nothing, the ticket has no
		// approval by a person, the deadline (10:00) passed: fail.
		name: "a bot approves the ticket: fail", approver: automation,
		want: verdict{"CM-1", Fail, []string{
			"ticket PAY-123 approval by 557058:f58131cb-b67d-43c7-b30d-6b58d40bd077 does not count: 557058:f58131cb-b67d-43c7-b30d-6b58d40bd077 is a bot account, not a ticket approver",
			"deadline 2025-03-04T10:00:00Z passed",
		}},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGHStory(t)
			g.opened()
			g.pushed(h1, h2, "11:00")
			g.review(ghBob, "approved", h2, "16:00", 501)
			g.merged(h2)
			g.deployed()

			jf := g.fx.Another(t, jira.New(jira.Options{Now: func() time.Time { return judgedAt }}), hookSecret)
			body := fixture(t, "jira_issue_updated.json", func(m map[string]any) { m["user"] = c.approver })
			hdr := webhooktest.Header("Content-Type", "application/json", "X-Atlassian-Webhook-Identifier", "jira-"+t.Name(),
				"X-Hub-Signature", webhooktest.SignHex(hookSecret, body))
			post(t, jf, hdr, body)

			res := judge(t, g.fx, ghRepo+"@"+mergeSHA, Params{})
			expect(t, res, c.want)
			// The review is a person's: CM-2 is not what fails here.
			expect(t, res, verdict{"CM-2", Pass, nil})
		})
	}
}

// ghStory posts the deliveries of one GitHub pull request.
type ghStory struct {
	t  *testing.T
	fx *webhooktest.Fixture
	n  int
}

func newGHStory(t *testing.T) *ghStory {
	// The clock dates what has no time of its own: a dismissal, 16:45.
	p := github.New(github.Options{Now: func() time.Time { return on3("16:45") }})
	return &ghStory{t: t, fx: webhooktest.Handler(t, p, hookSecret)}
}

// send signs and posts one delivery of event.
func (g *ghStory) send(event string, body []byte) {
	g.t.Helper()
	g.n++
	hdr := webhooktest.Header("X-GitHub-Event", event, "X-GitHub-Delivery", fmt.Sprintf("%08d-0000-4000-8000-%012d", g.n, len(g.t.Name())),
		"Content-Type", "application/json", "User-Agent", "GitHub-Hookshot/044aadd",
		"X-Hub-Signature-256", webhooktest.SignHex(hookSecret, body))
	post(g.t, g.fx, hdr, body)
}

func (g *ghStory) opened() {
	g.send("pull_request", fixture(g.t, "github_pull_request.json", nil))
}

func (g *ghStory) pushed(from, to, hhmm string) {
	g.send("pull_request", fixture(g.t, "github_pull_request.json", func(m map[string]any) {
		m["action"], m["before"], m["after"] = "synchronize", from, to
		pr := obj(m, "pull_request")
		pr["updated_at"] = on3(hhmm).Format(time.RFC3339)
		obj(pr, "head")["sha"] = to
	}))
}

func (g *ghStory) merged(head string) {
	g.send("pull_request", fixture(g.t, "github_pull_request.json", func(m map[string]any) {
		m["action"], m["sender"] = "closed", ghBob
		pr := obj(m, "pull_request")
		merged := on3("17:00").Format(time.RFC3339)
		pr["state"], pr["merged"], pr["merged_by"], pr["merge_commit_sha"] = "closed", true, ghBob, mergeSHA
		pr["merged_at"], pr["closed_at"], pr["updated_at"] = merged, merged, merged
		obj(pr, "head")["sha"] = head
	}))
}

func (g *ghStory) review(user map[string]any, state, head, hhmm string, id int64) {
	g.send("pull_request_review", fixture(g.t, "github_pull_request_review.json", func(m map[string]any) {
		m["sender"] = user
		rv := obj(m, "review")
		rv["id"], rv["user"], rv["state"], rv["commit_id"] = id, user, state, head
		rv["submitted_at"] = on3(hhmm).Format(time.RFC3339)
		rv["html_url"] = fmt.Sprintf("https://github.com/acme/payments/pull/42#pullrequestreview-%d", id)
		obj(m, "pull_request", "head")["sha"] = head
	}))
}

// dismiss: by dismisses review id, which user gave on head at hhmm.
func (g *ghStory) dismiss(user map[string]any, head, hhmm string, id int64, by map[string]any) {
	g.send("pull_request_review", fixture(g.t, "github_pull_request_review.json", func(m map[string]any) {
		m["action"], m["sender"] = "dismissed", by
		rv := obj(m, "review")
		rv["id"], rv["user"], rv["state"], rv["commit_id"] = id, user, "dismissed", head
		rv["submitted_at"] = on3(hhmm).Format(time.RFC3339)
		obj(m, "pull_request", "head")["sha"] = head
	}))
}

func (g *ghStory) deployed() {
	g.send("deployment_status", fixture(g.t, "github_deployment_status.json", nil))
}

// glStory posts the deliveries of one GitLab merge request: opened on H1
// at 09:00, H2 pushed at 11:00 (before the steps), merged at 17:00 and
// deployed to production by 2025-03-04 09:05 (after them).
type glStory struct {
	t  *testing.T
	fx *webhooktest.Fixture
	n  int
}

func newGLStory(t *testing.T) *glStory {
	p := gitlab.New(gitlab.Options{Now: func() time.Time { return judgedAt }})
	s := &glStory{t: t, fx: webhooktest.Handler(t, p, hookSecret)}
	s.send("Merge Request Hook", fixture(t, "gitlab_merge_request.json", nil))
	s.send("Merge Request Hook", fixture(t, "gitlab_merge_request.json", func(m map[string]any) {
		oa := obj(m, "object_attributes")
		oa["action"], oa["oldrev"], oa["updated_at"] = "update", h1, "2025-03-03 11:00:00 UTC"
		obj(oa, "last_commit")["id"] = h2
	}))
	return s
}

func (s *glStory) send(event string, body []byte) {
	s.t.Helper()
	s.n++
	hdr := webhooktest.Header("X-Gitlab-Event", event, "X-Gitlab-Token", hookSecret, "Content-Type", "application/json",
		"X-Gitlab-Event-UUID", fmt.Sprintf("%08d-1111-4000-8000-%012d", s.n, len(s.t.Name())))
	post(s.t, s.fx, hdr, body)
}

// approval posts a merge request hook of action (approved, approval,
// unapproved, unapproval) by username at hhmm, on H2. bot, when not nil,
// is the user's "bot" member.
func (s *glStory) approval(action, username string, id int64, bot any, hhmm string) {
	s.send("Merge Request Hook", fixture(s.t, "gitlab_merge_request.json", func(m map[string]any) {
		u := map[string]any{"id": id, "name": username, "username": username, "email": "[REDACTED]"}
		if bot != nil {
			u["bot"] = bot
		}
		m["user"] = u
		oa := obj(m, "object_attributes")
		oa["action"], oa["updated_at"] = action, "2025-03-03 "+hhmm+":00 UTC"
		obj(oa, "last_commit")["id"] = h2
	}))
}

func (s *glStory) merged() {
	s.send("Merge Request Hook", fixture(s.t, "gitlab_merge_request.json", func(m map[string]any) {
		m["user"] = map[string]any{"id": 1002, "name": "Bob Chen", "username": "bob", "email": "[REDACTED]"}
		oa := obj(m, "object_attributes")
		oa["action"], oa["state"], oa["merge_commit_sha"], oa["updated_at"] = "merge", "merged", mergeSHA, "2025-03-03 17:00:00 UTC"
		obj(oa, "last_commit")["id"] = h2
	}))
	s.send("Deployment Hook", fixture(s.t, "gitlab_deployment.json", nil))
}

// post posts a delivery and requires it accepted, every event new.
func post(t *testing.T, fx *webhooktest.Fixture, hdr http.Header, body []byte) webhook.Response {
	t.Helper()
	code, r := fx.Post(t, hdr, body)
	if code != http.StatusAccepted || r.Accepted == 0 || r.Duplicates != 0 {
		t.Fatalf("delivery answered %d %+v, want 202 with new events", code, r)
	}
	return r
}

// judge correlates the events the handlers stored and evaluates the
// record id as of judgedAt.
func judge(t *testing.T, fx *webhooktest.Fixture, id string, params Params) []Result {
	t.Helper()
	s := correlatetest.State(t, fx.StreamEvents(t)...)
	rec, ok := s.Record(id)
	if !ok {
		var ids []string
		for _, r := range s.Records() {
			ids = append(ids, r.ID)
		}
		t.Fatalf("no record %s among %q", id, ids)
	}
	res, err := engine(t).Evaluate(context.Background(), rec, judgedAt, params)
	if err != nil {
		t.Fatal(err)
	}
	if t.Failed() {
		logReviews(t, rec)
	}
	return res
}

func logReviews(t *testing.T, rec correlate.Record) {
	b, _ := json.MarshalIndent(rec.PullRequest.Reviews, "", "  ")
	t.Logf("reviews of %s:\n%s", rec.ID, b)
}

// expect checks one control's result: its status, that each wanted
// reason is one of its reasons, and that no reason contains a noWant.
func expect(t *testing.T, res []Result, want verdict, noWants ...string) {
	t.Helper()
	for _, x := range res {
		if x.Control.ID != want.control {
			continue
		}
		if x.Status != want.status {
			t.Errorf("%s: %s %q, want %s", x.Control.ID, x.Status, x.Reasons, want.status)
		}
		for _, r := range want.reasons {
			if !contains(x.Reasons, r) {
				t.Errorf("%s: reasons %q, want %q among them", x.Control.ID, x.Reasons, r)
			}
		}
		for _, no := range noWants {
			if strings.Contains(strings.Join(x.Reasons, "\n"), no) {
				t.Errorf("%s: reasons %q name %q", x.Control.ID, x.Reasons, no)
			}
		}
		return
	}
	t.Fatalf("no result for %s", want.control)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// on3 is hh:mm on 2025-03-03, UTC.
func on3(hhmm string) time.Time {
	t, err := time.Parse(time.RFC3339, "2025-03-03T"+hhmm+":00Z")
	if err != nil {
		panic(err)
	}
	return t
}

// fixture reads testdata/webhooks/name, applies edit to its JSON object
// and encodes it again.
func fixture(t *testing.T, name string, edit func(m map[string]any)) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhooks", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if edit != nil {
		edit(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// obj is the object at the path of member names below m.
func obj(m map[string]any, path ...string) map[string]any {
	for _, p := range path {
		m = m[p].(map[string]any)
	}
	return m
}
