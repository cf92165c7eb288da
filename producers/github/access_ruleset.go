package github

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Repository rulesets: one access.protection.changed per ref include
// pattern of a branch ruleset.

type ghRule struct {
	Type       string `json:"type"`
	Parameters *struct {
		RequiredApprovingReviewCount *int64 `json:"required_approving_review_count"`
		DismissStaleReviewsOnPush    *bool  `json:"dismiss_stale_reviews_on_push"`
		RequireCodeOwnerReview       *bool  `json:"require_code_owner_review"`
	} `json:"parameters"`
}

type rulesetEvent struct {
	envelope
	Ruleset *struct {
		ID           int64  `json:"id"`
		Name         string `json:"name"`
		Target       string `json:"target"`
		Enforcement  string `json:"enforcement"`
		BypassActors []struct {
			ActorID   *int64 `json:"actor_id"`
			ActorType string `json:"actor_type"`
		} `json:"bypass_actors"`
		Conditions *struct {
			RefName *struct {
				Include []string `json:"include"`
			} `json:"ref_name"`
		} `json:"conditions"`
		Rules     []ghRule `json:"rules"`
		UpdatedAt string   `json:"updated_at"`
	} `json:"repository_ruleset"`
	Changes map[string]json.RawMessage `json:"changes"`
}

// ruleSettings names the settings a rule type governs.
var ruleSettings = map[string][]string{
	"pull_request":     {"required_approving_review_count", "dismiss_stale_reviews", "require_code_owner_reviews"},
	"non_fast_forward": {"allow_force_pushes"},
	"deletion":         {"allow_deletions"},
}

// rulesetSettings reads the settings a ruleset enforces: the pull_request
// rule's parameters, non_fast_forward (no force pushes), deletion (no
// deletions), the bypass actors (<actor_type>:<actor_id>; enforce_admins
// when there are none). A ruleset that is not active (disabled, or
// evaluate: reported, not enforced) enforces nothing.
func rulesetSettings(rules []ghRule, bypass []string, active bool) *protectionSettings {
	f, t := false, true
	zero := int64(0)
	s := &protectionSettings{RequiredApprovingReviewCount: &zero, DismissStaleReviews: &f, RequireCodeOwnerReviews: &f,
		EnforceAdmins: &f, AllowForcePushes: &t, AllowDeletions: &t, BypassActors: &bypass}
	if !active {
		return s
	}
	admins := len(bypass) == 0
	s.EnforceAdmins = &admins
	for _, r := range rules {
		switch r.Type {
		case "pull_request":
			if p := r.Parameters; p != nil {
				if p.RequiredApprovingReviewCount != nil {
					s.RequiredApprovingReviewCount = p.RequiredApprovingReviewCount
				}
				if p.DismissStaleReviewsOnPush != nil {
					s.DismissStaleReviews = p.DismissStaleReviewsOnPush
				}
				if p.RequireCodeOwnerReview != nil {
					s.RequireCodeOwnerReviews = p.RequireCodeOwnerReview
				}
			}
		case "non_fast_forward":
			s.AllowForcePushes = &f
		case "deletion":
			s.AllowDeletions = &f
		}
	}
	return s
}

// rulesetChangedFields names what an edit changed: the settings of the
// rule types added, deleted or updated (changes.rules), bypass_actors,
// and GitHub's name for any other change (enforcement, conditions, name).
func rulesetChangedFields(changes map[string]json.RawMessage) []string {
	seen := map[string]bool{}
	for k, v := range changes {
		if k != "rules" {
			seen[k] = true
			continue
		}
		var rc map[string][]struct {
			Type string `json:"type"`
			Rule *struct {
				Type string `json:"type"`
			} `json:"rule"`
		}
		if json.Unmarshal(v, &rc) != nil {
			seen["rules"] = true
			continue
		}
		for _, items := range rc {
			for _, it := range items {
				typ := it.Type
				if it.Rule != nil && it.Rule.Type != "" {
					typ = it.Rule.Type
				}
				names, ok := ruleSettings[typ]
				if !ok {
					names = []string{"rules." + typ}
				}
				for _, n := range names {
					seen[n] = true
				}
			}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// translateRepositoryRuleset: a branch ruleset of the repository created,
// edited or deleted; one event per conditions.ref_name.include pattern
// (refs/heads/ removed; ~DEFAULT_BRANCH and ~ALL kept).
func translateRepositoryRuleset(d *delivery) (result, error) {
	var ev rulesetEvent
	if err := decode(d.Payload, &ev); err != nil {
		return result{}, err
	}
	switch ev.Action {
	case "created", "edited", "deleted":
	case "":
		return result{}, missing("action")
	default:
		return result{}, ignored("repository_ruleset." + ev.Action)
	}
	rs := ev.Ruleset
	if rs == nil {
		return result{}, missing("repository_ruleset")
	}
	if rs.Target != "" && rs.Target != "branch" {
		return result{}, ignored("repository_ruleset of target " + rs.Target)
	}
	if ev.Repository == nil {
		return result{}, ignored("repository_ruleset without a repository")
	}
	r, err := repoOf(ev.Repository)
	if err != nil {
		return result{}, err
	}
	at := d.ReceivedAt
	if ev.Action != "deleted" {
		at = factTime(d.ReceivedAt, rs.UpdatedAt)
	}
	var bypass []string
	for _, b := range rs.BypassActors {
		s := b.ActorType
		if b.ActorID != nil {
			s += ":" + strconv.FormatInt(*b.ActorID, 10)
		}
		bypass = append(bypass, s)
	}
	if bypass == nil {
		bypass = []string{}
	}
	var include []string
	if rs.Conditions != nil && rs.Conditions.RefName != nil {
		include = rs.Conditions.RefName.Include
	}
	res := result{repo: r}
	for i, ref := range include {
		target := strings.TrimPrefix(strings.TrimSpace(ref), "refs/heads/")
		if target == "" {
			continue
		}
		data := protectionData{
			Repository: r.key, Action: ev.Action, Target: target, RuleKind: "repository_ruleset",
			Actor: identityOf(ev.Sender), ChangedAt: at.Format(timeLayout), Provider: "github", Delivery: d.ID,
		}
		if rs.ID > 0 {
			data.RuleID = strconv.FormatInt(rs.ID, 10)
		}
		if ev.Action != "deleted" {
			data.Settings = rulesetSettings(rs.Rules, bypass, rs.Enforcement == "" || rs.Enforcement == "active")
		}
		if ev.Action == "edited" {
			data.ChangedFields = rulesetChangedFields(ev.Changes)
		}
		res.facts = append(res.facts, fact{typ: webhook.TypeAccessProtectionChanged, suffix: "access.protection/" + strconv.Itoa(i),
			subject: r.key, time: at, data: data})
	}
	return res, nil
}
