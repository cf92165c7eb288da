package github

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// The parts of GitHub's payloads the translators read. Only what is read
// is declared: fields whose type varies between events (repository.pushed_at
// is a number in push payloads, a string elsewhere) are left out.

type ghUser struct {
	Login string `json:"login"`
	ID    int64  `json:"id"`
	Type  string `json:"type"`
	Name  string `json:"name"`
	Email string `json:"email"`
}

type ghRepo struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	HTMLURL       string `json:"html_url"`
	DefaultBranch string `json:"default_branch"`
}

type ghRef struct {
	Ref  string  `json:"ref"`
	SHA  string  `json:"sha"`
	Repo *ghRepo `json:"repo"`
}

type ghPull struct {
	Number         int64   `json:"number"`
	HTMLURL        string  `json:"html_url"`
	Title          string  `json:"title"`
	User           *ghUser `json:"user"`
	Draft          bool    `json:"draft"`
	Merged         bool    `json:"merged"`
	MergeCommitSHA string  `json:"merge_commit_sha"`
	MergedBy       *ghUser `json:"merged_by"`
	CreatedAt      string  `json:"created_at"`
	UpdatedAt      string  `json:"updated_at"`
	ClosedAt       string  `json:"closed_at"`
	MergedAt       string  `json:"merged_at"`
	Head           *ghRef  `json:"head"`
	Base           *ghRef  `json:"base"`
}

// envelope is what every event payload has.
type envelope struct {
	Action     string  `json:"action"`
	Repository *ghRepo `json:"repository"`
	Sender     *ghUser `json:"sender"`
}

// decode parses a payload into v, with errors that name the JSON field.
func decode(payload []byte, v any) error {
	err := json.Unmarshal(payload, v)
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &te):
		return fmt.Errorf("%s: want %s, got %s", cmp.Or(te.Field, "payload"), webhook.JSONKind(te.Type), te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("payload: not valid JSON: %s at byte %d", se.Error(), se.Offset)
	}
	return fmt.Errorf("payload: %w", err)
}

// missing is the error for a required field the payload lacks.
func missing(field string) error { return fmt.Errorf("%s: missing", field) }

// repo is a repository as the events name it.
type repo struct {
	key    string // github.com/acme/payments
	source string // https://github.com/acme/payments
	web    string // web address as GitHub gives it, for links
	name   string // payments, as GitHub spells it
}

var repositoryRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9_.~-]+){2,}$`)

// repoOf makes the repository key from repository.html_url (which names
// the GitHub Enterprise host too), or from full_name on github.com.
func repoOf(r *ghRepo) (repo, error) {
	if r == nil {
		return repo{}, missing("repository")
	}
	web := strings.TrimSuffix(strings.TrimSpace(r.HTMLURL), "/")
	field := "repository.html_url"
	if web == "" {
		if r.FullName == "" {
			return repo{}, missing("repository.html_url")
		}
		web, field = "https://github.com/"+r.FullName, "repository.full_name"
	}
	u, err := url.Parse(web)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return repo{}, fmt.Errorf("%s: not a repository web address: %q", field, web)
	}
	key := strings.ToLower(u.Host + strings.TrimSuffix(u.Path, ".git"))
	if !repositoryRE.MatchString(key) {
		return repo{}, fmt.Errorf("%s: not a repository web address: %q", field, web)
	}
	name := r.Name
	if name == "" {
		name = key[strings.LastIndexByte(key, '/')+1:]
	}
	return repo{key: key, source: u.Scheme + "://" + key, web: web, name: name}, nil
}

// pullURL is the web link of pull request n.
func (r repo) pullURL(n int64) string { return r.web + "/pull/" + strconv.FormatInt(n, 10) }

// identity is the catalog's person or machine account.
type identity struct {
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Type  string `json:"type,omitempty"`
}

// identityOf converts a GitHub user; nil when there is no login.
func identityOf(u *ghUser) *identity {
	if u == nil || strings.TrimSpace(u.Login) == "" {
		return nil
	}
	id := &identity{Login: u.Login, Name: u.Name, Email: u.Email}
	if u.ID > 0 {
		id.ID = strconv.FormatInt(u.ID, 10)
	}
	switch {
	case u.Login == "github-actions[bot]":
		id.Type = "service" // the pipeline's own identity
	case u.Type == "Bot" || isBotLogin(u.Login):
		id.Type = "bot"
	case u.Type == "User":
		id.Type = "user"
	}
	return id
}

// isBotLogin reports whether a login is a GitHub App's bot account
// (dependabot[bot], renovate[bot]): GitHub gives every app a login ending
// in [bot], which no person's login can contain. It makes such an account
// a bot even where a payload says "type": "User" or leaves the type out.
func isBotLogin(login string) bool {
	return strings.HasSuffix(strings.ToLower(login), "[bot]")
}

// requiredIdentity is identityOf for a field the event cannot do without.
func requiredIdentity(u *ghUser, field string) (*identity, error) {
	id := identityOf(u)
	if id == nil {
		return nil, missing(field + ".login")
	}
	return id, nil
}

// sha returns a commit SHA in lower case, or "" when s is not one. The
// all-zero SHA (no commit, in push and pull request payloads) is none.
func sha(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if !webhook.IsCommitSHA(s) || strings.Trim(s, "0") == "" {
		return ""
	}
	return s
}

// requiredSHA is sha for a field the event cannot do without.
func requiredSHA(s, field string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", missing(field)
	}
	v := sha(s)
	if v == "" {
		return "", fmt.Errorf("%s: not a commit SHA: %q", field, s)
	}
	return v, nil
}

// timestamp parses an RFC 3339 time of the payload. ok is false when s is
// empty or not a time.
func timestamp(s string) (t time.Time, ok bool) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil || t.Year() < 1 || t.Year() > 9999 {
		return time.Time{}, false
	}
	return t.UTC(), true
}

// timeLayout is how the events write times.
const timeLayout = time.RFC3339Nano

// rfc3339 is the catalog's form of a payload time, "" when it has none.
func rfc3339(s string) string {
	t, ok := timestamp(s)
	if !ok {
		return ""
	}
	return t.Format(timeLayout)
}

// factTime is the first valid time among ss, else now.
func factTime(now time.Time, ss ...string) time.Time {
	for _, s := range ss {
		if t, ok := timestamp(s); ok {
			return t
		}
	}
	return now
}

// webURL keeps s when it is an absolute http(s) URL (the schemas check
// the uri format), else "".
func webURL(s string) string {
	s = strings.TrimSpace(s)
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return ""
	}
	return s
}

// jsonObject reports whether b is a JSON object.
func jsonObject(b []byte) bool {
	b = bytes.TrimSpace(b)
	return len(b) > 0 && b[0] == '{' && json.Valid(b)
}
