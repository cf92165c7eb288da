package policies

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// valueSeeds are JSON documents, valid and not, that ValueOf must read as
// ParseJSON does.
var valueSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `12`, `-3.25`, `1e3`, `1.5E-7`, `123456789012345678901234567890`,
	`""`, `"plain"`, `"tab\there"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, "\"caf\xc3\xa9\"", "\"bad \xff byte\"",
	`{"a":1,"b":[1,2,{"c":null}],"d":{"e":"f"}}`, ` { "a" : [ ] , "b" : { } } `, `{"a":1,"a":2}`,
	`[1,]`, `{"a":}`, `{"a" 1}`, `[01]`, `-`, `1.`, `1e`, `.5`, `tru`, `nul`, `"unterminated`, "\"ctl\x01\"", `{"a":1`, `[`, `"\`,
	`{"k":"v"} `, `{} {}`, `1 2`,
}

// sameValue reports whether ValueOf reads b as ParseJSON does: both fail,
// or both give equal values (numbers as written). ParseJSON ignores what
// follows the first document; ValueOf refuses it, so that case is not
// compared.
func sameValue(t *testing.T, b []byte) {
	t.Helper()
	got, gerr := ValueOf(b)
	want, werr := ParseJSON(b)
	if gerr != nil && werr == nil {
		if _, err := ValueOf(trimFirst(b)); err == nil {
			return // data after the document: refused on purpose
		}
		t.Fatalf("%q: ValueOf: %v; ParseJSON: %v", b, gerr, want)
	}
	if gerr == nil && werr != nil {
		t.Fatalf("%q: ValueOf %v; ParseJSON: %v", b, got, werr)
	}
	if gerr != nil {
		return
	}
	if ast.Compare(got, want) != 0 || got.String() != want.String() || got.Hash() != want.Hash() {
		t.Fatalf("%q: ValueOf %v, ParseJSON %v", b, got, want)
	}
}

// trimFirst is b cut after its first JSON document, as ParseJSON reads it.
func trimFirst(b []byte) []byte {
	for n := len(b); n > 0; n-- {
		if _, err := ValueOf(b[:n]); err == nil {
			return b[:n]
		}
	}
	return b
}

func TestValueOfMatchesParseJSON(t *testing.T) {
	for _, s := range valueSeeds {
		sameValue(t, []byte(s))
	}
	files, _ := filepath.Glob("../../correlate/testdata/scenarios/*/*.golden.json")
	if len(files) == 0 {
		t.Fatal("no golden records in ../../correlate/testdata/scenarios")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sameValue(t, b)
	}
	if _, err := ValueOf([]byte(`{} x`)); err == nil {
		t.Fatal("ValueOf accepted data after the document")
	}
}

func FuzzValueOf(f *testing.F) {
	for _, s := range valueSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameValue(t, b) })
}

// BenchmarkParseRecord reads the largest golden change record into a
// value: with ValueOf (the engine's path) and with ParseJSON (through
// encoding/json), side by side.
func BenchmarkParseRecord(b *testing.B) {
	files, _ := filepath.Glob("../../correlate/testdata/scenarios/*/record.golden.json")
	var rec []byte
	for _, f := range files {
		if raw, err := os.ReadFile(f); err == nil && len(raw) > len(rec) {
			rec = raw
		}
	}
	if rec == nil {
		b.Fatal("no golden records")
	}
	for _, c := range []struct {
		name  string
		parse func([]byte) (ast.Value, error)
	}{{"ValueOf", ValueOf}, {"ParseJSON", ParseJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(rec)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.parse(rec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
