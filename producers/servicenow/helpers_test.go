package servicenow_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/servicenow"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const typeRaw = "dev.evidencepipeline.webhook.received.v1"

// received is the fixed receive time of the tests.
var received = time.Date(2025, 3, 5, 12, 0, 0, 0, time.UTC)

func newProvider(opts ...func(*servicenow.Options)) *servicenow.Provider {
	o := servicenow.Options{Now: func() time.Time { return received }}
	for _, f := range opts {
		f(&o)
	}
	return servicenow.New(o)
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// checkEvents asserts what every successful translation must satisfy:
// valid CloudEvents, data valid against the catalog, exactly one raw
// event, distinct ids, a common source.
func checkEvents(t testing.TB, events []*ce.Event) {
	t.Helper()
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		t.Fatal("no events and no error")
	}
	ids := map[string]bool{}
	raws := 0
	for _, e := range events {
		if err := e.Validate(); err != nil {
			t.Errorf("%s: invalid CloudEvent: %v", e.Type, err)
		}
		if !cat.Has(e.Type) {
			t.Errorf("%s is not a catalog type", e.Type)
		}
		if err := cat.Validate(e.Type, e.Data); err != nil {
			t.Errorf("%s: %v\ndata: %s", e.Type, err, e.Data)
		}
		if e.DataContentType != "application/json" {
			t.Errorf("%s: datacontenttype %q", e.Type, e.DataContentType)
		}
		if e.Subject == "" || e.Time.IsZero() {
			t.Errorf("%s: subject %q, time %v: both must be set", e.Type, e.Subject, e.Time)
		}
		if ids[e.ID] {
			t.Errorf("duplicate id %s", e.ID)
		}
		ids[e.ID] = true
		if e.Source != events[0].Source {
			t.Errorf("%s: source %s differs from %s", e.Type, e.Source, events[0].Source)
		}
		if e.Type == typeRaw {
			raws++
		}
	}
	if raws != 1 {
		t.Errorf("%d webhook.received events, want 1", raws)
	}
}

func dataOf(t testing.TB, e *ce.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("%s data: %v", e.Type, err)
	}
	return m
}

func isIgnored(err error) bool {
	var ign *webhook.Ignored
	return errors.As(err, &ign)
}
