package github

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Team access to repositories, team and organisation membership.

type ghOrg struct {
	Login string `json:"login"`
	URL   string `json:"url"`
}

// orgOf names an organisation host/org in lower case: the host of its
// API address (api.github.com is github.com; GitHub Enterprise serves the
// API on its own host), and a repo whose source is the organisation's
// web address.
func orgOf(o *ghOrg) (string, repo, error) {
	if o == nil || strings.TrimSpace(o.Login) == "" {
		return "", repo{}, missing("organization.login")
	}
	host := "github.com"
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Host == "" {
			return "", repo{}, fmt.Errorf("organization.url: not a web address: %q", o.URL)
		}
		if u.Host != "api.github.com" {
			host = u.Host
		}
	}
	key := strings.ToLower(host + "/" + o.Login)
	return key, repo{key: "org:" + key, source: "https://" + key}, nil
}

type teamEvent struct {
	envelope
	Organization *ghOrg `json:"organization"`
	Team         *struct {
		ID         int64  `json:"id"`
		Slug       string `json:"slug"`
		Name       string `json:"name"`
		Permission string `json:"permission"`
	} `json:"team"`
	Repo *struct {
		ghRepo
		Permissions map[string]bool `json:"permissions"`
	} `json:"repository"`
	Changes *struct {
		Repository *struct {
			Permissions *struct {
				From map[string]bool `json:"from"`
			} `json:"permissions"`
		} `json:"repository"`
	} `json:"changes"`
}

// highest is the strongest permission a repository.permissions object
// grants (admin, maintain, push, triage, pull), "" when none.
func highest(p map[string]bool) string {
	for _, w := range []string{"admin", "maintain", "push", "triage", "pull"} {
		if p[w] {
			return w
		}
	}
	return ""
}

// translateTeam: a team given access to a repository, its access changed
// (edited with changes.repository.permissions) or removed. A team
// created, deleted or edited without a repository grants nothing on a
// repository and is ignored.
func translateTeam(d *delivery) (result, error) {
	var ev teamEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	if ev.Action == "" {
		return result{}, missing("action")
	}
	action := map[string]string{"added_to_repository": "granted", "edited": "changed", "removed_from_repository": "removed"}[ev.Action]
	if action == "" || ev.Repo == nil || ev.Repo.HTMLURL == "" && ev.Repo.FullName == "" {
		return result{}, ignored("team." + ev.Action + " without a repository")
	}
	if action == "changed" && (ev.Changes == nil || ev.Changes.Repository == nil || ev.Changes.Repository.Permissions == nil) {
		return result{}, ignored("team.edited without a change of repository permissions")
	}
	r, err := repoOf(&ev.Repo.ghRepo)
	if err != nil {
		return result{}, err
	}
	if ev.Team == nil || strings.TrimSpace(ev.Team.Slug) == "" {
		return result{}, missing("team.slug")
	}
	data := grantData{
		Scope: "repository", Repository: r.key, Action: action,
		Principal: principal{Kind: "team", Login: ev.Team.Slug, Name: ev.Team.Name},
		Actor:     identityOf(ev.Sender), ChangedAt: d.ReceivedAt.Format(timeLayout), Provider: "github", Delivery: d.ID,
	}
	if ev.Team.ID > 0 {
		data.Principal.ID = strconv.FormatInt(ev.Team.ID, 10)
	}
	word := highest(ev.Repo.Permissions)
	if word == "" && action != "removed" {
		word = ev.Team.Permission
	}
	switch {
	case action == "removed":
		data.Permission = "none"
	case word == "":
		return result{}, missing("repository.permissions")
	default:
		data.Permission, data.PlatformPermission = Permission(word), word
	}
	if action == "changed" {
		if from := highest(ev.Changes.Repository.Permissions.From); from != "" {
			data.PreviousPermission = Permission(from)
		}
	}
	return result{repo: r, facts: []fact{{typ: webhook.TypeAccessGrantChanged, suffix: "access.grant", subject: r.key, time: d.ReceivedAt, data: data}}}, nil
}

// orgGrant is a grant.changed of organisation scope.
type orgGrant struct {
	grantData
	Team string `json:"team,omitempty"`
}

type membershipEvent struct {
	envelope
	Scope        string  `json:"scope"`
	Member       *ghUser `json:"member"`
	Organization *ghOrg  `json:"organization"`
	Team         *struct {
		Slug string `json:"slug"`
	} `json:"team"`
}

// translateMembership: a user added to or removed from a team of the
// organisation: an organisation-scope grant naming the team (a team's
// repository access follows from its team events).
func translateMembership(d *delivery) (result, error) {
	var ev membershipEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	action := map[string]string{"added": "granted", "removed": "removed"}[ev.Action]
	switch {
	case ev.Action == "":
		return result{}, missing("action")
	case action == "":
		return result{}, ignored("membership." + ev.Action)
	}
	org, r, err := orgOf(ev.Organization)
	if err != nil {
		return result{}, err
	}
	m, err := requiredIdentity(ev.Member, "member")
	if err != nil {
		return result{}, err
	}
	data := orgGrant{grantData: grantData{
		Scope: "organization", Organization: org, Action: action,
		Principal:  principal{Kind: "user", Login: m.Login, ID: m.ID, Name: m.Name},
		Permission: "member", PlatformPermission: "team_member",
		Actor: identityOf(ev.Sender), ChangedAt: d.ReceivedAt.Format(timeLayout), Provider: "github", Delivery: d.ID,
	}}
	if action == "removed" {
		data.Permission = "none"
	}
	if ev.Team != nil {
		data.Team = ev.Team.Slug
	}
	return result{repo: r, subject: r.key, facts: []fact{{typ: webhook.TypeAccessGrantChanged, suffix: "access.grant", subject: r.key, time: d.ReceivedAt, data: data}}}, nil
}

type organizationEvent struct {
	envelope
	Organization *ghOrg `json:"organization"`
	Membership   *struct {
		Role string  `json:"role"`
		User *ghUser `json:"user"`
	} `json:"membership"`
}

// translateOrganization: a member added to or removed from the
// organisation (role admin: admin, else member). An invitation grants
// nothing until accepted (member_added follows) and is ignored, as are
// renames and deletions of the organisation.
func translateOrganization(d *delivery) (result, error) {
	var ev organizationEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	action := map[string]string{"member_added": "granted", "member_removed": "removed"}[ev.Action]
	switch {
	case ev.Action == "":
		return result{}, missing("action")
	case action == "":
		return result{}, ignored("organization." + ev.Action)
	}
	org, r, err := orgOf(ev.Organization)
	if err != nil {
		return result{}, err
	}
	if ev.Membership == nil {
		return result{}, missing("membership")
	}
	m, err := requiredIdentity(ev.Membership.User, "membership.user")
	if err != nil {
		return result{}, err
	}
	perm := "member"
	if ev.Membership.Role == "admin" {
		perm = "admin"
	}
	data := grantData{
		Scope: "organization", Organization: org, Action: action,
		Principal:  principal{Kind: "user", Login: m.Login, ID: m.ID, Name: m.Name},
		Permission: perm, PlatformPermission: ev.Membership.Role,
		Actor: identityOf(ev.Sender), ChangedAt: d.ReceivedAt.Format(timeLayout), Provider: "github", Delivery: d.ID,
	}
	if action == "removed" {
		data.Permission, data.PreviousPermission = "none", perm
	}
	return result{repo: r, subject: r.key, facts: []fact{{typ: webhook.TypeAccessGrantChanged, suffix: "access.grant", subject: r.key, time: d.ReceivedAt, data: data}}}, nil
}
