package verify

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Checkpoint is a signed head of the hash chain.
type Checkpoint struct {
	// Seq is the stream sequence of the head row.
	Seq uint64 `json:"stream_seq"`
	// Count is the number of rows in the chain from its first row up to
	// and including the head.
	Count uint64 `json:"event_count"`
	// Head is the head row's hash.
	Head string `json:"head_hash"`
	// CreatedNs is when the checkpoint was made (Unix nanoseconds).
	CreatedNs int64 `json:"created_ns"`
	// KeyID names the signing key (KeyID of its public key).
	KeyID string `json:"key_id"`
	// Signature is the ed25519 signature of SignedBytes, lower-case hex.
	Signature string `json:"signature"`
}

// SignedBytes is the canonical encoding the signature covers (see the
// package doc).
func (c *Checkpoint) SignedBytes() []byte {
	b := make([]byte, 0, 192)
	b = append(b, "evidence-checkpoint/v1\nstream_seq="...)
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, "\nevent_count="...)
	b = strconv.AppendUint(b, c.Count, 10)
	b = append(b, "\nhead_hash="...)
	b = append(b, c.Head...)
	b = append(b, "\ncreated_ns="...)
	b = strconv.AppendInt(b, c.CreatedNs, 10)
	b = append(b, "\nkey_id="...)
	b = append(b, c.KeyID...)
	b = append(b, '\n')
	return b
}

// Created is CreatedNs as a time.
func (c *Checkpoint) Created() time.Time { return time.Unix(0, c.CreatedNs).UTC() }

// Sign sets KeyID and Signature with key.
func (c *Checkpoint) Sign(key *SigningKey) {
	c.KeyID = key.ID
	c.Signature = hex.EncodeToString(ed25519.Sign(key.Private, c.SignedBytes()))
}

// ErrUnknownKey means a checkpoint was signed by a key not among those
// given.
var ErrUnknownKey = errors.New("unknown signing key")

// CheckSignature verifies the signature with the public key of its key id
// in keys. The error says what is wrong: ErrUnknownKey (wrapped), a
// malformed signature, or a signature that does not verify.
func (c *Checkpoint) CheckSignature(keys PublicKeys) error {
	pub, ok := keys[c.KeyID]
	if !ok {
		return fmt.Errorf("%w %q: give its public key with --public-key", ErrUnknownKey, c.KeyID)
	}
	sig, err := hex.DecodeString(c.Signature)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("signature is not %d bytes of hex", ed25519.SignatureSize)
	}
	if !ed25519.Verify(pub, c.SignedBytes(), sig) {
		return fmt.Errorf("signature does not verify with key %s: the checkpoint was altered or forged", c.KeyID)
	}
	return nil
}
