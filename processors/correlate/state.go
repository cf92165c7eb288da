package correlate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// State is a set of facts, indexed by the keys they are filed under. Adding
// a fact that is already in the set (same ID) changes nothing, so adding
// the facts of a set of events in any order, with any duplicates, gives the
// same State; records are derived from it by [State.Records] and
// [State.Record].
//
// The zero value is an empty State ready to use. A State is not safe for
// concurrent use. Facts added to it must not be modified afterwards.
type State struct {
	facts map[string]*Fact
	index map[slot][]*Fact
}

// slot is one key's facts of one kind: derivation asks for facts of given
// kinds under a key, so a key that many facts name (a ticket referred to by
// many changes) does not make every lookup pay for all of them.
type slot struct {
	key  Key
	kind Kind
}

// NewState returns an empty State.
func NewState() *State { return &State{} }

// Add puts facts in the set and reports how many were new. Facts are
// identified by their ID, which Extract sets and [Fact.Verify] checks on
// facts read back from storage; a fact without an ID gets one.
func (s *State) Add(facts ...Fact) int {
	if s.facts == nil {
		s.facts = make(map[string]*Fact)
		s.index = make(map[slot][]*Fact)
	}
	n := 0
	for i := range facts {
		f := facts[i]
		if f.ID == "" {
			f.Keys = slices.Clone(f.Keys) // seal sorts them: not the caller's
			f.seal()
		}
		if p, ok := s.facts[f.ID]; ok {
			if earlierArrival(&f, p) < 0 {
				p.Arrived = f.Arrived // the same fact, arrived earlier: keep that
			}
			continue
		}
		p := &f
		s.facts[f.ID] = p
		for _, k := range f.Keys {
			if filed(k, f.Kind) {
				sl := slot{k, f.Kind}
				s.index[sl] = append(s.index[sl], p)
			}
		}
		n++
	}
	return n
}

// Merge adds every fact of o: the union of the two sets.
func (s *State) Merge(o *State) {
	for _, f := range o.facts {
		s.Add(*f)
	}
}

// Len is the number of facts.
func (s *State) Len() int { return len(s.facts) }

// Facts returns the facts sorted by ID.
func (s *State) Facts() []Fact {
	out := make([]Fact, 0, len(s.facts))
	for _, f := range s.facts {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b Fact) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// lookup returns the facts of the given kinds filed under key, in no
// particular order.
func (s *State) lookup(key Key, ks ...Kind) []*Fact {
	if len(ks) == 1 {
		return s.index[slot{key, ks[0]}]
	}
	var out []*Fact
	for _, k := range ks {
		out = append(out, s.index[slot{key, k}]...)
	}
	return out
}

// Entry is one correlation key's facts: what the KV bucket will hold under
// that key. Its links are the other keys its facts name.
type Entry struct {
	Key   Key    `json:"key"`
	Facts []Fact `json:"facts"` // sorted by ID
}

// Entry returns the facts filed under key.
func (s *State) Entry(key Key) Entry {
	e := Entry{Key: key, Facts: []Fact{}}
	for _, p := range s.lookup(key, kinds...) {
		e.Facts = append(e.Facts, *p)
	}
	slices.SortFunc(e.Facts, func(a, b Fact) int { return strings.Compare(a.ID, b.ID) })
	return e
}

// Keys returns every key some fact is filed under, sorted.
func (s *State) Keys() []Key {
	seen := make(map[Key]bool)
	for sl := range s.index {
		seen[sl.key] = true
	}
	out := make([]Key, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Merge returns the union of two entries of the same key.
func (e Entry) Merge(o Entry) Entry {
	out := Entry{Key: e.Key, Facts: make([]Fact, 0, len(e.Facts)+len(o.Facts))}
	out.Facts = append(append(out.Facts, e.Facts...), o.Facts...)
	// Two copies of one fact keep the earliest arrival.
	slices.SortFunc(out.Facts, func(a, b Fact) int {
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		return earlierArrival(&a, &b)
	})
	out.Facts = slices.CompactFunc(out.Facts, func(a, b Fact) bool { return a.ID == b.ID })
	return out
}

// Links returns the other keys the entry's facts are filed under: the
// edges of the correlation graph from this key.
func (e Entry) Links() []Key {
	var out []Key
	for _, f := range e.Facts {
		for _, k := range f.Keys {
			if k != e.Key && filed(k, f.Kind) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// stateJSON is the serialized State: its facts, sorted by ID.
type stateJSON struct {
	Facts []Fact `json:"facts"`
}

// MarshalJSON encodes the set of facts, sorted by ID: equal States encode
// to the same bytes.
func (s *State) MarshalJSON() ([]byte, error) {
	return json.Marshal(stateJSON{Facts: s.Facts()})
}

// UnmarshalJSON adds the encoded facts to s, refusing a fact whose ID does
// not match its content.
func (s *State) UnmarshalJSON(b []byte) error {
	var v stateJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	for i := range v.Facts {
		if err := v.Facts[i].Verify(); err != nil {
			return fmt.Errorf("facts[%d]: %w", i, err)
		}
	}
	s.Add(v.Facts...)
	return nil
}
