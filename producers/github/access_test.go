package github_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// accessPayload reads a real payload of the shared corpus
// (octokit-examples-access/<event>/<file>).
func accessPayload(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(webhooktest.Corpus(t, "github"), "octokit-examples-access", rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAccessTranslation translates real GitHub payloads into access
// events and compares each event's data, field by field, with values
// worked out by hand from the payload.
func TestAccessTranslation(t *testing.T) {
	for _, tc := range []struct {
		event, file string
		body        []byte // instead of file
		wantType    string
		want        string // the event's data
		subject     string // "": the repository
	}{
		{
			event: "team", file: "team/00-added_to_repository.json", wantType: webhook.TypeAccessGrantChanged,
			// repository.permissions {pull: true, push: false, admin: false}: pull is read.
			want: `{"scope": "repository", "repository": "github.com/octocoders/hello-world", "action": "granted",
				"principal": {"kind": "team", "login": "github", "id": "3253328", "name": "github"},
				"permission": "read", "platform_permission": "pull", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "team", file: "team/05-removed_from_repository.json", wantType: webhook.TypeAccessGrantChanged,
			want: `{"scope": "repository", "repository": "github.com/octocoders/hello-world", "action": "removed",
				"principal": {"kind": "team", "login": "github", "id": "3253328", "name": "github"},
				"permission": "none", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "team", wantType: webhook.TypeAccessGrantChanged,
			body: modify(t, accessPayload(t, "team/00-added_to_repository.json"), func(m map[string]any) {
				m["action"] = "edited"
				obj(m, "repository")["permissions"] = map[string]any{"pull": true, "push": true, "admin": true}
				m["changes"] = map[string]any{"repository": map[string]any{"permissions": map[string]any{"from": map[string]any{"pull": true, "push": false}}}}
			}),
			want: `{"scope": "repository", "repository": "github.com/octocoders/hello-world", "action": "changed",
				"principal": {"kind": "team", "login": "github", "id": "3253328", "name": "github"},
				"permission": "admin", "platform_permission": "admin", "previous_permission": "read", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "membership", file: "membership/01-added.json", wantType: webhook.TypeAccessGrantChanged, subject: "org:github.com/octocoders",
			want: `{"scope": "organization", "organization": "github.com/octocoders", "action": "granted",
				"principal": {"kind": "user", "login": "Codertocat", "id": "21031067"}, "team": "github",
				"permission": "member", "platform_permission": "team_member", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "organization", file: "organization/00-member_added.json", wantType: webhook.TypeAccessGrantChanged, subject: "org:github.com/octocoders",
			// membership.role member; the organisation's host from organization.url (api.github.com: github.com).
			want: `{"scope": "organization", "organization": "github.com/octocoders", "action": "granted",
				"principal": {"kind": "user", "login": "hacktocat", "id": "39652351"},
				"permission": "member", "platform_permission": "member", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "organization", wantType: webhook.TypeAccessGrantChanged, subject: "org:github.com/octocoders",
			body: modify(t, accessPayload(t, "organization/00-member_added.json"), func(m map[string]any) {
				m["action"] = "member_removed"
				obj(m, "membership")["role"] = "admin"
			}),
			want: `{"scope": "organization", "organization": "github.com/octocoders", "action": "removed",
				"principal": {"kind": "user", "login": "hacktocat", "id": "39652351"},
				"permission": "none", "platform_permission": "admin", "previous_permission": "admin", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "branch_protection_rule", file: "branch_protection_rule/04-edited.json", wantType: webhook.TypeAccessProtectionChanged,
			// rule.updated_at 2021-08-19T12:16:32.000-04:00 is 16:16:32 UTC;
			// the *_enforcement_level "off" means not allowed; the 15 keys
			// of changes, the known ones under the catalog's names, sorted.
			want: `{"repository": "github.com/octo-org/octo-repo", "action": "edited", "target": "production",
				"rule_kind": "branch_protection_rule", "rule_id": "21796960", "actor": ` + codertocat + `,
				"settings": {"required_approving_review_count": 1, "dismiss_stale_reviews": false, "require_code_owner_reviews": false,
					"enforce_admins": false, "allow_force_pushes": false, "allow_deletions": false},
				"changed_fields": ["allow_deletions", "allow_force_pushes", "authorized_actor_names", "authorized_actors_only",
					"authorized_dismissal_actors_only", "dismiss_stale_reviews", "enforce_admins",
					"linear_history_requirement_enforcement_level", "pull_request_reviews_enforcement_level",
					"require_code_owner_reviews", "required_approving_review_count", "required_conversation_resolution_level",
					"required_deployments_enforcement_level", "required_status_checks_enforcement_level",
					"signature_requirement_enforcement_level"],
				"changed_at": "2021-08-19T16:16:32Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "branch_protection_rule", file: "branch_protection_rule/03-deleted.json", wantType: webhook.TypeAccessProtectionChanged,
			// deleted: no settings; the time of deletion is the receipt.
			want: `{"repository": "github.com/octo-org/octo-repo", "action": "deleted", "target": "production",
				"rule_kind": "branch_protection_rule", "rule_id": "21796960", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "member", file: "member/03-edited.json", wantType: webhook.TypeAccessGrantChanged,
			// changes.old_permission.from "write"; no new permission stated: write.
			want: `{"scope": "repository", "repository": "github.com/codertocat/hello-world", "action": "changed",
				"principal": {"kind": "user", "login": "octocat", "id": "583231"}, "permission": "write",
				"previous_permission": "write", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "member", file: "member/00-added.json", wantType: webhook.TypeAccessGrantChanged,
			want: `{"scope": "repository", "repository": "github.com/codertocat/hello-world", "action": "granted",
				"principal": {"kind": "user", "login": "hacktocat", "id": "39652351"}, "permission": "write",
				"actor": {"login": "hacktocat", "id": "39652351", "type": "user"},
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "member", wantType: webhook.TypeAccessGrantChanged,
			body: modify(t, accessPayload(t, "member/03-edited.json"), func(m map[string]any) {
				obj(m, "changes")["permission"] = map[string]any{"from": "write", "to": "admin"}
			}),
			want: `{"scope": "repository", "repository": "github.com/codertocat/hello-world", "action": "changed",
				"principal": {"kind": "user", "login": "octocat", "id": "583231"}, "permission": "admin", "platform_permission": "admin",
				"previous_permission": "write", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "deploy_key", file: "deploy_key/00-created.json", wantType: webhook.TypeAccessGrantChanged,
			want: `{"scope": "repository", "repository": "github.com/codertocat/hello-world", "action": "granted",
				"principal": {"kind": "deploy_key", "login": "hey-its-a-deploy-key", "id": "100"},
				"permission": "read", "platform_permission": "read_only", "actor": ` + codertocat + `,
				"changed_at": "2019-04-02T17:37:07Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "deploy_key", wantType: webhook.TypeAccessGrantChanged,
			body: modify(t, accessPayload(t, "deploy_key/00-created.json"), func(m map[string]any) {
				m["action"] = "deleted"
				obj(m, "key")["read_only"] = false
			}),
			want: `{"scope": "repository", "repository": "github.com/codertocat/hello-world", "action": "removed",
				"principal": {"kind": "deploy_key", "login": "hey-its-a-deploy-key", "id": "100"},
				"permission": "none", "platform_permission": "read_write", "previous_permission": "write", "actor": ` + codertocat + `,
				"changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "repository", file: "repository/05-privatized.json", wantType: webhook.TypeAccessRepositoryChanged,
			want: `{"repository": "github.com/codertocat/hello-world", "action": "privatized", "actor": ` + codertocat + `,
				"from": "public", "to": "private", "changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "repository", file: "repository/09-renamed.json", wantType: webhook.TypeAccessRepositoryChanged,
			want: `{"repository": "github.com/octocoders/hello-world", "action": "renamed", "actor": ` + codertocat + `,
				"from": "Hello-World", "to": "Hello-World", "changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
		{
			event: "repository", file: "repository/10-transferred.json", wantType: webhook.TypeAccessRepositoryChanged,
			// changes.owner.from.user.login octocat; the new owner from full_name.
			want: `{"repository": "github.com/octocoders/hello-world", "action": "transferred", "actor": ` + codertocat + `,
				"from": "octocat", "to": "Octocoders", "changed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-1"}`,
		},
	} {
		name := tc.file
		if name == "" {
			name = tc.event + " modified: " + tc.want[:60]
		}
		t.Run(name, func(t *testing.T) {
			body := tc.body
			if body == nil {
				body = accessPayload(t, tc.file)
			}
			events, err := newProvider().Translate(headers(tc.event, "d-1"), body)
			if err != nil {
				t.Fatal(err)
			}
			checkEvents(t, events, "d-1")
			if len(events) != 2 || events[0].Type != tc.wantType {
				t.Fatalf("events %v, want %s and webhook.received", webhooktest.Types(events), tc.wantType)
			}
			if tc.subject != "" {
				if events[0].Subject != tc.subject {
					t.Errorf("subject %q, want %q", events[0].Subject, tc.subject)
				}
			} else if events[0].Subject != events[0].Source[len("https://"):] {
				t.Errorf("subject %q, want the repository of source %q", events[0].Subject, events[0].Source)
			}
			var got, want any
			if err := json.Unmarshal(events[0].Data, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestForcedPushIsABypass(t *testing.T) {
	const before = "a10867b14bb761a232cd80139fbd4c0d33264240"
	body := modify(t, []byte(readCorpus(t, "octokit-webhooks/push/with-new-branch.payload.json")), func(m map[string]any) {
		m["forced"], m["before"] = true, before
	})
	events, err := newProvider().Translate(headers("push", "d-2"), body)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, events, "d-2")
	if got := webhooktest.Types(events); !cmp.Equal(got, []string{webhook.TypeAccessBypass, webhook.TypeWebhookReceived}) {
		t.Fatalf("events %v", got)
	}
	want := map[string]any{"repository": "github.com/codertocat/hello-world", "branch": "master", "kind": "force_push",
		"actor":  map[string]any{"login": "Codertocat", "id": "21031067", "type": "user"},
		"before": before, "after": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
		"pushed_at": "2025-03-03T15:45:13Z", "provider": "github", "delivery": "d-2"}
	if diff := cmp.Diff(want, webhooktest.DataMap(t, events[0])); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}

	// The same push not forced gives no bypass.
	events, err = newProvider().Translate(headers("push", "d-3"), readCorpus(t, "octokit-webhooks/push/with-new-branch.payload.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := webhooktest.Types(events); !cmp.Equal(got, []string{webhook.TypeWebhookReceived}) {
		t.Errorf("an unforced push gives %v", got)
	}
}

func readCorpus(t *testing.T, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(webhooktest.Corpus(t, "github"), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAccessIgnoredAndMalformed(t *testing.T) {
	p := newProvider()
	_, err := p.Translate(headers("repository", "d-4"), accessPayload(t, "repository/03-edited.json"))
	var ign *webhook.Ignored
	if !errors.As(err, &ign) || ign.Reason != "repository.edited carries no evidence" {
		t.Errorf("repository.edited: %v, want ignored", err)
	}
	bad := modify(t, accessPayload(t, "deploy_key/00-created.json"), func(m map[string]any) { delete(obj(m, "key"), "title") })
	if _, err := p.Translate(headers("deploy_key", "d-5"), bad); err == nil || err.Error() != "key.title: missing" {
		t.Errorf("deploy key without title: %v, want key.title: missing", err)
	}
	bad = modify(t, accessPayload(t, "member/00-added.json"), func(m map[string]any) { delete(m, "member") })
	if _, err := p.Translate(headers("member", "d-6"), bad); err == nil || err.Error() != "member.login: missing" {
		t.Errorf("member without member: %v, want member.login: missing", err)
	}
}

// TestAccessHandlerSignature posts a signed access delivery through the
// webhook handler (the stream holds its events), and refuses an unsigned
// or tampered one.
func TestAccessHandlerSignature(t *testing.T) {
	srv := webhooktest.Handler(t, newProvider(), secret)
	body := accessPayload(t, "member/03-edited.json")
	hdr := headers("member", "acc-1")
	sign(hdr, secret, body)
	code, r := srv.Post(t, hdr, body)
	want := webhook.Response{Provider: "github", Accepted: 2, Events: []string{webhook.TypeAccessGrantChanged, webhook.TypeWebhookReceived}}
	if code != http.StatusAccepted || !cmp.Equal(want, r) {
		t.Fatalf("signed: %d %+v, want 202 %+v", code, r, want)
	}
	if n := len(srv.StreamEvents(t)); n != 2 {
		t.Errorf("the stream holds %d events, want 2", n)
	}
	unsigned := headers("member", "acc-2")
	if code, r := srv.Post(t, unsigned, body); code != http.StatusUnauthorized || !strings.Contains(r.Detail, "X-Hub-Signature-256 header is missing") {
		t.Errorf("unsigned: %d %+v, want 401", code, r)
	}
	tampered := hdr.Clone()
	tampered.Set("X-GitHub-Delivery", "acc-3")
	if code, r := srv.Post(t, tampered, append([]byte(" "), body...)); code != http.StatusUnauthorized || !strings.Contains(r.Detail, "does not match") {
		t.Errorf("tampered: %d %+v, want 401", code, r)
	}
}

// TestRepositoryRuleset: an edited branch ruleset gives one
// access.protection.changed per ref include pattern, with the settings
// read from its rules (hand-worked from testdata/repository_ruleset.edited.json).
func TestRepositoryRuleset(t *testing.T) {
	body := payload(t, "repository_ruleset.edited")
	events, err := newProvider().Translate(headers("repository_ruleset", "rs-1"), body)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, events, "rs-1")
	if got := webhooktest.Types(events); !cmp.Equal(got, []string{webhook.TypeAccessProtectionChanged, webhook.TypeAccessProtectionChanged, webhook.TypeWebhookReceived}) {
		t.Fatalf("events %v", got)
	}
	// A bypass actor exists: enforce_admins false. deletion and
	// non_fast_forward rules: neither allowed. updated_at
	// 2024-05-07T10:11:12+02:00 is 08:11:12 UTC. changes: the
	// pull_request rule updated, non_fast_forward added, enforcement.
	settings := map[string]any{"required_approving_review_count": 2.0, "dismiss_stale_reviews": true, "require_code_owner_reviews": false,
		"enforce_admins": false, "allow_force_pushes": false, "allow_deletions": false, "bypass_actors": []any{"RepositoryRole:5"}}
	changed := []any{"allow_force_pushes", "dismiss_stale_reviews", "enforcement", "require_code_owner_reviews", "required_approving_review_count"}
	for i, target := range []string{"~DEFAULT_BRANCH", "release/*"} {
		want := map[string]any{"repository": "github.com/codertocat/hello-world", "action": "edited", "target": target,
			"rule_kind": "repository_ruleset", "rule_id": "42", "actor": map[string]any{"login": "Codertocat", "id": "21031067", "type": "user"},
			"settings": settings, "changed_fields": changed, "changed_at": "2024-05-07T08:11:12Z", "provider": "github", "delivery": "rs-1"}
		if diff := cmp.Diff(want, webhooktest.DataMap(t, events[i])); diff != "" {
			t.Errorf("%s (-want +got):\n%s", target, diff)
		}
	}

	// Without bypass actors the ruleset applies to administrators; a
	// disabled ruleset enforces nothing; deleted has no settings.
	for _, tc := range []struct {
		name string
		edit func(m map[string]any)
		want map[string]any // settings of the first event; nil: none
	}{
		{"no bypass actors", func(m map[string]any) { obj(m, "repository_ruleset")["bypass_actors"] = []any{} },
			map[string]any{"required_approving_review_count": 2.0, "dismiss_stale_reviews": true, "require_code_owner_reviews": false,
				"enforce_admins": true, "allow_force_pushes": false, "allow_deletions": false, "bypass_actors": []any{}}},
		{"disabled", func(m map[string]any) { obj(m, "repository_ruleset")["enforcement"] = "disabled" },
			map[string]any{"required_approving_review_count": 0.0, "dismiss_stale_reviews": false, "require_code_owner_reviews": false,
				"enforce_admins": false, "allow_force_pushes": true, "allow_deletions": true, "bypass_actors": []any{"RepositoryRole:5"}}},
		{"deleted", func(m map[string]any) { m["action"] = "deleted"; delete(m, "changes") }, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := newProvider().Translate(headers("repository_ruleset", "rs-2"), modify(t, body, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			checkEvents(t, events, "rs-2")
			d := webhooktest.DataMap(t, events[0])
			if tc.want == nil {
				if _, ok := d["settings"]; ok || d["action"] != "deleted" || d["changed_at"] != "2025-03-03T15:45:13Z" {
					t.Errorf("deleted: %v", d)
				}
				return
			}
			if diff := cmp.Diff(tc.want, d["settings"]); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		})
	}

	// A tag ruleset protects no branch.
	_, err = newProvider().Translate(headers("repository_ruleset", "rs-3"), modify(t, body, func(m map[string]any) { obj(m, "repository_ruleset")["target"] = "tag" }))
	var ign *webhook.Ignored
	if !errors.As(err, &ign) || ign.Reason != "repository_ruleset of target tag carries no evidence" {
		t.Errorf("tag ruleset: %v, want ignored", err)
	}
}
