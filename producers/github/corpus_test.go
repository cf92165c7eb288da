package github_test

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus.golden from the corpus")

func formEscape(s string) string { return url.QueryEscape(s) }

// TestCorpus translates every file of the shared corpus of real GitHub
// deliveries: a payload gives valid events or is ignored; a file that is
// not a payload gives a clean error. The outcome of each file is compared
// with testdata/corpus.golden (go test -run TestCorpus -update rewrites it).
func TestCorpus(t *testing.T) {
	dir := webhooktest.Corpus(t, "github")
	p := newProvider()
	var summary strings.Builder
	for _, f := range corpusFiles(t, dir) {
		t.Run(f.rel, func(t *testing.T) {
			delivery := f.header.Get("X-GitHub-Delivery")
			events, err := p.Translate(f.header, f.body)
			var ign *webhook.Ignored
			switch {
			case errors.As(err, &ign):
				if events != nil {
					t.Fatalf("Ignored with %d events", len(events))
				}
				fmt.Fprintf(&summary, "%s [%s]: ignored: %s\n", f.rel, f.event, ign.Reason)
			case err != nil:
				if f.payload {
					t.Fatalf("payload refused: %v", err)
				}
				if events != nil || err.Error() == "" {
					t.Fatalf("error %q with %d events", err, len(events))
				}
				fmt.Fprintf(&summary, "%s [%s]: error: %v\n", f.rel, f.event, err)
			default:
				checkEvents(t, events, delivery)
				fmt.Fprintf(&summary, "%s [%s]: %s\n", f.rel, f.event, strings.Join(shortTypes(events), ", "))
			}
		})
	}
	golden := filepath.Join("testdata", "corpus.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(summary.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -run TestCorpus -update)", err)
	}
	if diff := cmp.Diff(string(want), summary.String()); diff != "" {
		t.Errorf("outcomes differ from %s (-want +got; -update rewrites it):\n%s", golden, diff)
	}
}

// shortTypes are the types without their common prefix and version.
func shortTypes(events []*ce.Event) []string {
	out := webhooktest.Types(events)
	for i, s := range out {
		out[i] = strings.TrimSuffix(strings.TrimPrefix(s, "dev.evidencepipeline."), ".v1")
	}
	return out
}
