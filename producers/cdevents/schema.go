package cdevents

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// The CDEvents schemas use a small part of JSON Schema: typed properties,
// required, additionalProperties, minLength, enum, format, pattern, arrays
// of strings, "anyOf: [enum, any string]" (an open enum: the values are
// suggestions), "oneOf: [object, string]" (customData) and the links array.
// schema is that part, as data; check validates a decoded JSON value
// (ce.DecodeAny) against it.

type kind uint8

const (
	kindAny            kind = iota // any JSON value
	kindString                     // a string
	kindObject                     // an object
	kindArray                      // an array
	kindObjectOrString             // customData: an object, or a string (base64)
	kindLinks                      // context.links: an array of embedded links
)

// JSON Schema formats the CDEvents schemas use.
const (
	fmtDateTime = "date-time"     // RFC 3339
	fmtURI      = "uri"           // an absolute URI
	fmtURIRef   = "uri-reference" // a URI or a relative reference
)

type schema struct {
	kind kind

	// strings
	minLen    int
	format    string
	pattern   string
	re        *regexp.Regexp
	enum      []string // a closed enum
	suggested []string // an open enum: documented values, any string is valid
	eventType bool     // context.type: its enum is the event's own type, checked by Validate

	// objects
	props []prop
	open  bool     // additionalProperties allowed
	oneOf []string // at least one of these properties is required

	// arrays
	items *schema

	// links, by linkType
	links map[string]*schema
}

type prop struct {
	name     string
	required bool
	s        *schema
}

// The constructors below write the tables (spec_*.go) close to the schemas
// they come from.

func str() *schema              { return &schema{kind: kindString} }
func nonEmpty() *schema         { return str().min(1) }
func arr(items *schema) *schema { return &schema{kind: kindArray, items: items} }

// obj is an object with additionalProperties: false.
func obj(props ...prop) *schema { return &schema{kind: kindObject, props: props} }

// openObj is an object that allows additional properties.
func openObj(props ...prop) *schema { return &schema{kind: kindObject, props: props, open: true} }

func req(name string, s *schema) prop { return prop{name: name, required: true, s: s} }
func opt(name string, s *schema) prop { return prop{name: name, s: s} }

func (s *schema) min(n int) *schema { s.minLen = n; return s }

// as sets a format.
func (s *schema) as(format string) *schema { s.format = format; return s }

// is makes a closed enum.
func (s *schema) is(values ...string) *schema { s.enum = values; return s }

// suggest makes an open enum: anyOf [{enum}, {type: string}].
func (s *schema) suggest(values ...string) *schema { s.suggested = values; return s }

func (s *schema) match(pattern string) *schema {
	s.pattern = pattern
	s.re = regexp.MustCompile(pattern)
	return s
}

// atLeastOne requires one of the named properties of an object.
func (s *schema) atLeastOne(names ...string) *schema { s.oneOf = names; return s }

func (s *schema) prop(name string) (prop, bool) {
	for _, p := range s.props {
		if p.name == name {
			return p, true
		}
	}
	return prop{}, false
}

// checker collects the problems of one value.
type checker struct {
	problems []Problem
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) check(s *schema, v any, path string) {
	switch s.kind {
	case kindAny:
	case kindString:
		sv, ok := v.(string)
		if !ok {
			c.add(path, "must be a string, got %s", kindOf(v))
			return
		}
		c.checkString(s, sv, path)
	case kindObject:
		m, ok := v.(map[string]any)
		if !ok {
			c.add(path, "must be an object, got %s", kindOf(v))
			return
		}
		c.checkObject(s, m, path)
	case kindArray:
		a, ok := v.([]any)
		if !ok {
			c.add(path, "must be an array, got %s", kindOf(v))
			return
		}
		for i, e := range a {
			c.check(s.items, e, fmt.Sprintf("%s/%d", path, i))
		}
	case kindObjectOrString:
		switch v.(type) {
		case map[string]any, string:
		default:
			c.add(path, "must be an object or a string (base64), got %s", kindOf(v))
		}
	case kindLinks:
		a, ok := v.([]any)
		if !ok {
			c.add(path, "must be an array of links, got %s", kindOf(v))
			return
		}
		for i, e := range a {
			c.checkLink(s, e, fmt.Sprintf("%s/%d", path, i))
		}
	}
}

