package correlate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// Raw webhooks: the correlator reads one thing from them, pushes to a
// repository's default branch (GitHub push, GitLab Push Hook), which the
// adapters keep as webhook.received only. A push is to the default branch
// when its ref is refs/heads/<default branch> as the payload names it
// (GitHub repository.default_branch, GitLab project.default_branch). Every
// other raw webhook, a push to another branch, a tag push and a branch
// deletion give no fact.

type webhookData struct {
	Provider      string          `json:"provider"`
	Event         string          `json:"event"`
	DeliveryID    string          `json:"delivery_id"`
	Payload       json.RawMessage `json:"payload"`
	PayloadSHA256 string          `json:"payload_sha256"`
	ReceivedAt    string          `json:"received_at"`
}

func (x *Extractor) webhook(e *ce.Event) (*Fact, error) {
	var d webhookData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	c.oneOf("provider", c.required("provider", d.Provider), "github", "gitlab", "jira", "servicenow")
	c.required("event", d.Event)
	if len(d.Payload) == 0 || string(bytes.TrimSpace(d.Payload)) == "null" {
		c.fail("payload", "required field is missing")
	}
	at := c.requiredTime("received_at", d.ReceivedAt)
	if c.err != nil {
		return nil, c.err
	}
	var p *PushFact
	var err error
	switch {
	case d.Provider == "github" && d.Event == "push":
		p, err = x.githubPush(d.Payload)
	case d.Provider == "gitlab" && d.Event == "Push Hook":
		p, err = x.gitlabPush(d.Payload)
	default:
		return nil, nil
	}
	if err != nil || p == nil {
		return nil, err
	}
	p.Provider, p.DeliveryID, p.PayloadSHA256 = d.Provider, d.DeliveryID, d.PayloadSHA256
	f := &Fact{Kind: KindPush, Time: at, Push: p, Keys: []Key{RepoKey(p.Repository)}}
	for _, s := range p.commits() {
		f.Keys = append(f.Keys, CommitKey(p.Repository, s))
	}
	for _, pc := range p.Commits {
		for _, k := range pc.TicketKeys {
			f.Keys = append(f.Keys, TicketKey(k))
		}
	}
	return f, nil
}

type rawCommit struct {
	ID        string `json:"id"`
	Message   string `json:"message"`
	Timestamp string `json:"timestamp"`
	Author    *struct {
		Name     string `json:"name"`
		Email    string `json:"email"`
		Username string `json:"username"`
	} `json:"author"`
}

