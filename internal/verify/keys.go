package verify

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Key file names that `evidence keys new` and evidenced write.
const (
	PrivateKeyFile = "evidence-signing.key"
	PublicKeyFile  = "evidence-signing.pub"
)

// SigningKey is an ed25519 private key with its key id.
type SigningKey struct {
	ID      string
	Private ed25519.PrivateKey
}

// Public is the key's public half.
func (k *SigningKey) Public() ed25519.PublicKey { return k.Private.Public().(ed25519.PublicKey) }

// PublicKeys are public keys by key id.
type PublicKeys map[string]ed25519.PublicKey

// IDs are the key ids, sorted.
func (p PublicKeys) IDs() []string {
	ids := make([]string, 0, len(p))
	for id := range p {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// KeyID is the first 16 hex digits of the SHA-256 of the public key's PKIX
// DER encoding.
func KeyID(pub ed25519.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		panic(err) // an ed25519 key always marshals
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey makes a new signing key.
func GenerateKey() (*SigningKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	k := &SigningKey{Private: priv}
	k.ID = KeyID(k.Public())
	return k, nil
}

// WriteKeyPair writes key to dir as PrivateKeyFile (PKCS#8 PEM, mode 0600)
// and PublicKeyFile (PKIX PEM, mode 0644), refusing to overwrite either. It
// returns the two paths.
func WriteKeyPair(dir string, key *SigningKey) (privPath, pubPath string, err error) {
	privPath, pubPath = filepath.Join(dir, PrivateKeyFile), filepath.Join(dir, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("%s exists: refusing to overwrite a key (move it away first; keep old public keys to verify old checkpoints)", p)
		}
	}
	der, err := x509.MarshalPKCS8PrivateKey(key.Private)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return "", "", err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		_ = os.Remove(privPath)
		return "", "", err
	}
	return privPath, pubPath, nil
}

func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// LoadSigningKey reads a PKCS#8 PEM ed25519 private key. The file must not
// be readable or writable by group or others.
func LoadSigningKey(path string) (*SigningKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("%s is a directory, not a key file", path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("%s: not a PEM file (want a PKCS#8 \"PRIVATE KEY\" block, as evidence keys new writes)", path)
	}
	if block.Type == "PUBLIC KEY" {
		return nil, fmt.Errorf("%s: a \"PUBLIC KEY\" PEM block: give the private key (%s), not the public one", path, PrivateKeyFile)
	}
	if block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: PEM block %q, want \"PRIVATE KEY\" (PKCS#8)", path, block.Type)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%s has mode %04o: a signing key must be readable by its owner only (chmod 600 %s)", path, perm, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: a %T, want an ed25519 key", path, k)
	}
	key := &SigningKey{Private: priv}
	key.ID = KeyID(key.Public())
	return key, nil
}

// LoadOrCreateSigningKey loads the key at path, or, when the file does not
// exist, generates one and writes it there with its public key beside it
// (the directory is created, mode 0700). created says which happened.
func LoadOrCreateSigningKey(path string) (key *SigningKey, created bool, err error) {
	key, err = LoadSigningKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if filepath.Base(path) != PrivateKeyFile {
		return nil, false, fmt.Errorf("%s does not exist (only %s is generated when missing)", path, PrivateKeyFile)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, err
	}
	if key, err = GenerateKey(); err != nil {
		return nil, false, err
	}
	if _, _, err := WriteKeyPair(dir, key); err != nil {
		return nil, false, err
	}
	return key, true, nil
}

// ParsePublicKey reads a PKIX PEM ed25519 public key.
func ParsePublicKey(data []byte) (ed25519.PublicKey, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("not a PEM file (want a \"PUBLIC KEY\" block, as evidence keys new writes)")
	}
	if block.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("PEM block %q, want \"PUBLIC KEY\" (PKIX)", block.Type)
	}
	k, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ed25519 key", k)
	}
	return pub, nil
}

// ReadPublicKey reads a PKIX PEM ed25519 public key file.
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := ParsePublicKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}

// LoadPublicKeys reads public keys from files and directories (every
// *.pub file in them), keyed by key id.
func LoadPublicKeys(paths ...string) (PublicKeys, error) {
	keys := PublicKeys{}
	add := func(path string) error {
		pub, err := ReadPublicKey(path)
		if err != nil {
			return err
		}
		keys[KeyID(pub)] = pub
		return nil
	}
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		if !fi.IsDir() {
			if err := add(p); err != nil {
				return nil, err
			}
			continue
		}
		entries, err := os.ReadDir(p)
		if err != nil {
			return nil, err
		}
		n := 0
		for _, e := range entries {
			if e.IsDir() || !strings.HasSuffix(e.Name(), ".pub") {
				continue
			}
			if err := add(filepath.Join(p, e.Name())); err != nil {
				return nil, err
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("%s: no .pub files in the directory", p)
		}
	}
	return keys, nil
}
