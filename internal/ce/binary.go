package ce

import (
	"encoding/json"
	"mime"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"
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
		t, err := time.Parse(time.RFC3339Nano, tm)
		if err != nil {
			return nil, fieldErr("ce-time", "must be an RFC 3339 timestamp, got %q", tm)
		}
		e.Time = t.UTC()
	}
	e.DataContentType = h.Get("Content-Type")
	for k, vs := range h {
		ck := textproto.CanonicalMIMEHeaderKey(k)
		if !strings.HasPrefix(ck, "Ce-") || len(vs) == 0 {
			continue
		}
		name := strings.ToLower(ck[3:])
		if reserved[name] {
			continue
		}
		v, err := url.PathUnescape(vs[0])
		if err != nil {
			return nil, fieldErr("ce-"+name, "bad percent-encoding: %v", err)
		}
		q, _ := json.Marshal(v)
		if e.Extensions == nil {
			e.Extensions = make(map[string]json.RawMessage)
		}
		e.Extensions[name] = q
	}
	if len(body) > 0 {
		if IsJSONMediaType(e.DataContentType) {
			if !json.Valid(body) {
				return nil, fieldErr("data", "body is not valid JSON but Content-Type is %q", e.DataContentType)
			}
			e.Data = body
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
