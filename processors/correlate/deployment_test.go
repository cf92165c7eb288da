package correlate

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// TestDeploymentTrigger: the person who triggered the deploying run is
// kept beside the pipeline deployer, from whichever of the deployment's
// events states it, in any order; a deployment without a trigger encodes
// as before (no triggered_by or trigger member), so the records and hashes
// of earlier evidence do not change.
func TestDeploymentTrigger(t *testing.T) {
	base := readEvents(t, filepath.Join("testdata", "scenarios", "squash_merge", "events.json"))
	for _, r := range stateOf(t, base).Records() {
		for _, d := range r.Deployments {
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte(`"triggered_by"`)) || bytes.Contains(b, []byte(`"trigger"`)) {
				t.Errorf("%s: a deployment without a trigger encodes one: %s", r.ID, b)
			}
		}
	}

	pipeline := `"repository": "github.com/acme/payments", "run_id": "9876543300", "pipeline": "release",
		"system": "github-actions", "deployer": {"login": "github-actions:release", "name": "release", "type": "service"},
		"digest": "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899",
		"environment": "production", "service": "payments"`
	started := &ce.Event{ID: "9876543300-started", Source: "https://github.com/acme/payments", Type: TypeDeploymentStarted,
		Time: at("2025-03-05T10:00:00Z"), DataContentType: "application/json",
		Data: []byte(`{` + pipeline + `, "triggered_by": {"login": "alice", "type": "user"}, "trigger": "manual",
			"started_at": "2025-03-05T10:00:00Z"}`)}
	finished := &ce.Event{ID: "9876543300-finished", Source: "https://github.com/acme/payments", Type: TypeDeploymentFinished,
		Time: at("2025-03-05T10:04:00Z"), DataContentType: "application/json",
		Data: []byte(`{` + pipeline + `, "outcome": "success", "finished_at": "2025-03-05T10:04:00Z"}`)}

	for name, events := range map[string][]*ce.Event{
		"in order": append(append([]*ce.Event{}, base...), started, finished),
		"reversed": append([]*ce.Event{finished, started}, base...),
	} {
		t.Run(name, func(t *testing.T) {
			r := only(t, stateOf(t, events).Records())
			var d *Deployment
			for i := range r.Deployments {
				if r.Deployments[i].RunID == "9876543300" {
					d = &r.Deployments[i]
				}
			}
			if d == nil {
				t.Fatalf("no deployment of run 9876543300 in %+v", r.Deployments)
			}
			if d.Deployer == nil || d.Deployer.Login != "github-actions:release" || d.Deployer.Type != "service" {
				t.Errorf("deployer %+v, want the pipeline", d.Deployer)
			}
			if d.TriggeredBy == nil || d.TriggeredBy.Login != "alice" || d.Trigger != "manual" || d.Outcome != "success" {
				t.Errorf("triggered by %+v (%q), outcome %q; want alice (manual), success", d.TriggeredBy, d.Trigger, d.Outcome)
			}
		})
	}
}
