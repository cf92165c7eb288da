package gitlab

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Member events (issue 17): who holds which role on a project or group.
//
// GitLab announces them in two places, with one payload shape and no
// object_kind (the event_name says what happened):
//
//   - group webhooks ("Member Hook", group member events): a user added
//     to, changed on or removed from the group (user_add_to_group,
//     user_update_for_group, user_remove_from_group);
//   - system hooks ("System Hook", instance administrators): the same
//     three for groups, and for projects user_add_to_team,
//     user_update_for_team and user_remove_from_team, which carry the
//     project's path_with_namespace.
//
// Neither says who made the change: the grant's actor is empty, so AC-3
// finds no approver unless an access ticket or exception covers it
// (docs/access.md). Neither carries the instance's address either: it is
// taken from X-Gitlab-Instance (GitLab 15.5 and later), and a delivery
// without it is refused, since a repository key without its host would
// not match the other events of the project. Access requests
// (user_access_request_to_group, ..._denied_for_group) are ignored: a
// request grants nothing.

// memberEvents maps a member event_name to the grant's action and scope.
var memberEvents = map[string]struct{ action, scope string }{
	"user_add_to_group":      {"granted", "organization"},
	"user_update_for_group":  {"changed", "organization"},
	"user_remove_from_group": {"removed", "organization"},
	"user_add_to_team":       {"granted", "repository"},
	"user_update_for_team":   {"changed", "repository"},
	"user_remove_from_team":  {"removed", "repository"},
}

// isMemberEvent reports whether event_name is a member event this
// provider translates or deliberately ignores.
func isMemberEvent(name string) bool {
	_, ok := memberEvents[name]
	return ok || strings.HasPrefix(name, "user_access_request")
}

type memberPayload struct {
	EventName   string `json:"event_name"`
	CreatedAt   string `json:"created_at"`
	UpdatedAt   string `json:"updated_at"`
	UserID      int64  `json:"user_id"`
	Username    string `json:"user_username"`
	UserName    string `json:"user_name"`
	UserEmail   string `json:"user_email"`
	GroupID     int64  `json:"group_id"`
	GroupPath   string `json:"group_path"`
	GroupAccess string `json:"group_access"`
	ProjectID   int64  `json:"project_id"`
	ProjectPath string `json:"project_path_with_namespace"`
	AccessLevel string `json:"access_level"`
	ExpiresAt   string `json:"expires_at"`
}

type memberPrincipal struct {
	Kind  string `json:"kind"`
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
}

type memberData struct {
	Scope              string          `json:"scope"`
	Repository         string          `json:"repository,omitempty"`
	Organization       string          `json:"organization,omitempty"`
	Action             string          `json:"action"`
	Principal          memberPrincipal `json:"principal"`
	Permission         string          `json:"permission"`
	PlatformPermission string          `json:"platform_permission,omitempty"`
	ExpiresAt          string          `json:"expires_at,omitempty"`
	ChangedAt          string          `json:"changed_at"`
	Provider           string          `json:"provider"`
	Delivery           string          `json:"delivery,omitempty"`
}

// ProjectPermission normalises a GitLab role on a project (the name or
// the numeric access level) to the catalog's repository permission:
// Guest, Planner and Reporter read; Developer write; Maintainer
// maintain; Owner admin; Minimal Access none. An unknown role counts as
// write, so that the grant is judged as one that can change code.
func ProjectPermission(role string) string {
	switch strings.ToLower(strings.TrimSpace(role)) {
	case "minimal access", "5", "none", "":
		return "none"
	case "guest", "10", "planner", "15", "reporter", "20":
		return "read"
	case "developer", "30":
		return "write"
	case "maintainer", "40":
		return "maintain"
	case "owner", "50":
		return "admin"
	}
	return "write"
}

// GroupPermission normalises a GitLab role in a group to the catalog's
// organisation permission: Owner is admin, any other role member. The
// role's own word is kept as platform_permission: a group Developer can
// push to every project of the group, which the access record of a
// project does not derive from the group's membership (docs/access.md).
func GroupPermission(role string) string {
	switch strings.ToLower(strings.TrimSpace(role)) {
	case "owner", "50":
		return "admin"
	case "none", "":
		return "none"
	}
	return "member"
}

