package ce

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"unicode/utf8"
)

// IsBinary reports whether an HTTP request carries an event in binary mode
// (its attributes in ce-* headers).
func IsBinary(h http.Header) bool {
	return h.Get("Ce-Specversion") != ""
}

// FromBinary builds an event from the CloudEvents HTTP binary mode: context
// attributes in ce-* headers (percent-encoded), datacontenttype in
// Content-Type, the body as data. A JSON media type (or none) makes the body
// a JSON value, which must then be valid; any other media type keeps the
// body as binary data.
func FromBinary(h http.Header, body []byte) (*Event, error) {
	get := func(name string) (string, *Error) {
		v := h.Get("Ce-" + name)
		if v == "" {
			return "", nil
		}
		d, err := url.PathUnescape(v)
		if err != nil {
			return "", fieldErr("ce-"+strings.ToLower(name), "bad percent-encoding: %v", err)
		}
		if !utf8.ValidString(d) {
			return "", fieldErr("ce-"+strings.ToLower(name), "not valid UTF-8 (a latin-1 byte? percent-encode the UTF-8 bytes: é is %%C3%%A9)")
		}
		return d, nil
	}
	e := &Event{}
	sv, ferr := get("Specversion")
	if ferr != nil {
		return nil, ferr
	}
	if sv != SpecVersion {
		return nil, fieldErr("ce-specversion", "unsupported version %q (only %q is accepted)", sv, SpecVersion)
	}
	var tm string
	for _, f := range []struct {
		name     string
		attr     string
		required bool
		dst      *string
	}{
		{"Id", "id", true, &e.ID}, {"Source", "source", true, &e.Source}, {"Type", "type", true, &e.Type},
		{"Subject", "subject", false, &e.Subject}, {"Time", "time", false, &tm},
		{"Dataschema", "dataschema", false, &e.DataSchema},
	} {
		v, ferr := get(f.name)
		if ferr != nil {
			return nil, ferr
		}
		if v == "" && f.required {
			return nil, fieldErr("ce-"+f.attr, "required header is missing")
		}
		*f.dst = v
	}
	if tm != "" {
		t, err := ParseTime(tm)
		if err != nil {
			return nil, &Error{Field: "ce-time", Message: err.Error()}
		}
		e.Time = t
	}
	e.DataContentType = h.Get("Content-Type")
	for k, vs := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if !strings.HasPrefix(ck, "Ce-") || len(vs) == 0 {
			continue
		}
		name := strings.ToLower(ck[3:])
		if len(vs) > 1 {
			// Which one counts would be undefined, as with a member
			// named twice in JSON.
			return nil, fieldErr("ce-"+name, "header sent %d times; send each attribute once", len(vs))
		}
		if reserved[name] {
			continue
		}
		if !validExtName(name) {
			return nil, fieldErr("ce-"+name, "extension attribute names must be 1 to %d lower-case letters or digits", MaxExtNameLen)
		}
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			return nil, fieldErr("ce-"+name, "bad percent-encoding: %v", err)
		}
		if !utf8.ValidString(v) {
			// json.Marshal would store U+FFFD in place of the byte.
			return nil, fieldErr("ce-"+name, "not valid UTF-8 (a latin-1 byte? percent-encode the UTF-8 bytes: é is %%C3%%A9)")
		}
		q, _ := json.Marshal(v)
		if e.Extensions == nil {
			e.Extensions = make(map[string]json.RawMessage)
		}
		e.Extensions[name] = q
	}
	if len(body) > 0 {
		if IsJSONMediaType(e.DataContentType) {
			if err := CheckJSON("data", body, maxDepth-1); err != nil {
				fe := err.(*Error)
				fe.Message = fmt.Sprintf("the body is not valid JSON, but Content-Type is %q: %s", e.DataContentType, fe.Message)
				return nil, fe
			}
			// The value, as structured mode keeps it: without the
			// whitespace around it (a body file's final newline), and a
			// null body is no data. The stream then holds, and the archive
			// parses back, exactly the event accepted.
			if v := trimJSONSpace(body); string(v) != "null" {
				e.Data = v
			}
		} else {
			e.Data, e.DataBase64 = body, true
		}
	}
	if err := e.Validate(); err != nil {
		if fe, ok := err.(*Error); ok && fe.Field != "data" && !strings.HasPrefix(fe.Field, "ce-") {
			fe.Field = "ce-" + fe.Field
		}
		return nil, err
	}
	return e, nil
}

// trimJSONSpace drops JSON's whitespace (RFC 8259: space, tab, LF, CR)
// around b.
func trimJSONSpace(b []byte) []byte {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// IsAttribute reports whether field names a context attribute (an
// extension included) rather than a path into data: in binary mode it
// came in a ce- header (datacontenttype: in Content-Type).
func IsAttribute(field string) bool {
	return field != "" && field != "data" && !strings.HasPrefix(field, "data/") && !strings.HasPrefix(field, "ce-") &&
		field != "datacontenttype" && field[0] != '('
}

// IsJSONMediaType reports whether a datacontenttype denotes JSON: empty
// (the CloudEvents default), application/json, text/json or any +json type.
func IsJSONMediaType(ct string) bool {
	if ct == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false
	}
	return mt == "application/json" || mt == "text/json" || strings.HasSuffix(mt, "+json")
}
