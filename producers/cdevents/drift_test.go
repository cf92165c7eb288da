package cdevents

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTableMatchesSchemas reads the official JSON Schemas of CDEvents
// v0.5.1 and of the draft approval events and compares each, keyword by
// keyword, with the event the table builds: the set of event types, each
// event version, and the whole event — context, subject and subject.content,
// with every member's JSON type, required, minLength, format, enum and
// additionalProperties — and the links. A schema keyword the table cannot
// express fails the test too, so the table cannot drift from the spec.
func TestTableMatchesSchemas(t *testing.T) {
	for _, c := range []struct {
		rel  string
		spec *spec
	}{
		{"cdevents/spec-v0.5.1/schemas", specV05},
		{"cdevents/spec-main-unreleased-approval/schemas", specDraft},
	} {
		dir := corpusDir(t, c.rel)
		t.Run(c.spec.name, func(t *testing.T) {
			seen := map[string]bool{}
			for _, path := range jsonFiles(t, dir) {
				doc := readSchema(t, path)
				typ := eventTypeOf(t, doc)
				et, ok := ParseType(typ)
				if !ok {
					t.Fatalf("%s: type %q is not a CDEvents type", path, typ)
				}
				seen[et.Name()] = true
				t.Run(et.Name(), func(t *testing.T) {
					e := c.spec.events[et.Name()]
					if e == nil {
						t.Fatalf("%s is in %s but not in the table", typ, filepath.Base(path))
					}
					if e.version != et.Version {
						t.Errorf("event version: table %s, schema %s", e.version, et.Version)
					}
					p := &schemaParser{t: t, dir: dir}
					want := dump(p.parse(doc, "data"), "data", typ)
					got := dump(e.full, "data", e.typeFor())
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("%s: table differs from the schema (-schema +table):\n%s", filepath.Base(path), diff)
					}
				})
			}
			for _, n := range c.spec.names() {
				if !seen[n] {
					t.Errorf("%s is in the table but has no schema in %s", n, c.rel)
				}
			}
		})
		t.Run(c.spec.name+"/links", func(t *testing.T) {
			links := c.spec.events[c.spec.names()[0]].full
			links = mustProp(t, mustProp(t, links, "context"), "links")
			if links.kind != kindLinks {
				t.Fatalf("context.links is not the links array")
			}
			for lt, file := range map[string]string{"END": "embeddedlinkend", "PATH": "embeddedlinkpath", "RELATION": "embeddedlinkrelation"} {
				doc := readSchema(t, filepath.Join(dir, "links", file+".json"))
				p := &schemaParser{t: t, dir: dir}
				want := dump(p.parse(doc, "link"), "link", "")
				got := dump(links.links[lt], "link", "")
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("links/%s.json: table differs (-schema +table):\n%s", file, diff)
				}
			}
			arr := readSchema(t, filepath.Join(dir, "links", "embeddedlinksarray.json"))
			if got := fmt.Sprint(arr["type"]); got != "array" || len(arr["items"].(map[string]any)["anyOf"].([]any)) != len(links.links) {
				t.Errorf("links/embeddedlinksarray.json is no longer an anyOf of %d link kinds", len(links.links))
			}
		})
	}
}

func (e *event) typeFor() string { return TypePrefix + e.name + "." + e.version }

func mustProp(t *testing.T, s *schema, name string) *schema {
	t.Helper()
	p, ok := s.prop(name)
	if !ok {
		t.Fatalf("no property %s", name)
	}
	return p.s
}

func readSchema(t *testing.T, path string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var doc map[string]any
	if err := d.Decode(&doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return doc
}

// eventTypeOf is the only value of context.type's enum.
func eventTypeOf(t *testing.T, doc map[string]any) string {
	t.Helper()
	enum, _ := at(doc, "properties", "context", "properties", "type")["enum"].([]any)
	if len(enum) != 1 {
		t.Fatalf("context.type enum %v: want one event type", enum)
	}
	return enum[0].(string)
}

// schemaParser turns the JSON Schema subset of the CDEvents schemas into a
// *schema, and fails on any keyword outside it.
type schemaParser struct {
	t   *testing.T
	dir string
}

// annotations carry no constraint.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "description": true, "default": true,
	"example": true, "examples": true, "x-cdevents-semantics": true,
}

