package github

import (
	"slices"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Access evidence (issue 17): branch protection rules, collaborators,
// deploy keys, repository visibility and transfers, forced pushes. Each
// becomes one access.* catalog event beside the raw delivery.

// protectionSettings is the catalog's protection_settings; a setting the
// payload does not state is absent.
type protectionSettings struct {
	RequiredApprovingReviewCount *int64    `json:"required_approving_review_count,omitempty"`
	DismissStaleReviews          *bool     `json:"dismiss_stale_reviews,omitempty"`
	RequireCodeOwnerReviews      *bool     `json:"require_code_owner_reviews,omitempty"`
	EnforceAdmins                *bool     `json:"enforce_admins,omitempty"`
	AllowForcePushes             *bool     `json:"allow_force_pushes,omitempty"`
	AllowDeletions               *bool     `json:"allow_deletions,omitempty"`
	BypassActors                 *[]string `json:"bypass_actors,omitempty"`
}

type protectionData struct {
	Repository    string              `json:"repository"`
	Action        string              `json:"action"`
	Target        string              `json:"target"`
	RuleKind      string              `json:"rule_kind"`
	RuleID        string              `json:"rule_id,omitempty"`
	Actor         *identity           `json:"actor,omitempty"`
	Settings      *protectionSettings `json:"settings,omitempty"`
	ChangedFields []string            `json:"changed_fields,omitempty"`
	ChangedAt     string              `json:"changed_at"`
	Provider      string              `json:"provider"`
	Delivery      string              `json:"delivery,omitempty"`
}

type principal struct {
	Kind  string `json:"kind"`
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
}

type grantData struct {
	Scope              string    `json:"scope"`
	Repository         string    `json:"repository,omitempty"`
	Organization       string    `json:"organization,omitempty"`
	Action             string    `json:"action"`
	Principal          principal `json:"principal"`
	Permission         string    `json:"permission"`
	PlatformPermission string    `json:"platform_permission,omitempty"`
	PreviousPermission string    `json:"previous_permission,omitempty"`
	Actor              *identity `json:"actor,omitempty"`
	ChangedAt          string    `json:"changed_at"`
	Provider           string    `json:"provider"`
	Delivery           string    `json:"delivery,omitempty"`
}

type bypassData struct {
	Repository string    `json:"repository"`
	Branch     string    `json:"branch"`
	Kind       string    `json:"kind"`
	Actor      *identity `json:"actor"`
	Before     string    `json:"before,omitempty"`
	After      string    `json:"after,omitempty"`
	PushedAt   string    `json:"pushed_at"`
	Provider   string    `json:"provider"`
	Delivery   string    `json:"delivery,omitempty"`
}

type repositoryData struct {
	Repository string    `json:"repository"`
	Action     string    `json:"action"`
	Actor      *identity `json:"actor,omitempty"`
	From       string    `json:"from,omitempty"`
	To         string    `json:"to,omitempty"`
	ChangedAt  string    `json:"changed_at"`
	Provider   string    `json:"provider"`
	Delivery   string    `json:"delivery,omitempty"`
}

// Permission normalises a GitHub repository permission word (the
// collaborator API's pull/push, the webhooks' read/write, triage,
// maintain, admin). A custom role's name is not known here: it counts as
// write, so that the grant is judged as one that can change code.
func Permission(word string) string {
	switch strings.ToLower(strings.TrimSpace(word)) {
	case "pull", "read":
		return "read"
	case "triage":
		return "triage"
	case "push", "write":
		return "write"
	case "maintain":
		return "maintain"
	case "admin":
		return "admin"
	case "none", "":
		return "none"
	}
	return "write"
}

type branchProtectionRuleEvent struct {
	envelope
	Rule *struct {
		ID                               int64  `json:"id"`
		Name                             string `json:"name"`
		RequiredApprovingReviewCount     *int64 `json:"required_approving_review_count"`
		DismissStaleReviewsOnPush        *bool  `json:"dismiss_stale_reviews_on_push"`
		RequireCodeOwnerReview           *bool  `json:"require_code_owner_review"`
		AdminEnforced                    *bool  `json:"admin_enforced"`
		AllowForcePushesEnforcementLevel string `json:"allow_force_pushes_enforcement_level"`
		AllowDeletionsEnforcementLevel   string `json:"allow_deletions_enforcement_level"`
		UpdatedAt                        string `json:"updated_at"`
	} `json:"rule"`
	Changes map[string]any `json:"changes"`
}

// settingNames maps the names of a branch_protection_rule's changes to
// the catalog's setting names; other changes keep GitHub's name.
var settingNames = map[string]string{
	"required_approving_review_count":      "required_approving_review_count",
	"dismiss_stale_reviews_on_push":        "dismiss_stale_reviews",
	"require_code_owner_review":            "require_code_owner_reviews",
	"admin_enforced":                       "enforce_admins",
	"allow_force_pushes_enforcement_level": "allow_force_pushes",
	"allow_deletions_enforcement_level":    "allow_deletions",
}

// enforcementAllows reads an allow_*_enforcement_level: "off" means the
// allowance is off; non_admins or everyone means it is on for someone.
func enforcementAllows(level string) *bool {
	if level == "" {
		return nil
	}
	v := level != "off"
	return &v
}

// translateBranchProtectionRule: a classic branch protection rule created,
// edited (the changed settings from changes) or deleted.
func translateBranchProtectionRule(d *delivery) (result, error) {
	var ev branchProtectionRuleEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "created", "edited", "deleted":
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("branch_protection_rule." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	if ev.Rule == nil {
		return result{}, missing("rule")
	}
	if strings.TrimSpace(ev.Rule.Name) == "" {
		return result{}, missing("rule.name")
	}
	at := d.ReceivedAt
	if ev.Action != "deleted" {
		at = factTime(d.ReceivedAt, ev.Rule.UpdatedAt)
	}
	data := protectionData{
		Repository: r.key, Action: ev.Action, Target: ev.Rule.Name, RuleKind: "branch_protection_rule",
		Actor: identityOf(ev.Sender), ChangedAt: at.Format(timeLayout), Provider: "github", Delivery: d.ID,
	}
	if ev.Rule.ID > 0 {
		data.RuleID = strconv.FormatInt(ev.Rule.ID, 10)
	}
	if ev.Action != "deleted" {
		data.Settings = &protectionSettings{
			RequiredApprovingReviewCount: ev.Rule.RequiredApprovingReviewCount,
			DismissStaleReviews:          ev.Rule.DismissStaleReviewsOnPush,
			RequireCodeOwnerReviews:      ev.Rule.RequireCodeOwnerReview,
			EnforceAdmins:                ev.Rule.AdminEnforced,
			AllowForcePushes:             enforcementAllows(ev.Rule.AllowForcePushesEnforcementLevel),
			AllowDeletions:               enforcementAllows(ev.Rule.AllowDeletionsEnforcementLevel),
		}
	}
	if ev.Action == "edited" {
		for k := range ev.Changes {
			name := k
			if n, ok := settingNames[k]; ok {
				name = n
			}
			data.ChangedFields = append(data.ChangedFields, name)
		}
		slices.Sort(data.ChangedFields)
	}
	return result{repo: r, facts: []fact{{typ: webhook.TypeAccessProtectionChanged, suffix: "access.protection", subject: r.key, time: at, data: data}}}, nil
}

type memberEvent struct {
	envelope
	Member  *ghUser `json:"member"`
	Changes *struct {
		Permission *struct {
			From string `json:"from"`
			To   string `json:"to"`
		} `json:"permission"`
		OldPermission *struct {
			From string `json:"from"`
		} `json:"old_permission"`
	} `json:"changes"`
}

// translateMember: a collaborator added to, changed on or removed from a
// repository. A payload that does not state the new permission (GitHub
// sends changes.permission.to only in newer deliveries) is recorded as
// write, the collaborator default, so that the grant is judged as one
// that can change code.
func translateMember(d *delivery) (result, error) {
	var ev memberEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	action := map[string]string{"added": "granted", "edited": "changed", "removed": "removed"}[ev.Action]
	switch {
	case ev.Action == "":
		return result{}, missing("action")
	case action == "":
		return result{}, ignored("member." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	m, err := requiredIdentity(ev.Member, "member")
	if err != nil {
		return result{}, err
	}
	data := grantData{
		Scope: "repository", Repository: r.key, Action: action,
		Principal: principal{Kind: "user", Login: m.Login, ID: m.ID, Name: m.Name},
		Actor:     identityOf(ev.Sender), ChangedAt: d.ReceivedAt.Format(timeLayout), Provider: "github", Delivery: d.ID,
	}
	var to, from string
	if c := ev.Changes; c != nil {
		if c.Permission != nil {
			to, from = c.Permission.To, c.Permission.From
		}
		if c.OldPermission != nil && from == "" {
			from = c.OldPermission.From
		}
	}
	switch {
	case action == "removed":
		data.Permission = "none"
	case to != "":
		data.Permission, data.PlatformPermission = Permission(to), to
	default:
		data.Permission = "write"
	}
	if from != "" && action == "changed" {
		data.PreviousPermission = Permission(from)
	}
	return result{repo: r, facts: []fact{{typ: webhook.TypeAccessGrantChanged, suffix: "access.grant", subject: r.key, time: d.ReceivedAt, data: data}}}, nil
}

type deployKeyEvent struct {
	envelope
	Key *struct {
		ID        int64  `json:"id"`
		Title     string `json:"title"`
		ReadOnly  bool   `json:"read_only"`
		CreatedAt string `json:"created_at"`
	} `json:"key"`
}

// translateDeployKey: a deploy key added (granted read, or write when not
// read_only) or deleted.
func translateDeployKey(d *delivery) (result, error) {
	var ev deployKeyEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	action := map[string]string{"created": "granted", "deleted": "removed"}[ev.Action]
	switch {
	case ev.Action == "":
		return result{}, missing("action")
	case action == "":
		return result{}, ignored("deploy_key." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	if ev.Key == nil {
		return result{}, missing("key")
	}
	if strings.TrimSpace(ev.Key.Title) == "" {
		return result{}, missing("key.title")
	}
	perm, word := "write", "read_write"
	if ev.Key.ReadOnly {
		perm, word = "read", "read_only"
	}
	at := d.ReceivedAt
	if action == "granted" {
		at = factTime(d.ReceivedAt, ev.Key.CreatedAt)
	}
	data := grantData{
		Scope: "repository", Repository: r.key, Action: action,
		Principal:  principal{Kind: "deploy_key", Login: ev.Key.Title},
		Permission: perm, PlatformPermission: word,
		Actor: identityOf(ev.Sender), ChangedAt: at.Format(timeLayout), Provider: "github", Delivery: d.ID,
	}
	if ev.Key.ID > 0 {
		data.Principal.ID = strconv.FormatInt(ev.Key.ID, 10)
	}
	if action == "removed" {
		data.Permission, data.PreviousPermission = "none", perm
	}
	return result{repo: r, facts: []fact{{typ: webhook.TypeAccessGrantChanged, suffix: "access.grant", subject: r.key, time: at, data: data}}}, nil
}

type repositoryEvent struct {
	envelope
	Changes *struct {
		Repository *struct {
			Name *struct {
				From string `json:"from"`
			} `json:"name"`
		} `json:"repository"`
		Owner *struct {
			From *struct {
				User         *ghUser `json:"user"`
				Organization *ghUser `json:"organization"`
			} `json:"from"`
		} `json:"owner"`
	} `json:"changes"`
}

// translateRepository: a repository created, deleted, archived or
// unarchived, made public or private, renamed or transferred. Other
// actions (edited: description, topics, default branch) are not access
// evidence.
func translateRepository(d *delivery) (result, error) {
	var ev repositoryEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "created", "deleted", "archived", "unarchived", "publicized", "privatized", "renamed", "transferred":
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("repository." + ev.Action)
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	data := repositoryData{Repository: r.key, Action: ev.Action, Actor: identityOf(ev.Sender),
		ChangedAt: d.ReceivedAt.Format(timeLayout), Provider: "github", Delivery: d.ID}
	switch ev.Action {
	case "publicized":
		data.From, data.To = "private", "public"
	case "privatized":
		data.From, data.To = "public", "private"
	case "renamed":
		if c := ev.Changes; c != nil && c.Repository != nil && c.Repository.Name != nil {
			data.From = c.Repository.Name.From
		}
		data.To = ev.Repository.Name
	case "transferred":
		if c := ev.Changes; c != nil && c.Owner != nil && c.Owner.From != nil {
			if u := c.Owner.From.Organization; u != nil {
				data.From = u.Login
			} else if u := c.Owner.From.User; u != nil {
				data.From = u.Login
			}
		}
		if owner, _, ok := strings.Cut(ev.Repository.FullName, "/"); ok {
			data.To = owner
		}
	}
	return result{repo: r, facts: []fact{{typ: webhook.TypeAccessRepositoryChanged, suffix: "access.repository", subject: r.key, time: d.ReceivedAt, data: data}}}, nil
}

// forcedPush is the access.bypass fact of a forced push to a branch (the
// control decides whether the branch was protected at that instant).
func forcedPush(d *delivery, r repo, ev *pushEvent) (fact, error) {
	actor, err := requiredIdentity(ev.Sender, "sender")
	if err != nil {
		return fact{}, err
	}
	data := bypassData{
		Repository: r.key, Branch: strings.TrimPrefix(ev.Ref, "refs/heads/"), Kind: "force_push", Actor: actor,
		Before: sha(ev.Before), After: sha(ev.After), PushedAt: d.ReceivedAt.Format(timeLayout), Provider: "github", Delivery: d.ID,
	}
	return fact{typ: webhook.TypeAccessBypass, suffix: "access.bypass", subject: r.key, time: d.ReceivedAt, data: data}, nil
}
