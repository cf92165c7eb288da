package tlog

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/tlog"
)

// TestCheckExtends: the witness's decision, on trees built by the Builder.
func TestCheckExtends(t *testing.T) {
	b := NewBuilder()
	tiles := memTiles{}
	cps := map[int64]Checkpoint{}
	for i := int64(0); i < 300; i++ {
		b.Append(leaf(i))
		if s := i + 1; s == 100 || s == 300 {
			r, _ := b.Root()
			cps[s] = Checkpoint{Origin: "evidenced/x", Tree: tlog.Tree{N: s, Hash: r}}
		}
	}
	tiles.put(b.Flush())
	thr := tlog.TileHashReader(cps[300].Tree, tiles)
	p, err := tlog.ProveTree(300, 100, thr)
	if err != nil {
		t.Fatal(err)
	}
	good := &ConsistencyProof{OldSize: 100, TreeSize: 300, Proof: p}
	if err := CheckExtends(cps[100], cps[300], good); err != nil {
		t.Fatalf("extends: %v", err)
	}
	if err := CheckExtends(cps[300], cps[300], nil); err != nil {
		t.Fatalf("the same checkpoint: %v", err)
	}
	fork := cps[300]
	fork.Tree.Hash[3] ^= 1
	for name, c := range map[string]struct {
		old, new Checkpoint
		p        *ConsistencyProof
		want     string
	}{
		"rolled back": {cps[300], cps[100], nil, "fewer than the 300 cosigned before (rolled back)"},
		"forked":      {cps[300], fork, nil, "two roots for 300 leaves"},
		"rewritten":   {cps[100], fork, good, "history was rewritten"},
		"another log": {Checkpoint{Origin: "evidenced/y", Tree: cps[100].Tree}, cps[300], good, "two logs"},
		"wrong proof": {cps[100], cps[300], &ConsistencyProof{OldSize: 100, TreeSize: 300, Proof: p[1:]}, "does not extend"},
		"wrong sizes": {cps[100], cps[300], &ConsistencyProof{OldSize: 99, TreeSize: 300, Proof: p}, "the proof is from 99 to 300 leaves"},
	} {
		err := CheckExtends(c.old, c.new, c.p)
		if !errors.Is(err, ErrRewritten) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrRewritten and %q", name, err, c.want)
		}
	}
}

// TestOpenWitnessed counts cosignatures of the keys given.
func TestOpenWitnessed(t *testing.T) {
	_, priv, _ := ed25519.GenerateKey(nil)
	s, err := NewSigner("evidenced/abc", priv)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := s.Sign(tlog.Tree{N: 5, Hash: leaf(1)})
	text, sigs, err := SplitNote(msg)
	if err != nil || len(sigs) != 1 {
		t.Fatalf("split: %v %d", err, len(sigs))
	}
	var vkeys []string
	lines := sigs
	for _, name := range []string{"w1.example/a", "w2.example/b", "w3.example/c"} {
		skey, vkey, err := WitnessKeyPair(name)
		if err != nil {
			t.Fatal(err)
		}
		vkeys = append(vkeys, vkey)
		if name == "w3.example/c" {
			continue // never cosigns
		}
		c, err := NewCosigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.Cosign(text)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckCosignatureLine(l, "evidenced/abc"); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	cosigned := JoinNote(text, lines)
	lk := []string{s.VerifierKey()}
	if _, cs, err := OpenWitnessed(cosigned, lk, vkeys, 2); err != nil || len(cs) != 2 {
		t.Fatalf("2 of 3: %v %v", cs, err)
	}
	if _, _, err := OpenWitnessed(cosigned, lk, vkeys, 3); err == nil || !strings.Contains(err.Error(), "has 2 valid witness cosignatures of the keys given, --witnesses wants 3 (not cosigned by: w3.example/c)") {
		t.Fatalf("3 of 3: %v", err)
	}
	if _, _, err := OpenWitnessed(msg, lk, vkeys[:1], 1); err == nil {
		t.Fatal("no cosignature: accepted")
	}
	if _, _, err := OpenWitnessed(cosigned, lk, vkeys[:1], 2); err == nil || !strings.Contains(err.Error(), "only 1 witness keys") {
		t.Fatalf("need more than the keys: %v", err)
	}
	// A forged line of w1 (its name and key hash, a wrong signature) posted
	// before the valid one neither hides it nor counts.
	_, l1, _ := parseSigLine(lines[1])
	bad := append([]byte(nil), l1...)
	bad[len(bad)-1] ^= 1
	junk := "— w1.example/a " + base64.StdEncoding.EncodeToString(bad) + "\n"
	withJunk := JoinNote(text, append([]string{lines[0], junk}, lines[1:]...))
	if _, cs, err := OpenWitnessed(withJunk, lk, vkeys, 2); err != nil || len(cs) != 2 {
		t.Fatalf("a forged line before the valid one: %v %v", cs, err)
	}
	onlyJunk := JoinNote(text, []string{lines[0], junk})
	if _, _, err := OpenWitnessed(onlyJunk, lk, vkeys, 1); err == nil || !strings.Contains(err.Error(), `the cosignature of witness "w1.example/a" does not verify`) {
		t.Fatalf("only a forged line: %v", err)
	}
	if _, _, err := WitnessKeyPair("evidenced/abc"); err == nil {
		t.Fatal("a witness named like the log")
	}
	// A cosignature line with the log's own name is refused by the route.
	if err := CheckCosignatureLine(sigs[0], "evidenced/abc"); err == nil {
		t.Fatal("the log's own signature taken for a cosignature")
	}
}
