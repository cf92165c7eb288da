package ce

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
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

// maxDepth bounds nesting, so that hostile input cannot exhaust the stack.
const maxDepth = 512

type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string { return fmt.Sprintf("%s at byte %d", e.msg, e.off) }

type scanner struct {
	b []byte
	i int
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
		if depth >= maxDepth {
			return s.fail("nested too deeply")
		}
		s.i++
		s.ws()
		if s.i < len(s.b) && s.b[s.i] == '}' {
			s.i++
			return nil
		}
		for {
			s.ws()
			if _, err := s.stringSpan(); err != nil {
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
		if depth >= maxDepth {
			return s.fail("nested too deeply")
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
				if len(s.b)-s.i < 5 {
					return escaped, s.fail("invalid \\u escape")
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !isHex(h) {
						return escaped, s.fail("invalid \\u escape")
					}
				}
				s.i += 5
			default:
				return escaped, s.fail("invalid escape in string")
			}
		case c < 0x20:
			return escaped, s.fail("control character in string")
		case c >= utf8.RuneSelf:
			// Decoding must check UTF-8 (invalid bytes become U+FFFD,
			// as with encoding/json): take the slow path.
			escaped = true
			s.i++
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
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		default:
			r |= rune(c - 'A' + 10)
		}
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
func objectMembers(b []byte, into []member) ([]member, error) {
	s := scanner{b: b}
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
		ks := s.i
		kesc, err := s.stringSpan()
		if err != nil {
			return nil, err
		}
		key := unquote(b[ks:s.i], kesc)
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
func arrayElements(b []byte) ([][]byte, error) {
	s := scanner{b: b}
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

// Valid reports whether b is exactly one valid JSON value.
func Valid(b []byte) bool {
	s := scanner{b: b}
	if err := s.skipValue(0); err != nil {
		return false
	}
	return s.end() == nil
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
		if depth >= maxDepth {
			return nil, s.fail("nested too deeply")
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
		if depth >= maxDepth {
			return nil, s.fail("nested too deeply")
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
