package gitlab_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
	"github.com/evidencepipeline/evidence/schemas"
)

// FuzzTranslate feeds arbitrary bodies (seeded with the fixtures and, when
// present, the shared corpus) and event headers: Translate must not panic,
// must fail with *ce.Error or *webhook.Ignored, and everything it emits
// must be valid.
func FuzzTranslate(f *testing.F) {
	for _, b := range webhooktest.Seeds(f, "gitlab") {
		f.Add(b, "")
	}
	for _, s := range []struct{ body, hook string }{
		{`{}`, "Push Hook"}, {`null`, ""}, {`{"object_kind":"merge_request","object_attributes":{"iid":1,"action":"merge"}}`, ""},
		{`{"object_kind":"build","environment":{"name":"prod"},"build_status":"success","sha":"abcdef1","build_id":1,"repository":{"homepage":"http://h/a/b"}}`, ""},
		{`{"object_kind":"deployment","status":"running","environment":"x","short_sha":"ABCDEF0","project":{"web_url":"http://[::1]/a/b"}}`, ""},
		{`{"object_kind":"pipeline","object_attributes":{"id":1,"status":"running","sha":"abcdef1","created_at":"9999-12-31 23:59:59 -2359"},"project":{"web_url":"https://h/a/b"}}`, ""},
	} {
		f.Add([]byte(s.body), s.hook)
	}
	cat, err := schemas.Load()
	if err != nil {
		f.Fatal(err)
	}
	p := newProvider()
	f.Fuzz(func(t *testing.T, body []byte, hook string) {
		events, err := p.Translate(webhooktest.Header("X-Gitlab-Event", hook, "X-Gitlab-Event-UUID", "fuzz"), body)
		if err != nil {
			var fe *ce.Error
			if !errors.As(err, &fe) && !webhooktest.IsIgnored(err) {
				t.Fatalf("error %v is neither a field error nor Ignored", err)
			}
			if len(events) != 0 {
				t.Fatalf("events with an error")
			}
			return
		}
		if len(events) == 0 {
			t.Fatal("no events and no error")
		}
		raws := 0
		for _, e := range events {
			if err := e.Validate(); err != nil {
				t.Fatalf("%s: %v", e.Type, err)
			}
			if err := cat.Validate(e.Type, e.Data); err != nil {
				t.Fatalf("%s: %v\n%s", e.Type, err, e.Data)
			}
			if !strings.HasPrefix(e.ID, "fuzz/") {
				t.Fatalf("id %q", e.ID)
			}
			if e.Type == typeRaw {
				raws++
			}
		}
		if raws != 1 {
			t.Fatalf("%d raw events", raws)
		}
	})
}
