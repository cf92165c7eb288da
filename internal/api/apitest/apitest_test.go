package apitest_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/problem"
)

// mismatches collects what the contract reports, for the test to look at.
type mismatches struct {
	mu  sync.Mutex
	got []string
}

func (m *mismatches) Errorf(format string, args ...any) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.got = append(m.got, fmt.Sprintf(format, args...))
}

// TestContractHasTeeth: hand-made answers that break the description in
// one way each are reported, naming what is wrong; the same exchanges kept
// to the description are not.
func TestContractHasTeeth(t *testing.T) {
	c, err := apitest.Default()
	if err != nil {
		t.Fatal(err)
	}
	jsonAnswer := func(code int, body string) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
		}
	}
	proof := `{"tree_size":3,"leaf_index":1,"stream_seq":9,"row_hash":"ab","proof":["47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="]}`
	for _, tc := range []struct {
		name, path string
		h          http.Handler
		want       string // "" = keeps the contract; else in the report
	}{
		{"healthz as described", "/healthz", jsonAnswer(200, `{"status":"ok","version":"1.4.0"}`), ""},
		{"a field the description lacks", "/healthz", jsonAnswer(200, `{"status":"ok","version":"1.4.0","uptime":3}`), "uptime"},
		{"a required field missing", "/healthz", jsonAnswer(200, `{"status":"ok"}`), "version"},
		{"a field of the wrong type", "/v1/log/proof/inclusion?seq=9", jsonAnswer(200, strings.Replace(proof, `"stream_seq":9`, `"stream_seq":"9"`, 1)), "stream_seq"},
		{"proof as described", "/v1/log/proof/inclusion?seq=9", jsonAnswer(200, proof), ""},
		{"an undeclared status", "/healthz", jsonAnswer(500, `{"status":"ok","version":"1"}`), "status is not supported"},
		{"an undeclared content type", "/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, "ok")
		}), "text/plain"},
		{"an error that is not a problem document", "/v1/changes/x", jsonAnswer(404, `{"error":"no change record with id x"}`), "error"},
		{"a problem as described", "/v1/changes/x", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, r, problem.New(problem.NotFound, "no change record with id x"))
		}), ""},
		{"an invalid request let through", "/v1/log/proof/inclusion?seq=abc", jsonAnswer(200, proof), "must be refused with a 4xx"},
		{"an invalid request refused", "/v1/log/proof/inclusion?seq=abc", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, r, problem.New(problem.InvalidParameter, "seq \"abc\": want a positive integer"))
		}), ""},
		{"an undescribed route served", "/v1/secret", jsonAnswer(200, `{}`), "no route of the description"},
		{"an undescribed route refused", "/v1/secret", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, r, problem.New(problem.NoRoute, "no route GET /v1/secret"))
		}), ""},
		{"a no-route problem with a member the description lacks", "/v1/secret", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			problem.Write(w, r, &struct {
				problem.Problem
				Hint string `json:"hint"`
			}{*problem.New(problem.NoRoute, "no route GET /v1/secret"), "try /v1/events"})
		}), "hint"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &mismatches{}
			srv := httptest.NewServer(c.Handler(m, tc.h))
			defer srv.Close()
			resp, err := http.Get(srv.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			srv.Close() // the handler has returned: its report is in
			switch {
			case tc.want == "" && len(m.got) > 0:
				t.Errorf("reported %q, want nothing", m.got)
			case tc.want != "" && (len(m.got) != 1 || !strings.Contains(m.got[0], tc.want)):
				t.Errorf("reported %q, want one report containing %q", m.got, tc.want)
			default:
				for _, g := range m.got {
					t.Logf("reported: %s", g)
				}
			}
		})
	}
}

// TestDocsExamplesKeepTheContract: the problem documents shown in
// docs/api.md are what the description allows (an example that drifts
// from the wire type fails here).
func TestDocsExamplesKeepTheContract(t *testing.T) {
	c, err := apitest.Default()
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(string(doc), "```json\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if !strings.Contains(block, problem.TypeBase) {
			continue
		}
		schema := "Problem"
		if strings.Contains(block, `"accepted"`) {
			schema = "EventsProblem"
		}
		n++
		if err := c.CheckSchema(schema, []byte(block)); err != nil {
			t.Errorf("docs/api.md example is not a %s of the description: %v\n%s", schema, err, block)
		}
	}
	if n < 3 {
		t.Fatalf("%d problem examples in docs/api.md, want at least 3", n)
	}
}
