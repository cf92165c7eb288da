package policies

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// ValueOf parses one JSON document into a value of the input, as
// ParseJSON does, but straight from the bytes: no encoding/json decoding
// into Go maps and no conversion of those into a value afterwards (the
// engine parses every record it judges, so this is on its hot path).
// The value is the one ParseJSON gives (numbers kept as written, the last
// of duplicate keys kept); unlike ParseJSON, anything but white space
// after the document is an error.
func ValueOf(b []byte) (ast.Value, error) {
	p := valueParser{b: b}
	p.space()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	if p.space(); p.i != len(p.b) {
		return nil, p.errorf("data after the JSON document")
	}
	return v, nil
}

// maxDepth bounds the nesting of a document ValueOf parses (that of
// encoding/json).
const maxDepth = 10000

type valueParser struct {
	b []byte
	i int
	// members is a stack of the values (of an object: key, value) read
	// of the arrays and objects still open.
	members []ast.Value
}

func (p *valueParser) errorf(format string, args ...any) error {
	return fmt.Errorf("JSON at offset %d: %s", p.i, fmt.Sprintf(format, args...))
}

func (p *valueParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *valueParser) value(depth int) (ast.Value, error) {
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return ast.InternedTerm(s).Value, nil
	case c == 't':
		return p.literal("true", ast.Boolean(true))
	case c == 'f':
		return p.literal("false", ast.Boolean(false))
	case c == 'n':
		return p.literal("null", ast.NullValue)
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *valueParser) literal(word string, v ast.Value) (ast.Value, error) {
	if len(p.b)-p.i < len(word) || string(p.b[p.i:p.i+len(word)]) != word {
		return nil, p.errorf("invalid literal")
	}
	p.i += len(word)
	return v, nil
}

func (p *valueParser) object(depth int) (ast.Value, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.i++ // {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return ast.NewObject(), nil
	}
	base := len(p.members)
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("want an object key")
		}
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("want ':' after an object key")
		}
		p.i++
		p.space()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, ast.InternedTerm(k).Value, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end in an object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			// One block of terms for the members, as InterfaceToValue
			// allocates them.
			ms := p.members[base:]
			terms := make([]ast.Term, len(ms))
			items := make([][2]*ast.Term, len(ms)/2)
			for j := range ms {
				terms[j].Value = ms[j]
			}
			for j := range items {
				items[j] = [2]*ast.Term{&terms[2*j], &terms[2*j+1]}
			}
			clear(ms)
			p.members = p.members[:base]
			return newObject(items), nil
		default:
			return nil, p.errorf("want ',' or '}' in an object")
		}
	}
}

// newObject is the object of items; of duplicate keys the last is kept,
// as decoding into a map does (NewObject would keep them all).
func newObject(items [][2]*ast.Term) ast.Object {
	if !hasDuplicateKey(items) {
		return ast.NewObject(items...)
	}
	obj := ast.NewObject()
	for _, it := range items {
		obj.Insert(it[0], it[1])
	}
	return obj
}

func hasDuplicateKey(items [][2]*ast.Term) bool {
	if len(items) <= 16 {
		for i := 1; i < len(items); i++ {
			for j := range i {
				if items[i][0].Value.(ast.String) == items[j][0].Value.(ast.String) {
					return true
				}
			}
		}
		return false
	}
	seen := make(map[ast.String]struct{}, len(items))
	for _, it := range items {
		k := it[0].Value.(ast.String)
		if _, dup := seen[k]; dup {
			return true
		}
		seen[k] = struct{}{}
	}
	return false
}

func (p *valueParser) array(depth int) (ast.Value, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.i++ // [
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return ast.NewArray(), nil
	}
	base := len(p.members)
	for {
		p.space()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		p.members = append(p.members, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end in an array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			es := p.members[base:]
			terms := make([]ast.Term, len(es))
			ptrs := make([]*ast.Term, len(es))
			for j := range es {
				terms[j].Value = es[j]
				ptrs[j] = &terms[j]
			}
			clear(es)
			p.members = p.members[:base]
			return ast.NewArray(ptrs...), nil
		default:
			return nil, p.errorf("want ',' or ']' in an array")
		}
	}
}

// string reads a JSON string. One without escapes, control characters
// or invalid UTF-8 is its bytes; any other is decoded by encoding/json,
// so that escapes and invalid bytes read as they do there.
func (p *valueParser) string() (string, error) {
	start := p.i
	p.i++ // "
	plain := true
	for p.i < len(p.b) {
		switch c := p.b[p.i]; {
		case c == '"':
			p.i++
			if plain {
				if s := p.b[start+1 : p.i-1]; utf8.Valid(s) {
					return string(s), nil
				}
			}
			var s string
			if err := json.Unmarshal(p.b[start:p.i], &s); err != nil {
				return "", fmt.Errorf("JSON string at offset %d: %w", start, err)
			}
			return s, nil
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return "", p.errorf("control character in a string")
		default:
			p.i++
		}
	}
	return "", errors.New("JSON: unterminated string")
}

// number reads a JSON number (the grammar of RFC 8259) and keeps it as
// written, as ParseJSON does.
func (p *valueParser) number() (ast.Value, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.b) && p.b[p.i] == '0':
		p.i++
	case p.i < len(p.b) && p.b[p.i] >= '1' && p.b[p.i] <= '9':
		p.digits()
	default:
		return nil, p.errorf("invalid number")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, p.errorf("invalid number")
		}
	}
	s := string(p.b[start:p.i])
	if t := ast.InternedIntNumberTermFromString(s); t != nil {
		return t.Value, nil
	}
	n, err := ast.NumberChecked(s)
	if err != nil {
		return nil, err
	}
	return n, nil
}

func (p *valueParser) digits() int {
	n := 0
	for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}
