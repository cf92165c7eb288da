package ce

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	"unicode/utf16"
	"unicode/utf8"
)

// A small validating JSON scanner for the ingest hot path. encoding/json
// validates the whole input before decoding it and reflects on every
// value; the receiver and the archive only need the top-level members of
// an event (as raw spans, validated once) and, for schema validation, a
// plain decode of the data to any. Both are here, in one pass each.
// FuzzScanner checks them against encoding/json.

// The scanner is strict where encoding/json is lenient, so that what is
// accepted is kept exactly (RFC 8259 sections 4 and 8, RFC 7493 I-JSON):
// strings must be valid UTF-8 with no unpaired surrogate escape ("\ud800"
// alone), and an object must not name a member twice. encoding/json
// replaces such strings with U+FFFD and keeps the last of two members:
// the stored event would differ from the one sent.

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
// It is the bound of what the stages parse; the receiver refuses data
// nested deeper than MaxDataDepth, well inside it.
const maxDepth = 512

type syntaxError struct {
	msg string
	off int
	// name is the member name given twice, for that error: the problem
	// is named by the path of the member.
	name string
	// deep: nested too deeply; named by the value given, not by a path
	// hundreds of levels long.
	deep bool
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.off) }

type scanner struct {
	b []byte
	i int
	// limit is the deepest nesting accepted; 0 means maxDepth.
	limit int
	// keys is a stack of the member names of the objects being scanned,
	// so that a name given twice is refused; sets holds, for an object
	// of many members, a set of its names (a linear search would let one
	// large object cost quadratic time).
	keys   []string
	sets   []keySet
	keyBuf [smallObject]string // keys' first backing array, on the stack
	// lenient accepts what the door refuses but earlier versions
	// accepted: invalid UTF-8, unpaired surrogate escapes and member
	// names given twice (ParseStored, for events already in the stream).
	lenient bool
}

type keySet struct {
	base int // the object's first name in keys
	set  map[string]struct{}
}

// smallObject is the number of members up to which duplicate names are
// looked for by a linear search.
const smallObject = 16

func (s *scanner) tooDeep(depth int) bool {
	if s.limit > 0 {
		return depth >= s.limit
	}
	return depth >= maxDepth
}

// addKey records the member name k of the object whose names start at
// keys[base]; false when the object has a member of that name already.
func (s *scanner) addKey(base int, k string) bool {
	if s.lenient {
		return true
	}
	if s.keys == nil {
		s.keys = s.keyBuf[:0]
	}
	names := s.keys[base:]
	if len(names) < smallObject {
		for _, x := range names {
			if x == k {
				return false
			}
		}
		s.keys = append(s.keys, k)
		return true
	}
	var set map[string]struct{}
	if n := len(s.sets); n > 0 && s.sets[n-1].base == base {
		set = s.sets[n-1].set
	} else {
		set = make(map[string]struct{}, 2*len(names))
		for _, x := range names {
			set[x] = struct{}{}
		}
		s.sets = append(s.sets, keySet{base: base, set: set})
	}
	if _, dup := set[k]; dup {
		return false
	}
	set[k] = struct{}{}
	s.keys = append(s.keys, k)
	return true
}

// endObject forgets the names of the object whose names start at base.
func (s *scanner) endObject(base int) {
	s.keys = s.keys[:base]
	if n := len(s.sets); n > 0 && s.sets[n-1].base == base {
		s.sets = s.sets[:n-1]
	}
}

// key scans a member name and records it; an error names a duplicate.
func (s *scanner) key(base int) (string, error) {
	ks := s.i
	esc, err := s.stringSpan()
	if err != nil {
		return "", err
	}
	k := unquote(s.b[ks:s.i], esc)
	if !s.lenient && !s.addKey(base, k) {
		return "", &syntaxError{msg: "member name appears twice in one object (RFC 8259: its meaning is undefined)", off: ks, name: k}
	}
	return k, nil
}

