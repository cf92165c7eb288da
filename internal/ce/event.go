// Package ce is the project's CloudEvents 1.0 model: parsing of the JSON
// format (single and batch) and of the HTTP binary mode, validation of the
// context attributes with errors that name the attribute, and the canonical
// encoding that is stored in JetStream and hashed by the archive.
//
// The project does not use the SDK's event type on the ingest path: the
// receiver needs error messages that name the attribute or the JSON path at
// fault, and the archive needs one byte-exact canonical form to hash. The
// producers use github.com/cloudevents/sdk-go/v2 to build events; both
// encodings are CloudEvents JSON and interoperate.
package ce

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/url"
	"sort"
	"strings"
	"time"
)

// SpecVersion is the only CloudEvents version accepted.
const SpecVersion = "1.0"

// Event is one CloudEvent. Data holds the JSON value of the "data" member
// as it was received (any JSON value), or, when DataBase64 is set, the raw
// bytes that "data_base64" (or a non-JSON binary-mode body) carried.
type Event struct {
	ID              string
	Source          string
	Type            string
	Subject         string
	Time            time.Time // zero when the producer gave none
	DataContentType string
	DataSchema      string
	// Extensions holds extension attributes by name, each value as compact
	// JSON (a string, number or boolean).
	Extensions map[string]json.RawMessage
	Data       []byte
	DataBase64 bool
}

// Error is a validation error that names what is wrong: Field is a context
// attribute name ("source") or a JSON path into the event ("data/commit").
type Error struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *Error {
	return &Error{Field: field, Message: fmt.Sprintf(format, args...)}
}

// reserved are the attribute names of the JSON format that are not
// extensions.
var reserved = map[string]bool{
	"specversion": true, "id": true, "source": true, "type": true,
	"subject": true, "time": true, "datacontenttype": true, "dataschema": true,
	"data": true, "data_base64": true,
}

// ParseJSON parses one event in the CloudEvents JSON format
// (application/cloudevents+json) and validates its attributes. The event
// shares memory with b (its strings and data are not copied): b must not
// be modified afterwards.
func ParseJSON(b []byte) (*Event, error) { return parseJSON(b, false) }

// ParseStored parses an event read back from the event stream: as
// ParseJSON, but lenient where the door became strict after the event may
// have been accepted (strings of invalid UTF-8 or with unpaired surrogate
// escapes, member names given twice, times outside MinTime..MaxTime), so
// that what an earlier version stored is still archived and correlated,
// never dead-lettered for a rule it predates.
func ParseStored(b []byte) (*Event, error) { return parseJSON(b, true) }

func parseJSON(b []byte, lenient bool) (*Event, error) {
	var buf [16]member
	ms, err := objectMembers(b, buf[:0], lenient)
	if err != nil {
		fe := syntaxFieldErr("", b, err)
		if fe.Field == "(event)" && !strings.HasPrefix(fe.Message, "not a JSON object") {
			fe.Message = "not a JSON object: " + fe.Message
		}
		return nil, fe
	}
	return fromMembers(ms, lenient)
}

// ParseBatch parses the CloudEvents JSON batch format
// (application/cloudevents-batch+json): a JSON array of events. It returns
// the raw entries so that the caller can report per entry; an error here
// means the body as a whole is not an array.
func ParseBatch(b []byte) ([]json.RawMessage, error) {
	els, err := arrayElements(b)
	if err != nil {
		return nil, fieldErr("(batch)", "not a JSON array of events: %v", err)
	}
	out := make([]json.RawMessage, len(els))
	for i, e := range els {
		out[i] = e
	}
	return out, nil
}

