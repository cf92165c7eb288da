package live_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/live"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// wantHeaders are the security headers of every answer of the live page.
var wantHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options":  "nosniff",
	"X-Frame-Options":         "DENY",
	"Referrer-Policy":         "no-referrer",
}

// liveRoutes are every route of the page (and a path under /live/ that is
// none), each with the class of answer it gets once access is granted.
var liveRoutes = []string{
	"/", "/live/", "/live/posture", "/live/api/posture", "/live/attention", "/live/api/attention", "/live/events", "/live/changes", "/live/changes?q=pay",
	"/live/changes/demo.evidence.invalid/acme/none@0000000000000000000000000000000000000000", "/live/nope",
	"/live/static/live.css", "/live/static/live.js", "/live/static/nope.css",
}

// authState is how a request presents itself, and what the page must make
// of it on a route that needs access: 401, 403, the login's 303, or served
// (0: any other status).
type authState struct {
	name   string
	header http.Header
	query  string // added to the route's query: token=...
	want   int
}

// TestSecurityHeadersEverywhere walks every route of the live page in every
// state of access (open; with tokens: no token, an unknown one in the
// header, in ?token= and as a cookie, a token of the wrong role in the
// header and in ?token=, the auditor's in the header, in ?token= and its
// session cookie) and requires the security headers on each answer, and
// Cache-Control: no-store on everything but the public static files (which
// are revalidated: no-cache). The statuses seen show that the walk went
// through every kind of answer: pages, redirects, the login's 303, the 401
// and 403 pages, 404s, the 503 of the posture without ClickHouse, the stream.
func TestSecurityHeadersEverywhere(t *testing.T) {
	js := testenv.NATS(t)
	auditor, producer := "tok-auditor", "tok-producer"
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("auditor %s audit\nproducer %s ci\n", auth.Hash(auditor), auth.Hash(producer))))
	if err != nil {
		t.Fatal(err)
	}
	serve := func(tokens *auth.Tokens) *httptest.Server {
		h, err := live.New(live.Config{NATS: js.Conn, Tokens: tokens, Heartbeat: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		t.Cleanup(func() { h.Close(); srv.Close() })
		return srv
	}
	open, closed := serve(nil), serve(tokens)

	// The auditor's session cookie, as a browser gets it.
	resp, _ := do(t, "GET", closed.URL+"/live/?token="+auditor, nil)
	var session string
	for _, c := range resp.Cookies() {
		if c.Name == live.CookieName {
			session = c.Name + "=" + c.Value
		}
	}
	if session == "" {
		t.Fatalf("?token= of the auditor: %d, no session cookie", resp.StatusCode)
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
	states := []struct {
		srv *httptest.Server
		authState
	}{
		{open, authState{name: "open mode"}},
		{closed, authState{name: "no token", want: 401}},
		{closed, authState{name: "unknown token in the header", header: bearer("nope"), want: 401}},
		{closed, authState{name: "unknown ?token=", query: "token=nope", want: 401}},
		{closed, authState{name: "unknown session cookie", header: http.Header{"Cookie": {live.CookieName + "=nope"}}, want: 401}},
		{closed, authState{name: "producer in the header", header: bearer(producer), want: 403}},
		{closed, authState{name: "producer ?token=", query: "token=" + producer, want: 403}},
		{closed, authState{name: "auditor in the header", header: bearer(auditor)}},
		{closed, authState{name: "auditor ?token=", query: "token=" + auditor, want: http.StatusSeeOther}},
		{closed, authState{name: "auditor's session cookie", header: http.Header{"Cookie": {session}}}},
	}
	seen := map[int]bool{}
	for _, st := range states {
		for _, route := range liveRoutes {
			path := route
			if st.query != "" {
				path += map[bool]string{true: "&", false: "?"}[strings.Contains(route, "?")] + st.query
			}
			code, h := headersOf(t, st.srv.URL+path, st.header)
			seen[code] = true
			what := fmt.Sprintf("%s, GET %s: %d", st.name, path, code)
			static := strings.HasPrefix(route, "/live/static/")
			switch guarded := route != "/" && !static; {
			case guarded && st.want != 0 && code != st.want:
				t.Errorf("%s, want %d", what, st.want)
			case guarded && st.want == 0 && (code == 401 || code == 403 || code == 303):
				t.Errorf("%s, want it served", what)
			}
			for k, v := range wantHeaders {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %s %q, want %q", what, k, got, v)
				}
			}
			wantCache := "no-store"
			if static {
				wantCache = "no-cache"
			}
			// A static file that does not exist: net/http drops
			// Cache-Control from its error (public path, no data).
			if static && code == 404 {
				continue
			}
			if got := h.Get("Cache-Control"); got != wantCache {
				t.Errorf("%s: Cache-Control %q, want %q", what, got, wantCache)
			}
		}
	}
	for _, code := range []int{200, 302, 303, 401, 403, 404, 503} {
		if !seen[code] {
			t.Errorf("no answer of status %d was walked (seen %v)", code, seen)
		}
	}
}

// headersOf GETs url without following redirects and returns the status
// and headers (a stream is closed once its headers are in).
func headersOf(t *testing.T, url string, h http.Header) (int, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		_, _ = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, resp.Header
}
