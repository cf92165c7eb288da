package verify_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/internal/verify/verifytest"
	"github.com/evidencepipeline/evidence/processors/archive"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The chain has one definition (verify.RowHash), reached two ways: the
// archive hashes the canonical bytes of the event it received
// (ChainHash), the verifier rebuilds the event from the row (RowHash, and
// RowHasher reusing its buffers). All must agree, and with the definition
// written out by hand.
func TestRowHashIsTheArchives(t *testing.T) {
	r0 := verifytest.Row(1, 1)
	e, err := verify.EventFromRow(&r0)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte(fmt.Sprintf("%s\n%d\n%d\n", r0.PrevHash, r0.StreamSeq, r0.ReceivedNs)), e.MarshalCanonical()...))
	if got, _ := verify.RowHash(&r0); got != hex.EncodeToString(sum[:]) {
		t.Fatalf("RowHash %s, by hand %x", got, sum)
	}
	var h verify.RowHasher
	prev := archive.GenesisHash
	for k := 1; k <= 600; k++ {
		r := verifytest.Row(k, uint64(k))
		r.PrevHash = prev
		switch k % 7 {
		case 1:
			r.EventTimeNs = 0 // no time
		case 2:
			r.Subject, r.DataSchema = "", "https://schemas.example/run.json"
		case 3:
			r.Data = nil
			r.DataContentType = ""
		}
		ev, err := archive.EventFromRow(&r)
		if err != nil {
			t.Fatal(err)
		}
		want := verify.ChainHash(r.PrevHash, r.StreamSeq, r.ReceivedNs, ev.MarshalCanonical())
		got, err := h.Hash(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("row %d: verify hash %s, archive hash %s", k, got, want)
		}
		if one, _ := verify.RowHash(&r); one != want {
			t.Fatalf("row %d: RowHash %s, archive %s", k, one, want)
		}
		prev = want
	}
	r := verifytest.Row(1, 1)
	r.Extensions = "{not json"
	if _, err := verify.RowHash(&r); err == nil {
		t.Fatal("a row with unreadable extensions was hashed")
	}
}

func TestSignedBytesFormat(t *testing.T) {
	c := verify.Checkpoint{Seq: 42, Count: 40, Head: "ab12", CreatedNs: 1764100000123456789, KeyID: "0123456789abcdef"}
	want := "evidence-checkpoint/v1\nstream_seq=42\nevent_count=40\nhead_hash=ab12\ncreated_ns=1764100000123456789\nkey_id=0123456789abcdef\n"
	if got := string(c.SignedBytes()); got != want {
		t.Fatalf("signed bytes:\n%q\nwant\n%q", got, want)
	}
}

func TestCheckpointSignature(t *testing.T) {
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keys := verify.PublicKeys{key.ID: key.Public()}
	c := verify.Checkpoint{Seq: 10, Count: 9, Head: strings.Repeat("a", 64), CreatedNs: time.Now().UnixNano()}
	c.Sign(key)
	if c.KeyID != key.ID || len(c.Signature) != 128 {
		t.Fatalf("signed checkpoint: %+v", c)
	}
	if err := c.CheckSignature(keys); err != nil {
		t.Fatalf("good signature refused: %v", err)
	}
	for name, alter := range map[string]func(*verify.Checkpoint){
		"seq":     func(c *verify.Checkpoint) { c.Seq++ },
		"count":   func(c *verify.Checkpoint) { c.Count-- },
		"head":    func(c *verify.Checkpoint) { c.Head = strings.Repeat("b", 64) },
		"created": func(c *verify.Checkpoint) { c.CreatedNs++ },
	} {
		bad := c
		alter(&bad)
		if err := bad.CheckSignature(keys); err == nil || !strings.Contains(err.Error(), "does not verify with key "+key.ID) {
			t.Errorf("%s altered: %v", name, err)
		}
	}
	bad := c
	bad.Signature = "zz"
	if err := bad.CheckSignature(keys); err == nil || !strings.Contains(err.Error(), "not 64 bytes of hex") {
		t.Errorf("malformed signature: %v", err)
	}
	other, _ := verify.GenerateKey()
	if err := c.CheckSignature(verify.PublicKeys{other.ID: other.Public()}); !errors.Is(err, verify.ErrUnknownKey) || !strings.Contains(err.Error(), key.ID) {
		t.Errorf("unknown key: %v", err)
	}
	// A checkpoint claiming another key id does not verify with it.
	bad = c
	bad.KeyID = other.ID
	if err := bad.CheckSignature(verify.PublicKeys{other.ID: other.Public(), key.ID: key.Public()}); err == nil {
		t.Error("a signature verified under another key id")
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := verify.WriteKeyPair(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	for path, mode := range map[string]os.FileMode{priv: 0o600, pub: 0o644} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %04o, want %04o", path, fi.Mode().Perm(), mode)
		}
	}
	// The key id is the SHA-256 of the public key's DER, as openssl shows.
	data, _ := os.ReadFile(pub)
	block, _ := pem.Decode(data)
	sum := sha256.Sum256(block.Bytes)
	if key.ID != hex.EncodeToString(sum[:])[:16] {
		t.Fatalf("key id %s, SHA-256 of the .pub DER %x", key.ID, sum)
	}
	if block.Type != "PUBLIC KEY" {
		t.Fatalf("public key PEM type %q", block.Type)
	}
	if _, _, err := verify.WriteKeyPair(dir, key); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("overwrite: %v", err)
	}
	loaded, err := verify.LoadSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.ID != key.ID || !loaded.Private.Equal(key.Private) {
		t.Fatal("loaded key differs")
	}
	keys, err := verify.LoadPublicKeys(dir)
	if err != nil || len(keys) != 1 || !keys[key.ID].Equal(key.Public()) {
		t.Fatalf("public keys of the directory: %v %v", keys, err)
	}

	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.LoadSigningKey(priv); err == nil || !strings.Contains(err.Error(), "mode 0644") || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
	junk := filepath.Join(dir, "junk.key")
	if err := os.WriteFile(junk, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := verify.LoadSigningKey(junk); err == nil || !strings.Contains(err.Error(), junk) || !strings.Contains(err.Error(), "not a PEM file") {
		t.Fatalf("junk key: %v", err)
	}
	if err := os.WriteFile(junk, data, 0o600); err != nil { // a public key where the private one should be
		t.Fatal(err)
	}
	if _, err := verify.LoadSigningKey(junk); err == nil || !strings.Contains(err.Error(), `a "PUBLIC KEY" PEM block: give the private key`) {
		t.Fatalf("public key as private: %v", err)
	}
	if _, err := verify.LoadPublicKeys(t.TempDir()); err == nil || !strings.Contains(err.Error(), "no .pub files") {
		t.Fatalf("empty directory: %v", err)
	}
}

func TestLoadOrCreateSigningKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", verify.PrivateKeyFile)
	k1, created, err := verify.LoadOrCreateSigningKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created=%v err=%v", created, err)
	}
	k2, created, err := verify.LoadOrCreateSigningKey(path)
	if err != nil || created || k2.ID != k1.ID {
		t.Fatalf("second start: created=%v err=%v ids %s %s", created, err, k1.ID, k2.ID)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), verify.PublicKeyFile)); err != nil {
		t.Fatalf("public key not written beside: %v", err)
	}
	if _, _, err := verify.LoadOrCreateSigningKey(filepath.Join(t.TempDir(), "other.key")); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing key of another name: %v", err)
	}
}

// SeqRange maps a period to the rows archived in it, and an emptied period
// to its neighbours.
func TestSeqRange(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	if _, err := verifytest.Write(ctx, st, verifytest.Chain{Events: 100}, false); err != nil {
		t.Fatal(err)
	}
	at := func(k int) time.Time { return verifytest.Base.Add(time.Duration(k) * time.Millisecond) }
	for _, c := range []struct {
		name     string
		from, to time.Time
		fs, ts   uint64
	}{
		{"all", time.Time{}, time.Time{}, 1, 0},
		{"middle", at(10), at(20), 10, 19},
		{"open end", at(95), time.Time{}, 95, 0},
		{"before all", time.Time{}, at(1), 1, 1},
		{"between rows", at(10).Add(time.Microsecond), at(11), 11, 11},
	} {
		fs, ts, err := verify.SeqRange(ctx, st.Conn(), c.from, c.to)
		if err != nil {
			t.Fatal(err)
		}
		if fs != c.fs || ts != c.ts {
			t.Errorf("%s: seq %d..%d, want %d..%d", c.name, fs, ts, c.fs, c.ts)
		}
	}
}

// A long stretch of stream sequences without rows (dead letters, retention)
// is read past, and a chain across it verifies.
func TestVerifyAcrossLongGaps(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	var rows []store.EventRow
	prev := archive.GenesisHash
	seqs := []uint64{1, 2, 3, 50_000, 50_001, 1_000_000, 1_000_002}
	for i, seq := range seqs {
		r := verifytest.Row(i+1, seq)
		r.PrevHash = prev
		h, err := archive.RowHash(&r)
		if err != nil {
			t.Fatal(err)
		}
		r.Hash, prev = h, h
		rows = append(rows, r)
	}
	if err := st.InsertEvents(ctx, rows); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	if err := verify.ScanEvents(ctx, st.Conn(), 1, 0, func(r *store.EventRow) error {
		got = append(got, r.StreamSeq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Fatalf("scanned %v, want %v", got, seqs)
	}
	res, err := verify.Verify(ctx, st.Conn(), verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Events != uint64(len(seqs)) || res.LastSeq != 1_000_002 {
		t.Fatalf("verify: %+v", res)
	}
}
