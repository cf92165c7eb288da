package report

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
)

// The key files are those evidence keys new writes (docs/tamper-evidence.md):
// the private key as PKCS#8 PEM ("PRIVATE KEY"), the public key as PKIX
// PEM ("PUBLIC KEY"), both ed25519. A key's id is the first 16 hex digits
// of the SHA-256 of its public key's PKIX (DER) encoding.

// KeyID is the id of an ed25519 public key.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])[:16]
}

// ReadPrivateKey reads an ed25519 private key from a PKCS#8 PEM file.
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	block, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PKCS#8 private key: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an ed25519 private key", path, k)
	}
	return ek, nil
}

// ReadPublicKey reads an ed25519 public key from a PKIX PEM file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	block, err := readPEM(path, "PUBLIC KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: not a PKIX public key: %w", path, err)
	}
	ek, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, not an ed25519 public key", path, k)
	}
	return ek, nil
}

func readPEM(path, want string) (*pem.Block, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, fmt.Errorf("%s: no PEM block (want a %q PEM file, as evidence keys new writes)", path, want)
	}
	if block.Type != want {
		return nil, fmt.Errorf("%s: a %q PEM block, want %q", path, block.Type, want)
	}
	return block, nil
}
