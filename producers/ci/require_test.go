package ci

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMissing(t *testing.T) {
	info := Info{System: Jenkins, Repository: "github.com/octo/app", RunID: "jenkins-app-7"}
	got := info.Missing(FieldRepository, FieldCommit, FieldRunID, FieldActor)
	want := []Field{FieldCommit, FieldActor}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Missing() mismatch (-want +got):\n%s", diff)
	}
	if got := info.Missing(FieldRepository); got != nil {
		t.Errorf("Missing(FieldRepository) = %v, want nil", got)
	}
	if got := info.Missing(); got != nil {
		t.Errorf("Missing() = %v, want nil", got)
	}
	if got := (Info{Actor: "  "}).Missing(FieldActor); len(got) != 1 {
		t.Errorf("blank actor is not missing: %v", got)
	}
}

func TestRequire(t *testing.T) {
	tests := []struct {
		name   string
		info   Info
		fields []Field
		want   string
	}{
		{
			name:   "all known",
			info:   Info{Repository: "r", Commit: sha, RunID: "1", Actor: "a"},
			fields: []Field{FieldRepository, FieldCommit, FieldRunID, FieldActor},
		},
		{
			name:   "no CI, one field",
			info:   Info{Commit: sha},
			fields: []Field{FieldRepository, FieldCommit},
			want:   "unknown repository (no CI system detected): pass --repo, or set EVIDENCE_REPO",
		},
		{
			name:   "no CI, every field",
			info:   Info{},
			fields: []Field{FieldRepository, FieldCommit, FieldRunID, FieldActor},
			want: "unknown repository, commit, run id and actor (no CI system detected): " +
				"pass --repo, --commit, --run-id and --actor, or set EVIDENCE_REPO, EVIDENCE_COMMIT, EVIDENCE_RUN_ID and EVIDENCE_ACTOR",
		},
		{
			name:   "system without an actor",
			info:   Info{System: Jenkins, Repository: "r", Commit: sha, RunID: "1"},
			fields: []Field{FieldActor},
			want:   "unknown actor (jenkins does not provide it): pass --actor, or set EVIDENCE_ACTOR",
		},
		{
			name:   "tekton without repository and commit",
			info:   Detect(lookup(map[string]string{"TEKTON_PIPELINE_RUN": "run-1"})),
			fields: []Field{FieldRepository, FieldCommit, FieldRunID},
			want:   "unknown repository and commit (tekton does not provide them): pass --repo and --commit, or set EVIDENCE_REPO and EVIDENCE_COMMIT",
		},
		{
			name:   "unknown field",
			info:   Info{},
			fields: []Field{Field(99)},
			want:   "unknown Field(99) (no CI system detected)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.info.Require(tt.fields...)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Require() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Require() = nil, want %q", tt.want)
			}
			if err.Error() != tt.want {
				t.Errorf("Require() =\n%q, want\n%q", err, tt.want)
			}
			var me *MissingError
			if !errors.As(err, &me) || len(me.Fields) == 0 || me.System != tt.info.System {
				t.Errorf("Require() = %#v, want a *MissingError for %q", err, tt.info.System)
			}
		})
	}
}
