package correlate

// Encoding entries without encoding their facts again.
//
// An entry's value is json.Marshal(Entry): {"key":<key>,"facts":[<fact>,
// ...]}. Merging new facts into an entry rewrites it whole; encoding every
// fact of it again (encoding/json, by reflection) was most of Merge's cost,
// and grew with the entry. Instead Merge splices: the facts already there
// keep their bytes, cut from the value it read ([splitEntry]), and each
// new fact is encoded once per Merge however many entries it goes in
// ([factEncoder]). The bytes are those json.Marshal gives
// (TestEncodeEntryMatchesMarshal); a value whose layout is not Merge's own
// (written by hand, by another tool) is encoded whole, as before.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// factEncoder encodes each fact once: by ID and arrival (the only field
// not in the ID).
type factEncoder map[factStamp][]byte

type factStamp struct {
	id string
	at time.Time
}

func (e factEncoder) encode(f *Fact) ([]byte, error) {
	k := factStamp{f.ID, f.Arrived}
	if b, ok := e[k]; ok {
		return b, nil
	}
	b, err := json.Marshal(f) // f addressable, as an element of Entry.Facts
	if err != nil {
		return nil, fmt.Errorf("correlate: encode fact %s: %w", f.ID, err)
	}
	e[k] = b
	return b, nil
}

// entryHead is the start of an entry's value, up to its first fact.
func entryHead(key Key) ([]byte, error) {
	kb, err := json.Marshal(string(key))
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(kb)+18)
	out = append(out, `{"key":`...)
	out = append(out, kb...)
	return append(out, `,"facts":[`...), nil
}

// splitEntry cuts a value of Merge's layout for key into its facts' bytes,
// in order. ok is false when the value is not of that layout, or its facts
// are not facts' (the same IDs in the same order, each encoded first).
func splitEntry(key Key, value []byte, facts []Fact) (segs [][]byte, ok bool) {
	n := len(facts)
	head, err := entryHead(key)
	if err != nil || !bytes.HasPrefix(value, head) || !bytes.HasSuffix(value, []byte("]}")) {
		return nil, false
	}
	body := value[len(head) : len(value)-2]
	if len(body) == 0 {
		return nil, n == 0
	}
	segs = make([][]byte, 0, n)
	depth, start, inString, escaped := 0, 0, false, false
	for i, c := range body {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
			if depth < 0 {
				return nil, false
			}
		case c == ',' && depth == 0:
			segs = append(segs, body[start:i])
			start = i + 1
		}
	}
	if depth != 0 || inString {
		return nil, false
	}
	segs = append(segs, body[start:])
	if len(segs) != n {
		return nil, false
	}
	for i, s := range segs {
		id := facts[i].ID
		if len(s) < 2 || s[len(s)-1] != '}' || !bytes.HasPrefix(s, []byte(`{"id":"`)) ||
			len(s) < 9+len(id) || string(s[7:7+len(id)]) != id || s[7+len(id)] != '"' {
			return nil, false
		}
	}
	return segs, true
}

// mergeEncoded is cur.Merge(Entry{Key: cur.Key, Facts: add}) (add sorted
// by ID, without duplicates) and its value: the facts of cur keep their
// bytes (segs, one per fact of cur), those of add are encoded by enc.
func mergeEncoded(cur Entry, segs [][]byte, add []Fact, enc factEncoder) (Entry, []byte, error) {
	head, err := entryHead(cur.Key)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("correlate: encode entry %q: %w", cur.Key, err)
	}
	size := len(head) + 2
	for _, s := range segs {
		size += len(s) + 1
	}
	out := Entry{Key: cur.Key, Facts: make([]Fact, 0, len(cur.Facts)+len(add))}
	data := make([]byte, 0, size+len(add)*1024)
	data = append(data, head...)
	put := func(b []byte) {
		if len(out.Facts) > 1 {
			data = append(data, ',')
		}
		data = append(data, b...)
	}
	i, j := 0, 0
	for i < len(cur.Facts) || j < len(add) {
		var c int
		switch {
		case i == len(cur.Facts):
			c = 1
		case j == len(add):
			c = -1
		default:
			if c = strings.Compare(cur.Facts[i].ID, add[j].ID); c == 0 {
				// Two copies of one fact keep the earliest arrival.
				if earlierArrival(&cur.Facts[i], &add[j]) <= 0 {
					c = -1
				} else {
					c = 1
				}
				if c < 0 {
					j++
				} else {
					i++
				}
			}
		}
		if c < 0 {
			out.Facts = append(out.Facts, cur.Facts[i])
			put(segs[i])
			i++
			continue
		}
		b, err := enc.encode(&add[j])
		if err != nil {
			return Entry{}, nil, err
		}
		out.Facts = append(out.Facts, add[j])
		put(b)
		j++
	}
	return out, append(data, "]}"...), nil
}
