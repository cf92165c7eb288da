// Package apitest keeps evidenced's API true to its OpenAPI description
// (internal/api/openapi/openapi.yaml), for tests: a Contract loads and
// validates the description with kin-openapi, and its Handler wraps the
// handler a test server serves, checking every request and answer that
// passes through it:
//
//   - the route must be described, unless the server answered it 404 or
//     405 with a problem document (a path the server does not serve);
//   - a request the description says is invalid (a parameter of the wrong
//     type, a body not of its schema) must be refused with a 4xx;
//   - the answer's status must be declared for the operation, its content
//     type too, and its body must match the schema (whose objects mostly
//     have additionalProperties false: a member the description lacks is a
//     mismatch).
//
// Each mismatch is reported to the test (Errorf), naming the request, the
// status and what kin-openapi found. Only tests import this package: the
// binaries do not carry kin-openapi.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/evidencepipeline/evidence/internal/api/openapi"
	"github.com/evidencepipeline/evidence/internal/problem"
)

// Reporter is where mismatches go: a *testing.T, or a recorder in the
// tests of this package.
type Reporter interface {
	Errorf(format string, args ...any)
}

// Contract is a loaded, valid OpenAPI description and the routes it
// declares.
type Contract struct {
	doc *openapi3.T
	mux *http.ServeMux
}

// Load parses the description (data, or openapi.YAML when nil) and
// validates it as OpenAPI 3.1.
func Load(data []byte) (*Contract, error) {
	if data == nil {
		data = openapi.YAML
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("loading the OpenAPI description: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("the OpenAPI description is not valid: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("the OpenAPI description is version %s, want 3.1", doc.OpenAPI)
	}
	c := &Contract{doc: doc, mux: http.NewServeMux()}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			rt := &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
			names := paramNames(path)
			c.mux.HandleFunc(method+" "+muxPattern(path), func(_ http.ResponseWriter, r *http.Request) {
				m := r.Context().Value(matchKey{}).(*match)
				m.route, m.params = rt, map[string]string{}
				for _, n := range names {
					m.params[n] = r.PathValue(n)
				}
			})
		}
	}
	return c, nil
}

var (
	loadOnce sync.Once
	loaded   *Contract
	loadErr  error
)

// Default is openapi.YAML's contract, loaded once.
func Default() (*Contract, error) {
	loadOnce.Do(func() { loaded, loadErr = Load(nil) })
	return loaded, loadErr
}

// NewServer is httptest.NewServer(h) with every exchange checked against
// openapi.YAML (mismatches fail t), closed when the test ends.
func NewServer(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	c, err := Default()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(c.Handler(t, h))
	t.Cleanup(srv.Close)
	return srv
}

// Handler serves with h and reports each exchange that does not keep the
// contract to rep.
func (c *Contract) Handler(rep Reporter, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var reqBody []byte
		if r.Body != nil {
			reqBody, _ = io.ReadAll(r.Body)
			r.Body = io.NopCloser(bytes.NewReader(reqBody))
		}
		rec := &recorder{ResponseWriter: w}
		h.ServeHTTP(rec, r)
		if err := c.Check(r, reqBody, rec.status(), rec.header, rec.body.Bytes()); err != nil {
			rep.Errorf("OpenAPI contract: %v", err)
		}
	})
}

type matchKey struct{}

type match struct {
	route  *routers.Route
	params map[string]string
}

// Check checks one exchange: the request r (its body reqBody) answered
// status with header and body.
func (c *Contract) Check(r *http.Request, reqBody []byte, status int, header http.Header, body []byte) error {
	what := fmt.Sprintf("%s %s answered %d", r.Method, r.URL.RequestURI(), status)
	m := &match{}
	probe := r.Clone(context.WithValue(context.Background(), matchKey{}, m))
	probe.Body = http.NoBody
	c.mux.ServeHTTP(discard{}, probe)
	// A route the server does not serve (not described, or described and
	// left out of this server's configuration: no change reader, no log)
	// is answered 404 no-route or 405 method-not-allowed, a problem.
	if p := problem.Parse(header.Get("Content-Type"), body); (status == http.StatusNotFound || status == http.StatusMethodNotAllowed) &&
		p != nil && p.Status == status && (p.Is(problem.NoRoute) || p.Is(problem.MethodNotAllowed)) {
		if err := c.checkProblem(body); err != nil {
			return fmt.Errorf("%s: the %s problem breaks the description: %v", what, p.Type, err)
		}
		return nil
	}
	if m.route == nil {
		return fmt.Errorf("%s: no route of the description matches (an undescribed route is answered only 404 no-route or 405 method-not-allowed): %s", what, clip(body))
	}
	ctx := context.Background()
	req := r.Clone(ctx)
	req.Body = io.NopCloser(bytes.NewReader(reqBody))
	in := &openapi3filter.RequestValidationInput{
		Request: req, PathParams: m.params, Route: m.route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc},
	}
	if err := openapi3filter.ValidateRequest(ctx, in); err != nil && (status < 400 || status >= 500) {
		return fmt.Errorf("%s: the request breaks the description (%v), so it must be refused with a 4xx", what, err)
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in, Status: status, Header: header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		var re *openapi3filter.ResponseError
		if errors.As(err, &re) && re.Err != nil {
			err = fmt.Errorf("%s: %w", re.Reason, re.Err)
		}
		return fmt.Errorf("%s (operation %s): the answer breaks the description: %v\nbody: %s", what, m.route.Operation.OperationID, err, clip(body))
	}
	return nil
}

// checkProblem checks a problem document against the description's
// Problem schema.
func (c *Contract) checkProblem(body []byte) error { return c.CheckSchema("Problem", body) }

// CheckSchema checks a JSON document against the description's schema of
// that name (components/schemas).
func (c *Contract) CheckSchema(name string, doc []byte) error {
	ref := c.doc.Components.Schemas[name]
	if ref == nil || ref.Value == nil {
		return fmt.Errorf("the description has no schema %s", name)
	}
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return err
	}
	return ref.Value.VisitJSON(v, openapi3.EnableJSONSchema2020())
}

// muxPattern is a ServeMux pattern for an OpenAPI path: a trailing
// parameter takes the rest of the path (change ids hold '/'), a trailing
// '/' matches only itself.
func muxPattern(path string) string {
	if strings.HasSuffix(path, "/") {
		return path + "{$}"
	}
	if i := strings.LastIndex(path, "/{"); i >= 0 && strings.HasSuffix(path, "}") && !strings.Contains(path[i+1:], "/") {
		return path[:len(path)-1] + "...}"
	}
	return path
}

func paramNames(path string) []string {
	var out []string
	for _, seg := range strings.Split(path, "/") {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			out = append(out, seg[1:len(seg)-1])
		}
	}
	return out
}

func clip(b []byte) string {
	const max = 2000
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// recorder passes an answer through and keeps a copy of it.
type recorder struct {
	http.ResponseWriter
	code   int
	header http.Header
	body   bytes.Buffer
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
		r.header = r.ResponseWriter.Header().Clone()
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.WriteHeader(http.StatusOK)
	}
	r.body.Write(b)
	return r.ResponseWriter.Write(b)
}

// Flush lets a stream (the live page's server-sent events) through.
func (r *recorder) Flush() {
	if r.code == 0 {
		r.WriteHeader(http.StatusOK)
	}
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap gives http.ResponseController the writer beneath.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (r *recorder) status() int {
	if r.code == 0 {
		r.code, r.header = http.StatusOK, r.ResponseWriter.Header().Clone()
	}
	return r.code
}

// discard is the ResponseWriter of the route probe.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
