package cli

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
)

type hashes []tlog.Hash

func (h hashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		out[i] = h[x]
	}
	return out, nil
}

// TestVerifyInclusionAndConsistencyOffline runs the commands on files
// only: checkpoints signed with a key, proofs made by the library.
func TestVerifyInclusionAndConsistencyOffline(t *testing.T) {
	dir := t.TempDir()
	_, priv, _ := ed25519.GenerateKey(nil)
	s, err := itlog.NewSigner("evidenced/test", priv)
	if err != nil {
		t.Fatal(err)
	}
	var stored hashes
	var rows, canons []string
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		var b []byte
		if bb, ok := v.([]byte); ok {
			b = bb
		} else {
			b, _ = json.Marshal(v)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sign := func(n int64) (tlog.Tree, string) {
		for int64(len(rows)) < n {
			// Chained as the archive chains rows (verify.ChainHash).
			prev := strings.Repeat("0", 64)
			if len(rows) > 0 {
				prev = rows[len(rows)-1]
			}
			canon := fmt.Sprintf(`{"id":"ev-%d","source":"test","specversion":"1.0","type":"t"}`, len(rows))
			canons = append(canons, canon)
			rows = append(rows, verify.ChainHash(prev, uint64(len(rows)+1), int64(1000+len(rows)), []byte(canon)))
			lh, _ := itlog.LeafHash(rows[len(rows)-1])
			hs, _ := tlog.StoredHashesForRecordHash(int64(len(rows)-1), lh, stored)
			stored = append(stored, hs...)
		}
		root, _ := tlog.TreeHash(n, stored)
		note, err := s.Sign(tlog.Tree{N: n, Hash: root})
		if err != nil {
			t.Fatal(err)
		}
		return tlog.Tree{N: n, Hash: root}, write("cp"+string(rune('a'+n%26)), note)
	}
	_, oldFile := sign(5)
	_, newFile := sign(12)
	ip, _ := tlog.ProveRecord(12, 3, stored)
	row3 := itlog.InclusionProof{TreeSize: 12, LeafIndex: 3, StreamSeq: 4, RowHash: rows[3], Proof: ip, Source: "test", ID: "ev-3",
		PrevHash: rows[2], ReceivedNs: 1003, Canonical: base64.StdEncoding.EncodeToString([]byte(canons[3]))}
	proof := write("inclusion.json", row3)
	run := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := runVerify(t.Context(), args, Env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
		return code, out.String() + errb.String()
	}
	vkey := s.VerifierKey()
	if code, out := run("inclusion", "--log-key", vkey, "--checkpoint", newFile, "--proof", proof); code != ExitOK || !strings.Contains(out, "is leaf 3 of the tree of 12") {
		t.Fatalf("inclusion: %d %s", code, out)
	}
	if code, out := run("inclusion", "--log-key", vkey, "--checkpoint", oldFile, "--proof", proof); code != ExitFail || !strings.Contains(out, "tree of 12 leaves, the checkpoint signs 5") {
		t.Fatalf("inclusion against another size: %d %s", code, out)
	}
	// The row altered after archiving, its proof (of the original hash)
	// kept: the recomputed hash differs.
	altered := row3
	altered.Canonical = base64.StdEncoding.EncodeToString([]byte(strings.Replace(canons[3], `"type":"t"`, `"type":"u"`, 1)))
	bad := write("bad.json", altered)
	if code, out := run("inclusion", "--log-key", vkey, "--checkpoint", newFile, "--proof", bad); code != ExitFail || !strings.Contains(out, "stream sequence 4 (event test ev-3) was altered") {
		t.Fatalf("inclusion of an altered row: %d %s", code, out)
	}
	// The row altered and its hash recomputed: the proof fails.
	rehashed := altered
	c, _ := base64.StdEncoding.DecodeString(altered.Canonical)
	rehashed.RowHash = verify.ChainHash(rehashed.PrevHash, 4, 1003, c)
	bad2 := write("bad2.json", rehashed)
	if code, out := run("inclusion", "--log-key", vkey, "--checkpoint", newFile, "--proof", bad2); code != ExitFail || !strings.Contains(out, "is not in the tree of 12 leaves") {
		t.Fatalf("inclusion of an altered, re-hashed row: %d %s", code, out)
	}
	// A proof without its row (the format before rows were carried).
	norow := row3
	norow.Canonical = ""
	bad3 := write("bad3.json", norow)
	if code, out := run("inclusion", "--log-key", vkey, "--checkpoint", newFile, "--proof", bad3); code != ExitFail || !strings.Contains(out, "carries no row") {
		t.Fatalf("inclusion without the row: %d %s", code, out)
	}
	cp, _ := tlog.ProveTree(12, 5, stored)
	cproof := write("consistency.json", itlog.ConsistencyProof{OldSize: 5, TreeSize: 12, Proof: cp})
	if code, out := run("consistency", "--log-key", vkey, "--proof", cproof, oldFile, newFile); code != ExitOK || !strings.Contains(out, "extends the tree of 5") {
		t.Fatalf("consistency: %d %s", code, out)
	}
	// A history rewritten and re-signed by the operator's own key: the new
	// checkpoint does not extend the old one.
	stored, rows = nil, nil
	rows = append(rows, strings.Repeat("ab", 32))
	lh, _ := itlog.LeafHash(rows[0])
	hs, _ := tlog.StoredHashesForRecordHash(0, lh, stored)
	stored = append(stored, hs...)
	_, rewritten := sign(12)
	cp2, _ := tlog.ProveTree(12, 5, stored)
	cproof2 := write("consistency2.json", itlog.ConsistencyProof{OldSize: 5, TreeSize: 12, Proof: cp2})
	if code, out := run("consistency", "--log-key", vkey, "--proof", cproof2, oldFile, rewritten); code != ExitFail || !strings.Contains(out, "rewritten") {
		t.Fatalf("consistency with a rewritten history: %d %s", code, out)
	}
	_, other, _ := ed25519.GenerateKey(nil)
	o, _ := itlog.NewSigner("evidenced/test", other)
	if code, out := run("inclusion", "--log-key", o.VerifierKey(), "--checkpoint", newFile, "--proof", proof); code != ExitFail {
		t.Fatalf("checkpoint with another key: %d %s", code, out)
	}
	if code, _ := run("consistency", "--log-key", vkey, oldFile); code != ExitUsage {
		t.Fatalf("missing arguments: %d", code)
	}
}
