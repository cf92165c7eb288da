package tlog

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// Witnesses. A witness (evidence witness, run by someone other than the
// operator) keeps the last checkpoint it cosigned, checks a consistency
// proof from it to each new checkpoint, and cosigns the new one with its
// own ed25519 key as a C2SP tlog-cosignature (cosignature/v1: algorithm
// 0x04, the signature is an 8-byte big-endian timestamp followed by the
// ed25519 signature of "cosignature/v1\ntime <t>\n" and the checkpoint
// body). The cosignature is one more signature line of the checkpoint's
// signed note. Signing and verifying are github.com/transparency-dev/formats/note's.

// CosignatureSize is the decoded size of an ed25519 cosignature/v1
// signature: key hash (4), timestamp (8), ed25519 signature (64).
const CosignatureSize = 4 + 8 + ed25519.SignatureSize

// WitnessKeyPair makes a witness key named name: the note private key
// (a standard ed25519 note signer key, PRIVATE+KEY+name+hash+base64(0x01
// || seed), from which formats' cosignature/v1 signer is made) and its
// cosignature/v1 verifier key (name+hash+base64(0x04 || public key)),
// which auditors give to evidence verify --witness.
func WitnessKeyPair(name string) (skey, vkey string, err error) {
	if err := checkWitnessName(name); err != nil {
		return "", "", err
	}
	skey, std, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("witness name %q: %w", name, err)
	}
	vkey, err = fnote.VKeyToCosignatureV1(std)
	if err != nil {
		return "", "", fmt.Errorf("witness key: %w", err)
	}
	// Check the pair round-trips through the library.
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return "", "", fmt.Errorf("witness key: %w", err)
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil || v.KeyHash() != s.KeyHash() || v.Name() != name {
		return "", "", fmt.Errorf("witness key: the library's signer and verifier do not match (%v)", err)
	}
	return skey, vkey, nil
}

func checkWitnessName(name string) error {
	if name == "" || strings.ContainsAny(name, "+ \n\t") {
		return fmt.Errorf("witness name %q: must be non-empty, without '+', spaces or newlines (e.g. internal-audit.example.com/witness)", name)
	}
	if strings.HasPrefix(name, "evidenced/") {
		return fmt.Errorf("witness name %q: evidenced/ names the operator's log, choose a name of the witness's own", name)
	}
	return nil
}

// Cosigner cosigns checkpoints with a witness key.
type Cosigner struct {
	s note.Signer
}

// NewCosigner reads a witness's note private key (WitnessKeyPair).
func NewCosigner(skey string) (*Cosigner, error) {
	s, err := fnote.NewSignerForCosignatureV1(strings.TrimSpace(skey))
	if err != nil {
		return nil, fmt.Errorf("witness private key: %w (want PRIVATE+KEY+name+hash+key, as evidence witness keygen writes)", err)
	}
	return &Cosigner{s: s}, nil
}

// Name is the witness's name (its signature lines' name).
func (c *Cosigner) Name() string { return c.s.Name() }

// Cosign returns the signature line ("— name base64\n") of the witness
// over the checkpoint body text.
func (c *Cosigner) Cosign(text string) (string, error) {
	msg, err := note.Sign(&note.Note{Text: text}, c.s)
	if err != nil {
		return "", fmt.Errorf("cosign: %w", err)
	}
	_, sigs, err := SplitNote(msg)
	if err != nil || len(sigs) != 1 {
		return "", fmt.Errorf("cosign: unexpected note from the signer: %v", err)
	}
	return sigs[0], nil
}

// SplitNote splits a signed note into its text (ending in a newline) and
// its signature lines (each "— name base64\n"), checking their form only.
func SplitNote(msg []byte) (text string, sigs []string, err error) {
	msg = bytes.TrimLeft(msg, "\r\n\t ")
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return "", nil, errors.New("signed note: no blank line between the text and the signatures")
	}
	text = string(msg[:i+1])
	rest := string(msg[i+2:])
	if rest == "" || !strings.HasSuffix(rest, "\n") {
		return "", nil, errors.New("signed note: the signatures must end in a newline")
	}
	for _, line := range strings.SplitAfter(rest, "\n") {
		if line == "" {
			continue
		}
		if _, _, err := parseSigLine(line); err != nil {
			return "", nil, err
		}
		sigs = append(sigs, line)
	}
	return text, sigs, nil
}

// parseSigLine reads "— name base64\n".
func parseSigLine(line string) (name string, sig []byte, err error) {
	body, ok := strings.CutPrefix(line, "— ")
	body, ok2 := strings.CutSuffix(body, "\n")
	name, b64, ok3 := strings.Cut(body, " ")
	if !ok || !ok2 || !ok3 || name == "" || strings.ContainsAny(name, "+ \t") {
		return "", nil, fmt.Errorf("signed note: signature line %q is not \"— NAME BASE64\"", strings.TrimSuffix(line, "\n"))
	}
	sig, err = base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sig) < 5 {
		return "", nil, fmt.Errorf("signed note: signature line of %q: not base64 of a key hash and a signature", name)
	}
	return name, sig, nil
}

// CheckCosignatureLine checks that line is of the form of an ed25519
// cosignature/v1 signature line by a name other than origin's (the
// signature itself can only be checked with the witness's key).
func CheckCosignatureLine(line, origin string) error {
	name, sig, err := parseSigLine(line)
	if err != nil {
		return err
	}
	if name == origin {
		return fmt.Errorf("signature line of %q: that is the log's own name, not a witness's", name)
	}
	if len(sig) != CosignatureSize {
		return fmt.Errorf("signature line of %q: %d bytes, an ed25519 cosignature/v1 has %d (key hash, timestamp, signature)", name, len(sig), CosignatureSize)
	}
	return nil
}

