package correlate

import (
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// An event posted with a CI job token takes its pipeline identity from the
// verified claims the receiver recorded, not from its body: the deployer
// and builder are the workflow named in the claims (github-actions:release,
// type service), the run and system are the claims', and the trigger is
// the claims' actor when the body names none.
func TestJobClaimsGivePipelineIdentity(t *testing.T) {
	jc := jobClaimsFixture()

	dep := ev(TypeDeploymentFinished, `{"environment":"production","service":"payments","outcome":"success","repository":"`+repo+`","commit":"`+mergeC+`","digest":"`+digest1+`","finished_at":"2025-03-03T16:40:00Z"}`)
	if err := dep.SetJobClaims(jc); err != nil {
		t.Fatal(err)
	}
	fs, err := Extract(dep)
	if err != nil {
		t.Fatal(err)
	}
	d := fs[0].Deployment
	want := Identity{Login: "github-actions:release", Name: "release", Type: "service"}
	if d.Deployer == nil || *d.Deployer != want || d.System != "github-actions" || d.RunID != "4242" || d.Pipeline != "release" {
		t.Errorf("deployment: deployer %+v system %q run %q pipeline %q", d.Deployer, d.System, d.RunID, d.Pipeline)
	}
	if d.TriggeredBy == nil || d.TriggeredBy.Login != "alice" {
		t.Errorf("triggered_by %+v, want alice (claim actor)", d.TriggeredBy)
	}
	if !hasKey(fs[0].Keys, RunKey(repo, "4242")) {
		t.Errorf("keys %v lack the claims' run", fs[0].Keys)
	}

	art := ev(TypeArtifactBuilt, `{"digest":"`+digest1+`","name":"payments","repository":"`+repo+`","commit":"`+mergeC+`","run_id":"4242","builder":{"login":"someone","type":"user"},"built_at":"2025-03-03T16:36:40Z"}`)
	if err := art.SetJobClaims(jc); err != nil {
		t.Fatal(err)
	}
	fs, err = Extract(art)
	if err != nil {
		t.Fatal(err)
	}
	if a := fs[0].Artifact; a.Builder == nil || *a.Builder != want || a.System != "github-actions" {
		t.Errorf("artifact: builder %+v system %q", a.Builder, a.System)
	}

	// Without the Auth Context the body's identity stands.
	plain := ev(TypeDeploymentFinished, `{"environment":"production","service":"payments","outcome":"success","repository":"`+repo+`","deployer":{"login":"carol.jones","type":"user"},"finished_at":"2025-03-03T16:40:00Z"}`)
	fs, err = Extract(plain)
	if err != nil {
		t.Fatal(err)
	}
	if d := fs[0].Deployment; d.Deployer == nil || d.Deployer.Login != "carol.jones" {
		t.Errorf("plain deployment: deployer %+v", d.Deployer)
	}
}

func hasKey(keys []Key, k Key) bool {
	for _, x := range keys {
		if x == k {
			return true
		}
	}
	return false
}

func jobClaimsFixture() *ce.JobClaims {
	return &ce.JobClaims{
		Issuer: "https://token.actions.githubusercontent.com", Subject: "repo:acme/payments:ref:refs/heads/main", Audience: "evidence",
		System: "github-actions", Repository: repo, Workflow: "release", RunID: "4242", RunAttempt: "1", Actor: "alice", SHA: mergeC,
	}
}
