package correlate

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

// TestEncodeEntryMatchesMarshal checks the splice Merge writes entries
// with against encoding/json: for the entries of a generated history (the
// facts split at random between what the entry holds and what is merged,
// some merged again with another arrival), the merged entry and its bytes
// are Entry.Merge's and json.Marshal's.
func TestEncodeEntryMatchesMarshal(t *testing.T) {
	s := NewState()
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for i, e := range history(7, 600) {
		fs, err := Extract(e)
		if err != nil {
			t.Fatal(err)
		}
		for j := range fs {
			fs[j].Arrived = base.Add(time.Duration(i) * time.Second)
		}
		s.Add(fs...)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	enc := factEncoder{}
	keys := s.Keys()
	if len(keys) < 100 {
		t.Fatalf("only %d keys", len(keys))
	}
	for _, k := range keys {
		all := s.Entry(k)
		var cur, add []Fact
		for _, f := range all.Facts {
			switch rng.IntN(4) {
			case 0:
				add = append(add, f)
			case 1: // in both, arrived earlier or later the second time
				g := f
				g.Arrived = f.Arrived.Add(time.Duration(rng.IntN(3)-1) * time.Minute)
				cur, add = append(cur, f), append(add, g)
			default:
				cur = append(cur, f)
			}
		}
		ce := Entry{Key: k, Facts: cur}.Merge(Entry{Key: k})
		ae := Entry{Key: k, Facts: add}.Merge(Entry{})
		value, err := json.Marshal(ce)
		if err != nil {
			t.Fatal(err)
		}
		segs, ok := splitEntry(k, value, ce.Facts)
		if !ok {
			t.Fatalf("%s: splitEntry refused json.Marshal's value %s", k, value)
		}
		got, data, err := mergeEncoded(ce, segs, ae.Facts, enc)
		if err != nil {
			t.Fatal(err)
		}
		want := ce.Merge(Entry{Key: k, Facts: ae.Facts})
		wantB, err := json.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(data, wantB) {
			t.Fatalf("%s: spliced\n%s\nwant\n%s", k, data, wantB)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: merged entry differs from Entry.Merge's", k)
		}
	}
	// A value of another layout, or whose facts are not the entry's, is
	// not cut.
	e := s.Entry(keys[0])
	v, _ := json.MarshalIndent(e, "", " ")
	if _, ok := splitEntry(keys[0], v, e.Facts); ok && len(e.Facts) > 0 {
		t.Error("splitEntry cut an indented value")
	}
	v, _ = json.Marshal(e)
	if len(e.Facts) > 1 {
		rev := append([]Fact{e.Facts[1], e.Facts[0]}, e.Facts[2:]...)
		if _, ok := splitEntry(keys[0], v, rev); ok {
			t.Error("splitEntry cut a value whose facts are in another order")
		}
	}
	if _, ok := splitEntry(keys[1], v, e.Facts); ok {
		t.Error("splitEntry cut another key's value")
	}
}

// TestEntryCacheBound checks that the cache of decoded entries never holds
// more facts than its bound, forgets the least recently used first, and
// keeps the newest revision of an entry.
func TestEntryCacheBound(t *testing.T) {
	fs := func(n int) []Fact { return make([]Fact, n) }
	c := newEntryCache(10)
	c.put("a", 1, fs(4))
	c.put("b", 1, fs(4))
	if _, ok := c.get("a", 1); !ok { // a is now the most recently used
		t.Fatal("a not cached")
	}
	c.put("c", 1, fs(4)) // 12 facts: b goes
	if _, ok := c.get("b", 1); ok {
		t.Error("b, the least recently used, still cached")
	}
	if _, ok := c.get("a", 1); !ok {
		t.Error("a forgotten instead of b")
	}
	if n, f := c.len(); n != 2 || f != 8 {
		t.Errorf("cache holds %d entries, %d facts; want 2, 8", n, f)
	}
	c.put("a", 2, fs(6)) // a newer revision, bigger: c goes
	if _, ok := c.get("a", 1); ok {
		t.Error("an old revision answered")
	}
	if _, ok := c.get("a", 2); !ok {
		t.Error("a's new revision not cached")
	}
	c.put("a", 1, fs(1)) // an older revision changes nothing
	if got, ok := c.get("a", 2); !ok || len(got) != 6 {
		t.Error("an older revision replaced a newer one")
	}
	c.put("big", 1, fs(11)) // larger than the bound: not cached
	if _, ok := c.get("big", 1); ok {
		t.Error("an entry larger than the bound was cached")
	}
	if _, f := c.len(); f > 10 {
		t.Errorf("cache holds %d facts, bound 10", f)
	}
	off := newEntryCache(-1)
	off.put("a", 1, fs(1))
	if _, ok := off.get("a", 1); ok {
		t.Error("a disabled cache answered")
	}
}

// TestEntryCacheTrust works the trusted entries through by hand: the
// cache answers for the bucket only after a check finds that every
// sequence since its base is one of its own writes.
func TestEntryCacheTrust(t *testing.T) {
	fs := func(n int) []Fact { return make([]Fact, n) }
	c := newEntryCache(100)
	g := c.readGen()
	c.store("a", 3, fs(1), nil, g) // read from a bucket at sequence 5
	c.store("gone", 0, nil, nil, g)
	if _, ok := c.lookup("a"); ok {
		t.Fatal("trusted before any check")
	}
	if c.verify(5) { // 5 sequences since base 0, none ours
		t.Fatal("trusted a bucket others wrote")
	}
	g = c.readGen()
	c.store("a", 3, fs(1), nil, g) // read again after the check
	c.wrote("b", 6, fs(2), []byte("b"))
	c.wrote("c", 7, fs(2), nil)
	if !c.verify(7) { // 6 and 7 are ours
		t.Fatal("not trusted after only our writes")
	}
	if e, ok := c.lookup("a"); !ok || e.rev != 3 {
		t.Errorf("a: %+v, %v; want revision 3, trusted", e, ok)
	}
	if e, ok := c.lookup("b"); !ok || e.rev != 6 || string(e.raw) != "b" {
		t.Errorf("b: %+v, %v; want revision 6 with its value, trusted", e, ok)
	}
	if _, ok := c.lookup("gone"); ok {
		t.Error("an absence read before the check trusted")
	}
	c.wrote("a", 8, fs(2), nil)
	if !c.verify(8) || c.trustedGen() != g {
		t.Fatal("our write ended the generation")
	}
	if e, _ := c.lookup("a"); e.rev != 8 {
		t.Errorf("a at revision %d, want 8 (ours)", e.rev)
	}
	c.wrote("a", 10, fs(3), nil) // 9 is someone else's
	if c.verify(10) {
		t.Fatal("trusted past another writer's sequence")
	}
	for _, kk := range []string{"a", "b", "c"} {
		if _, ok := c.lookup(kk); ok {
			t.Errorf("%s trusted after another writer wrote", kk)
		}
	}
	if c.verify(10) { // nothing read since: trusted, holding nothing
		if _, ok := c.lookup("a"); ok {
			t.Error("an entry of the ended generation trusted again")
		}
	}
	c.wrote("d", 10, fs(1), nil) // acknowledged at the base: before it
	c.verify(10)
	if _, ok := c.lookup("d"); ok {
		t.Error("a write acknowledged at the base trusted")
	}
	if off := newEntryCache(-1); off.verify(0) || off.trustedGen() != 0 {
		t.Error("a disabled cache trusted")
	}
}
