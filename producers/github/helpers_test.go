package github_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
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
	return webhooktest.Header("X-GitHub-Event", event, "X-GitHub-Delivery", delivery, "X-GitHub-Hook-ID", "531374501",
		"User-Agent", "GitHub-Hookshot/044aadd", "Content-Type", "application/json")
}

// sign sets X-Hub-Signature-256 for body.
func sign(h http.Header, secret string, body []byte) {
	h.Set("X-Hub-Signature-256", webhooktest.SignHex(secret, body))
}

// checkEvents asserts what every translation must give (see
// webhooktest.CheckEvents), and that the webhook.received event is last,
// with the delivery as its id, and the other ids start with the delivery.
func checkEvents(t testing.TB, events []*ce.Event, delivery string) {
	t.Helper()
	if !webhooktest.CheckEvents(t, events) {
		t.FailNow()
	}
	last := events[len(events)-1]
	if last.Type != webhook.TypeWebhookReceived || last.ID != delivery {
		t.Fatalf("last event is %s with id %s, want webhook.received with the delivery id %s", last.Type, last.ID, delivery)
	}
	for _, e := range events[:len(events)-1] {
		if !strings.HasPrefix(e.ID, delivery+"/") {
			t.Fatalf("derived event id %s does not start with the delivery id", e.ID)
		}
	}
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
// event from the directory (octokit-webhooks/<event>/ and
// octokit-examples-access/<event>/), the file name
// (go-playground-webhooks-testdata/pull-request-review.json) or the
// captured headers (cdevents-github-translator-samples/headers/<name>),
// form-encoded when the captured headers say so.
func corpusFiles(t testing.TB, dir string) []corpusFile {
	t.Helper()
	var out []corpusFile
	for _, rel := range webhooktest.CorpusFiles(t, dir) {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		f := corpusFile{rel: rel, body: b, header: headers("", "corpus-"+rel)}
		parts := strings.Split(rel, "/")
		switch {
		case (parts[0] == "octokit-webhooks" || parts[0] == "octokit-examples-access") && len(parts) == 3:
			f.event, f.payload = parts[1], true
		case parts[0] == "go-playground-webhooks-testdata" && len(parts) == 2:
			f.event = strings.ReplaceAll(strings.TrimSuffix(parts[1], ".json"), "-", "_")
			f.payload = true
		case parts[0] == "cdevents-github-translator-samples" && len(parts) == 2:
			hb, err := os.ReadFile(filepath.Join(dir, parts[0], "headers", parts[1]))
			if err != nil {
				t.Fatal(err)
			}
			var captured struct{ Headers map[string]string }
			if err := json.Unmarshal(hb, &captured); err != nil {
				t.Fatalf("%s: %v", rel, err)
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
	}
	return out
}
