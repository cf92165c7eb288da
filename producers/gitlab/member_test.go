package gitlab_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/gitlab"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// projectMember is a system hook's project member event as GitLab's
// system hook documentation shows it (user_add_to_team), with the
// event_name and access_level of each case set by the test.
const projectMember = `{
  "created_at": "2012-07-21T07:30:56Z",
  "updated_at": "2012-07-21T07:38:22Z",
  "event_name": "%EVENT%",
  "access_level": "%LEVEL%",
  "project_id": 74,
  "project_name": "StoreCloud",
  "project_path": "storecloud",
  "project_path_with_namespace": "jsmith/StoreCloud",
  "user_email": "johnsmith@example.com",
  "user_name": "John Smith",
  "user_username": "johnsmith",
  "user_id": 41,
  "project_visibility": "private"
}`

func projectMemberBody(event, level string) []byte {
	return []byte(strings.NewReplacer("%EVENT%", event, "%LEVEL%", level).Replace(projectMember))
}

// groupMemberBody is the shared corpus's group member event
// (xanzy/go-gitlab testdata, from GitLab's docs), with its event_name and
// group_access replaced.
func groupMemberBody(t *testing.T, event, access string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(webhooktest.Corpus(t, "gitlab"), "xanzy-go-gitlab-testdata", "member.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), `"user_add_to_group"`, `"`+event+`"`, 1)
	return []byte(strings.Replace(s, `"Guest"`, `"`+access+`"`, 1))
}

func memberHeader(hook string) map[string][]string {
	return webhooktest.Header("X-Gitlab-Event", hook, "X-Gitlab-Event-UUID", "uuid-m", "X-Gitlab-Instance", "https://GitLab.com")
}

// TestTranslateMemberEvents: each member event of a group webhook and of
// a system hook, translated field by field into access.grant.changed.
func TestTranslateMemberEvents(t *testing.T) {
	john := map[string]any{"kind": "user", "login": "johnsmith", "id": "41", "name": "John Smith"}
	user1 := map[string]any{"kind": "user", "login": "user1", "id": "64", "name": "User1"}
	for _, tc := range []struct {
		name string
		hook string
		body []byte
		want want
	}{{
		name: "group member added (the corpus payload)", hook: "Member Hook",
		body: groupMemberBody(t, "user_add_to_group", "Guest"),
		want: want{Type: webhook.TypeAccessGrantChanged, ID: "uuid-m/access.grant", Subject: "gitlab.com/webhook-test",
			Time: time.Date(2020, 12, 11, 4, 57, 22, 0, time.UTC),
			Data: map[string]any{
				"scope": "organization", "organization": "gitlab.com/webhook-test", "action": "granted",
				"principal": user1, "permission": "member", "platform_permission": "Guest",
				"expires_at": "2020-12-14T00:00:00Z", "changed_at": "2020-12-11T04:57:22Z",
				"provider": "gitlab", "delivery": "uuid-m",
			}},
	}, {
		name: "group owner: admin of the organisation", hook: "Member Hook",
		body: groupMemberBody(t, "user_update_for_group", "Owner"),
		want: want{Type: webhook.TypeAccessGrantChanged, ID: "uuid-m/access.grant", Subject: "gitlab.com/webhook-test",
			Time: time.Date(2020, 12, 11, 4, 57, 22, 0, time.UTC), // updated_at
			Data: map[string]any{
				"scope": "organization", "organization": "gitlab.com/webhook-test", "action": "changed",
				"principal": user1, "permission": "admin", "platform_permission": "Owner",
				"expires_at": "2020-12-14T00:00:00Z", "changed_at": "2020-12-11T04:57:22Z",
				"provider": "gitlab", "delivery": "uuid-m",
			}},
	}, {
		name: "group member removed: when delivered, permission none", hook: "Member Hook",
		body: groupMemberBody(t, "user_remove_from_group", "Developer"),
		want: want{Type: webhook.TypeAccessGrantChanged, ID: "uuid-m/access.grant", Subject: "gitlab.com/webhook-test",
			Time: received,
			Data: map[string]any{
				"scope": "organization", "organization": "gitlab.com/webhook-test", "action": "removed",
				"principal": user1, "permission": "none", "platform_permission": "Developer",
				"expires_at": "2020-12-14T00:00:00Z", "changed_at": "2025-03-05T12:00:00Z",
				"provider": "gitlab", "delivery": "uuid-m",
			}},
	}, {
		name: "project member added by a system hook", hook: "System Hook",
		body: projectMemberBody("user_add_to_team", "Maintainer"),
		want: want{Type: webhook.TypeAccessGrantChanged, ID: "uuid-m/access.grant", Subject: "gitlab.com/jsmith/storecloud",
			Time: time.Date(2012, 7, 21, 7, 30, 56, 0, time.UTC),
			Data: map[string]any{
				"scope": "repository", "repository": "gitlab.com/jsmith/storecloud", "action": "granted",
				"principal": john, "permission": "maintain", "platform_permission": "Maintainer",
				"changed_at": "2012-07-21T07:30:56Z", "provider": "gitlab", "delivery": "uuid-m",
			}},
	}, {
		name: "project member changed to Developer", hook: "System Hook",
		body: projectMemberBody("user_update_for_team", "Developer"),
		want: want{Type: webhook.TypeAccessGrantChanged, ID: "uuid-m/access.grant", Subject: "gitlab.com/jsmith/storecloud",
			Time: time.Date(2012, 7, 21, 7, 38, 22, 0, time.UTC),
			Data: map[string]any{
				"scope": "repository", "repository": "gitlab.com/jsmith/storecloud", "action": "changed",
				"principal": john, "permission": "write", "platform_permission": "Developer",
				"changed_at": "2012-07-21T07:38:22Z", "provider": "gitlab", "delivery": "uuid-m",
			}},
	}, {
		name: "project member removed", hook: "System Hook",
		body: projectMemberBody("user_remove_from_team", "Developer"),
		want: want{Type: webhook.TypeAccessGrantChanged, ID: "uuid-m/access.grant", Subject: "gitlab.com/jsmith/storecloud",
			Time: received,
			Data: map[string]any{
				"scope": "repository", "repository": "gitlab.com/jsmith/storecloud", "action": "removed",
				"principal": john, "permission": "none", "platform_permission": "Developer",
				"changed_at": "2025-03-05T12:00:00Z", "provider": "gitlab", "delivery": "uuid-m",
			}},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := newProvider().Translate(memberHeader(tc.hook), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			if len(events) != 2 || events[1].Type != typeRaw {
				t.Fatalf("got %v, want the grant and the raw delivery", webhooktest.Types(events))
			}
			e := events[0]
			got := want{Type: e.Type, ID: e.ID, Subject: e.Subject, Time: e.Time, Data: webhooktest.DataMap(t, e)}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("grant (-want +got):\n%s", diff)
			}
			if st := webhooktest.StoredDelivery(t, events[1]); string(st.Payload) != strings.TrimSpace(string(tc.body)) || st.Header.Get("X-Gitlab-Instance") != "https://GitLab.com" {
				t.Errorf("raw delivery: payload kept %t, instance %q", string(st.Payload) == strings.TrimSpace(string(tc.body)), st.Header.Get("X-Gitlab-Instance"))
			}
		})
	}
}