// JoinNote is the signed note of text with the signature lines sigs,
// each kept once, in order.
func JoinNote(text string, sigs []string) []byte {
	var b bytes.Buffer
	b.WriteString(text)
	b.WriteString("\n")
	seen := map[string]bool{}
	for _, s := range sigs {
		if !seen[s] {
			seen[s] = true
			b.WriteString(s)
		}
	}
	return b.Bytes()
}

// Cosignature is a witness cosignature verified on a checkpoint.
type Cosignature struct {
	Name string
	Time time.Time
}

// OpenWitnessed verifies a signed checkpoint with the log's verifier key
// (OpenCheckpoint) and counts the valid cosignatures of the witness keys
// given (cosignature/v1 verifier keys): it fails when fewer than need
// distinct witnesses cosigned it, or when a cosignature of a given key
// does not verify, naming the witnesses found and missing.
func OpenWitnessed(msg []byte, logKeys []string, witnessKeys []string, need int) (Checkpoint, []Cosignature, error) {
	c, _, err := OpenCheckpoint(msg, logKeys...)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	if need < 0 {
		return Checkpoint{}, nil, fmt.Errorf("--witnesses %d: want a number of witnesses, 0 or more", need)
	}
	if need > len(witnessKeys) {
		return Checkpoint{}, nil, fmt.Errorf("--witnesses %d: only %d witness keys given with --witness", need, len(witnessKeys))
	}
	if len(witnessKeys) == 0 {
		return c, nil, nil
	}
	var vs []note.Verifier
	names := map[string]bool{}
	for _, k := range witnessKeys {
		v, err := fnote.NewVerifierForCosignatureV1(strings.TrimSpace(k))
		if err != nil {
			return Checkpoint{}, nil, fmt.Errorf("--witness %q: not a witness verifier key (name+hash+key): %w", k, err)
		}
		if v.Name() == c.Origin {
			return Checkpoint{}, nil, fmt.Errorf("--witness %q: that is the log's own name %q, not a witness", k, c.Origin)
		}
		vs = append(vs, v)
		names[v.Name()] = true
	}
	wvs := vs
	// Each signature line of a witness given is checked on its own (not
	// with note.Open, which checks only the first line of a key): a
	// malformed or forged line posted beside a valid one does not hide it.
	text, lines, err := SplitNote(msg)
	if err != nil {
		return Checkpoint{}, nil, err
	}
	var out []Cosignature
	seen := map[string]bool{}
	var invalid []string
	for _, line := range lines {
		name, sig, err := parseSigLine(line)
		if err != nil || !names[name] || seen[name] {
			continue
		}
		hash := binary.BigEndian.Uint32(sig[:4])
		var v note.Verifier
		for _, w := range wvs {
			if w.Name() == name && w.KeyHash() == hash {
				v = w
			}
		}
		if v == nil {
			continue // another key of that name
		}
		if !v.Verify([]byte(text), sig[4:]) {
			invalid = append(invalid, name)
			continue
		}
		t, err := fnote.CoSigV1Timestamp(note.Signature{Name: name, Hash: hash, Base64: base64.StdEncoding.EncodeToString(sig)})
		if err != nil {
			return Checkpoint{}, nil, fmt.Errorf("cosignature of %q: %w", name, err)
		}
		seen[name] = true
		out = append(out, Cosignature{Name: name, Time: t.UTC()})
	}
	if len(out) < need && len(invalid) > 0 {
		return Checkpoint{}, out, fmt.Errorf("checkpoint of %d leaves: the cosignature of witness %q does not verify with its key: it was altered or forged (%d valid cosignatures of the keys given, --witnesses wants %d)",
			c.Tree.N, invalid[0], len(out), need)
	}
	if len(out) < need {
		var missing []string
		for _, v := range wvs {
			if !seen[v.Name()] {
				missing = append(missing, v.Name())
			}
		}
		return Checkpoint{}, out, fmt.Errorf("checkpoint of %d leaves has %d valid witness cosignatures of the keys given, --witnesses wants %d (not cosigned by: %s)",
			c.Tree.N, len(out), need, strings.Join(missing, ", "))
	}
	return c, out, nil
}

// ErrRewritten means a checkpoint does not extend one cosigned before:
// history was rewritten, rolled back or forked.
var ErrRewritten = errors.New("the new checkpoint does not extend the one cosigned before")

// CheckExtends is the witness's check that newer extends older: a
// smaller tree is a rollback, the same size with another root a fork, a
// larger tree needs a consistency proof p from older to newer.
func CheckExtends(older, newer Checkpoint, p *ConsistencyProof) error {
	switch {
	case older.Origin != newer.Origin:
		return fmt.Errorf("%w: the checkpoints are of two logs (%q, %q)", ErrRewritten, older.Origin, newer.Origin)
	case newer.Tree.N < older.Tree.N:
		return fmt.Errorf("%w: the log now signs %d leaves, fewer than the %d cosigned before (rolled back)", ErrRewritten, newer.Tree.N, older.Tree.N)
	case newer.Tree.N == older.Tree.N:
		if newer.Tree.Hash != older.Tree.Hash {
			return fmt.Errorf("%w: the log signs two roots for %d leaves, %s cosigned before and %s now (forked)", ErrRewritten, older.Tree.N,
				base64.StdEncoding.EncodeToString(older.Tree.Hash[:]), base64.StdEncoding.EncodeToString(newer.Tree.Hash[:]))
		}
		return nil
	}
	if p == nil {
		return errors.New("no consistency proof")
	}
	if err := VerifyConsistency(older, newer, *p); err != nil {
		return fmt.Errorf("%w: %v", ErrRewritten, err)
	}
	return nil
}