// member translates one member event of a group webhook or system hook.
func (p *Provider) member(h http.Header, body []byte) ([]*ce.Event, error) {
	var m memberPayload
	if err := webhook.Decode(body, &m); err != nil {
		return nil, err
	}
	ev, ok := memberEvents[m.EventName]
	if !ok {
		return nil, &webhook.Ignored{Reason: "GitLab " + m.EventName + ": an access request grants nothing"}
	}
	name := strings.TrimSpace(h.Get("X-Gitlab-Event"))
	if name == "" {
		name = "Member Hook"
	}
	d := newDelivery(h, body, name, p.now())
	host, err := instanceHost(h.Get("X-Gitlab-Instance"))
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(m.Username) == "" {
		return nil, webhook.FieldError("user_username", "missing: the payload does not name the member")
	}
	data := memberData{
		Scope: ev.scope, Action: ev.action, Provider: providerName, Delivery: d.ID,
		Principal: memberPrincipal{Kind: "user", Login: m.Username, Name: m.UserName},
	}
	if m.UserID != 0 {
		data.Principal.ID = strconv.FormatInt(m.UserID, 10)
	}
	var role, source, subject string
	switch ev.scope {
	case "repository":
		path := strings.Trim(strings.TrimSpace(m.ProjectPath), "/")
		if path == "" {
			return nil, webhook.FieldError("project_path_with_namespace", "missing: the payload does not name its project")
		}
		repo, err := webhook.Repository("project_path_with_namespace", "https://"+host+"/"+path)
		if err != nil {
			return nil, err
		}
		data.Repository, role = repo, m.AccessLevel
		if strings.TrimSpace(role) == "" && ev.action != "removed" {
			return nil, webhook.FieldError("access_level", "missing: the payload does not state the member's role")
		}
		data.Permission = ProjectPermission(role)
		source, subject = "https://"+repo, repo
	default:
		path := strings.ToLower(strings.Trim(strings.TrimSpace(m.GroupPath), "/"))
		if path == "" || strings.Contains(path, "/") {
			return nil, webhook.FieldError("group_path", "%q: want the group's path", m.GroupPath)
		}
		data.Organization, role = host+"/"+path, m.GroupAccess
		if strings.TrimSpace(role) == "" && ev.action != "removed" {
			return nil, webhook.FieldError("group_access", "missing: the payload does not state the member's role")
		}
		data.Permission = GroupPermission(role)
		source, subject = "https://"+data.Organization, data.Organization
	}
	if ev.action == "removed" {
		data.Permission = "none"
	}
	data.PlatformPermission = strings.TrimSpace(role)
	if m.ExpiresAt != "" {
		exp, err := timestamp("expires_at", m.ExpiresAt)
		if err != nil {
			return nil, err
		}
		data.ExpiresAt = webhook.FormatTime(exp)
	}
	// When: a grant when the membership was created, a change when it was
	// updated; a removal has no time of its own in the payload (the
	// timestamps are the removed membership's), so it is when GitLab
	// delivered it.
	at := d.ReceivedAt
	switch ev.action {
	case "granted":
		at, err = stamp("created_at", m.CreatedAt, at)
	case "changed":
		at, err = stamp("updated_at", m.UpdatedAt, at)
	}
	if err != nil {
		return nil, err
	}
	data.ChangedAt = webhook.FormatTime(at)
	e, err := d.Event(source, "access.grant", webhook.TypeAccessGrantChanged, subject, at, data)
	if err != nil {
		return nil, err
	}
	raw, err := d.Raw(source, subject, at)
	if err != nil {
		return nil, err
	}
	return []*ce.Event{e, raw}, nil
}

// stamp parses a timestamp of the payload, or gives fallback when the
// payload has none.
func stamp(field, s string, fallback time.Time) (time.Time, error) {
	t, err := timestamp(field, s)
	if err != nil || t.IsZero() {
		return fallback, err
	}
	return t.UTC(), nil
}

// instanceHost is the host of X-Gitlab-Instance ("https://gitlab.com"),
// in lower case.
func instanceHost(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return "", webhook.FieldError("X-Gitlab-Instance", "missing: member events do not name their GitLab instance, and GitLab sends this header since 15.5")
	}
	host := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(v, "https://"), "http://"), "/"))
	if host == "" || strings.ContainsAny(host, "/ ?#@") {
		return "", webhook.FieldError("X-Gitlab-Instance", "%q: want the instance's address, e.g. https://gitlab.com", v)
	}
	return host, nil
}
