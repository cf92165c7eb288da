package correlate

import (
	"bytes"
	"testing"
)

// TestEncodeRecord checks that the stage's one encoding of a record is
// Record.Canonical and Record.Hash, for every record of a generated
// history.
func TestEncodeRecord(t *testing.T) {
	recs := stateOf(t, GenHistory(3, 300)).Records()
	if len(recs) == 0 {
		t.Fatal("no records")
	}
	for _, r := range recs {
		e, err := encodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(e.canon, r.Canonical()) || e.hash != r.Hash() {
			t.Fatalf("record %s: encoded %s (hash %s), want %s (hash %s)", r.ID, e.canon, e.hash, r.Canonical(), r.Hash())
		}
	}
}

// TestWrittenCacheBound checks the memory of what was put: the same sum
// is the same, another is not, the least recently put goes first, and a
// record forgotten is put again.
func TestWrittenCacheBound(t *testing.T) {
	c := newWrittenCache(2)
	s1, s2 := [32]byte{1}, [32]byte{2}
	c.put("a", s1)
	c.put("b", s1)
	if !c.same("a", s1) || c.same("a", s2) {
		t.Fatal("a: wrong answer")
	}
	c.put("c", s2) // b, the least recently used, goes
	if c.same("b", s1) || !c.same("a", s1) || !c.same("c", s2) || c.len() != 2 {
		t.Errorf("after c: b %v, a %v, c %v, %d held", c.same("b", s1), c.same("a", s1), c.same("c", s2), c.len())
	}
	c.forget([]string{"a"})
	if c.same("a", s1) {
		t.Error("a forgotten still the same")
	}
	off := newWrittenCache(-1)
	off.put("a", s1)
	if off.same("a", s1) {
		t.Error("a disabled memory answered")
	}
}
