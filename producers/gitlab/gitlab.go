package gitlab

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/ticketkeys"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

const (
	providerName = "gitlab"
	// SecretEnv is the environment variable that holds the webhook's secret
	// token.
	SecretEnv = "EVIDENCE_GITLAB_TOKEN"
	// TokenHeader carries the secret token in every delivery.
	TokenHeader = "X-Gitlab-Token"
)

// TicketFinder finds ticket keys in texts and branch names
// (*ticketkeys.Matcher).
type TicketFinder interface {
	Find(texts ...string) []string
	FindInBranch(branch string) []string
}

// Options configures the provider. The zero value is usable.
type Options struct {
	// Now returns the current time, used for received_at (default
	// time.Now).
	Now func() time.Time
	// Tickets finds ticket keys in merge request titles and source
	// branches (default ticketkeys.Default()).
	Tickets TicketFinder
}

// Provider verifies and translates GitLab webhook deliveries.
type Provider struct {
	now     func() time.Time
	tickets TicketFinder
}

// New returns a GitLab provider.
func New(opts Options) *Provider {
	p := &Provider{now: opts.Now, tickets: opts.Tickets}
	if p.now == nil {
		p.now = time.Now
	}
	if p.tickets == nil {
		p.tickets = ticketkeys.Default()
	}
	return p
}

// Name is "gitlab": deliveries are POSTed to /webhooks/gitlab.
func (p *Provider) Name() string { return providerName }

// SecretEnv names the variable of the secret token.
func (p *Provider) SecretEnv() string { return SecretEnv }

// Verify checks that X-Gitlab-Token equals secret, in constant time.
func (p *Provider) Verify(h http.Header, _ []byte, secret string) error {
	got := h.Get(TokenHeader)
	if got == "" {
		return fmt.Errorf("%w: the %s header is missing (set the webhook's secret token in GitLab to the value of %s)", webhook.ErrBadSignature, TokenHeader, SecretEnv)
	}
	if secret == "" || !equalSecret(got, secret) {
		return fmt.Errorf("%w: the %s header does not match %s", webhook.ErrBadSignature, TokenHeader, SecretEnv)
	}
	return nil
}

// equalSecret compares two secrets in constant time, lengths included.
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// hookKinds maps X-Gitlab-Event to object_kind, for payloads without one.
var hookKinds = map[string]string{
	"Push Hook": "push", "Tag Push Hook": "tag_push", "Merge Request Hook": "merge_request",
	"Note Hook": "note", "Confidential Note Hook": "note", "Pipeline Hook": "pipeline",
	"Job Hook": "build", "Deployment Hook": "deployment", "Issue Hook": "issue",
	"Confidential Issue Hook": "issue", "Release Hook": "release", "Wiki Page Hook": "wiki_page",
}

// kindHooks maps object_kind to the X-Gitlab-Event name, for deliveries
// without the header.
var kindHooks = map[string]string{
	"push": "Push Hook", "tag_push": "Tag Push Hook", "merge_request": "Merge Request Hook",
	"note": "Note Hook", "pipeline": "Pipeline Hook", "build": "Job Hook",
	"deployment": "Deployment Hook", "issue": "Issue Hook", "release": "Release Hook",
	"wiki_page": "Wiki Page Hook", "feature_flag": "Feature Flag Hook", "access_token": "Resource Access Token Hook",
	"emoji": "Emoji Hook", "member": "Member Hook", "project": "Project Hook",
}

