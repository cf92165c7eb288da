package jira_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/jira"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
	"github.com/evidencepipeline/evidence/schemas"
)

// FuzzTranslate feeds arbitrary bodies (seeded with the fixtures and, when
// present, the shared corpus): Translate must not panic, must fail with
// *ce.Error or *webhook.Ignored, and everything it emits must be valid.
// Options that read custom fields and take every issue type are on, so
// that more of the translation is reached.
func FuzzTranslate(f *testing.F) {
	for _, b := range webhooktest.Seeds(f, "jira") {
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `null`, `{"webhookEvent":"jira:issue_created","issue":{"key":"A-1","self":"http://h/rest/","fields":{"issuetype":{"name":"Change"}}}}`,
		`{"webhookEvent":"jira:issue_updated","timestamp":-1,"user":{"name":"x"},"issue":{"key":"A-1","self":"https://h/rest/","fields":{"issuetype":{"name":"Story"},"customfield_1":[{"value":"https://g/a/b/-/merge_requests/0"},"https://g/a/b/pull/9999999999999999999 0123456789012345678901234567890123456789"]}},"changelog":{"items":[{"field":"status","toString":"Approved"}]}}`,
	} {
		f.Add([]byte(s))
	}
	cat, err := schemas.Load()
	if err != nil {
		f.Fatal(err)
	}
	p := newProvider(func(o *jira.Options) {
		o.ChangeIssueTypes = []string{"Change", "Story", "Task", "Bug"}
		o.TypeField = "customfield_1"
		o.LinksField = "customfield_1"
	})
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := p.Translate(webhooktest.Header("X-Atlassian-Webhook-Identifier", "fuzz"), body)
		if err != nil {
			var fe *ce.Error
			if !errors.As(err, &fe) && !webhooktest.IsIgnored(err) {
				t.Fatalf("error %v is neither a field error nor Ignored", err)
			}
			if len(events) != 0 {
				t.Fatal("events with an error")
			}
			return
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
		if raws != 1 || len(events) < 2 {
			t.Fatalf("%d events, %d raw", len(events), raws)
		}
	})
}
