package problem_test

import (
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/problem"
)

// withCount is an answer with an extension member, as the receiver's.
type withCount struct {
	problem.Problem
	Accepted int `json:"accepted"`
}

func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  problem.Document
		want string // hand-written: RFC 9457's members, then the extension's
	}{
		{"plain", problem.New(problem.NotFound, "no change record with id x"),
			`{"type":"https://github.com/evidencepipeline/evidence/blob/main/docs/api.md#not-found","title":"No such resource","status":404,"detail":"no change record with id x","instance":"/v1/changes/x"}`},
		{"errors and an extension", &withCount{Problem: problem.Problem{Type: problem.InvalidParameter.URI(), Title: "Invalid or missing parameter", Status: 400,
			Detail: "a <b> & c", Instance: "/elsewhere", Errors: []problem.FieldError{{Field: "repo", Detail: "required"}}}},
			`{"type":"https://github.com/evidencepipeline/evidence/blob/main/docs/api.md#invalid-parameter","title":"Invalid or missing parameter","status":400,"detail":"a <b> & c","instance":"/elsewhere","errors":[{"field":"repo","detail":"required"}],"accepted":0}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("Content-Length", "3")
			problem.Write(w, httptest.NewRequest("GET", "/v1/changes/x?y=1", nil), tc.doc)
			if w.Code != tc.doc.Details().Status {
				t.Errorf("status %d, want %d", w.Code, tc.doc.Details().Status)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Errorf("content type %q", ct)
			}
			if cl := w.Header().Get("Content-Length"); cl != "" {
				t.Errorf("a stale Content-Length %q was kept", cl)
			}
			if got := strings.TrimSpace(w.Body.String()); got != tc.want {
				t.Errorf("body\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

func TestParse(t *testing.T) {
	body := []byte(`{"type":"https://github.com/evidencepipeline/evidence/blob/main/docs/api.md#unauthorized","title":"t","status":401,"detail":"unknown token","errors":[{"field":"f","detail":"d"}]}`)
	for _, tc := range []struct {
		ct, body string
		detail   string // "" = not a problem
	}{
		{"application/problem+json", string(body), "unknown token"},
		{"application/problem+json; charset=utf-8", string(body), "unknown token"},
		{"application/json", `{"detail":"from a proxy"}`, "from a proxy"},
		{"text/plain; charset=utf-8", string(body), ""},
		{"application/problem+json", `{"error":"old style"}`, ""},
		{"application/problem+json", `not json`, ""},
		{"", string(body), ""},
	} {
		p := problem.Parse(tc.ct, []byte(tc.body))
		switch {
		case tc.detail == "" && p != nil:
			t.Errorf("%q %s: parsed as %+v, want not a problem", tc.ct, tc.body, p)
		case tc.detail != "" && (p == nil || p.Detail != tc.detail):
			t.Errorf("%q %s: %+v, want detail %q", tc.ct, tc.body, p, tc.detail)
		}
	}
	p := problem.Parse("application/problem+json", body)
	if !p.Is(problem.Unauthorized) || p.Is(problem.Forbidden) {
		t.Errorf("Is: %+v", p)
	}
	if got, want := p.Message(), "unknown token\n  f: d"; got != want {
		t.Errorf("Message %q, want %q", got, want)
	}
}

// TestTypesAreDocumented: every type's URI points at a heading of
// docs/api.md, the slugs are unique, and each status is an error status.
func TestTypesAreDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, ty := range problem.Types {
		if seen[ty.Slug] {
			t.Errorf("slug %q twice", ty.Slug)
		}
		seen[ty.Slug] = true
		if !strings.Contains(string(doc), "\n### `"+ty.Slug+"`\n") {
			t.Errorf("docs/api.md has no heading ### `%s` (the anchor of %s)", ty.Slug, ty.URI())
		} else if !strings.Contains(string(doc), "\n### `"+ty.Slug+"`\n"+strconv.Itoa(ty.Status)+":") {
			t.Errorf("docs/api.md's section %s does not start with its status %d", ty.Slug, ty.Status)
		}
		if ty.Status < 400 || ty.Title == "" {
			t.Errorf("%s: status %d, title %q", ty.Slug, ty.Status, ty.Title)
		}
	}
}
