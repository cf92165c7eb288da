package webhook

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"strings"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// FieldError is a malformed-payload error naming the JSON field at fault
// (a dot-separated path into the payload, "(body)" for the body as a
// whole). It is a *ce.Error.
func FieldError(field, format string, args ...any) error {
	return &ce.Error{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Decode unmarshals body into v. Its error is a FieldError: it names the
// field of a value of the wrong type, and "(body)" for a body that is not
// JSON.
func Decode(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		return FieldError(field, "must be %s, got a JSON %s", JSONKind(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return FieldError("(body)", "not valid JSON: %v at byte %d", se, se.Offset)
	}
	return FieldError("(body)", "%v", err)
}

// JSONKind names the JSON type that decodes into Go type t: "a string",
// "an integer", "an object"...
func JSONKind(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "a " + t.Kind().String()
	}
}

var (
	shaRe  = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	repoRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9_.~-]+){2,}$`)
)

// CommitSHA returns the commit SHA in s (7 to 64 hex digits, spaces
// around them ignored) in lower case, or a FieldError naming field when s
// is not one. An empty s is returned as is.
func CommitSHA(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	l := strings.ToLower(strings.TrimSpace(s))
	if !IsCommitSHA(l) {
		return "", FieldError(field, "%q is not a commit SHA", s)
	}
	return l, nil
}

// IsCommitSHA reports whether s is a commit SHA as the catalog writes it:
// 7 to 64 lower-case hex digits.
func IsCommitSHA(s string) bool { return shaRe.MatchString(s) }

// Repository normalizes a repository URL (web or clone) to the catalog's
// host/group/project form in lower case, or returns a FieldError naming
// field.
func Repository(field, u string) (string, error) {
	r := strings.ToLower(ci.NormalizeRepository(u))
	if !repoRe.MatchString(r) {
		return "", FieldError(field, "%q is not a repository URL (host/group/project)", u)
	}
	return r, nil
}

// WebURL returns u when it is an absolute http(s) URL the catalog accepts
// as a uri (no user info, no IPv6 host), else "".
func WebURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil || strings.Contains(p.Hostname(), ":") {
		return ""
	}
	return u
}
