// Package auth is the HTTP API's access control: bearer tokens with roles,
// read from a tokens file that holds SHA-256 hashes of the tokens, never
// the tokens themselves.
//
// The tokens file has one token a line: ROLE SHA256-HEX NAME, where ROLE is
// producer, gate, auditor or admin, and NAME says whose token it is (it is
// logged, the token never is). Blank lines and lines starting with # are
// ignored. `evidence token new --role R --name N` prints a new token and its
// line.
package auth

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// Role is what a token may do.
type Role string

// The roles. Admin may do everything.
const (
	Producer Role = "producer" // post events
	Gate     Role = "gate"     // ask the deployment gate
	Auditor  Role = "auditor"  // read changes, reports, verification
	Admin    Role = "admin"    // everything
	// None marks endpoints open to anyone (health, webhooks verified by
	// their own signatures).
	None Role = ""
)

// ParseRole checks a role name.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case Producer, Gate, Auditor, Admin:
		return r, nil
	}
	return "", fmt.Errorf("unknown role %q (want producer, gate, auditor or admin)", s)
}

// Identity is who a request comes from.
type Identity struct {
	Name string
	Role Role
	// Job holds the verified claims of a CI job token (an OIDC ID token of
	// GitHub Actions or GitLab CI, internal/jobtoken): the run whose
	// evidence the request may post. nil for a static token.
	Job *ce.JobClaims
}

type identityKey struct{}

// WithIdentity is ctx carrying the request's authenticated identity.
func WithIdentity(ctx context.Context, id Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// FromContext is the identity WithIdentity put in ctx; ok is false when
// the request was not authenticated (open mode, or an open route).
func FromContext(ctx context.Context) (id Identity, ok bool) {
	id, ok = ctx.Value(identityKey{}).(Identity)
	return id, ok
}

// Allows reports whether the identity may act in role want.
func (id Identity) Allows(want Role) bool {
	return want == None || id.Role == Admin || id.Role == want
}

// Tokens is a set of token hashes with their roles.
type Tokens struct {
	byHash map[string]Identity
}

// Hash is the hex SHA-256 of a token, as stored in the tokens file.
func Hash(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// NewToken makes a random token (256 bits, hex, prefixed "evd_").
func NewToken() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "evd_" + hex.EncodeToString(b[:]), nil
}

// Load reads a tokens file.
func Load(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	t, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("tokens file %s: %w", path, err)
	}
	return t, nil
}

// Parse reads the tokens file format.
func Parse(r io.Reader) (*Tokens, error) {
	t := &Tokens{byHash: map[string]Identity{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("line %d: want ROLE SHA256-HEX NAME, got %d fields", n, len(f))
		}
		role, err := ParseRole(f[0])
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		h := strings.ToLower(f[1])
		if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("line %d: %q is not a SHA-256 hex digest (store the hash of the token, not the token: `evidence token new` prints it)", n, f[1])
		}
		if prev, dup := t.byHash[h]; dup {
			return nil, fmt.Errorf("line %d: the same token hash is already given to %s", n, prev.Name)
		}
		t.byHash[h] = Identity{Name: f[2], Role: role}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(t.byHash) == 0 {
		return nil, errors.New("no tokens in the file")
	}
	return t, nil
}

// Len is the number of tokens.
func (t *Tokens) Len() int { return len(t.byHash) }

// Errors of Authenticate, each with the HTTP status it maps to.
var (
	ErrNoToken  = errors.New("missing bearer token: send Authorization: Bearer <token>")
	ErrBadToken = errors.New("unknown token")
)

// Bearer is the request's bearer token; ok is false when it sends none.
func Bearer(r *http.Request) (token string, ok bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" || !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// Authenticate finds the identity of a request's bearer token.
func (t *Tokens) Authenticate(r *http.Request) (Identity, error) {
	tok, ok := Bearer(r)
	if !ok {
		return Identity{}, ErrNoToken
	}
	id, ok := t.byHash[Hash(tok)]
	if !ok {
		return Identity{}, ErrBadToken
	}
	return id, nil
}
