package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/events.md from the schemas")

// catalogTypes is the event catalog. Adding a type means adding its schema,
// its examples, its invalid examples and regenerating docs/events.md.
var catalogTypes = []string{
	"dev.evidencepipeline.access.bypass.v1",
	"dev.evidencepipeline.access.grant.changed.v1",
	"dev.evidencepipeline.access.protection.changed.v1",
	"dev.evidencepipeline.access.repository.changed.v1",
	"dev.evidencepipeline.access.reviewed.v1",
	"dev.evidencepipeline.access.snapshot.v1",
	"dev.evidencepipeline.artifact.built.v1",
	"dev.evidencepipeline.change.closed.v1",
	"dev.evidencepipeline.change.merged.v1",
	"dev.evidencepipeline.change.opened.v1",
	"dev.evidencepipeline.change.updated.v1",
	"dev.evidencepipeline.deployment.finished.v1",
	"dev.evidencepipeline.deployment.started.v1",
	"dev.evidencepipeline.exception.granted.v1",
	"dev.evidencepipeline.exception.requested.v1",
	"dev.evidencepipeline.pipelinerun.finished.v1",
	"dev.evidencepipeline.pipelinerun.started.v1",
	"dev.evidencepipeline.review.submitted.v1",
	"dev.evidencepipeline.scan.reported.v1",
	"dev.evidencepipeline.test.reported.v1",
	"dev.evidencepipeline.ticket.approved.v1",
	"dev.evidencepipeline.ticket.created.v1",
	"dev.evidencepipeline.ticket.rejected.v1",
	"dev.evidencepipeline.ticket.transitioned.v1",
	"dev.evidencepipeline.webhook.received.v1",
}

func loadCatalog(t *testing.T) *Catalog {
	t.Helper()
	c, err := Load()
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return c
}

func TestCatalogTypes(t *testing.T) {
	c := loadCatalog(t)
	if got := c.Types(); !slices.Equal(got, catalogTypes) {
		t.Errorf("catalog types:\n got %q\nwant %q", got, catalogTypes)
	}
	for _, typ := range catalogTypes {
		if !c.Has(typ) {
			t.Errorf("Has(%q) = false", typ)
		}
	}
	if c.Has("dev.cdevents.pipelinerun.finished.0.2.0") {
		t.Error("a CDEvents type is in the catalog")
	}
	if err := c.Validate("dev.cdevents.pipelinerun.finished.0.2.0", []byte(`{"anything": 1}`)); err != nil {
		t.Errorf("a type outside the catalog is validated: %v", err)
	}
}

// typeOfFile returns the catalog type a testdata file is for:
// <type>.json or <type>.<case>.json.
func typeOfFile(name string) (typ, kase string, ok bool) {
	base := strings.TrimSuffix(filepath.Base(name), ".json")
	for _, t := range catalogTypes {
		if base == t {
			return t, "", true
		}
		if rest, found := strings.CutPrefix(base, t+"."); found && rest != "" {
			return t, rest, true
		}
	}
	return "", "", false
}

func TestExamplesAreValid(t *testing.T) {
	c := loadCatalog(t)
	files, err := filepath.Glob("testdata/examples/*")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range files {
		typ, _, ok := typeOfFile(f)
		if !ok || filepath.Ext(f) != ".json" {
			t.Errorf("%s: not named <catalog type>[.<case>].json", f)
			continue
		}
		seen[typ] = true
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Validate(typ, b); err != nil {
				t.Errorf("valid example refused: %v", err)
			}
		})
	}
	for _, typ := range catalogTypes {
		if _, err := os.Stat(filepath.Join("testdata/examples", typ+".json")); err != nil {
			t.Errorf("%s: no example testdata/examples/%s.json", typ, typ)
		}
	}
}

// invalidCase is a file testdata/invalid/<type>.<case>.json: data must be
// refused with problems at expect_path only, one of them with a message
// containing expect_message.
type invalidCase struct {
	Why        string `json:"why"`
	ExpectPath string `json:"expect_path"`
	// AlsoPaths are further paths the case is expected to be invalid at
	// (an anyOf of two required fields names both).
	AlsoPaths     []string        `json:"also_paths"`
	ExpectMessage string          `json:"expect_message"`
	Data          json.RawMessage `json:"data"`
}

