package github_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixedNow is the clock of the tests: received_at and the time of facts
// without one.
var fixedNow = time.Date(2025, 3, 3, 15, 45, 13, 0, time.UTC)

func newProvider() *github.Provider {
	return github.New(github.Options{Now: func() time.Time { return fixedNow }})
}

// headers is a JSON delivery's headers.
func headers(event, delivery string) http.Header {
	h := http.Header{}
	h.Set("X-GitHub-Event", event)
	h.Set("X-GitHub-Delivery", delivery)
	h.Set("X-GitHub-Hook-ID", "531374501")
	h.Set("User-Agent", "GitHub-Hookshot/044aadd")
	h.Set("Content-Type", "application/json")
	return h
}

// sign sets X-Hub-Signature-256 for body.
func sign(h http.Header, secret string, body []byte) {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
}

// checkEvents asserts what every translation must give: valid CloudEvents
// whose data matches its catalog schema, distinct ids, one source, and
// exactly one webhook.received event, last, whose id is the delivery.
func checkEvents(t testing.TB, events []*ce.Event, delivery string) {
	t.Helper()
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 {
		t.Fatal("no events and no error")
	}
	ids := map[string]bool{}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			t.Fatalf("event %s (%s) is invalid: %v", e.ID, e.Type, err)
		}
		if !cat.Has(e.Type) {
			t.Fatalf("event %s has type %s, not in the catalog", e.ID, e.Type)
		}
		if err := cat.Validate(e.Type, e.Data); err != nil {
			t.Fatalf("event %s: %v\ndata: %s", e.ID, err, e.Data)
		}
		if ids[e.ID] {
			t.Fatalf("two events with id %s", e.ID)
		}
		ids[e.ID] = true
		if e.Source != events[0].Source {
			t.Fatalf("events of one delivery have sources %s and %s", events[0].Source, e.Source)
		}
		if e.DataContentType != "application/json" || e.Time.IsZero() || e.Subject == "" {
			t.Fatalf("event %s: datacontenttype %q, time %v, subject %q", e.ID, e.DataContentType, e.Time, e.Subject)
		}
	}
	last := events[len(events)-1]
	if last.Type != "dev.evidencepipeline.webhook.received.v1" || last.ID != delivery {
		t.Fatalf("last event is %s with id %s, want webhook.received with the delivery id %s", last.Type, last.ID, delivery)
	}
	for _, e := range events[:len(events)-1] {
		if e.Type == last.Type {
			t.Fatalf("two webhook.received events")
		}
		if !strings.HasPrefix(e.ID, delivery+"/") {
			t.Fatalf("derived event id %s does not start with the delivery id", e.ID)
		}
	}
}

// dataOf decodes an event's data.
func dataOf(t testing.TB, e *ce.Event) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(e.Data, &m); err != nil {
		t.Fatalf("data of %s: %v", e.ID, err)
	}
	return m
}

// types lists the events' types.
func types(events []*ce.Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Type
	}
	return out
}

// corpusDir is the shared corpus of real GitHub payloads. Without it the
// corpus tests fail in CI and are skipped elsewhere.
func corpusDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "github")
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the GitHub payload corpus is required in CI: %v", err)
		}
		t.Skipf("the GitHub payload corpus is not here (%v); set CI=true to make this a failure", err)
	}
	return dir
}

// corpusFile is one file of the corpus as a delivery.
type corpusFile struct {
	rel     string // path under the corpus
	event   string
	header  http.Header
	body    []byte
	payload bool // a webhook payload (else a file that is not one)
}

// corpusFiles lists every file of the corpus, each made a delivery: the
// event from the directory (octokit-webhooks/<event>/), the file name
// (go-playground-webhooks-testdata/pull-request-review.json) or the
// captured headers (cdevents-github-translator-samples/headers/<name>),
// form-encoded when the captured headers say so.
func corpusFiles(t testing.TB, dir string) []corpusFile {
	t.Helper()
	var out []corpusFile
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		f := corpusFile{rel: rel, body: b, header: headers("", "corpus-"+rel)}
		parts := strings.Split(rel, "/")
		switch {
		case parts[0] == "octokit-webhooks" && len(parts) == 3:
			f.event, f.payload = parts[1], true
		case parts[0] == "go-playground-webhooks-testdata" && len(parts) == 2:
			f.event = strings.ReplaceAll(strings.TrimSuffix(parts[1], ".json"), "-", "_")
			f.payload = true
		case parts[0] == "cdevents-github-translator-samples" && len(parts) == 2:
			hb, err := os.ReadFile(filepath.Join(dir, parts[0], "headers", parts[1]))
			if err != nil {
				return err
			}
			var captured struct{ Headers map[string]string }
			if err := json.Unmarshal(hb, &captured); err != nil {
				return err
			}
			f.header = http.Header{}
			for k, v := range captured.Headers {
				f.header.Set(k, v)
			}
			f.event = f.header.Get("X-GitHub-Event")
			f.payload = true
			if strings.HasPrefix(f.header.Get("Content-Type"), "application/x-www-form-urlencoded") {
				f.body = []byte("payload=" + formEscape(string(b)))
			}
		default: // captured headers without a payload, notes
			f.event = "push"
		}
		f.header.Set("X-GitHub-Event", f.event)
		out = append(out, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rel < out[j].rel })
	if len(out) == 0 {
		t.Fatalf("no files in %s", dir)
	}
	return out
}
