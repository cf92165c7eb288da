package tlog

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoint is a C2SP tlog-checkpoint body: the log's origin, a tree
// size and the root hash of the tree of that size.
type Checkpoint struct {
	Origin string
	Tree   tlog.Tree
}

// Body is the checkpoint's C2SP text: origin, size in decimal, root in
// standard base64, each on its own line.
func (c Checkpoint) Body() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Tree.N, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Tree.Hash[:]) + "\n"
}

// ParseCheckpoint reads a checkpoint body (extension lines after the
// third are allowed and ignored, as C2SP says).
func ParseCheckpoint(body string) (Checkpoint, error) {
	lines := strings.SplitN(body, "\n", 4)
	if len(lines) < 4 {
		return Checkpoint{}, errors.New("checkpoint: want at least three lines (origin, tree size, root hash), each ending in a newline")
	}
	origin, size, root := lines[0], lines[1], lines[2]
	if origin == "" {
		return Checkpoint{}, errors.New("checkpoint: empty origin line")
	}
	n, err := strconv.ParseInt(size, 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != size {
		return Checkpoint{}, fmt.Errorf("checkpoint: tree size %q is not a decimal number", size)
	}
	h, err := base64.StdEncoding.DecodeString(root)
	if err != nil || len(h) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("checkpoint: root hash %q is not %d bytes of base64", root, tlog.HashSize)
	}
	c := Checkpoint{Origin: origin, Tree: tlog.Tree{N: n}}
	copy(c.Tree.Hash[:], h)
	return c, nil
}

// OriginFor is the origin of the log evidenced signs with the key of id
// keyID (the note key's name): evidenced/<key id>.
func OriginFor(keyID string) string { return "evidenced/" + keyID }

// Signer signs checkpoints as C2SP signed notes with an ed25519 key; the
// key's name is the log's origin.
type Signer struct {
	origin string
	signer note.Signer
	vkey   string
}

// NewSigner returns a signer for origin with the private key priv.
func NewSigner(origin string, priv ed25519.PrivateKey) (*Signer, error) {
	vkey, err := VerifierKey(origin, priv.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	// A note private key is PRIVATE+KEY+<name>+<hash>+base64(0x01 || seed),
	// with the name and hash of its verifier key.
	parts := strings.SplitN(vkey, "+", 3)
	skey := "PRIVATE+KEY+" + parts[0] + "+" + parts[1] + "+" + base64.StdEncoding.EncodeToString(append([]byte{1}, priv.Seed()...))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("checkpoint signer: %w", err)
	}
	return &Signer{origin: origin, signer: s, vkey: vkey}, nil
}

// VerifierKey is the note verifier key (name+hash+base64 key) of an
// ed25519 public key under the log's origin: what an auditor or an
// independent note reader needs.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	if origin == "" || strings.ContainsAny(origin, "+ \n\t") {
		return "", fmt.Errorf("log origin %q: must be non-empty, without '+', spaces or newlines", origin)
	}
	vkey, err := note.NewEd25519VerifierKey(origin, pub)
	if err != nil {
		return "", fmt.Errorf("log origin %q: %w", origin, err)
	}
	return vkey, nil
}

// Origin is the log's origin line.
func (s *Signer) Origin() string { return s.origin }

// VerifierKey is the signer's note verifier key.
func (s *Signer) VerifierKey() string { return s.vkey }

// Sign returns the signed note of the checkpoint of tree.
func (s *Signer) Sign(tree tlog.Tree) ([]byte, error) {
	msg, err := note.Sign(&note.Note{Text: Checkpoint{Origin: s.origin, Tree: tree}.Body()}, s.signer)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	return msg, nil
}

// OpenCheckpoint verifies a signed checkpoint note with the verifier keys
// given (note verifier keys) and parses it; it fails unless a key of the
// note's origin signed it. Signatures by other keys (witnesses) are kept
// in the returned note.
func OpenCheckpoint(msg []byte, vkeys ...string) (Checkpoint, *note.Note, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return Checkpoint{}, nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	n, err := note.Open(bytes.TrimLeft(msg, "\r\n\t "), note.VerifierList(vs...))
	if err != nil {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint note: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	signed := false
	for _, sig := range n.Sigs {
		if sig.Name == c.Origin {
			signed = true
		}
	}
	if !signed {
		return Checkpoint{}, nil, fmt.Errorf("checkpoint of origin %q is not signed by a key of that name", c.Origin)
	}
	return c, n, nil
}
