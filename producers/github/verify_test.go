package github_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

const secret = "It's a Secret to Everybody"

func TestVerify(t *testing.T) {
	body := []byte("Hello, World!")
	p := newProvider()

	// The example of GitHub's documentation ("Validating webhook deliveries").
	h := headers("push", "d-1")
	h.Set("X-Hub-Signature-256", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
	if err := p.Verify(h, body, secret); err != nil {
		t.Fatalf("the documented example does not verify: %v", err)
	}

	for _, tc := range []struct {
		name   string
		header func() map[string]string
		body   []byte
		secret string
		want   string
	}{
		{"wrong secret", signed(body, "not the secret"), body, secret, "does not match"},
		{"tampered body", signed(body, secret), []byte("Hello, World?"), secret, "does not match"},
		{"missing header", func() map[string]string { return nil }, body, secret, "X-Hub-Signature-256 header is missing"},
		{"legacy SHA-1 only", func() map[string]string {
			return map[string]string{"X-Hub-Signature": "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"}
		}, body, secret, "legacy SHA-1"},
		{"no prefix", func() map[string]string {
			return map[string]string{"X-Hub-Signature-256": "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
		}, body, secret, "malformed"},
		{"sha1 prefix", func() map[string]string {
			return map[string]string{"X-Hub-Signature-256": "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
		}, body, secret, "malformed"},
		{"not hex", func() map[string]string {
			return map[string]string{"X-Hub-Signature-256": "sha256=zz7107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"}
		}, body, secret, "malformed"},
		{"short", func() map[string]string { return map[string]string{"X-Hub-Signature-256": "sha256=757107ea"} }, body, secret, "malformed"},
		{"no secret configured", signed(body, ""), body, "", "EVIDENCE_GITHUB_SECRET"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := headers("push", "d-1")
			for k, v := range tc.header() {
				h.Set(k, v)
			}
			err := p.Verify(h, tc.body, tc.secret)
			if !errors.Is(err, webhook.ErrBadSignature) {
				t.Fatalf("Verify = %v, want an error wrapping ErrBadSignature", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// signed returns the signature header of body with key.
func signed(body []byte, key string) func() map[string]string {
	return func() map[string]string {
		h := headers("", "")
		sign(h, key, body)
		return map[string]string{"X-Hub-Signature-256": h.Get("X-Hub-Signature-256")}
	}
}

// TestVerifyFormBody: GitHub signs the form-encoded body as sent, not the
// JSON inside it.
func TestVerifyFormBody(t *testing.T) {
	js := payload(t, "pull_request.opened")
	form := []byte("payload=" + url.QueryEscape(string(js)))
	h := headers("pull_request", "d-1")
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	sign(h, secret, form)
	p := newProvider()
	if err := p.Verify(h, form, secret); err != nil {
		t.Fatalf("form body: %v", err)
	}
	if err := p.Verify(h, js, secret); !errors.Is(err, webhook.ErrBadSignature) {
		t.Errorf("the JSON inside the form verifies with the form's signature: %v", err)
	}
	events, err := p.Translate(h, form)
	if err != nil {
		t.Fatal(err)
	}
	checkEvents(t, events, "d-1")
}
