package ce

import (
	"bytes"
	"encoding/json"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/go-json-experiment/json/jsontext"
)

var scanSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1.5e10`, `-12.25E-3`, `"a"`, `""`,
	`{"a":1,"b":[1,2,{"c":null}],"d":"x\"y\\z\/\b\f\n\r\t\u00e9\ud83d\ude00"}`,
	`{"specversion":"1.0","id":"1","source":"s","type":"t","data":{"k":[true,false,null]}}`,
	` { "a" : [ 1 , 2 ] } `, `"é直"`,
	// refused by the strict scanner, accepted by encoding/json
	`"\ud800"`, `"\udc00x"`, `"\ud800\u0041"`, `"\ud83d\ude00\ud83d"`, "\"\xff\"", "{\"a\xe9\":1}", "\"\xed\xa0\x80\"",
	`{"a":1,"a":2}`, `{"a":{"b":1,"b":1}}`, `{"a":1,"\u0061":2}`, `[{"a":1},{"a":1}]`,
	// invalid
	`{`, `[1,]`, `{"a":}`, `{"a" 1}`, `01`, `1.`, `-`, `1e`, `.5`, `tru`, `nul`, `"\x"`, "\"\x01\"", `"abc`,
	`{"a":1}x`, `[1 2]`, `{"a":1,}`, `{1:2}`, `+1`, `"\u12"`, strings.Repeat("[", 600) + strings.Repeat("]", 600),
}

// strictValid is the reference of the strict scanner: jsontext (the JSON
// v2 text layer), which refuses invalid UTF-8, unpaired surrogates and
// duplicate member names by default.
func strictValid(b []byte) bool {
	d := jsontext.NewDecoder(bytes.NewReader(b))
	if _, err := d.ReadValue(); err != nil {
		return false
	}
	_, err := d.ReadToken()
	return err == io.EOF
}

func FuzzScanner(f *testing.F) {
	for _, s := range scanSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := strictValid(b)
		lax := json.Valid(b)
		deep := bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) >= maxDepth
		if err := CheckJSON("data", b, maxDepth); (err == nil) != want && !(deep && err != nil) {
			t.Fatalf("CheckJSON(%q) = %v, jsontext valid = %v", b, err, want)
		} else if err != nil && !strings.HasPrefix(err.(*Error).Field, "data") {
			t.Fatalf("CheckJSON(%q) names %q, not a path under data", b, err.(*Error).Field)
		}
		got, err := DecodeAny(b)
		if (err == nil) != want && !(deep && err != nil) {
			t.Fatalf("DecodeAny(%q) error %v, jsontext valid = %v", b, err, want)
		}
		if err == nil {
			d := json.NewDecoder(bytes.NewReader(b))
			d.UseNumber()
			var exp any
			if err := d.Decode(&exp); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, exp) {
				t.Fatalf("DecodeAny(%q) = %#v, encoding/json gives %#v", b, got, exp)
			}
		}
		if tb := bytes.TrimSpace(b); len(tb) > 0 && tb[0] == '{' && !deep {
			// Lenient (ParseStored): what encoding/json accepts.
			if _, err := objectMembers(b, nil, true); (err == nil) != lax {
				t.Fatalf("lenient objectMembers(%q): %v, encoding/json valid = %v", b, err, lax)
			}
		}
		if want && !deep && len(b) > 0 && bytes.TrimSpace(b)[0] == '{' {
			ms, err := objectMembers(b, nil, false)
			if err != nil {
				t.Fatalf("objectMembers(%q): %v", b, err)
			}
			var exp map[string]json.RawMessage
			if err := json.Unmarshal(b, &exp); err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, m := range ms {
				got[m.key] = string(m.val)
			}
			for k, v := range exp {
				if got[k] != string(bytes.TrimSpace(v)) {
					t.Fatalf("member %q = %q, encoding/json gives %q", k, got[k], v)
				}
			}
			if len(got) != len(exp) {
				t.Fatalf("%d members, encoding/json gives %d", len(got), len(exp))
			}
		}
		if want && !deep && len(b) > 0 && bytes.TrimSpace(b)[0] == '[' {
			els, err := arrayElements(b)
			if err != nil {
				t.Fatalf("arrayElements(%q): %v", b, err)
			}
			var exp []json.RawMessage
			if err := json.Unmarshal(b, &exp); err != nil {
				t.Fatal(err)
			}
			if len(els) != len(exp) {
				t.Fatalf("%d elements, encoding/json gives %d", len(els), len(exp))
			}
		}
	})
}

func TestUnquoteMatchesEncodingJSON(t *testing.T) {
	// unquote also serves lenient scans, where unpaired surrogates pass.
	for _, s := range []string{`"plain"`, `"a\"b"`, `"\u00e9\ud83d\ude00"`, `"\ud800"`, `"\ud800\u0041"`, `"x\/y"`, `"\ud83d\ude00\ud83d"`} {
		var want string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatal(err)
		}
		if got := unquote([]byte(s), true); got != want {
			t.Errorf("unquote(%s) = %q, want %q", s, got, want)
		}
	}
}
