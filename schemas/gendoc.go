package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// MarkdownDocs renders the event catalog in catalog (the *.json schemas, as
// CatalogFS returns them) as the Markdown of docs/events.md: an introduction
// for producers, an index of the types, one section per type with a table of
// its fields and the rules that span fields, and the shared shapes (the
// schemas' $defs).
//
// Nested objects are flattened in the tables: "change.number", and
// "links.changes[].number" for the objects of an array. When examples is not
// nil, the section of each type ends with examples/<type>.json from it (a
// type without one is an error).
//
// The renderer knows the subset of JSON Schema the catalog uses and refuses
// anything else, and a schema, a property or a rule without a description,
// so that the documentation cannot silently leave out a field. A $defs entry
// of the same name must be identical in every schema that has it.
func MarkdownDocs(catalog, examples fs.FS) ([]byte, error) {
	names, err := fs.Glob(catalog, "*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, errors.New("gendoc: the catalog has no schema")
	}
	docs := make([]*typeDoc, 0, len(names))
	shared := map[string]sharedDef{}
	for _, name := range names {
		b, err := fs.ReadFile(catalog, name)
		if err != nil {
			return nil, err
		}
		root, err := decodeOrdered(b)
		if err != nil {
			return nil, fmt.Errorf("gendoc: %s: %w", name, err)
		}
		obj, ok := root.(*jsonObject)
		if !ok {
			return nil, fmt.Errorf("gendoc: %s: the schema is not a JSON object", name)
		}
		td := &typeDoc{name: strings.TrimSuffix(path.Base(name), ".json"), file: name, root: obj}
		if err := td.load(shared); err != nil {
			return nil, fmt.Errorf("gendoc: %s: %w", name, err)
		}
		if examples != nil {
			b, err := fs.ReadFile(examples, td.name+".json")
			if err != nil {
				return nil, fmt.Errorf("gendoc: example of %s: %w", td.name, err)
			}
			var out bytes.Buffer
			if err := json.Indent(&out, bytes.TrimSpace(b), "", "  "); err != nil {
				return nil, fmt.Errorf("gendoc: example of %s: %w", td.name, err)
			}
			td.example = out.String()
		}
		docs = append(docs, td)
	}

	var w bytes.Buffer
	w.WriteString(docsIntro)
	w.WriteString("\n## Types\n\n| Type | Title | Required fields |\n|---|---|---|\n")
	for _, td := range docs {
		req := make([]string, len(td.required))
		for i, r := range td.required {
			req[i] = "`" + r + "`"
		}
		fmt.Fprintf(&w, "| [`%s`](#%s) | %s | %s |\n", td.name, anchor(td.name), cell(td.title), strings.Join(req, ", "))
	}
	for _, td := range docs {
		w.WriteString("\n## `" + td.name + "`\n\n")
		w.WriteString("**" + td.title + ".** " + td.description + "\n\n")
		fmt.Fprintf(&w, "Schema: [`schemas/catalog/%s`](../schemas/catalog/%s)\n\n", td.file, td.file)
		writeTable(&w, td.rows)
		if len(td.rules) > 0 {
			w.WriteString("\nRules:\n\n")
			for _, r := range td.rules {
				w.WriteString("- " + r + "\n")
			}
		}
		if td.example != "" {
			w.WriteString("\nExample `data`:\n\n```json\n" + td.example + "\n```\n")
		}
	}
	w.WriteString("\n## Shared shapes\n\nThese `$defs` appear, identical, in every schema that uses them.\n")
	defNames := make([]string, 0, len(shared))
	for n := range shared {
		defNames = append(defNames, n)
	}
	sort.Strings(defNames)
	for _, n := range defNames {
		d := shared[n]
		w.WriteString("\n### `" + n + "`\n\n")
		w.WriteString(d.description + "\n\n")
		w.WriteString("Type: " + d.typ + ".\n")
		if len(d.rows) > 0 {
			w.WriteString("\n")
			writeTable(&w, d.rows)
		}
	}
	return w.Bytes(), nil
}