func (p *schemaParser) parse(m map[string]any, path string) *schema {
	if ref, ok := m["$ref"].(string); ok {
		return p.ref(m, ref, path)
	}
	s := &schema{kind: kindAny, open: true}
	switch m["type"] {
	case "string":
		s.kind = kindString
	case "object":
		s.kind = kindObject
	case "array":
		s.kind = kindArray
	case nil:
	default:
		p.t.Errorf("%s: type %v is not supported by the table", path, m["type"])
	}
	var required []string
	for k, v := range m {
		switch {
		case annotations[k], k == "type":
		case k == "properties":
			props := v.(map[string]any)
			names := make([]string, 0, len(props))
			for n := range props {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				s.props = append(s.props, prop{name: n, s: p.parse(props[n].(map[string]any), path+"/"+n)})
			}
		case k == "required":
			for _, r := range v.([]any) {
				required = append(required, r.(string))
			}
		case k == "additionalProperties":
			s.open = v.(bool)
		case k == "minLength":
			n, err := v.(json.Number).Int64()
			if err != nil {
				p.t.Fatal(err)
			}
			s.minLen = int(n)
		case k == "format":
			s.format = v.(string)
		case k == "pattern":
			s.pattern = v.(string)
		case k == "enum":
			for _, e := range v.([]any) {
				s.enum = append(s.enum, e.(string))
			}
		case k == "items":
			s.items = p.parse(v.(map[string]any), path+"/[]")
		case k == "anyOf":
			p.anyOf(s, v.([]any), path)
		case k == "oneOf":
			p.oneOf(s, v.([]any), path)
		default:
			p.t.Errorf("%s: keyword %q is not supported by the table", path, k)
		}
	}
	for _, r := range required {
		found := false
		for i := range s.props {
			if s.props[i].name == r {
				s.props[i].required, found = true, true
			}
		}
		if !found {
			p.t.Errorf("%s: required %q is not a property", path, r)
		}
	}
	return s
}

// anyOf is either an open enum, [{type string, enum}, {type string}], or
// alternative required properties, [{required: [a]}, {required: [b]}].
func (p *schemaParser) anyOf(s *schema, branches []any, path string) {
	var one []string
	for _, b := range branches {
		bm := b.(map[string]any)
		if r, ok := bm["required"].([]any); ok && len(bm) == 1 && len(r) == 1 {
			one = append(one, r[0].(string))
		}
	}
	if len(one) == len(branches) {
		s.oneOf = one
		return
	}
	if len(branches) != 2 {
		p.t.Errorf("%s: anyOf with %d branches is not supported", path, len(branches))
		return
	}
	enum := p.parse(branches[0].(map[string]any), path)
	other := p.parse(branches[1].(map[string]any), path)
	if enum.kind != kindString || len(enum.enum) == 0 || enum.minLen != 0 || enum.format != "" ||
		other.kind != kindString || len(other.enum) != 0 {
		p.t.Errorf("%s: anyOf is not [{string enum}, {string}]", path)
		return
	}
	s.kind = kindString
	s.suggested = enum.enum
	s.minLen, s.format = other.minLen, other.format
}

// oneOf is customData: an object or a base64 string.
func (p *schemaParser) oneOf(s *schema, branches []any, path string) {
	if len(branches) == 2 {
		a, b := branches[0].(map[string]any), branches[1].(map[string]any)
		if a["type"] == "object" && len(a) == 1 && b["type"] == "string" && b["contentEncoding"] == "base64" && len(b) == 2 {
			s.kind = kindObjectOrString
			return
		}
	}
	p.t.Errorf("%s: oneOf is not [{object}, {base64 string}]", path)
}

func (p *schemaParser) ref(m map[string]any, ref, path string) *schema {
	for k := range m {
		if k != "$ref" && !annotations[k] {
			p.t.Errorf("%s: keyword %q next to $ref is not supported", path, k)
		}
	}
	switch {
	case ref == "links/embeddedlinksarray":
		return &schema{kind: kindLinks}
	case strings.HasSuffix(ref, "/links/domainid"):
		return p.parse(readSchema(p.t, filepath.Join(p.dir, "links", "domainid.json")), path)
	}
	p.t.Errorf("%s: $ref %q is not supported", path, ref)
	return &schema{}
}

// dump lists a schema as one line per member, for comparison.
func dump(s *schema, path, eventType string) []string {
	var out []string
	var walk func(s *schema, path string, required bool)
	walk = func(s *schema, path string, required bool) {
		var b strings.Builder
		b.WriteString(path + ":")
		if required {
			b.WriteString(" required")
		}
		switch s.kind {
		case kindAny:
			b.WriteString(" any")
		case kindString:
			b.WriteString(" string")
		case kindObject:
			b.WriteString(" object")
			if !s.open {
				b.WriteString(" closed")
			}
		case kindArray:
			b.WriteString(" array")
		case kindObjectOrString:
			b.WriteString(" object|string")
		case kindLinks:
			b.WriteString(" links")
		}
		if s.minLen > 0 {
			fmt.Fprintf(&b, " minLength=%d", s.minLen)
		}
		if s.format != "" {
			b.WriteString(" format=" + s.format)
		}
		if s.pattern != "" {
			b.WriteString(" pattern=" + s.pattern)
		}
		enum := s.enum
		if s.eventType {
			enum = []string{eventType}
		}
		if len(enum) > 0 {
			fmt.Fprintf(&b, " enum=%q", enum)
		}
		if len(s.suggested) > 0 {
			fmt.Fprintf(&b, " suggested=%q", s.suggested)
		}
		if len(s.oneOf) > 0 {
			fmt.Fprintf(&b, " oneOfRequired=%q", s.oneOf)
		}
		out = append(out, b.String())
		for _, p := range s.props {
			walk(p.s, path+"/"+p.name, p.required)
		}
		if s.items != nil {
			walk(s.items, path+"/[]", false)
		}
	}
	walk(s, path, false)
	sort.Strings(out)
	return out
}