func TestInvalidExamplesAreRefused(t *testing.T) {
	c := loadCatalog(t)
	files, err := filepath.Glob("testdata/invalid/*")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, f := range files {
		typ, kase, ok := typeOfFile(f)
		if !ok || kase == "" || filepath.Ext(f) != ".json" {
			t.Errorf("%s: not named <catalog type>.<case>.json", f)
			continue
		}
		seen[typ]++
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ic invalidCase
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ic); err != nil {
				t.Fatalf("not an invalid case {why, expect_path, expect_message?, data}: %v", err)
			}
			if ic.Why == "" || ic.ExpectPath == "" || len(ic.Data) == 0 {
				t.Fatal("why, expect_path and data are required")
			}
			err = c.Validate(typ, ic.Data)
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("%s: want a *ValidationError, got %v", ic.Why, err)
			}
			if ve.Type != typ {
				t.Errorf("ValidationError.Type = %q, want %q", ve.Type, typ)
			}
			t.Logf("%s: %v", ic.Why, ve.Problems)
			matched := false
			for _, p := range ve.Problems {
				if p.Path != ic.ExpectPath && !slices.Contains(ic.AlsoPaths, p.Path) {
					t.Errorf("%s: unexpected problem %s: %s (the case must be invalid at %s only)", ic.Why, p.Path, p.Message, ic.ExpectPath)
					continue
				}
				if strings.Contains(p.Message, ic.ExpectMessage) {
					matched = true
				}
			}
			if !matched {
				t.Errorf("%s: no problem at %s with a message containing %q; got %v", ic.Why, ic.ExpectPath, ic.ExpectMessage, ve.Problems)
			}
		})
	}
	for _, typ := range catalogTypes {
		if seen[typ] == 0 {
			t.Errorf("%s: no invalid example testdata/invalid/%s.<case>.json", typ, typ)
		}
	}
}

// TestSchemaConventions holds every schema to the catalog's conventions, so
// that the same fact has the same name and shape in every type.
func TestSchemaConventions(t *testing.T) {
	dir := CatalogFS()
	for _, typ := range catalogTypes {
		t.Run(typ, func(t *testing.T) {
			b, err := fs.ReadFile(dir, typ+".json")
			if err != nil {
				t.Fatal(err)
			}
			var s map[string]any
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
				t.Errorf("$schema = %v, want draft 2020-12", s["$schema"])
			}
			for _, k := range []string{"title", "description"} {
				if v, _ := s[k].(string); v == "" {
					t.Errorf("no %s", k)
				}
			}
			if s["type"] != "object" {
				t.Errorf(`type = %v, want "object"`, s["type"])
			}
			if s["additionalProperties"] != true {
				t.Errorf("additionalProperties = %v, want true (forward compatibility)", s["additionalProperties"])
			}
			if req, _ := s["required"].([]any); len(req) == 0 {
				t.Error("no required field: every type has keys the correlator needs")
			}
			checkProperties(t, "", s)
			if defs, ok := s["$defs"].(map[string]any); ok {
				for name, d := range defs {
					d, _ := d.(map[string]any)
					if v, _ := d["description"].(string); v == "" {
						t.Errorf("$defs/%s: no description", name)
					}
					checkProperties(t, "$defs/"+name+"/", d)
				}
			}
		})
	}
}

var snakeCase = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)

// identityFields are the names of the properties that hold an identity,
// besides every name ending in "_by".
var identityFields = map[string]bool{
	"author": true, "reviewer": true, "approver": true, "deployer": true, "actor": true, "builder": true,
}

// conventionRef returns the $ref a property of this name must have, or "".
func conventionRef(name string) string {
	switch {
	case name == "repository" || name == "source_repository":
		return "#/$defs/repository"
	case name == "commit" || strings.HasSuffix(name, "_commit"):
		return "#/$defs/sha"
	case name == "digest":
		return "#/$defs/digest"
	case name == "change":
		return "#/$defs/change"
	case name == "ticket_keys":
		return "#/$defs/ticket_keys"
	case name == "ticket_key":
		return "#/$defs/ticket_key"
	case name == "ticket_type":
		return "#/$defs/ticket_type"
	case identityFields[name] || strings.HasSuffix(name, "_by"):
		return "#/$defs/identity"
	}
	return ""
}

