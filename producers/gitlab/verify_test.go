package gitlab_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/gitlab"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

func TestVerify(t *testing.T) {
	p := newProvider()
	body := []byte(`{"object_kind":"push"}`)
	for _, tc := range []struct {
		name    string
		h       http.Header
		secret  string
		wantErr string // "" for success
	}{
		{"match", webhooktest.Header(gitlab.TokenHeader, "s3cret"), "s3cret", ""},
		{"wrong token", webhooktest.Header(gitlab.TokenHeader, "guess"), "s3cret", "does not match"},
		{"prefix of the token", webhooktest.Header(gitlab.TokenHeader, "s3cre"), "s3cret", "does not match"},
		{"token longer", webhooktest.Header(gitlab.TokenHeader, "s3cret "), "s3cret", "does not match"},
		{"missing header", webhooktest.Header("X-Gitlab-Event", "Push Hook"), "s3cret", "is missing"},
		{"no secret configured", webhooktest.Header(gitlab.TokenHeader, ""), "", "is missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Verify(tc.h, body, tc.secret)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify() = %v", err)
				}
				return
			}
			if !errors.Is(err, webhook.ErrBadSignature) {
				t.Fatalf("Verify() = %v, want an error wrapping ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), "X-Gitlab-Token") {
				t.Errorf("Verify() = %q, want it to name X-Gitlab-Token and say %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error discloses the secret: %q", err)
			}
		})
	}
	if p.Name() != "gitlab" || p.SecretEnv() != "EVIDENCE_GITLAB_TOKEN" {
		t.Errorf("Name() = %q, SecretEnv() = %q", p.Name(), p.SecretEnv())
	}
}