func fromMembers(ms []member, lenient bool) (*Event, error) {
	e := &Event{}
	var sv, tm string
	var hasSV, hasID, hasSource, hasType bool
	var data, b64 *member
	for i := range ms {
		m := &ms[i]
		var dst *string
		var has *bool
		switch m.key {
		case "specversion":
			dst, has = &sv, &hasSV
		case "id":
			dst, has = &e.ID, &hasID
		case "source":
			dst, has = &e.Source, &hasSource
		case "type":
			dst, has = &e.Type, &hasType
		case "subject":
			dst = &e.Subject
		case "time":
			dst = &tm
		case "datacontenttype":
			dst = &e.DataContentType
		case "dataschema":
			dst = &e.DataSchema
		case "data":
			data = m
			continue
		case "data_base64":
			b64 = m
			continue
		default:
			if e.Extensions == nil {
				e.Extensions = make(map[string]json.RawMessage)
			}
			e.Extensions[m.key] = m.val
			continue
		}
		if isNull(m.val) {
			continue
		}
		v, ok := stringValue(*m)
		if !ok {
			return nil, fieldErr(m.key, "must be a string, got %s", jsonKind(m.val))
		}
		*dst = v
		if has != nil {
			*has = true
		}
	}
	switch {
	case !hasSV:
		return nil, fieldErr("specversion", "required attribute is missing")
	case sv != SpecVersion:
		return nil, fieldErr("specversion", "unsupported version %q (only %q is accepted)", sv, SpecVersion)
	case !hasID:
		return nil, fieldErr("id", "required attribute is missing")
	case !hasSource:
		return nil, fieldErr("source", "required attribute is missing")
	case !hasType:
		return nil, fieldErr("type", "required attribute is missing")
	}
	if tm != "" {
		if lenient {
			t, err := time.Parse(time.RFC3339Nano, tm)
			if err != nil {
				return nil, fieldErr("time", "must be an RFC 3339 timestamp, got %q", tm)
			}
			e.Time = t.UTC()
		} else {
			t, err := ParseTime(tm)
			if err != nil {
				return nil, &Error{Field: "time", Message: err.Error()}
			}
			e.Time = t
		}
	}
	switch {
	case data != nil && b64 != nil:
		return nil, fieldErr("data_base64", "must not be present together with data")
	case b64 != nil && !isNull(b64.val):
		s, ok := stringValue(*b64)
		if !ok {
			return nil, fieldErr("data_base64", "must be a string, got %s", jsonKind(b64.val))
		}
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fieldErr("data_base64", "not valid base64: %v", err)
		}
		e.Data, e.DataBase64 = raw, true
	case data != nil && !isNull(data.val):
		// Validated by the scanner already.
		e.Data = data.val
	}
	if err := e.validateAttributes(); err != nil {
		return nil, err
	}
	return e, nil
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 4 && string(bytes.TrimSpace(raw)) == "null"
}

func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '{':
		return "an object"
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// Validate checks the context attributes against CloudEvents 1.0, and that
// JSON data is valid JSON. The first problem found is returned as an
// *Error.
func (e *Event) Validate() error {
	if err := e.validateAttributes(); err != nil {
		return err
	}
	if !e.DataBase64 && len(e.Data) > 0 {
		// The data sits one level below the event's own object.
		if err := CheckJSON("data", e.Data, maxDepth-1); err != nil {
			return err
		}
	}
	return nil
}

// Admit checks what the door requires: the attributes as Validate does,
// and beyond CloudEvents 1.0, so that an accepted event is kept exactly
// and every stage can process it, the bounds of every attribute (limits.go), a time within MinTime..MaxTime,
// attributes of valid UTF-8, and JSON data that is strict (CheckJSON)
// and nested at most MaxDataDepth levels. Every ingress (the receiver in
// each mode, the webhooks) calls it; the stages do not, so that what an
// earlier version accepted is still processed.
func (e *Event) Admit() error {
	if err := e.validateAttributes(); err != nil {
		return err
	}
	for _, a := range [...]struct {
		field, v string
		max      int
	}{
		{"type", e.Type, MaxTypeLen}, {"id", e.ID, MaxIDLen}, {"source", e.Source, MaxURILen},
		{"subject", e.Subject, MaxURILen}, {"dataschema", e.DataSchema, MaxURILen},
		{"datacontenttype", e.DataContentType, MaxContentTypeLen},
	} {
		if err := checkLen(a.field, a.v, a.max); err != nil {
			return err
		}
	}
	if !e.Time.IsZero() {
		if err := checkTime(e.Time); err != nil {
			return &Error{Field: "time", Message: err.Error()}
		}
	}
	for name, v := range e.Extensions {
		if len(v) > MaxExtValueLen {
			return fieldErr(name, "extension value too long: %d bytes of JSON, at most %d", len(v), MaxExtValueLen)
		}
		if err := CheckJSON(name, v, 1); err != nil {
			return err
		}
	}
	if !e.DataBase64 && len(e.Data) > 0 {
		return CheckJSON("data", e.Data, MaxDataDepth)
	}
	return nil
}

func (e *Event) validateAttributes() error {
	if strings.TrimSpace(e.ID) == "" {
		return fieldErr("id", "must be a non-empty string")
	}
	if strings.TrimSpace(e.Source) == "" {
		return fieldErr("source", "must be a non-empty URI-reference")
	}
	if !plainURI(e.Source) {
		if _, err := url.Parse(e.Source); err != nil {
			return fieldErr("source", "not a URI-reference: %v", err)
		}
	}
	if strings.TrimSpace(e.Type) == "" {
		return fieldErr("type", "must be a non-empty string")
	}
	if e.DataContentType != "" {
		if _, _, err := mime.ParseMediaType(e.DataContentType); err != nil {
			return fieldErr("datacontenttype", "not an RFC 2046 media type: %v", err)
		}
	}
	if e.DataSchema != "" {
		u, err := url.Parse(e.DataSchema)
		if err != nil || !u.IsAbs() {
			return fieldErr("dataschema", "must be an absolute URI, got %q", e.DataSchema)
		}
	}
	for name, v := range e.Extensions {
		if !validExtName(name) {
			return fieldErr(name, "extension attribute names must be 1 to %d lower-case letters or digits", MaxExtNameLen)
		}
		switch jsonKind(v) {
		case "a string", "a number", "a boolean":
		default:
			return fieldErr(name, "extension value must be a string, number or boolean, got %s", jsonKind(v))
		}
	}
	return nil
}