func (c *checker) checkString(s *schema, v, path string) {
	if s.minLen > 0 && utf8.RuneCountInString(v) < s.minLen {
		if s.minLen == 1 {
			c.add(path, "must not be empty")
		} else {
			c.add(path, "must be at least %d characters long", s.minLen)
		}
		return
	}
	if len(s.enum) > 0 && !s.eventType && !slices.Contains(s.enum, v) {
		c.add(path, "must be one of %s, got %s", quoteList(s.enum), quote(v))
		return
	}
	switch s.format {
	case fmtDateTime:
		if _, err := time.Parse(time.RFC3339Nano, v); err != nil {
			c.add(path, "must be an RFC 3339 timestamp, got %s", quote(v))
			return
		}
	case fmtURI:
		if u, err := url.Parse(v); err != nil || !u.IsAbs() {
			c.add(path, "must be an absolute URI, got %s", quote(v))
			return
		}
	case fmtURIRef:
		if _, err := url.Parse(v); err != nil {
			c.add(path, "must be a URI reference, got %s", quote(v))
			return
		}
	}
	if s.re != nil && !s.re.MatchString(v) {
		c.add(path, "must match %s, got %s", s.pattern, quote(v))
	}
}

func (c *checker) checkObject(s *schema, m map[string]any, path string) {
	for _, p := range s.props {
		v, present := m[p.name]
		if !present {
			if p.required {
				c.add(path+"/"+p.name, "required property is missing")
			}
			continue
		}
		c.check(p.s, v, path+"/"+p.name)
	}
	if len(s.oneOf) > 0 && !slices.ContainsFunc(s.oneOf, func(n string) bool { _, ok := m[n]; return ok }) {
		c.add(path, "must have one of the properties %s", strings.Join(s.oneOf, ", "))
	}
	if s.open {
		return
	}
	var unknown []string
	for k := range m {
		if _, ok := s.prop(k); !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		c.add(path+"/"+k, "property is not allowed here (the CDEvents schema has additionalProperties: false)")
	}
}

// checkLink validates one embedded link: its linkType chooses the schema
// (the anyOf of embeddedlinksarray, whose branches differ in linkType).
func (c *checker) checkLink(s *schema, v any, path string) {
	m, ok := v.(map[string]any)
	if !ok {
		c.add(path, "must be an object (a link), got %s", kindOf(v))
		return
	}
	types := make([]string, 0, len(s.links))
	for t := range s.links {
		types = append(types, t)
	}
	sort.Strings(types)
	lt, present := m["linkType"]
	if !present {
		c.add(path+"/linkType", "required property is missing")
		return
	}
	name, _ := lt.(string)
	branch, ok := s.links[name]
	if !ok {
		c.add(path+"/linkType", "must be one of %s, got %s", quoteList(types), quoteValue(lt))
		return
	}
	c.checkObject(branch, m, path)
}

// kindOf names the JSON kind of a decoded value, for messages.
func kindOf(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number, float64:
		return "a number"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// quote quotes a value for a message, shortened: messages echo input.
func quote(s string) string {
	const max = 80
	if utf8.RuneCountInString(s) > max {
		r := []rune(s)
		return fmt.Sprintf("%q…", string(r[:max]))
	}
	return fmt.Sprintf("%q", s)
}

func quoteValue(v any) string {
	if s, ok := v.(string); ok {
		return quote(s)
	}
	return kindOf(v)
}

func quoteList(values []string) string {
	q := make([]string, len(values))
	for i, v := range values {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, ", ")
}
