package webhooktest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
)

// Header is a header with the given name, value pairs set.
func Header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// MAC is the HMAC-SHA256 of body with secret.
func MAC(secret string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return m.Sum(nil)
}

// SignHex is "sha256=" and the MAC in hex, the signature of GitHub's
// X-Hub-Signature-256 and Jira's X-Hub-Signature.
func SignHex(secret string, body []byte) string {
	return "sha256=" + hex.EncodeToString(MAC(secret, body))
}

// SignBase64 is "sha256=" and the MAC in base64, what ServiceNow's
// GlideCertificateEncryption.generateMac gives.
func SignBase64(secret string, body []byte) string {
	return "sha256=" + base64.StdEncoding.EncodeToString(MAC(secret, body))
}
