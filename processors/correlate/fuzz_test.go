package correlate

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// FuzzExtract feeds arbitrary data under every catalog type: Extract never
// panics, returns facts or an error naming a data field, and its facts
// have valid IDs and derive records without panicking.
func FuzzExtract(f *testing.F) {
	for _, tt := range []struct{ typ, data string }{
		{TypeChangeOpened, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "author": {"login": "a"}, "target_branch": "main", "head_commit": "1b2c3d4e", "title": "PAY-1 x", "source_branch": "pay-2-y"}`},
		{TypeChangeMerged, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "target_branch": "main", "head_commit": "1b2c3d4e", "merge_commit": "c0ffee12", "commits": ["1b2c3d4e"]}`},
		{TypeReviewSubmitted, `{"repository": "github.com/acme/payments", "change": {"number": 42}, "reviewer": {"login": "bob"}, "decision": "approved", "head_commit": "1b2c3d4e"}`},
		{TypeTicketCreated, `{"key": "CHG0031234", "system": "servicenow", "links": {"repositories": ["github.com/acme/payments"], "commits": ["c0ffee12"], "changes": [{"repository": "github.com/acme/payments", "number": 42}]}}`},
		{TypeDeploymentFinished, `{"environment": "production", "service": "payments", "outcome": "success", "digest": "` + digest1 + `", "deployment_id": "d1", "repository": "github.com/acme/payments", "commit": "c0ffee12"}`},
		{TypeArtifactBuilt, `{"digest": "` + digest1 + `", "name": "x", "repository": "github.com/acme/payments", "commit": "c0ffee12", "run_id": "1"}`},
		{TypeScanReported, `{"repository": "github.com/acme/payments", "commit": "c0ffee12", "tool": "trivy", "category": "container", "findings": {"critical": 0, "high": 0, "medium": 0, "low": 0}}`},
		{TypeExceptionGranted, `{"id": "EXC-1", "control": "CM-2", "scope": {"service": "payments"}, "approver": {"login": "c"}, "granted_at": "2025-03-06T22:25:00Z", "expires_at": "2025-03-09T00:00:00Z"}`},
		{TypeWebhookReceived, `{"provider": "github", "event": "push", "payload": {"ref": "refs/heads/main", "after": "c0ffee12", "repository": {"html_url": "https://github.com/acme/payments", "default_branch": "main"}, "commits": [{"id": "c0ffee12", "message": "PAY-3 fix"}]}, "received_at": "2025-03-03T15:45:13Z"}`},
		{TypeWebhookReceived, `{"provider": "gitlab", "event": "Push Hook", "payload": {"ref": "refs/heads/main", "after": "c0ffee12", "project": {"web_url": "https://gitlab.acme.example/a/b", "default_branch": "main"}}, "received_at": "2025-03-03T15:45:13Z"}`},
	} {
		f.Add(tt.typ, tt.data)
	}
	f.Fuzz(func(t *testing.T, typ, data string) {
		if !strings.HasPrefix(typ, "dev.evidencepipeline.") {
			typ = Types()[len(typ)%len(Types())]
		}
		fs, err := Extract(ev(typ, data))
		if err != nil {
			fe, ok := err.(*ce.Error)
			if !ok || (fe.Field != "data" && !strings.HasPrefix(fe.Field, "data/")) {
				t.Fatalf("error %v does not name a data field", err)
			}
			return
		}
		s := NewState()
		for _, fact := range fs {
			if err := fact.Verify(); err != nil {
				t.Fatal(err)
			}
			if _, err := json.Marshal(fact); err != nil {
				t.Fatal(err)
			}
		}
		s.Add(fs...)
		for _, r := range s.Records() {
			if _, ok := s.Record(r.ID); !ok {
				t.Fatalf("Record(%q) not found", r.ID)
			}
		}
	})
}

func TestEntryLinks(t *testing.T) {
	s := stateOf(t, readEvents(t, "testdata/scenarios/squash_merge/events.json"))
	links := s.Entry(ChangeKey("github.com/acme/payments", 42)).Links()
	for _, want := range []Key{
		CommitKey("github.com/acme/payments", "c0ffee1234567890abcdef1234567890abcdef12"),
		CommitKey("github.com/acme/payments", "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"),
		TicketKey("PAY-123"),
	} {
		found := false
		for _, k := range links {
			found = found || k == want
		}
		if !found {
			t.Errorf("links of the pull request lack %s: %v", want, links)
		}
	}
	for _, k := range links {
		if k.Kind() == KeyRepo {
			t.Errorf("link %s: repo keys hold exceptions only", k)
		}
	}
}
