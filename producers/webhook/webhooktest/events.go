package webhooktest

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/schemas"
)

// CheckEvents checks what every successful translation must give: at
// least one event (else the test stops), each a valid CloudEvent whose type
// is in the catalog and whose data is valid against its schema, with JSON
// data, a subject and a time; distinct ids, one source, and exactly one
// webhook.received event. Each problem is reported with t.Errorf;
// CheckEvents says whether there was none, for callers that stop there.
func CheckEvents(t testing.TB, events []*ce.Event) bool {
	t.Helper()
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		t.Fatal("no events and no error")
	}
	ok := true
	fail := func(format string, args ...any) {
		t.Helper()
		t.Errorf(format, args...)
		ok = false
	}
	ids := map[string]bool{}
	raws := 0
	for _, e := range events {
		if err := e.Validate(); err != nil {
			fail("%s: invalid CloudEvent: %v", e.Type, err)
		}
		if !cat.Has(e.Type) {
			fail("%s is not a catalog type", e.Type)
		}
		if err := cat.Validate(e.Type, e.Data); err != nil {
			fail("%s: %v\ndata: %s", e.Type, err, e.Data)
		}
		if e.DataContentType != "application/json" {
			fail("%s: datacontenttype %q", e.Type, e.DataContentType)
		}
		if e.Subject == "" || e.Time.IsZero() {
			fail("%s: subject %q, time %v: both must be set", e.Type, e.Subject, e.Time)
		}
		if ids[e.ID] {
			fail("duplicate id %s", e.ID)
		}
		ids[e.ID] = true
		if e.Source != events[0].Source {
			fail("%s: source %s differs from %s", e.Type, e.Source, events[0].Source)
		}
		if e.Type == webhook.TypeWebhookReceived {
			raws++
		}
	}
	if raws != 1 {
		fail("%d webhook.received events, want 1", raws)
	}
	return ok
}

// Outcome is what a translation gave, as corpus tests list it: "ignored",
// "error:<field>", or the types of the events but webhook.received,
// comma-separated, after CheckEvents. An error that names no field stops
// the test.
func Outcome(t testing.TB, events []*ce.Event, err error) string {
	t.Helper()
	var fe *ce.Error
	switch {
	case IsIgnored(err):
		return "ignored"
	case errors.As(err, &fe):
		return "error:" + fe.Field
	case err != nil:
		t.Fatalf("error without a field: %v", err)
	}
	CheckEvents(t, events)
	var types []string
	for _, e := range events {
		if e.Type != webhook.TypeWebhookReceived {
			types = append(types, e.Type)
		}
	}
	return strings.Join(types, ",")
}

// IsIgnored says whether err is or wraps a *webhook.Ignored.
func IsIgnored(err error) bool {
	var ign *webhook.Ignored
	return errors.As(err, &ign)
}

// Types lists the events' types.
func Types(events []*ce.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

// Data decodes an event's data into a T; data that does not decode stops
// the test.
func Data[T any](t testing.TB, e *ce.Event) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		t.Fatalf("data of %s (%s): %v", e.ID, e.Type, err)
	}
	return v
}

// DataMap is an event's data as a JSON object.
func DataMap(t testing.TB, e *ce.Event) map[string]any {
	t.Helper()
	return Data[map[string]any](t, e)
}