func (s *scanner) fail(msg string) error { return &syntaxError{msg: msg, off: s.i} }

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// skipValue moves past one JSON value, validating it.
func (s *scanner) skipValue(depth int) error {
	s.ws()
	if s.i >= len(s.b) {
		return s.fail("unexpected end of JSON")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		if s.tooDeep(depth) {
			return s.failDeep()
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil
		}
		base := len(s.keys)
		defer s.endObject(base)
		for {
			s.ws()
			if _, err := s.key(base); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return s.fail("expected ':' after object key")
			}
			s.i++
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.b) {
				return s.fail("unexpected end of JSON in object")
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			if s.b[s.i] == '}' {
				s.i++
				return nil
			}
			return s.fail("expected ',' or '}' in object")
		}
	case c == '[':
		if s.tooDeep(depth) {
			return s.failDeep()
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return nil
		}
		for {
			if err := s.skipValue(depth + 1); err != nil {
				return err
			}
			s.ws()
			if s.i >= len(s.b) {
				return s.fail("unexpected end of JSON in array")
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			if s.b[s.i] == ']' {
				s.i++
				return nil
			}
			return s.fail("expected ',' or ']' in array")
		}
	case c == '"':
		_, err := s.stringSpan()
		return err
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	default:
		return s.fail(fmt.Sprintf("invalid character %q looking for a value", c))
	}
}

func (s *scanner) literal(lit string) error {
	if len(s.b)-s.i < len(lit) || string(s.b[s.i:s.i+len(lit)]) != lit {
		return s.fail("invalid literal")
	}
	s.i += len(lit)
	return nil
}

func (s *scanner) number() error {
	start := s.i
	if s.b[s.i] == '-' {
		s.i++
	}
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if digits() == 0 {
		return s.fail("invalid number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail("invalid number")
		}
	}
	if s.i == start {
		return s.fail("invalid number")
	}
	return nil
}

// stringSpan validates a string at s.i and moves past it; escaped reports
// whether decoding it needs more than dropping the quotes (escapes or
// non-ASCII bytes).
func (s *scanner) stringSpan() (escaped bool, err error) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return false, s.fail("expected a string")
	}
	s.i++
	for s.i < len(s.b) {
		// Plain bytes need no decision: skip them eight at a time, then
		// one by one up to the next byte that needs one.
		for s.i+8 <= len(s.b) && !special8(binary.LittleEndian.Uint64(s.b[s.i:])) {
			s.i += 8
		}
		for s.i < len(s.b) && plain[s.b[s.i]] {
			s.i++
		}
		if s.i >= len(s.b) {
			break
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			return escaped, nil
		case c == '\\':
			escaped = true
			s.i++
			if s.i >= len(s.b) {
				return escaped, s.fail("unexpected end of JSON in string")
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i++
			case 'u':
				r, ok := s.hexEscape()
				if !ok {
					return escaped, s.fail("invalid \\u escape")
				}
				switch {
				case s.lenient:
				case r >= 0xDC00 && r < 0xE000:
					return escaped, s.fail("unpaired surrogate escape in string (not a Unicode character)")
				case r >= 0xD800 && r < 0xDC00:
					// A high surrogate must be followed by a low one.
					if s.i+1 >= len(s.b) || s.b[s.i] != '\\' || s.b[s.i+1] != 'u' {
						return escaped, s.fail("unpaired surrogate escape in string (not a Unicode character)")
					}
					s.i++
					lo, ok := s.hexEscape()
					if !ok {
						return escaped, s.fail("invalid \\u escape")
					}
					if lo < 0xDC00 || lo >= 0xE000 {
						return escaped, s.fail("unpaired surrogate escape in string (not a Unicode character)")
					}
				}
			default:
				return escaped, s.fail("invalid escape in string")
			}
		case c < 0x20:
			return escaped, s.fail("control character in string")
		case c >= utf8.RuneSelf:
			// Non-ASCII: it must be UTF-8 (encoding/json would turn an
			// invalid byte into U+FFFD, and the event stored would not be
			// the one sent). Decoding takes the slow path.
			r, size := utf8.DecodeRune(s.b[s.i:])
			if r == utf8.RuneError && size == 1 && !s.lenient {
				return escaped, s.fail("invalid UTF-8 in string")
			}
			escaped = true
			s.i += size
		default:
			s.i++
		}
	}
	return escaped, s.fail("unexpected end of JSON in string")
}

