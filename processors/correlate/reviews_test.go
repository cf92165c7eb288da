package correlate

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// TestReviewStanding: the record marks which reviews the platforms keep as
// each reviewer's state. A review is superseded when the same reviewer
// gave a later approval or request for changes; comments replace nothing;
// a dismissal marks the review it names. Each case lists, for every
// review (in time order), the marks the record must give it, worked out
// by hand from the rule.
func TestReviewStanding(t *testing.T) {
	const final, early = head2, head1
	type rv struct {
		who, decision, head, id string
		min                     int // minutes after 10:00
	}
	cases := []struct {
		name    string
		reviews []rv
		want    []string // per review: "decision who [stale] [dismissed] [superseded]"
	}{
		{"approved then changes requested: the approval is superseded", []rv{
			{"bob", "approved", final, "1", 1}, {"bob", "changes_requested", final, "2", 2},
		}, []string{"approved bob superseded", "changes_requested bob"}},
		{"changes requested then approved: the request is superseded", []rv{
			{"bob", "changes_requested", final, "1", 1}, {"bob", "approved", final, "2", 2},
		}, []string{"changes_requested bob superseded", "approved bob"}},
		{"a comment after an approval replaces nothing", []rv{
			{"bob", "approved", final, "1", 1}, {"bob", "commented", final, "2", 2},
		}, []string{"approved bob", "commented bob"}},
		{"a dismissed approval", []rv{
			{"bob", "approved", final, "1", 1}, {"bob", "dismissed", final, "1", 2},
		}, []string{"approved bob dismissed", "dismissed bob"}},
		{"stale approval renewed on the final head", []rv{
			{"bob", "approved", early, "1", 1}, {"bob", "approved", final, "2", 5},
		}, []string{"approved bob stale superseded", "approved bob"}},
		{"two reviewers: each keeps their own state", []rv{
			{"bob", "approved", final, "1", 1}, {"carol", "changes_requested", final, "2", 2},
		}, []string{"approved bob", "changes_requested carol"}},
		{"the login's case does not make another reviewer", []rv{
			{"bob", "approved", final, "1", 1}, {"Bob", "changes_requested", final, "2", 2},
		}, []string{"approved bob superseded", "changes_requested Bob"}},
		{"a request for changes on an earlier head still withdraws a later-dated approval", []rv{
			{"bob", "approved", final, "1", 1}, {"bob", "changes_requested", early, "2", 2},
		}, []string{"approved bob superseded", "changes_requested bob stale"}},
		{"the same instant: the request for changes is the later", []rv{
			{"bob", "approved", final, "1", 1}, {"bob", "changes_requested", final, "2", 1},
		}, []string{"approved bob superseded", "changes_requested bob"}},
		{"a dismissed request for changes does not bring back the approval before it", []rv{
			{"bob", "approved", final, "1", 1}, {"bob", "changes_requested", final, "2", 2}, {"bob", "dismissed", final, "2", 3},
		}, []string{"approved bob superseded", "changes_requested bob dismissed", "dismissed bob"}},
		{"GitLab: approved, unapproved (no review id), approved again", []rv{
			{"bob", "approved", final, "", 1}, {"bob", "dismissed", final, "", 2}, {"bob", "approved", final, "", 3},
		}, []string{"approved bob dismissed superseded", "dismissed bob", "approved bob"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			events := []*ce.Event{
				testEvent(t, "opened", TypeChangeOpened, map[string]any{
					"repository": repo, "change": map[string]any{"number": 42}, "author": json.RawMessage(aliceJSON),
					"target_branch": "main", "head_commit": early, "opened_at": "2025-03-03T09:00:00Z"}),
				testEvent(t, "updated", TypeChangeUpdated, map[string]any{
					"repository": repo, "change": map[string]any{"number": 42}, "head_commit": final,
					"previous_head_commit": early, "updated_at": "2025-03-03T10:03:00Z"}),
				testEvent(t, "merged", TypeChangeMerged, map[string]any{
					"repository": repo, "change": map[string]any{"number": 42}, "target_branch": "main",
					"head_commit": final, "merge_commit": mergeC, "merged_at": "2025-03-03T11:00:00Z"}),
			}
			for i, r := range c.reviews {
				d := map[string]any{
					"repository": repo, "change": map[string]any{"number": 42},
					"reviewer": map[string]any{"login": r.who, "type": "user"}, "decision": r.decision, "head_commit": r.head,
					"submitted_at": fmt.Sprintf("2025-03-03T10:%02d:00Z", r.min),
				}
				if r.id != "" {
					d["review_id"] = r.id
				}
				events = append(events, testEvent(t, fmt.Sprintf("review-%d", i), TypeReviewSubmitted, d))
			}
			// Any arrival order gives the same marks.
			for _, order := range [][]*ce.Event{events, reversed(events)} {
				s := NewState()
				for _, e := range order {
					fs, err := Extract(e)
					if err != nil {
						t.Fatal(err)
					}
					s.Add(fs...)
				}
				rec, ok := s.Record(repo + "@" + mergeC)
				if !ok {
					t.Fatal("no record")
				}
				var got []string
				for _, r := range rec.PullRequest.Reviews {
					m := r.Decision + " " + r.Reviewer.Login
					for _, f := range []struct {
						on   bool
						name string
					}{{r.Stale, "stale"}, {r.Dismissed, "dismissed"}, {r.Superseded, "superseded"}} {
						if f.on {
							m += " " + f.name
						}
					}
					got = append(got, m)
				}
				if !slices.Equal(got, c.want) {
					t.Fatalf("reviews\n got %q\nwant %q", got, c.want)
				}
			}
		})
	}
}

// testEvent is a catalog event of the tests' source.
func testEvent(t *testing.T, id, typ string, data map[string]any) *ce.Event {
	t.Helper()
	b, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	return &ce.Event{ID: id, Source: "https://github.com/acme/payments", Type: typ, Time: ceTime, DataContentType: "application/json", Data: b}
}

func reversed[T any](xs []T) []T {
	out := slices.Clone(xs)
	slices.Reverse(out)
	return out
}
