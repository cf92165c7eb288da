// Package schemas holds the project's event catalog (one JSON Schema per
// event type, in catalog/) and the ClickHouse migrations (in clickhouse/),
// embedded in the binaries.
//
// A catalog schema lives in catalog/<event type>.json; the file name without
// ".json" is the CloudEvents type it describes, and the schema describes the
// event's data. The receiver validates the data of every event whose type is
// in the catalog; events of other types pass with their attributes checked.
package schemas

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed catalog/*.json
var catalogFS embed.FS

//go:embed clickhouse/*.sql
var migrationsFS embed.FS

// Migrations is the directory of ClickHouse migrations, named
// NNNN_description.sql and applied in lexical order.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationsFS, "clickhouse")
	if err != nil {
		panic(err) // the directory is embedded above; cannot happen
	}
	return sub
}

// CatalogFS is the directory of catalog schemas.
func CatalogFS() fs.FS {
	sub, err := fs.Sub(catalogFS, "catalog")
	if err != nil {
		panic(err)
	}
	return sub
}

// Catalog is the compiled event catalog.
type Catalog struct {
	schemas map[string]*jsonschema.Schema
}

// Problem is one reason the data of an event does not match its schema
// (ce.Problem, where the CDEvents validator, which does not link the
// JSON Schema library, declares its problems too).
type Problem = ce.Problem

// ValidationError lists every problem of one event's data.
type ValidationError struct {
	Type     string
	Problems []Problem
}

// DataProblems lists the problems (the receiver reports catalog and
// CDEvents validation errors alike through it).
func (e *ValidationError) DataProblems() []Problem { return e.Problems }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Path + ": " + p.Message
	}
	return "data does not match the schema of " + e.Type + ": " + strings.Join(parts, "; ")
}

var (
	loadOnce sync.Once
	loaded   *Catalog
	loadErr  error
)

// Load compiles the embedded catalog once and returns it.
func Load() (*Catalog, error) {
	loadOnce.Do(func() { loaded, loadErr = Compile(CatalogFS()) })
	return loaded, loadErr
}

// Compile compiles every *.json schema in dir.
func Compile(dir fs.FS) (*Catalog, error) {
	names, err := fs.Glob(dir, "*.json")
	if err != nil {
		return nil, err
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	cat := &Catalog{schemas: make(map[string]*jsonschema.Schema, len(names))}
	for _, name := range names {
		b, err := fs.ReadFile(dir, name)
		if err != nil {
			return nil, err
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		if err := c.AddResource("catalog/"+name, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
	}
	for _, name := range names {
		s, err := c.Compile("catalog/" + name)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", name, err)
		}
		cat.schemas[strings.TrimSuffix(path.Base(name), ".json")] = s
	}
	return cat, nil
}

// Types lists the event types of the catalog, sorted.
func (c *Catalog) Types() []string {
	out := make([]string, 0, len(c.schemas))
	for t := range c.schemas {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// Has reports whether the event type is in the catalog.
func (c *Catalog) Has(eventType string) bool {
	_, ok := c.schemas[eventType]
	return ok
}

var printer = message.NewPrinter(language.English)

// Validate checks an event's data (a JSON value) against the schema of its
// type. Types outside the catalog are not checked. A mismatch is a
// *ValidationError naming each JSON path at fault.
func (c *Catalog) Validate(eventType string, data []byte) error {
	s, ok := c.schemas[eventType]
	if !ok {
		return nil
	}
	if len(data) == 0 {
		return &ValidationError{Type: eventType, Problems: []Problem{{Path: "data", Message: "required: events of this type carry JSON data"}}}
	}
	v, err := ce.DecodeAny(data)
	if err != nil {
		return &ValidationError{Type: eventType, Problems: []Problem{{Path: "data", Message: "not valid JSON: " + err.Error()}}}
	}
	err = s.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	out := &ValidationError{Type: eventType}
	collect(ve, &out.Problems)
	if len(out.Problems) == 0 {
		out.Problems = []Problem{{Path: "data", Message: ve.Error()}}
	}
	return out
}

func collect(e *jsonschema.ValidationError, into *[]Problem) {
	if len(e.Causes) == 0 {
		p := "data"
		if len(e.InstanceLocation) > 0 {
			p += "/" + strings.Join(e.InstanceLocation, "/")
		}
		// A missing property is named by its own path, one problem each.
		if req, ok := e.ErrorKind.(*kind.Required); ok {
			for _, name := range req.Missing {
				*into = append(*into, Problem{Path: p + "/" + name, Message: "required property is missing"})
			}
			return
		}
		*into = append(*into, Problem{Path: p, Message: e.ErrorKind.LocalizedString(printer)})
		return
	}
	for _, c := range e.Causes {
		collect(c, into)
	}
}