const docsIntro = `# Event catalog

<!-- Generated from schemas/catalog/*.json and schemas/testdata/examples/ by
     go test ./schemas -run TestDocs -update
     Do not edit by hand: TestDocs fails when this file and the schemas differ. -->

Producers (CI pipelines through ` + "`evidence emit`" + `, the webhook adapters, any
CloudEvents client) send [CloudEvents 1.0](https://cloudevents.io) to the
receiver. This catalog lists the project's own event types: the facts SOX
change management needs that CDEvents lacks. Each type has a JSON Schema
(draft 2020-12) for its ` + "`data`" + ` in ` + "`schemas/catalog/<type>.json`" + `.

CloudEvents attributes to set:

| Attribute | Value |
|---|---|
| ` + "`specversion`" + ` | ` + "`1.0`" + ` |
| ` + "`type`" + ` | One of the types below, or a CDEvents type. |
| ` + "`source`" + ` | URI-reference of the producer, e.g. ` + "`https://github.com/acme/payments`" + ` or ` + "`/ci/github-actions/acme/payments`" + `. |
| ` + "`id`" + ` | Unique per ` + "`source`" + `. A retry of the same event keeps its id: source and id make the message id, so a retried event is stored once. |
| ` + "`subject`" + ` | What the event is about, for humans and filters: the change (` + "`github.com/acme/payments/pull/42`" + `), the ticket key, the commit, the artifact digest, the service. The correlator reads its keys from ` + "`data`" + `, not from the subject. |
| ` + "`time`" + ` | When the fact happened (RFC 3339). Facts that have their own time (` + "`approved_at`" + `, ` + "`merged_at`" + `, ...) also carry it in ` + "`data`" + `. |
| ` + "`datacontenttype`" + ` | ` + "`application/json`" + ` |

The receiver validates the ` + "`data`" + ` of every event whose type is in this catalog
against the type's schema and refuses an event that does not match, listing
each problem with the JSON path at fault (` + "`data/decision`" + `; a missing field is
named by its own path, ` + "`data/change/number`" + `). Fields not in the
schema are accepted and kept (forward compatibility); known fields are
strictly typed. CDEvents types (` + "`dev.cdevents.*`" + `, v0.4 and v0.5) are accepted
as they are and their data is checked against the CDEvents spec
(see [cdevents.md](cdevents.md)).

Conventions shared by every type (see [Shared shapes](#shared-shapes)):

- Field names are snake_case. Timestamps are RFC 3339 strings and end in ` + "`_at`" + `.
- ` + "`repository`" + ` is ` + "`host/owner/name`" + ` in lower case (` + "`github.com/acme/payments`" + `;
  GitLab subgroups add segments), the same string in every event.
- Commits (` + "`commit`" + `, ` + "`head_commit`" + `, ` + "`merge_commit`" + `, ...) are lower-case hex
  SHAs; send the full SHA.
- A pull or merge request is ` + "`change: {number, url}`" + ` next to ` + "`repository`" + `
  (for GitLab, ` + "`number`" + ` is the merge request iid).
- People and machine accounts (` + "`author`" + `, ` + "`reviewer`" + `, ` + "`approver`" + `, ` + "`deployer`" + `,
  ` + "`merged_by`" + `, ` + "`actor`" + `, ...) are identities ` + "`{login, id, name, email, type}`" + `.
- Artifacts are identified by ` + "`digest`" + ` (` + "`sha256:<hex>`" + `), optionally with a ` + "`purl`" + `.
- Ticket references are ` + "`ticket_keys`" + ` (an array) on changes and deployments.
`

type typeDoc struct {
	name, file         string
	root               *jsonObject
	title, description string
	required           []string
	defs               map[string]*jsonObject
	rows               []docRow
	rules              []string
	example            string
}

type sharedDef struct {
	from        string // the type whose schema defined it first
	canonical   string
	description string
	typ         string
	rows        []docRow
}

type docRow struct {
	field, typ, required, description string
}

var rootKeywords = map[string]bool{
	"$schema": true, "$comment": true, "title": true, "description": true, "type": true,
	"required": true, "properties": true, "allOf": true, "additionalProperties": true, "$defs": true,
}

var keywords = map[string]bool{
	"$ref": true, "$comment": true, "description": true, "type": true, "enum": true, "const": true,
	"format": true, "pattern": true, "minLength": true, "maxLength": true, "minimum": true, "maximum": true,
	"items": true, "minItems": true, "maxItems": true, "uniqueItems": true,
	"properties": true, "required": true, "additionalProperties": true, "patternProperties": true, "minProperties": true,
	"not": true,
}

func checkKeywords(s *jsonObject) error {
	for _, k := range s.keys {
		if !keywords[k] {
			return fmt.Errorf("keyword %q is not supported by the doc generator", k)
		}
	}
	return nil
}