// TestMemberEventRefusals: what a member event cannot be recorded
// without is refused naming the field; an access request is ignored.
func TestMemberEventRefusals(t *testing.T) {
	p := newProvider()
	noInstance := webhooktest.Header("X-Gitlab-Event", "Member Hook", "X-Gitlab-Event-UUID", "uuid-m")
	for _, tc := range []struct {
		name  string
		h     map[string][]string
		body  []byte
		field string // "" means ignored
	}{
		{"no X-Gitlab-Instance", noInstance, groupMemberBody(t, "user_add_to_group", "Guest"), "X-Gitlab-Instance"},
		{"instance with a path", webhooktest.Header("X-Gitlab-Instance", "https://gitlab.com/evil"), groupMemberBody(t, "user_add_to_group", "Guest"), "X-Gitlab-Instance"},
		{"no member", memberHeader("System Hook"), []byte(strings.Replace(string(projectMemberBody("user_add_to_team", "Developer")), `"johnsmith"`, `""`, 1)), "user_username"},
		{"no project", memberHeader("System Hook"), []byte(strings.Replace(string(projectMemberBody("user_add_to_team", "Developer")), `"jsmith/StoreCloud"`, `""`, 1)), "project_path_with_namespace"},
		{"no role on a grant", memberHeader("System Hook"), projectMemberBody("user_add_to_team", ""), "access_level"},
		{"no group role", memberHeader("Member Hook"), groupMemberBody(t, "user_add_to_group", ""), "group_access"},
		{"bad created_at", memberHeader("System Hook"), []byte(strings.Replace(string(projectMemberBody("user_add_to_team", "Developer")), "2012-07-21T07:30:56Z", "yesterday", 1)), "created_at"},
		{"access request", memberHeader("Member Hook"), groupMemberBody(t, "user_access_request_to_group", "Guest"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := p.Translate(tc.h, tc.body)
			if tc.field == "" {
				if !webhooktest.IsIgnored(err) {
					t.Fatalf("got %v, %v; want ignored", webhooktest.Types(events), err)
				}
				return
			}
			var fe *ce.Error
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Fatalf("got %v, %v; want a payload error naming %s", webhooktest.Types(events), err, tc.field)
			}
		})
	}
}

// TestGitLabRoles: the roles of GitLab's permissions documentation, by
// name and by access level, against the catalog's words (worked out by
// hand from docs/access.md: Guest, Planner and Reporter cannot push;
// Developer can; Maintainer manages protection; Owner everything).
func TestGitLabRoles(t *testing.T) {
	for _, tc := range []struct{ role, level, project, group string }{
		{"Minimal Access", "5", "none", "member"},
		{"Guest", "10", "read", "member"},
		{"Planner", "15", "read", "member"},
		{"Reporter", "20", "read", "member"},
		{"Developer", "30", "write", "member"},
		{"Maintainer", "40", "maintain", "member"},
		{"Owner", "50", "admin", "admin"},
		{"Some Custom Role", "", "write", "member"},
	} {
		for _, r := range []string{tc.role, tc.level} {
			if r == "" {
				continue
			}
			if got := gitlab.ProjectPermission(r); got != tc.project {
				t.Errorf("ProjectPermission(%q) = %q, want %q", r, got, tc.project)
			}
			if got := gitlab.GroupPermission(r); got != tc.group {
				t.Errorf("GroupPermission(%q) = %q, want %q", r, got, tc.group)
			}
		}
	}
}