// special8 reports whether any of the eight bytes of w is a quote, a
// backslash, a control character or a non-ASCII byte (SWAR: the classic
// has-zero-byte and has-less-than tricks on 64-bit words).
func special8(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	hasZero := func(x uint64) uint64 { return (x - ones) & ^x & highs }
	ctl := (w - 0x20*ones) & ^w & highs // a byte < 0x20
	return (ctl | w&highs | hasZero(w^('"'*ones)) | hasZero(w^('\\'*ones))) != 0
}

// plain marks the bytes a string can hold that need no attention: not a
// quote, backslash, control character or non-ASCII byte.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// hexEscape reads the four hex digits of a \u escape, s.i at the 'u', and
// moves past them.
func (s *scanner) hexEscape() (rune, bool) {
	if len(s.b)-s.i < 5 {
		return 0, false
	}
	var r rune
	for _, h := range s.b[s.i+1 : s.i+5] {
		if !isHex(h) {
			return 0, false
		}
		r = r<<4 | rune(hexVal(h))
	}
	s.i += 5
	return r, true
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}

// failDeep is the error of a value nested deeper than the limit.
func (s *scanner) failDeep() error {
	limit := s.limit
	if limit == 0 {
		limit = maxDepth
	}
	// tooDeep refuses the object or array at depth limit: limit-1 levels
	// are allowed.
	return &syntaxError{msg: fmt.Sprintf("nested deeper than %d levels", limit-1), off: s.i, deep: true}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// unquote decodes a validated string span (with quotes).
func unquote(span []byte, escaped bool) string {
	if !escaped {
		// No copy: the string shares the input's memory, which parsers'
		// callers must not modify afterwards (see ParseJSON).
		if len(span) == 2 {
			return ""
		}
		return unsafe.String(&span[1], len(span)-2)
	}
	var out []byte
	b := span[1 : len(span)-1]
	for i := 0; i < len(b); {
		c := b[i]
		if c != '\\' {
			if c < utf8.RuneSelf {
				out = append(out, c)
				i++
				continue
			}
			r, size := utf8.DecodeRune(b[i:])
			out = utf8.AppendRune(out, r)
			i += size
			continue
		}
		i++
		switch b[i] {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(b[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				if i+6 < len(b)+0 && b[i+1] == '\\' && b[i+2] == 'u' {
					r2 := hex4(b[i+3 : i+7])
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			out = utf8.AppendRune(out, r)
		default: // '"', '\\', '/'
			out = append(out, b[i])
		}
		i++
	}
	return string(out)
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r = r<<4 | rune(hexVal(c))
	}
	return r
}

// member is one top-level member of an object: its key and its value's
// raw span.
type member struct {
	key     string
	val     []byte
	escaped bool // the value is a string with escapes
}

// objectMembers validates b as one JSON object (and nothing after it) and
// returns its top-level members in order.
func objectMembers(b []byte, into []member, lenient bool) ([]member, error) {
	s := scanner{b: b, lenient: lenient}
	s.ws()
	if s.i >= len(b) || b[s.i] != '{' {
		if s.i >= len(b) {
			return nil, s.fail("empty input")
		}
		return nil, s.fail("not a JSON object")
	}
	s.i++
	s.ws()
	if s.i < len(b) && b[s.i] == '}' {
		s.i++
		return into, s.end()
	}
	for {
		s.ws()
		key, err := s.key(0)
		if err != nil {
			return nil, err
		}
		s.ws()
		if s.i >= len(b) || b[s.i] != ':' {
			return nil, s.fail("expected ':' after object key")
		}
		s.i++
		s.ws()
		vs := s.i
		esc := false
		if s.i < len(b) && b[s.i] == '"' {
			esc, err = s.stringSpan()
		} else {
			err = s.skipValue(1)
		}
		if err != nil {
			return nil, err
		}
		into = append(into, member{key: key, val: b[vs:s.i], escaped: esc})
		s.ws()
		if s.i >= len(b) {
			return nil, s.fail("unexpected end of JSON in object")
		}
		if b[s.i] == ',' {
			s.i++
			continue
		}
		if b[s.i] == '}' {
			s.i++
			return into, s.end()
		}
		return nil, s.fail("expected ',' or '}' in object")
	}
}

func (s *scanner) end() error {
	s.ws()
	if s.i != len(s.b) {
		return s.fail("invalid character after the top-level value")
	}
	return nil
}

// arrayElements validates b as one JSON array and returns the raw span of
// each element.
//
// The scan is lenient on strings and member names (ParseBatch): each
// element is then parsed strictly on its own, so that a problem is
// reported for its entry, by index, not for the batch as a whole.
func arrayElements(b []byte) ([][]byte, error) {
	s := scanner{b: b, lenient: true}
	s.ws()
	if s.i >= len(b) || b[s.i] != '[' {
		if s.i >= len(b) {
			return nil, s.fail("empty input")
		}
		return nil, s.fail("not a JSON array")
	}
	s.i++
	s.ws()
	out := [][]byte{}
	if s.i < len(b) && b[s.i] == ']' {
		s.i++
		return out, s.end()
	}
	for {
		s.ws()
		start := s.i
		if err := s.skipValue(1); err != nil {
			return nil, err
		}
		out = append(out, b[start:s.i])
		s.ws()
		if s.i >= len(b) {
			return nil, s.fail("unexpected end of JSON in array")
		}
		if b[s.i] == ',' {
			s.i++
			continue
		}
		if b[s.i] == ']' {
			s.i++
			return out, s.end()
		}
		return nil, s.fail("expected ',' or ']' in array")
	}
}

// DecodeAny decodes one JSON value into the shapes encoding/json gives
// with UseNumber: map[string]any, []any, string, json.Number, bool, nil.
// It is what schema validation needs, without reflection.
func DecodeAny(b []byte) (any, error) {
	s := scanner{b: b}
	v, err := s.decode(0)
	if err != nil {
		return nil, err
	}
	return v, s.end()
}

func (s *scanner) decode(depth int) (any, error) {
	s.ws()
	if s.i >= len(s.b) {
		return nil, s.fail("unexpected end of JSON")
	}
	switch c := s.b[s.i]; {
	case c == '{':
		if s.tooDeep(depth) {
			return nil, s.failDeep()
		}
		m := map[string]any{}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return m, nil
		}
		for {
			s.ws()
			ks := s.i
			esc, err := s.stringSpan()
			if err != nil {
				return nil, err
			}
			key := unquote(s.b[ks:s.i], esc)
			if _, dup := m[key]; dup && !s.lenient {
				return nil, &syntaxError{msg: "member name appears twice in one object (RFC 8259: its meaning is undefined)", off: ks, name: key}
			}
			s.ws()
			if s.i >= len(s.b) || s.b[s.i] != ':' {
				return nil, s.fail("expected ':' after object key")
			}
			s.i++
			v, err := s.decode(depth + 1)
			if err != nil {
				return nil, err
			}
			m[key] = v
			s.ws()
			if s.i >= len(s.b) {
				return nil, s.fail("unexpected end of JSON in object")
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			if s.b[s.i] == '}' {
				s.i++
				return m, nil
			}
			return nil, s.fail("expected ',' or '}' in object")
		}
	case c == '[':
		if s.tooDeep(depth) {
			return nil, s.failDeep()
		}
		a := []any{}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == ']' {
			s.i++
			return a, nil
		}
		for {
			v, err := s.decode(depth + 1)
			if err != nil {
				return nil, err
			}
			a = append(a, v)
			s.ws()
			if s.i >= len(s.b) {
				return nil, s.fail("unexpected end of JSON in array")
			}
			if s.b[s.i] == ',' {
				s.i++
				continue
			}
			if s.b[s.i] == ']' {
				s.i++
				return a, nil
			}
			return nil, s.fail("expected ',' or ']' in array")
		}
	case c == '"':
		start := s.i
		esc, err := s.stringSpan()
		if err != nil {
			return nil, err
		}
		return unquote(s.b[start:s.i], esc), nil
	case c == 't':
		return true, s.literal("true")
	case c == 'f':
		return false, s.literal("false")
	case c == 'n':
		return nil, s.literal("null")
	default:
		start := s.i
		if err := s.number(); err != nil {
			return nil, err
		}
		return json.Number(s.b[start:s.i]), nil
	}
}

// stringValue decodes a member value that must be a JSON string.
func stringValue(m member) (string, bool) {
	if len(m.val) < 2 || m.val[0] != '"' {
		return "", false
	}
	return unquote(m.val, m.escaped), true
}

// MaxDataDepth is the deepest nesting of JSON accepted at the door in an
// event's data (or a webhook's body): far inside what the stages parse
// (maxDepth, counted from the event's own object), so that what is
// accepted can always be archived and correlated.
const MaxDataDepth = 256

// CheckJSON checks that b is exactly one JSON value that is kept exactly:
// valid JSON (RFC 8259), strings of valid UTF-8 with no unpaired surrogate
// escape, no object naming a member twice, nested at most depth levels
// (0: MaxDataDepth). A problem is an *Error whose Field is field followed
// by the JSON path of the value at fault ("data/labels/0").
func CheckJSON(field string, b []byte, depth int) error {
	if depth <= 0 {
		depth = MaxDataDepth
	}
	s := scanner{b: b, limit: depth + 1} // limit counts from the value itself
	err := s.skipValue(1)
	if err == nil {
		err = s.end()
	}
	if err == nil {
		return nil
	}
	return syntaxFieldErr(field, b, err)
}

// syntaxFieldErr names a scanner error of b, the value of field, by the
// JSON path of the value at fault.
func syntaxFieldErr(field string, b []byte, err error) *Error {
	se, ok := err.(*syntaxError)
	if !ok {
		return fieldErr(field, "%v", err)
	}
	p := ""
	if se.off < len(b) && !se.deep { // a truncated text is named as a whole
		p = locate(b, se.off)
	}
	if se.name != "" {
		if p != "" {
			p += "/"
		}
		p += jsonPointerEscape(se.name)
	}
	if p != "" {
		if field == "" {
			field = p
		} else {
			field += "/" + p
		}
	}
	if field == "" {
		field = "(event)"
	}
	return &Error{Field: field, Message: se.Error()}
}

// locate returns the JSON path ("data/labels/0") of the innermost value
// of b that holds the byte at off, where a scan of b failed: b is valid
// JSON up to there. It runs only to name a problem, never on the hot
// path.
func locate(b []byte, off int) string {
	s := scanner{b: b, limit: 1 << 30}
	var path []string
	var walk func() bool // true: stop, path names the place
	// element walks the value of one member or element, named name, and
	// what follows it up to the next one.
	element := func(name string) bool {
		path = append(path, name)
		if walk() {
			return true
		}
		path = path[:len(path)-1]
		s.ws()
		if s.i >= off || s.i >= len(s.b) {
			return true
		}
		if s.b[s.i] == ',' {
			s.i++
		}
		return false
	}
	walk = func() bool {
		s.ws()
		if s.i >= off || s.i >= len(s.b) {
			return true
		}
		switch s.b[s.i] {
		case '{':
			s.i++
			for {
				s.ws()
				if s.i >= off || s.i >= len(s.b) {
					return true
				}
				if s.b[s.i] == '}' {
					s.i++
					return false
				}
				ks := s.i
				esc, err := s.stringSpan()
				if err != nil || s.i > off {
					return true
				}
				name := unquote(s.b[ks:s.i], esc)
				s.ws()
				if s.i >= len(s.b) || s.b[s.i] != ':' || s.i >= off {
					path = append(path, name)
					return true
				}
				s.i++
				if element(name) {
					return true
				}
			}
		case '[':
			s.i++
			for n := 0; ; n++ {
				s.ws()
				if s.i >= off || s.i >= len(s.b) {
					return true
				}
				if s.b[s.i] == ']' {
					s.i++
					return false
				}
				if element(strconv.Itoa(n)) {
					return true
				}
			}
		default:
			start := s.i
			if err := s.skipValue(0); err != nil || s.i > off {
				s.i = start
				return true
			}
			return false
		}
	}
	walk()
	const shown = 16 // a path into data nested too deeply is cut short
	out := ""
	for i, p := range path {
		if i == shown {
			out += "/…"
			break
		}
		if i > 0 {
			out += "/"
		}
		out += jsonPointerEscape(p)
	}
	return out
}

// jsonPointerEscape escapes a member name as a JSON Pointer token (RFC
// 6901): "~" as "~0", "/" as "~1".
func jsonPointerEscape(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}
