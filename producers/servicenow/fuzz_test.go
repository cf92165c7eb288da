package servicenow_test

import (
	"errors"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
	"github.com/evidencepipeline/evidence/schemas"
)

// FuzzTranslate feeds arbitrary bodies, seeded with the fixtures and
// built-in samples (ServiceNow has no published corpus: the body is this
// project's): Translate must not panic, must fail with *ce.Error or
// *webhook.Ignored, and everything it emits must be valid.
func FuzzTranslate(f *testing.F) {
	for _, b := range webhooktest.Seeds(f, "") {
		f.Add(b)
	}
	for _, s := range []string{
		`{}`, `null`, `[]`, `"x"`,
		`{"table":"change_request","number":"CHG1","instance":"https://a.service-now.com","operation":"insert","state":-5}`,
		`{"table":"change_request","number":"CHG1","instance":"http://[::1]","state":"1e3","previous_state":"x"}`,
		`{"table":"change_request","number":"CHG1","instance":"https://a","state":"-1","previous_state":-2,"sys_updated_on":"9999-12-31 23:59:59","approval":"rejected","approvers":[{"user_name":"u","state":"REJECTED"}]}`,
		`{"table":"change_request","number":"CHG1","instance":"https://a","operation":"insert","links":{"repositories":["https://g/a/b"],"commits":["ABCDEF0"],"changes":[{"repository":"g/a/b","number":1,"url":"::"}]}}`,
		`{"table":"change_request","number":"CHG1","instance":"https://a","operation":"insert","start_date":"0000-01-01 00:00:00"}`,
	} {
		f.Add([]byte(s))
	}
	cat, err := schemas.Load()
	if err != nil {
		f.Fatal(err)
	}
	p := newProvider()
	f.Fuzz(func(t *testing.T, body []byte) {
		events, err := p.Translate(webhooktest.Header(), body)
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
		ids := map[string]bool{}
		for _, e := range events {
			if err := e.Validate(); err != nil {
				t.Fatalf("%s: %v", e.Type, err)
			}
			if err := cat.Validate(e.Type, e.Data); err != nil {
				t.Fatalf("%s: %v\n%s", e.Type, err, e.Data)
			}
			if ids[e.ID] {
				t.Fatalf("duplicate id %s", e.ID)
			}
			ids[e.ID] = true
			if e.Type == typeRaw {
				raws++
			}
		}
		if raws != 1 || len(events) < 2 {
			t.Fatalf("%d events, %d raw", len(events), raws)
		}
	})
}
