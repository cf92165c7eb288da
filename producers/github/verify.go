package github

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// signatureError says why a delivery's signature is refused; it wraps
// webhook.ErrBadSignature.
type signatureError string

func (e signatureError) Error() string { return string(e) }
func (e signatureError) Unwrap() error { return webhook.ErrBadSignature }

// Verify checks X-Hub-Signature-256 (sha256=<hex>), the HMAC-SHA256 of the
// raw body keyed with the secret, in constant time. The legacy SHA-1
// X-Hub-Signature is not accepted on its own.
func (p *Provider) Verify(h http.Header, body []byte, secret string) error {
	if secret == "" {
		return signatureError("no GitHub webhook secret is configured (set " + p.SecretEnv() + ")")
	}
	sig := strings.TrimSpace(h.Get("X-Hub-Signature-256"))
	if sig == "" {
		if h.Get("X-Hub-Signature") != "" {
			return signatureError("X-Hub-Signature-256 header is missing; the legacy SHA-1 X-Hub-Signature alone is not accepted")
		}
		return signatureError("X-Hub-Signature-256 header is missing (set a secret on the GitHub webhook)")
	}
	hexSig, ok := strings.CutPrefix(sig, "sha256=")
	if !ok {
		return signatureError("X-Hub-Signature-256 header is malformed: want sha256=<64 hex digits>")
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return signatureError("X-Hub-Signature-256 header is malformed: want sha256=<64 hex digits>")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return signatureError("X-Hub-Signature-256 does not match: the body was not signed with the configured secret")
	}
	return nil
}
