package servicenow_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/servicenow"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

func mac(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

func signHex(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(mac(secret, body))
}

// signBase64 is what GlideCertificateEncryption.generateMac gives.
func signBase64(secret string, body []byte) string {
	return "sha256=" + base64.StdEncoding.EncodeToString(mac(secret, body))
}

func TestVerify(t *testing.T) {
	p := newProvider()
	body := fixture(t, "approved.json")
	tampered := []byte(strings.Replace(string(body), `"approved"`, `"rejected"`, 1))
	for _, tc := range []struct {
		name    string
		h       http.Header
		body    []byte
		secret  string
		wantErr string // "" for success
	}{
		{"hex signature", header(servicenow.SignatureHeader, signHex("s3cret", body)), body, "s3cret", ""},
		{"base64 signature", header(servicenow.SignatureHeader, signBase64("s3cret", body)), body, "s3cret", ""},
		{"token", header(servicenow.TokenHeader, "s3cret"), body, "s3cret", ""},
		{"wrong secret", header(servicenow.SignatureHeader, signHex("other", body)), body, "s3cret", "does not match"},
		{"tampered body", header(servicenow.SignatureHeader, signBase64("s3cret", body)), tampered, "s3cret", "does not match"},
		{"truncated", header(servicenow.SignatureHeader, signHex("s3cret", body)[:40]), body, "s3cret", "hex or base64"},
		{"no prefix", header(servicenow.SignatureHeader, hex.EncodeToString(mac("s3cret", body))), body, "s3cret", "hex or base64"},
		{"bad signature not rescued by a token", header(servicenow.SignatureHeader, signHex("x", body), servicenow.TokenHeader, "s3cret"), body, "s3cret", "does not match"},
		{"wrong token", header(servicenow.TokenHeader, "guess"), body, "s3cret", "X-Evidence-Token header does not match"},
		{"missing", header("Content-Type", "application/json"), body, "s3cret", "neither"},
		{"empty secret never matches", header(servicenow.SignatureHeader, signHex("", body)), body, "", "does not match"},
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
