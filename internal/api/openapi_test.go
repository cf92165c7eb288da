package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// noLog is a transparency log that is never asked: the routes are mounted.
type noLog struct{}

func (noLog) Conn() driver.Conn { return nil }
func (noLog) Latest(context.Context) ([]byte, bool, error) {
	return nil, false, nil
}

// TestOpenAPIServed: GET /v1/openapi.yaml needs no token, even with a
// tokens file, and serves a document that kin-openapi loads and validates
// as OpenAPI 3.1, the embedded one.
func TestOpenAPIServed(t *testing.T) {
	tokens, err := auth.Parse(strings.NewReader("auditor " + auth.Hash("a-token") + " audit\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, api.New(api.Config{Tokens: tokens}))
	resp, err := http.Get(srv.URL + "/v1/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/yaml" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if string(body) != string(api.OpenAPI) {
		t.Error("the served document is not the embedded one")
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(body)
	if err != nil {
		t.Fatalf("loading: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("validating: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() || !strings.HasPrefix(doc.OpenAPI, "3.1.") {
		t.Errorf("version %q, want 3.1.x", doc.OpenAPI)
	}
}

// TestEveryRouteIsDescribed: each route the server mounts (all of them:
// with a change reader, a gate and a log) has its operation in the
// description, and the description has no /v1 operation the server lacks.
func TestEveryRouteIsDescribed(t *testing.T) {
	s := api.New(api.Config{Changes: correlate.StateReader{State: correlate.NewState()}, Gate: new(evaluate.Engine), TLog: noLog{}})
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(api.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	mounted := map[string]bool{}
	for _, pattern := range s.Routes() {
		method, path, _ := strings.Cut(pattern, " ")
		path = strings.NewReplacer("...}", "}", "{$}", "").Replace(path)
		mounted[method+" "+path] = true
		item := doc.Paths.Value(path)
		if item == nil || item.GetOperation(method) == nil {
			t.Errorf("route %q (%s %s) is not described in openapi.yaml", pattern, method, path)
		}
	}
	if len(mounted) < 10 {
		t.Fatalf("only %d routes: %v", len(mounted), s.Routes())
	}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			if (strings.HasPrefix(path, "/v1/") || !strings.Contains(path[1:], "/")) && path != "/" && !mounted[method+" "+path] {
				t.Errorf("openapi.yaml describes %s %s, which the server does not mount", method, path)
			}
		}
	}
}
