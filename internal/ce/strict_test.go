package ce

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestStrictNamesThePath: each kind of text the door refuses is named by
// the JSON path of the value at fault, by hand.
func TestStrictNamesThePath(t *testing.T) {
	ev := func(rest string) string { return `{"specversion":"1.0","id":"a","source":"s","type":"t"` + rest + `}` }
	for _, c := range []struct{ in, field, says string }{
		{`{"specversion":"1.0","id":"a","id":"b","source":"s","type":"t"}`, "id", "appears twice"},
		{ev(`,"data":{"x":[1,{"y":"\ud800"}]}`), "data/x/1/y", "unpaired surrogate"},
		{ev(`,"data":{"x":"\udc00"}`), "data/x", "unpaired surrogate"},
		{ev(`,"data":{"x":"\ud83d\u0041"}`), "data/x", "unpaired surrogate"},
		{ev(",\"data\":{\"a/b~c\":\"\xff\"}"), "data/a~1b~0c", "invalid UTF-8"},
		{ev(`,"data":{"o":{"k":1,"\u006b":2}}`), "data/o/k", "appears twice"},
		{ev(`,"data":[[],[{"k":1,"k":1}]]`), "data/1/0/k", "appears twice"},
		{ev(`,"data":{"x":[1,2,}}`), "data/x", "looking for a value"},
		{ev(`,"time":"2026-01-01T00:00:00.1234567891Z"`), "time", "up to 9 fractional digits"},
		{ev(`,"time":"2026-01-01T00:00:00,5Z"`), "time", "RFC 3339"},
		{ev(`,"time":"1970-01-01T00:00:00Z"`), "time", "outside the times the archive holds"},
		{ev(`,"time":"2106-01-01T00:00:00Z"`), "time", "outside the times the archive holds"},
		{`{"specversion":"1.0","id":"a","source":"s","type":"t"`, "(event)", "unexpected end"},
	} {
		_, err := ParseJSON([]byte(c.in))
		fe, ok := err.(*Error)
		if !ok || fe.Field != c.field || !strings.Contains(fe.Message, c.says) {
			t.Errorf("ParseJSON(%s) = %v, want %s: ...%s...", c.in, err, c.field, c.says)
		}
	}
	// Lenient: what an earlier version stored is still read.
	for _, in := range []string{
		`{"specversion":"1.0","id":"a","source":"s","type":"t","data":{"k":1,"k":2}}`,
		"{\"specversion\":\"1.0\",\"id\":\"a\xff\",\"source\":\"s\",\"type\":\"t\"}",
		`{"specversion":"1.0","id":"a\ud800","source":"s","type":"t","time":"9999-12-31T23:59:59Z"}`,
	} {
		if _, err := ParseStored([]byte(in)); err != nil {
			t.Errorf("ParseStored(%s): %v", in, err)
		}
	}
}

// TestAdmitBounds: the bounds of limits.go, at and one past each.
func TestAdmitBounds(t *testing.T) {
	base := func() *Event { return &Event{ID: "a", Source: "s", Type: "t"} }
	for _, c := range []struct {
		name  string
		edit  func(e *Event)
		field string // "" when admitted
	}{
		{"type at the bound", func(e *Event) { e.Type = strings.Repeat("t", MaxTypeLen) }, ""},
		{"type past it", func(e *Event) { e.Type = strings.Repeat("t", MaxTypeLen+1) }, "type"},
		{"id past it", func(e *Event) { e.ID = strings.Repeat("i", MaxIDLen+1) }, "id"},
		{"source past it", func(e *Event) { e.Source = strings.Repeat("s", MaxURILen+1) }, "source"},
		{"subject past it", func(e *Event) { e.Subject = strings.Repeat("s", MaxURILen+1) }, "subject"},
		{"invalid UTF-8 in subject", func(e *Event) { e.Subject = "caf\xe9" }, "subject"},
		{"MinTime", func(e *Event) { e.Time = MinTime }, ""},
		{"MaxTime", func(e *Event) { e.Time = MaxTime }, ""},
		{"before MinTime", func(e *Event) { e.Time = MinTime.Add(-time.Nanosecond) }, "time"},
		{"after MaxTime", func(e *Event) { e.Time = MaxTime.Add(time.Nanosecond) }, "time"},
		{"data 256 deep", func(e *Event) { e.Data = []byte(strings.Repeat("[", 256) + strings.Repeat("]", 256)) }, ""},
		{"data 257 deep", func(e *Event) { e.Data = []byte(strings.Repeat("[", 257) + strings.Repeat("]", 257)) }, "data"},
		{"extension name of 64", func(e *Event) { e.Extensions = map[string]json.RawMessage{strings.Repeat("e", 64): []byte(`1`)} }, ""},
		{"extension name of 65", func(e *Event) { e.Extensions = map[string]json.RawMessage{strings.Repeat("e", 65): []byte(`1`)} }, strings.Repeat("e", 65)},
		{"extension value past the bound", func(e *Event) {
			e.Extensions = map[string]json.RawMessage{"big": []byte(`"` + strings.Repeat("x", MaxExtValueLen) + `"`)}
		}, "big"},
	} {
		e := base()
		c.edit(e)
		err := e.Admit()
		if c.field == "" {
			if err != nil {
				t.Errorf("%s: %v, want admitted", c.name, err)
			}
			continue
		}
		if fe, ok := err.(*Error); !ok || fe.Field != c.field {
			t.Errorf("%s: %v, want a refusal naming %s", c.name, err, c.field)
		}
	}
}