type githubPushPayload struct {
	Ref        string `json:"ref"`
	Before     string `json:"before"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Forced     bool   `json:"forced"`
	Repository *struct {
		HTMLURL       string `json:"html_url"`
		FullName      string `json:"full_name"`
		DefaultBranch string `json:"default_branch"`
	} `json:"repository"`
	Pusher *struct {
		Name  string `json:"name"`
		Email string `json:"email"`
	} `json:"pusher"`
	Sender *struct {
		Login string          `json:"login"`
		ID    json.RawMessage `json:"id"`
		Type  string          `json:"type"`
	} `json:"sender"`
	Commits []rawCommit `json:"commits"`
}

func decodePayload(raw json.RawMessage, v any) error {
	e := &ce.Event{Data: raw}
	if err := decode(e, v); err != nil {
		if fe, ok := err.(*ce.Error); ok {
			fe.Field = "data/payload" + strings.TrimPrefix(fe.Field, "data")
		}
		return err
	}
	return nil
}

func (x *Extractor) githubPush(raw json.RawMessage) (*PushFact, error) {
	var p githubPushPayload
	if err := decodePayload(raw, &p); err != nil {
		return nil, err
	}
	var c check
	ref := c.required("payload/ref", p.Ref)
	if c.err != nil {
		return nil, c.err
	}
	if !strings.HasPrefix(ref, "refs/heads/") || p.Deleted || zeroSHA(p.After) {
		return nil, nil // a tag, another ref, or a branch deletion
	}
	if p.Repository == nil {
		return nil, &ce.Error{Field: "data/payload/repository", Message: "required field is missing"}
	}
	def := c.required("payload/repository/default_branch", p.Repository.DefaultBranch)
	repo := ""
	switch {
	case p.Repository.HTMLURL != "":
		repo = c.repo("payload/repository/html_url", strings.ToLower(ci.NormalizeRepository(p.Repository.HTMLURL)), true)
	case p.Repository.FullName != "":
		repo = c.repo("payload/repository/full_name", "github.com/"+strings.ToLower(p.Repository.FullName), true)
	default:
		c.fail("payload/repository/html_url", "required field is missing or empty")
	}
	if c.err != nil {
		return nil, c.err
	}
	if ref != "refs/heads/"+def {
		return nil, nil // not the default branch
	}
	pf := &PushFact{
		Repository:    repo,
		Ref:           ref,
		DefaultBranch: def,
		Before:        c.sha("payload/before", p.Before),
		After:         c.requiredSHA("payload/after", p.After),
		Forced:        p.Forced,
	}
	if zeroSHA(pf.Before) {
		pf.Before = ""
	}
	if p.Sender != nil || p.Pusher != nil {
		id := &Identity{}
		if p.Sender != nil {
			id.Login, id.ID, id.Type = p.Sender.Login, rawID(p.Sender.ID), githubType(p.Sender.Type)
		}
		if p.Pusher != nil {
			if id.Login == "" {
				id.Login = p.Pusher.Name
			}
			id.Email = p.Pusher.Email
		}
		pf.Pusher = id
	}
	pf.Commits = x.pushCommits(&c, p.Commits)
	if c.err != nil {
		return nil, c.err
	}
	return pf, nil
}

type gitlabPushPayload struct {
	Ref          string          `json:"ref"`
	Before       string          `json:"before"`
	After        string          `json:"after"`
	UserID       json.RawMessage `json:"user_id"`
	UserUsername string          `json:"user_username"`
	UserName     string          `json:"user_name"`
	UserEmail    string          `json:"user_email"`
	Project      *struct {
		WebURL        string `json:"web_url"`
		DefaultBranch string `json:"default_branch"`
	} `json:"project"`
	Commits []rawCommit `json:"commits"`
}

func (x *Extractor) gitlabPush(raw json.RawMessage) (*PushFact, error) {
	var p gitlabPushPayload
	if err := decodePayload(raw, &p); err != nil {
		return nil, err
	}
	var c check
	ref := c.required("payload/ref", p.Ref)
	if c.err != nil {
		return nil, c.err
	}
	if !strings.HasPrefix(ref, "refs/heads/") || zeroSHA(p.After) {
		return nil, nil
	}
	if p.Project == nil {
		return nil, &ce.Error{Field: "data/payload/project", Message: "required field is missing"}
	}
	def := c.required("payload/project/default_branch", p.Project.DefaultBranch)
	repo := c.repo("payload/project/web_url", strings.ToLower(ci.NormalizeRepository(p.Project.WebURL)), true)
	if c.err != nil {
		return nil, c.err
	}
	if ref != "refs/heads/"+def {
		return nil, nil
	}
	pf := &PushFact{
		Repository:    repo,
		Ref:           ref,
		DefaultBranch: def,
		Before:        c.sha("payload/before", p.Before),
		After:         c.requiredSHA("payload/after", p.After),
	}
	if zeroSHA(pf.Before) {
		pf.Before = ""
	}
	if p.UserUsername != "" {
		pf.Pusher = &Identity{Login: p.UserUsername, ID: rawID(p.UserID), Name: p.UserName, Email: redacted(p.UserEmail), Type: "user"}
	}
	pf.Commits = x.pushCommits(&c, p.Commits)
	if c.err != nil {
		return nil, c.err
	}
	return pf, nil
}

func (x *Extractor) pushCommits(c *check, in []rawCommit) []PushCommit {
	var out []PushCommit
	for i, rc := range in {
		pc := PushCommit{SHA: c.requiredSHA(fmt.Sprintf("payload/commits/%d/id", i), rc.ID), Message: rc.Message}
		if t, err := time.Parse(time.RFC3339, rc.Timestamp); err == nil {
			pc.Timestamp = t.UTC()
		}
		if a := rc.Author; a != nil {
			pc.Author = &Identity{Login: a.Username, Name: a.Name, Email: redacted(a.Email)}
		}
		m := mentions{}
		m.add("commit_message", x.Tickets.Find(rc.Message)...)
		for _, mm := range m.list() {
			pc.TicketKeys = append(pc.TicketKeys, mm.Key)
		}
		out = append(out, pc)
	}
	return out
}

func zeroSHA(s string) bool { return s != "" && strings.Trim(s, "0") == "" }

// rawID reads an account id given as a JSON number or string.
func rawID(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	if s == "" || s == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	return s
}

func githubType(t string) string {
	switch t {
	case "User":
		return "user"
	case "Bot":
		return "bot"
	}
	return ""
}

// redacted drops GitLab's "[REDACTED]" placeholder for e-mail addresses.
func redacted(email string) string {
	if email == "[REDACTED]" {
		return ""
	}
	return email
}