// Translate turns one delivery into events. It must only be called for a
// delivery that Verify accepted: the raw event records signature_verified.
func (p *Provider) Translate(h http.Header, body []byte) ([]*ce.Event, error) {
	var env struct {
		ObjectKind string `json:"object_kind"`
		EventName  string `json:"event_name"`
	}
	if err := webhook.Decode(body, &env); err != nil {
		return nil, err
	}
	if env.ObjectKind == "" && isMemberEvent(env.EventName) {
		return p.member(h, body)
	}
	header := strings.TrimSpace(h.Get("X-Gitlab-Event"))
	kind := env.ObjectKind
	if kind == "" {
		kind = hookKinds[header]
	}
	if kind == "" {
		if env.EventName != "" {
			return nil, &webhook.Ignored{Reason: "system or group hook event " + env.EventName + " carries no change evidence"}
		}
		return nil, webhook.FieldError("object_kind", "missing: not a GitLab webhook payload")
	}
	event := header
	if event == "" {
		event = kindHooks[kind]
	}
	if event == "" {
		event = kind
	}
	d := newDelivery(h, body, event, p.now())
	switch kind {
	case "merge_request":
		return p.mergeRequest(d)
	case "pipeline":
		return p.pipeline(d)
	case "deployment":
		return p.deployment(d)
	case "build":
		return p.job(d)
	case "push":
		return p.push(d)
	case "tag_push":
		return nil, &webhook.Ignored{Reason: "tag push: no change evidence"}
	case "note":
		return nil, &webhook.Ignored{Reason: "note: comments are not approvals"}
	default:
		return nil, &webhook.Ignored{Reason: "GitLab " + kind + " events carry no change evidence"}
	}
}

// user is the acting user of an event. Bot is the REST API's user.bot
// (true for project and group access token users and service accounts);
// webhook payloads carry it only where GitLab embeds an API user object.
// It is kept raw so that an unexpected value refuses nothing: only JSON
// true makes the user a bot.
type user struct {
	ID       int64           `json:"id"`
	Name     string          `json:"name"`
	Username string          `json:"username"`
	Email    string          `json:"email"`
	Bot      json.RawMessage `json:"bot"`
}

// project is the project object of every project-level event.
type project struct {
	ID                int64  `json:"id"`
	Name              string `json:"name"`
	WebURL            string `json:"web_url"`
	GitHTTPURL        string `json:"git_http_url"`
	PathWithNamespace string `json:"path_with_namespace"`
	DefaultBranch     string `json:"default_branch"`
}

// identity is the catalog's identity shape.
type identity struct {
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"`
}

// ident is the identity of a GitLab user, nil when the payload does not
// name the account (no username).
func ident(u *user) *identity {
	if u == nil || strings.TrimSpace(u.Username) == "" {
		return nil
	}
	id := &identity{Login: u.Username, Name: u.Name, Type: "user"}
	if u.ID != 0 {
		id.ID = strconv.FormatInt(u.ID, 10)
	}
	// Recent GitLab versions send "[REDACTED]" instead of the address.
	if strings.Contains(u.Email, "@") && !strings.Contains(u.Email, "REDACTED") {
		id.Email = u.Email
	}
	if strings.TrimSpace(string(u.Bot)) == "true" || botRe.MatchString(u.Username) || strings.HasSuffix(u.Username, "-bot") || u.Username == "ghost" {
		id.Type = "bot"
	}
	return id
}

// place is where an event happened: the repository key and the source.
type place struct {
	repo   string // host/group/project, lower case
	source string // the project's web URL
}

// locate finds the project of an event: its web URL, else its clone URL.
func locate(pr *project, fallbacks ...[2]string) (place, error) {
	cands := [][2]string{}
	if pr != nil {
		cands = append(cands, [2]string{"project.web_url", pr.WebURL}, [2]string{"project.git_http_url", pr.GitHTTPURL})
	}
	cands = append(cands, fallbacks...)
	for _, c := range cands {
		if strings.TrimSpace(c[1]) == "" {
			continue
		}
		repo, err := webhook.Repository(c[0], c[1])
		if err != nil {
			return place{}, err
		}
		// The source is the project's address in lower case, like the
		// repository key, so every event of a project has the same source.
		src := strings.ToLower(webhook.WebURL(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSpace(c[1]), "/"), ".git")))
		if src == "" {
			src = "https://" + repo
		}
		return place{repo: repo, source: src}, nil
	}
	return place{}, webhook.FieldError("project.web_url", "missing: the payload does not name its project")
}

// Interface guard.
var _ webhook.Provider = (*Provider)(nil)