func checkProperties(t *testing.T, at string, s map[string]any) {
	t.Helper()
	props, _ := s["properties"].(map[string]any)
	for name, p := range props {
		field := at + name
		p, ok := p.(map[string]any)
		if !ok {
			t.Errorf("%s: schema is not an object", field)
			continue
		}
		_, isMap := s["patternProperties"] // a map's members (headers) are named by their pattern
		if !isMap && !snakeCase.MatchString(name) {
			t.Errorf("%s: not snake_case", field)
		}
		if v, _ := p["description"].(string); v == "" {
			t.Errorf("%s: no description", field)
		}
		ref, _ := p["$ref"].(string)
		if want := conventionRef(name); want != "" && ref != want {
			t.Errorf("%s: $ref = %q, want %q", field, ref, want)
		}
		if strings.HasSuffix(name, "_at") && (p["type"] != "string" || p["format"] != "date-time") {
			t.Errorf("%s: a timestamp is {type: string, format: date-time}", field)
		}
		switch name {
		case "system":
			if ref != "#/$defs/ci_system" && ref != "#/$defs/ticket_system" {
				t.Errorf("%s: system is a ci_system or a ticket_system", field)
			}
		case "url", "run_url", "review_url", "report_url", "attestation_url":
			if p["format"] != "uri" {
				t.Errorf("%s: a link has format uri", field)
			}
		case "run_id":
			if p["type"] != "string" || p["minLength"] != 1.0 {
				t.Errorf("%s: run_id is a non-empty string", field)
			}
		}
		checkProperties(t, field+"/", p)
		if items, ok := p["items"].(map[string]any); ok {
			checkProperties(t, field+"[]/", items)
		}
	}
}

func TestDocs(t *testing.T) {
	got, err := MarkdownDocs(CatalogFS(), os.DirFS("testdata/examples"))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join("..", "docs", "events.md")
	if *updateDocs {
		if err := os.WriteFile(name, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("%v (run go test ./schemas -run TestDocs -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/events.md is not what the schemas give; run go test ./schemas -run TestDocs -update\n%s", firstDiff(string(want), string(got)))
	}
	for _, typ := range catalogTypes {
		if !bytes.Contains(got, []byte("## `"+typ+"`")) {
			t.Errorf("docs have no section for %s", typ)
		}
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n file: %s\n  gen: %s", i+1, wl, gl)
		}
	}
	return ""
}