func (td *typeDoc) load(shared map[string]sharedDef) error {
	r := td.root
	for _, k := range r.keys {
		if !rootKeywords[k] {
			return fmt.Errorf("keyword %q at the top is not supported by the doc generator", k)
		}
	}
	var ok bool
	if td.title, ok = r.str("title"); !ok || td.title == "" {
		return errors.New("no title")
	}
	if td.description, ok = r.str("description"); !ok || td.description == "" {
		return errors.New("no description")
	}
	if t, _ := r.str("type"); t != "object" {
		return errors.New(`the schema's type is not "object"`)
	}
	td.required = r.strs("required")
	td.defs = map[string]*jsonObject{}
	if d, ok := r.obj("$defs"); ok {
		for _, k := range d.keys {
			o, ok := d.obj(k)
			if !ok {
				return fmt.Errorf("$defs/%s is not an object", k)
			}
			if err := checkKeywords(o); err != nil {
				return fmt.Errorf("$defs/%s: %w", k, err)
			}
			td.defs[k] = o
		}
	}
	rows, err := td.fields("", r, "")
	if err != nil {
		return err
	}
	td.rows = rows
	if all, ok := r.vals["allOf"]; ok {
		list, ok := all.([]any)
		if !ok {
			return errors.New("allOf is not an array")
		}
		for i, item := range list {
			o, ok := item.(*jsonObject)
			if !ok {
				return fmt.Errorf("allOf/%d is not an object", i)
			}
			d, _ := o.str("description")
			if d == "" {
				return fmt.Errorf("allOf/%d (a rule) has no description", i)
			}
			td.rules = append(td.rules, d)
		}
	}
	for _, name := range sortedKeys(td.defs) {
		def := td.defs[name]
		canon, err := json.Marshal(plain(def))
		if err != nil {
			return err
		}
		if prev, ok := shared[name]; ok {
			if prev.canonical != string(canon) {
				return fmt.Errorf("$defs/%s differs from the one in %s; shared shapes must be identical", name, prev.from)
			}
			continue
		}
		desc, _ := def.str("description")
		if desc == "" {
			return fmt.Errorf("$defs/%s has no description", name)
		}
		typ, err := td.typeOf(def)
		if err != nil {
			return fmt.Errorf("$defs/%s: %w", name, err)
		}
		sd := sharedDef{from: td.name, canonical: string(canon), description: desc, typ: typ}
		if _, ok := def.obj("properties"); ok {
			if sd.rows, err = td.fields("", def, ""); err != nil {
				return fmt.Errorf("$defs/%s: %w", name, err)
			}
		}
		shared[name] = sd
	}
	return nil
}

