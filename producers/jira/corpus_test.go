package jira_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/jira"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// TestCorpus translates every published Jira payload twice: with the
// default options (the corpus's issues are Stories, not change tickets: all
// ignored) and with Story as a change ticket type, which exercises the
// translation of real payloads. Results are "ignored", "error:<field>" or
// the catalog types emitted (the raw event aside).
func TestCorpus(t *testing.T) {
	dir := webhooktest.Corpus(t, "jira")
	const prefix = "cdevents-jira-translator-testdata/"
	asChange := map[string]string{
		"issue_created.json":         "dev.evidencepipeline.ticket.created.v1",
		"issue_generic.json":         "dev.evidencepipeline.ticket.transitioned.v1", // To Do -> Done
		"issue_updated.json":         "ignored",                                     // description edit
		"issue_assigned.json":        "ignored",
		"issue_commented.json":       "ignored",
		"issue_work_logged.json":     "ignored", // jira:worklog_updated
		"issue_worklog_deleted.json": "ignored",
		"issue_worklog_updated.json": "ignored",
	}
	for _, tc := range []struct {
		name string
		p    *jira.Provider
		want func(rel string) (string, bool)
	}{
		{"default options", newProvider(), func(string) (string, bool) { return "ignored", true }},
		{"stories as change tickets", newProvider(func(o *jira.Options) {
			o.ChangeIssueTypes = []string{"Story"}
			o.ApprovedStatuses = []string{"Done"} // exercises ticket.approved too
		}), func(rel string) (string, bool) {
			w, ok := asChange[strings.TrimPrefix(rel, prefix)]
			if rel == prefix+"issue_generic.json" {
				w += ",dev.evidencepipeline.ticket.approved.v1"
			}
			return w, ok
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := 0
			for _, rel := range webhooktest.CorpusFiles(t, dir) {
				t.Run(rel, func(t *testing.T) {
					body, err := os.ReadFile(filepath.Join(dir, rel))
					if err != nil {
						t.Fatal(err)
					}
					events, err := tc.p.Translate(webhooktest.Header(), body)
					got := webhooktest.Outcome(t, events, err)
					want, listed := tc.want(rel)
					if !listed {
						if strings.HasPrefix(got, "error:") && strings.HasSuffix(rel, ".json") {
							t.Errorf("unlisted payload failed: %v", err)
						}
						return
					}
					seen++
					if got != want {
						t.Errorf("got %q (err %v), want %q", got, err, want)
					}
				})
			}
			if seen < len(asChange) {
				t.Errorf("only %d of the %d known corpus files were found", seen, len(asChange))
			}
		})
	}
}
