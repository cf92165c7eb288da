package gitlab_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

// corpusWant is what each file of the shared corpus gives: the catalog
// types (the raw event aside), "ignored", or "error:<field>". Files not
// listed must translate, be ignored or fail with a field error.
var corpusWant = map[string]string{
	"HEADERS.md": "error:(body)",
	"docs-webhook-events/deployment_hook.json":                 "dev.evidencepipeline.deployment.finished.v1",
	"docs-webhook-events/job_hook.doc-verbatim.jsonc":          "error:(body)",                           // // comments: not JSON
	"docs-webhook-events/job_hook.json":                        "ignored",                                // no environment
	"docs-webhook-events/merge_request_hook.json":              "dev.evidencepipeline.change.updated.v1", // opened by user 1, author_id 51
	"docs-webhook-events/note_hook.merge_request.json":         "ignored",
	"docs-webhook-events/pipeline_hook.json":                   "dev.evidencepipeline.pipelinerun.finished.v1",
	"docs-webhook-events/push_hook.json":                       "",
	"docs-webhook-events/tag_push_hook.json":                   "ignored",
	"go-playground-webhooks-testdata/build-event.json":         "ignored",
	"go-playground-webhooks-testdata/deployment-event.json":    "dev.evidencepipeline.deployment.finished.v1",
	"go-playground-webhooks-testdata/merge-request-event.json": "dev.evidencepipeline.change.updated.v1",
	"go-playground-webhooks-testdata/pipeline-event.json":      "dev.evidencepipeline.pipelinerun.finished.v1",
	"go-playground-webhooks-testdata/push-event.json":          "",
	"go-playground-webhooks-testdata/tag-event.json":           "ignored",
	"xanzy-go-gitlab-testdata/deployment.json":                 "dev.evidencepipeline.deployment.finished.v1",
	"xanzy-go-gitlab-testdata/group_merge_request.json":        "error:object_attributes.iid", // keys with trailing spaces ("iid ")
	"xanzy-go-gitlab-testdata/job.json":                        "dev.evidencepipeline.deployment.finished.v1",
	"xanzy-go-gitlab-testdata/member.json":                     "dev.evidencepipeline.access.grant.changed.v1",
	"xanzy-go-gitlab-testdata/merge_request.json":              "dev.evidencepipeline.change.updated.v1",
	"xanzy-go-gitlab-testdata/pipeline.json":                   "dev.evidencepipeline.pipelinerun.finished.v1",
	"xanzy-go-gitlab-testdata/push.json":                       "",
	"xanzy-go-gitlab-testdata/service_merge_request.json":      "dev.evidencepipeline.change.updated.v1",
}

func TestCorpus(t *testing.T) {
	dir := webhooktest.Corpus(t, "gitlab")
	p := newProvider()
	seen := map[string]bool{}
	for _, rel := range webhooktest.CorpusFiles(t, dir) {
		t.Run(rel, func(t *testing.T) {
			seen[rel] = true
			body, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil {
				t.Fatal(err)
			}
			// Deliveries carry X-Gitlab-Event; derive it as GitLab would.
			h := webhooktest.Header("X-Gitlab-Event-UUID", "corpus-"+rel, "X-Gitlab-Instance", "https://gitlab.com")
			var kind struct {
				ObjectKind string `json:"object_kind"`
			}
			if json.Unmarshal(body, &kind) == nil && hooks[kind.ObjectKind] != "" {
				h.Set("X-Gitlab-Event", hooks[kind.ObjectKind])
			}
			events, err := p.Translate(h, body)
			got := webhooktest.Outcome(t, events, err)
			want, listed := corpusWant[rel]
			if !listed {
				if strings.HasPrefix(got, "error:") && strings.HasSuffix(rel, ".json") {
					t.Errorf("unlisted payload failed: %v", err)
				}
				return
			}
			if got != want {
				t.Errorf("got %q (err %v), want %q", got, err, want)
			}
		})
	}
	for rel := range corpusWant {
		if !seen[rel] {
			t.Errorf("corpus file %s is missing", rel)
		}
	}
}

var hooks = map[string]string{
	"push": "Push Hook", "tag_push": "Tag Push Hook", "merge_request": "Merge Request Hook",
	"note": "Note Hook", "pipeline": "Pipeline Hook", "build": "Job Hook", "deployment": "Deployment Hook",
	"issue": "Issue Hook", "release": "Release Hook", "wiki_page": "Wiki Page Hook",
}