// plainURI reports whether s holds only characters that url.Parse accepts
// anywhere (unreserved and sub-delims, ":", "/", "?", "@"), so that the
// parse, on the ingest hot path, can be skipped. Anything else ("%",
// "[", "#", spaces, non-ASCII) goes through url.Parse.
func plainURI(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:/?@", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func validExtName(s string) bool {
	if len(s) == 0 || len(s) > MaxExtNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// IsJSONData reports whether the event's data is a JSON value (as opposed to
// binary data).
func (e *Event) IsJSONData() bool { return !e.DataBase64 && len(e.Data) > 0 }

// MsgID is the JetStream de-duplication id of the event: derived from source
// and id, which CloudEvents makes unique per event, so a retried publish of
// the same event is stored once.
func (e *Event) MsgID() string {
	h := sha256.New()
	h.Write([]byte(e.Source))
	h.Write([]byte{0})
	h.Write([]byte(e.ID))
	return hex.EncodeToString(h.Sum(nil))
}

// ExtensionsJSON is the extensions as one JSON object with sorted keys, or
// "{}" when there are none. It is what the archive stores.
func (e *Event) ExtensionsJSON() string {
	if len(e.Extensions) == 0 {
		return "{}"
	}
	var b bytes.Buffer
	writeExtensions(&b, e.Extensions, true)
	return b.String()
}

func writeExtensions(b *bytes.Buffer, ext map[string]json.RawMessage, braces bool) {
	keys := make([]string, 0, len(ext))
	for k := range ext {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if braces {
		b.WriteByte('{')
	}
	for i, k := range keys {
		if i > 0 || !braces {
			b.WriteByte(',')
		}
		writeString(b, k)
		b.WriteByte(':')
		if err := json.Compact(b, ext[k]); err != nil {
			b.Write(ext[k])
		}
	}
	if braces {
		b.WriteByte('}')
	}
}

// MarshalCanonical encodes the event in the CloudEvents JSON format with a
// fixed member order: specversion, id, source, type, subject, time,
// datacontenttype, dataschema, then extensions sorted by name, then data or
// data_base64. Absent optional attributes are omitted; time is UTC in RFC
// 3339 with nanoseconds. The same event always encodes to the same bytes.
func (e *Event) MarshalCanonical() []byte {
	var b bytes.Buffer
	e.WriteCanonical(&b)
	return b.Bytes()
}

// WriteCanonical appends the canonical encoding to b (see
// MarshalCanonical), so that a caller can reuse one buffer.
func (e *Event) WriteCanonical(b *bytes.Buffer) {
	b.Grow(128 + len(e.Data) + len(e.Source) + len(e.Type) + len(e.ID) + len(e.Subject))
	b.WriteString(`{"specversion":"1.0","id":`)
	writeString(b, e.ID)
	b.WriteString(`,"source":`)
	writeString(b, e.Source)
	b.WriteString(`,"type":`)
	writeString(b, e.Type)
	opt := func(name, v string) {
		if v != "" {
			b.WriteString(`,"` + name + `":`)
			writeString(b, v)
		}
	}
	opt("subject", e.Subject)
	if !e.Time.IsZero() {
		opt("time", e.Time.UTC().Format(time.RFC3339Nano))
	}
	opt("datacontenttype", e.DataContentType)
	opt("dataschema", e.DataSchema)
	if len(e.Extensions) > 0 {
		writeExtensions(b, e.Extensions, false)
	}
	switch {
	case e.DataBase64:
		b.WriteString(`,"data_base64":"`)
		b.WriteString(base64.StdEncoding.EncodeToString(e.Data))
		b.WriteByte('"')
	case len(e.Data) > 0:
		b.WriteString(`,"data":`)
		b.Write(e.Data)
	}
	b.WriteByte('}')

}

// writeString writes s as a JSON string literal.
func writeString(b *bytes.Buffer, s string) {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 || c == '<' || c == '>' || c == '&' {
			simple = false
			break
		}
	}
	if simple {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	q, _ := json.Marshal(s)
	b.Write(q)
}

// TimeNanos is the event time in Unix nanoseconds, 0 when absent.
func (e *Event) TimeNanos() int64 {
	if e.Time.IsZero() {
		return 0
	}
	return e.Time.UnixNano()
}
