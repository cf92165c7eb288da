// Package verify is the tamper evidence of the archive, in the form an
// auditor's tools can use without the server side: the hash chain's row
// hash, signed checkpoints (their canonical bytes, signature and the
// ClickHouse table that keeps them), ed25519 signing keys and their ids,
// and the verifier that recomputes the chain from ClickHouse, streaming, and
// names the first row altered, deleted or inserted.
//
// It depends on neither the NATS server nor the archive stage, so the
// evidence CLI can use it (internal/hygiene keeps them out); it reads the
// checkpoint stream with the NATS client only (stream.go). The chain is defined here
// once (RowHash): the archive chains with ChainHash, the verifier checks
// with RowHash, and a test checks both against the definition by hand.
//
// # Checkpoints
//
// A checkpoint signs the head of the chain: the stream sequence and hash of
// a row, the number of rows in the chain up to and including it, when it
// was made and which key signed it. The signature is ed25519 over
// [Checkpoint.SignedBytes]:
//
//	evidence-checkpoint/v1\n
//	stream_seq=<decimal>\n
//	event_count=<decimal>\n
//	head_hash=<lower-case hex>\n
//	created_ns=<decimal Unix nanoseconds>\n
//	key_id=<16 lower-case hex>\n
//
// # Keys
//
// A key id is the first 16 hex digits of the SHA-256 of the public key's
// PKIX (SubjectPublicKeyInfo) DER encoding, which is what the .pub file's
// PEM block holds:
//
//	openssl pkey -pubin -in evidence-signing.pub -outform DER | sha256sum | cut -c1-16
package verify
