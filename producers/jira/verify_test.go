package jira_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/jira"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

func TestVerify(t *testing.T) {
	p := newProvider()
	body := webhooktest.Testdata(t, "change_approved.json")
	tampered := []byte(strings.Replace(string(body), "Approved", "Approvee", 1))
	for _, tc := range []struct {
		name    string
		h       http.Header
		body    []byte
		secret  string
		wantErr string // "" for success
	}{
		{"signature", webhooktest.Header(jira.SignatureHeader, webhooktest.SignHex("s3cret", body)), body, "s3cret", ""},
		{"signature in upper-case hex", webhooktest.Header(jira.SignatureHeader, "sha256="+strings.ToUpper(webhooktest.SignHex("s3cret", body)[7:])), body, "s3cret", ""},
		{"no sha256= prefix", webhooktest.Header(jira.SignatureHeader, webhooktest.SignHex("s3cret", body)[7:]), body, "s3cret", "sha256=<64 hex digits>"},
		{"token", webhooktest.Header(jira.TokenHeader, "s3cret"), body, "s3cret", ""},
		{"wrong secret", webhooktest.Header(jira.SignatureHeader, webhooktest.SignHex("other", body)), body, "s3cret", "does not match"},
		{"tampered body", webhooktest.Header(jira.SignatureHeader, webhooktest.SignHex("s3cret", body)), tampered, "s3cret", "does not match"},
		{"not hex", webhooktest.Header(jira.SignatureHeader, "sha256=zz"), body, "s3cret", "sha256=<64 hex digits>"},
		{"sha1", webhooktest.Header(jira.SignatureHeader, "sha1=0123"), body, "s3cret", "sha256=<64 hex digits>"},
		{"a bad signature is not rescued by a token", webhooktest.Header(jira.SignatureHeader, webhooktest.SignHex("other", body), jira.TokenHeader, "s3cret"), body, "s3cret", "does not match"},
		{"wrong token", webhooktest.Header(jira.TokenHeader, "guess"), body, "s3cret", "X-Evidence-Token header does not match"},
		{"missing", webhooktest.Header("Content-Type", "application/json"), body, "s3cret", "neither"},
		{"empty secret never matches", webhooktest.Header(jira.SignatureHeader, webhooktest.SignHex("", body)), body, "", "does not match"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := p.Verify(tc.h, tc.body, tc.secret)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify() = %v", err)
				}
				return
			}
			if !errors.Is(err, webhook.ErrBadSignature) {
				t.Fatalf("Verify() = %v, want an error wrapping ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Verify() = %q, want it to say %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error discloses the secret: %q", err)
			}
		})
	}
	if p.Name() != "jira" || p.SecretEnv() != "EVIDENCE_JIRA_SECRET" {
		t.Errorf("Name() = %q, SecretEnv() = %q", p.Name(), p.SecretEnv())
	}
}