// fields lists the rows of the properties of s, named prefix+name. within
// is the nearest ancestor that is optional ("" when every ancestor is
// required), which qualifies the Required column.
func (td *typeDoc) fields(prefix string, s *jsonObject, within string) ([]docRow, error) {
	props, ok := s.obj("properties")
	if !ok {
		return nil, nil
	}
	required := map[string]bool{}
	for _, r := range s.strs("required") {
		required[r] = true
	}
	var rows []docRow
	for _, name := range props.keys {
		field := prefix + name
		p, ok := props.obj(name)
		if !ok {
			return nil, fmt.Errorf("%s: the schema is not an object", field)
		}
		if err := checkKeywords(p); err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		desc, _ := p.str("description")
		if desc == "" {
			return nil, fmt.Errorf("%s: no description", field)
		}
		typ, err := td.typeOf(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		req := ""
		switch {
		case !required[name]:
		case within == "":
			req = "yes"
		case strings.HasSuffix(within, "[]"):
			req = "in each `" + within + "`"
		default:
			req = "when `" + within + "` is given"
		}
		rows = append(rows, docRow{field: field, typ: typ, required: req, description: desc})

		childWithin := within
		if !required[name] && within == "" {
			childWithin = field
		}
		target, err := td.deref(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if items, ok := target.obj("items"); ok {
			if err := checkKeywords(items); err != nil {
				return nil, fmt.Errorf("%s items: %w", field, err)
			}
			if target, err = td.deref(items); err != nil {
				return nil, fmt.Errorf("%s: %w", field, err)
			}
			field += "[]"
			childWithin = field
		}
		sub, err := td.fields(field+".", target, childWithin)
		if err != nil {
			return nil, err
		}
		rows = append(rows, sub...)
	}
	return rows, nil
}

// deref follows a local $ref ("#/$defs/name").
func (td *typeDoc) deref(s *jsonObject) (*jsonObject, error) {
	ref, ok := s.str("$ref")
	if !ok {
		return s, nil
	}
	name, ok := strings.CutPrefix(ref, "#/$defs/")
	if !ok {
		return nil, fmt.Errorf("$ref %q: only #/$defs/<name> is supported", ref)
	}
	d, ok := td.defs[name]
	if !ok {
		return nil, fmt.Errorf("$ref %q: no such definition", ref)
	}
	return d, nil
}

// typeOf renders the type of a schema for the Type column.
func (td *typeDoc) typeOf(s *jsonObject) (string, error) {
	if ref, ok := s.str("$ref"); ok {
		d, err := td.deref(s)
		if err != nil {
			return "", err
		}
		if _, ok := d.vals["enum"]; ok {
			return td.typeOf(d)
		}
		t, _ := d.str("type")
		if t == "" {
			t = "any JSON"
		}
		name := strings.TrimPrefix(ref, "#/$defs/")
		return fmt.Sprintf("%s ([%s](#%s))", t, name, anchor(name)), nil
	}
	if n, ok := s.obj("not"); ok {
		if len(n.keys) != 0 {
			return "", errors.New(`only "not": {} (a refused member) is supported`)
		}
		return "never (refused)", nil
	}
	if c, ok := s.vals["const"]; ok {
		return "`" + literal(c) + "`", nil
	}
	if e, ok := s.vals["enum"]; ok {
		list, ok := e.([]any)
		if !ok {
			return "", errors.New("enum is not an array")
		}
		vals := make([]string, len(list))
		for i, v := range list {
			vals[i] = "`" + literal(v) + "`"
		}
		return "one of " + strings.Join(vals, ", "), nil
	}
	t, ok := s.str("type")
	if !ok {
		if _, has := s.vals["type"]; has {
			return "", errors.New("type must be a single string")
		}
		return "any JSON", nil
	}
	switch t {
	case "string":
		out := "string"
		if f, ok := s.str("format"); ok {
			out = "string (" + f + ")"
		} else if p, ok := s.str("pattern"); ok {
			out = "string matching `" + p + "`"
		}
		if n, ok := s.vals["maxLength"]; ok {
			out += ", at most " + literal(n) + " characters"
		}
		return out, nil
	case "integer", "number":
		if m, ok := s.vals["minimum"]; ok {
			return t + " ≥ " + literal(m), nil
		}
		return t, nil
	case "boolean":
		return t, nil
	case "array":
		items, ok := s.obj("items")
		if !ok {
			return "array", nil
		}
		it, err := td.typeOf(items)
		if err != nil {
			return "", err
		}
		out := "array of " + it
		if n, ok := s.vals["maxItems"]; ok {
			out += ", at most " + literal(n)
		}
		return out, nil
	case "object":
		if pp, ok := s.obj("patternProperties"); ok {
			if len(pp.keys) != 1 {
				return "", errors.New("patternProperties: only one pattern is supported")
			}
			vs, _ := pp.obj(pp.keys[0])
			if vs == nil {
				return "", errors.New("patternProperties: the schema is not an object")
			}
			vt, err := td.typeOf(vs)
			if err != nil {
				return "", err
			}
			return "object of " + vt + ", names matching `" + pp.keys[0] + "`", nil
		}
		if ap, ok := s.obj("additionalProperties"); ok {
			vt, err := td.typeOf(ap)
			if err != nil {
				return "", err
			}
			return "object of " + vt, nil
		}
		return "object", nil
	}
	return "", fmt.Errorf("type %q is not supported by the doc generator", t)
}

func writeTable(w *bytes.Buffer, rows []docRow) {
	w.WriteString("| Field | Type | Required | Description |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(w, "| `%s` | %s | %s | %s |\n", r.field, cell(r.typ), r.required, cell(r.description))
	}
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

// anchor is the fragment GitHub gives a heading: lower case, without
// punctuation other than "-" and "_", spaces as "-".
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteRune('-')
		}
	}
	return b.String()
}

func literal(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(plain(v))
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// jsonObject is a JSON object that keeps the order of its members, so that
// the tables list fields in the order the schema's author chose.
type jsonObject struct {
	keys []string
	vals map[string]any
}

func (o *jsonObject) str(k string) (string, bool) {
	s, ok := o.vals[k].(string)
	return s, ok
}

func (o *jsonObject) obj(k string) (*jsonObject, bool) {
	v, ok := o.vals[k].(*jsonObject)
	return v, ok
}

func (o *jsonObject) strs(k string) []string {
	list, _ := o.vals[k].([]any)
	out := make([]string, 0, len(list))
	for _, v := range list {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// plain converts ordered objects back to maps, for comparison and output.
func plain(v any) any {
	switch v := v.(type) {
	case *jsonObject:
		m := make(map[string]any, len(v.keys))
		for _, k := range v.keys {
			m[k] = plain(v.vals[k])
		}
		return m
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			out[i] = plain(x)
		}
		return out
	}
	return v
}

// decodeOrdered decodes one JSON value, objects as *jsonObject, numbers as
// json.Number. A duplicate member name is an error.
func decodeOrdered(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	v, err := decodeValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("data after the JSON value")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	switch d {
	case '{':
		o := &jsonObject{vals: map[string]any{}}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string) // object keys are always strings
			if _, dup := o.vals[k]; dup {
				return nil, fmt.Errorf("duplicate member %q", k)
			}
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, k)
			o.vals[k] = v
		}
		_, err := dec.Token()
		return o, err
	case '[':
		list := []any{}
		for dec.More() {
			v, err := decodeValue(dec)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := dec.Token()
		return list, err
	}
	return nil, fmt.Errorf("unexpected %v", d)
}
