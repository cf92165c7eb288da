package servicenow_test

import (
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/servicenow"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

func TestVerify(t *testing.T) {
	p := newProvider()
	body := webhooktest.Testdata(t, "approved.json")
	tampered := []byte(strings.Replace(string(body), `"approved"`, `"rejected"`, 1))
	for _, tc := range []struct {
		name    string
		h       http.Header
		body    []byte
		secret  string
		wantErr string // "" for success
	}{
		{"hex signature", webhooktest.Header(servicenow.SignatureHeader, webhooktest.SignHex("s3cret", body)), body, "s3cret", ""},
		{"base64 signature", webhooktest.Header(servicenow.SignatureHeader, webhooktest.SignBase64("s3cret", body)), body, "s3cret", ""},
		{"token", webhooktest.Header(servicenow.TokenHeader, "s3cret"), body, "s3cret", ""},
		{"wrong secret", webhooktest.Header(servicenow.SignatureHeader, webhooktest.SignHex("other", body)), body, "s3cret", "does not match"},
		{"tampered body", webhooktest.Header(servicenow.SignatureHeader, webhooktest.SignBase64("s3cret", body)), tampered, "s3cret", "does not match"},
		{"truncated", webhooktest.Header(servicenow.SignatureHeader, webhooktest.SignHex("s3cret", body)[:40]), body, "s3cret", "hex or base64"},
		{"no prefix", webhooktest.Header(servicenow.SignatureHeader, hex.EncodeToString(webhooktest.MAC("s3cret", body))), body, "s3cret", "hex or base64"},
		{"bad signature not rescued by a token", webhooktest.Header(servicenow.SignatureHeader, webhooktest.SignHex("x", body), servicenow.TokenHeader, "s3cret"), body, "s3cret", "does not match"},
		{"wrong token", webhooktest.Header(servicenow.TokenHeader, "guess"), body, "s3cret", "X-Evidence-Token header does not match"},
		{"missing", webhooktest.Header("Content-Type", "application/json"), body, "s3cret", "neither"},
		{"empty secret never matches", webhooktest.Header(servicenow.SignatureHeader, webhooktest.SignHex("", body)), body, "", "does not match"},
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
	if p.Name() != "servicenow" || p.SecretEnv() != "EVIDENCE_SERVICENOW_SECRET" {
		t.Errorf("Name() = %q, SecretEnv() = %q", p.Name(), p.SecretEnv())
	}
}