func TestMarkdownDocsRows(t *testing.T) {
	got, err := MarkdownDocs(CatalogFS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range []string{
		"| `change.number` | integer ≥ 1 | yes |",
		"| `reviewer.login` | string, at most 256 characters | yes |",
		"| `author.login` | string, at most 256 characters | when `author` is given |",
		"| `links.changes[].repository` | string ([repository](#repository)) | in each `links.changes[]` |",
		"| `decision` | one of `approved`, `changes_requested`, `commented`, `dismissed` | yes |",
		"| `approved_at` | string (date-time) | yes |",
	} {
		if !bytes.Contains(got, []byte(row)) {
			t.Errorf("docs lack the row %q", row)
		}
	}
	if bytes.Contains(got, []byte("Example `data`")) {
		t.Error("examples rendered without an examples directory")
	}
}

func TestMarkdownDocsRefuses(t *testing.T) {
	const head = `"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "T", "description": "D", "type": "object"`
	for name, tc := range map[string]struct {
		files    map[string]string
		examples fs.FS // nil: no examples
		wantErr  string
	}{
		"property without description": {
			files:   map[string]string{"a.v1.json": `{` + head + `, "properties": {"x": {"type": "string"}}}`},
			wantErr: "x: no description",
		},
		"unknown keyword": {
			files:   map[string]string{"a.v1.json": `{` + head + `, "properties": {"x": {"oneOf": [{"type": "string"}], "description": "X"}}}`},
			wantErr: `keyword "oneOf"`,
		},
		"rule without description": {
			files:   map[string]string{"a.v1.json": `{` + head + `, "allOf": [{"required": ["x"]}]}`},
			wantErr: "allOf/0",
		},
		"no title": {
			files:   map[string]string{"a.v1.json": `{"type": "object", "description": "D"}`},
			wantErr: "no title",
		},
		"shared def differs": {
			files: map[string]string{
				"a.v1.json": `{` + head + `, "$defs": {"sha": {"type": "string", "description": "A"}}}`,
				"b.v1.json": `{` + head + `, "$defs": {"sha": {"type": "string", "description": "B"}}}`,
			},
			wantErr: "$defs/sha differs",
		},
		"example missing": {
			files:    map[string]string{"a.v1.json": `{` + head + `}`},
			examples: fstest.MapFS{},
			wantErr:  "example of a.v1",
		},
	} {
		t.Run(name, func(t *testing.T) {
			dir := fstest.MapFS{}
			for n, s := range tc.files {
				dir[n] = &fstest.MapFile{Data: []byte(s)}
			}
			_, err := MarkdownDocs(dir, tc.examples)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}

// TestSharedShapes pins the normal forms of the correlation keys.
func TestSharedShapes(t *testing.T) {
	c := loadCatalog(t)
	base := map[string]any{
		"repository":  "github.com/acme/payments",
		"change":      map[string]any{"number": 42},
		"reviewer":    map[string]any{"login": "bob"},
		"decision":    "approved",
		"head_commit": "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4",
	}
	for _, tc := range []struct {
		field string
		value any
		ok    bool
	}{
		{"repository", "gitlab.example.com/group/subgroup/project", true},
		{"repository", "gitlab.example.com:8443/group/project", true},
		{"repository", "github.com/acme/payments.v2", true},
		{"repository", "github.com/Acme/payments", false},
		{"repository", "https://github.com/acme/payments", false},
		{"repository", "acme/payments", false},
		{"repository", "github.com/acme/payments/", false},
		{"head_commit", "9f2c1e7", true},
		{"head_commit", strings.Repeat("ab", 32), true},
		{"head_commit", "9F2C1E7A4B5D6C8E0F1A2B3C4D5E6F708192A3B4", false},
		{"head_commit", "refs/heads/main", false},
		{"reviewer", map[string]any{"login": "dependabot[bot]", "type": "bot"}, true},
		{"reviewer", map[string]any{"login": "bob", "type": "human"}, false},
		{"reviewer", map[string]any{"login": ""}, false},
		{"submitted_at", "2025-03-03T15:45:12+01:00", true},
		{"submitted_at", "2025-03-03", false},
		{"change", map[string]any{"number": 42, "url": "https://gitlab.example.com/g/p/-/merge_requests/42"}, true},
		{"change", map[string]any{"number": 42, "url": "not a url"}, false},
	} {
		data := map[string]any{}
		for k, v := range base {
			data[k] = v
		}
		data[tc.field] = tc.value
		b, err := json.Marshal(data)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Validate("dev.evidencepipeline.review.submitted.v1", b)
		if (err == nil) != tc.ok {
			t.Errorf("%s = %v: err = %v, want ok = %v", tc.field, tc.value, err, tc.ok)
		}
	}
}

// FuzzValidate: whatever the data, Validate returns nil or a
// *ValidationError whose problems name a path under data.
func FuzzValidate(f *testing.F) {
	for _, pattern := range []string{"testdata/examples/*.json", "testdata/invalid/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, name := range files {
			typ, _, ok := typeOfFile(name)
			if !ok {
				continue
			}
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			var ic invalidCase
			if strings.Contains(pattern, "invalid") && json.Unmarshal(b, &ic) == nil {
				b = ic.Data
			}
			f.Add(typ, b)
		}
	}
	c, err := Load()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		err := c.Validate(typ, data)
		if err == nil {
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Validate(%q) = %T %v, want a *ValidationError", typ, err, err)
		}
		if len(ve.Problems) == 0 {
			t.Fatal("a ValidationError without problems")
		}
		for _, p := range ve.Problems {
			if p.Path != "data" && !strings.HasPrefix(p.Path, "data/") {
				t.Errorf("problem path %q is not under data", p.Path)
			}
		}
	})
}
