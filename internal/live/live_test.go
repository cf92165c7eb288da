package live_test

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/live"
	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func do(t *testing.T, method, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestAccess: with a tokens file the page needs the auditor role; ?token=
// opens a session (an HttpOnly, SameSite=Strict cookie holding a random id,
// not the token) and redirects to drop the token from the address; the
// cookie or the header then open every route.
func TestAccess(t *testing.T) {
	e := startEvidenced(t)
	resp, body := do(t, "GET", e.base+"/live/", nil)
	if resp.StatusCode != 401 || !strings.Contains(body, "?token=") {
		t.Errorf("no token: %d %q, want 401 saying how to log in", resp.StatusCode, body)
	}
	// The JSON API answers a problem document, not the page.
	for _, tc := range []struct {
		h    http.Header
		code int
		slug string
	}{
		{nil, 401, "unauthorized"},
		{http.Header{"Authorization": {"Bearer " + e.producer}}, 403, "forbidden"},
	} {
		resp, body = do(t, "GET", e.base+"/live/api/posture", tc.h)
		var p problem.Problem
		if err := json.Unmarshal([]byte(body), &p); err != nil || resp.StatusCode != tc.code || p.Status != tc.code ||
			resp.Header.Get("Content-Type") != problem.MediaType || p.Type != problem.TypeBase+tc.slug || p.Detail == "" {
			t.Errorf("JSON API, %v: %d %s %q, want a %d %s problem", tc.h, resp.StatusCode, resp.Header.Get("Content-Type"), body, tc.code, tc.slug)
		}
	}
	resp, body = do(t, "GET", e.base+"/live/?token="+e.producer, nil)
	if resp.StatusCode != 403 || !strings.Contains(body, "role producer") || !strings.Contains(body, "auditor") {
		t.Errorf("producer token: %d %q, want 403 naming the roles", resp.StatusCode, body)
	}
	resp, _ = do(t, "GET", e.base+"/live/?token=nope", nil)
	if resp.StatusCode != 401 || len(resp.Cookies()) != 0 {
		t.Errorf("unknown token: %d, cookies %v; want 401 and no cookie", resp.StatusCode, resp.Cookies())
	}
	resp, _ = do(t, "GET", e.base+"/?token="+e.auditor, nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/live/?token="+e.auditor {
		t.Fatalf("/: %d to %q, want 302 to /live/ with the query", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = do(t, "GET", e.base+"/live/changes?q=pay&token="+e.auditor, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/live/changes?q=pay" {
		t.Errorf("?token=: %d to %q, want 303 to the same page without the token", resp.StatusCode, resp.Header.Get("Location"))
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == live.CookieName {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" || cookie.MaxAge != int(live.SessionLifetime/time.Second) {
		t.Fatalf("cookie %+v, want HttpOnly, SameSite=Strict, Path=/, Max-Age of a session", cookie)
	}
	// The cookie is a session id, not the token: it opens the page, not
	// the API, and a made-up one opens nothing.
	if strings.Contains(cookie.Value, e.auditor) {
		t.Errorf("the cookie holds the token: %q", cookie.Value)
	}
	if resp, _ := do(t, "GET", e.base+"/v1/changes?repo=x&commit=0000000", http.Header{"Authorization": {"Bearer " + cookie.Value}}); resp.StatusCode != 401 {
		t.Errorf("the session id as an API token: %d, want 401", resp.StatusCode)
	}
	if resp, _ := do(t, "GET", e.base+"/live/", http.Header{"Cookie": {cookie.Name + "=" + e.auditor}}); resp.StatusCode != 401 {
		t.Errorf("a cookie that is not a session (the token itself): %d, want 401", resp.StatusCode)
	}
	withCookie := http.Header{"Cookie": {cookie.Name + "=" + cookie.Value}}
	for _, path := range []string{"/live/", "/live/changes?q=x", "/live/posture", "/live/api/posture"} {
		// The posture JSON is 503 while ClickHouse is not connected yet.
		if resp, body := do(t, "GET", e.base+path, withCookie); resp.StatusCode != 200 && !(resp.StatusCode == 503 && strings.Contains(body, "ClickHouse")) {
			t.Errorf("%s with the cookie: %d %.200s", path, resp.StatusCode, body)
		}
	}
	if resp, _ := do(t, "GET", e.base+"/live/changes", http.Header{"Authorization": {"Bearer " + e.auditor}}); resp.StatusCode != 200 {
		t.Errorf("with the header: %d", resp.StatusCode)
	}
	resp, body = do(t, "GET", e.base+"/live/static/live.js", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "EventSource") {
		t.Errorf("the page's script needs no token: %d", resp.StatusCode)
	}
	resp, body = do(t, "GET", e.base+"/live/changes/demo.evidence.invalid/acme/none@0000000000000000000000000000000000000000", withCookie)
	if resp.StatusCode != 404 || !strings.Contains(body, "no change record") {
		t.Errorf("unknown change: %d", resp.StatusCode)
	}
}

// sse reads server-sent events: each event's fields, and comments.
type sse struct {
	sc       *bufio.Scanner
	resp     *http.Response
	comments []string
}

func openStream(t testing.TB, url string, h http.Header) *sse {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{sc: bufio.NewScanner(resp.Body), resp: resp}
}

// next returns the next event's fields (id, event, data).
func (s *sse) next(t *testing.T) map[string]string {
	t.Helper()
	if ev := s.nextOrEnd(); ev != nil {
		return ev
	}
	t.Fatalf("stream ended: %v", s.sc.Err())
	return nil
}

// nextOrEnd is next, nil when the stream ends.
func (s *sse) nextOrEnd() map[string]string {
	ev := map[string]string{}
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if len(ev) > 0 && ev["event"] != "" {
				return ev
			}
			ev = map[string]string{}
		case strings.HasPrefix(line, ":"):
			s.comments = append(s.comments, line)
		default:
			k, v, _ := strings.Cut(line, ": ")
			ev[k] = v
		}
	}
	return nil
}

func publish(t *testing.T, nc interface {
	Publish(string, []byte) error
	Flush() error
}, v any) {
	t.Helper()
	b, ok := v.([]byte)
	if !ok {
		b, _ = json.Marshal(v)
	}
	if err := nc.Publish(evaluate.LiveSubject, b); err != nil {
		t.Fatal(err)
	}
	_ = nc.Flush()
}

// TestStream: verdicts published on the subject reach an open stream as
// "verdict" events with increasing ids and the verdict's JSON, with
// heartbeat comments between; a message that is not a verdict is skipped;
// a client reconnecting with Last-Event-ID gets what it missed. ClickHouse
// is not connected at all: the page says so and the stream works.
func TestStream(t *testing.T) {
	js := testenv.NATS(t)
	h, err := live.New(live.Config{Store: func() *store.Store { return nil }, NATS: js.Conn, Heartbeat: 30 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := apitest.NewServer(t, h) // its answers checked against the API's description
	defer srv.Close()

	resp, body := do(t, "GET", srv.URL+"/live/", nil)
	if resp.StatusCode != 200 || !strings.Contains(body, "ClickHouse is unavailable") || !strings.Contains(body, `id="stream"`) {
		t.Errorf("page without ClickHouse: %d, want it to say ClickHouse is unavailable and keep the stream:\n%.600s", resp.StatusCode, body)
	}
	resp, body = do(t, "GET", srv.URL+"/live/api/posture", nil)
	var p live.Posture
	_ = json.Unmarshal([]byte(body), &p)
	if resp.StatusCode != 503 || p.Available || !strings.Contains(p.Error, "ClickHouse") {
		t.Errorf("posture JSON without ClickHouse: %d %+v", resp.StatusCode, p)
	}

	s := openStream(t, srv.URL+"/live/events", nil)
	v1 := evaluate.Verdict{Change: "demo.evidence.invalid/acme/payments@aa", Repository: "demo.evidence.invalid/acme/payments",
		Status: evaluate.Fail, Changed: []string{"CM-4"}, Environments: []string{"production"}, Services: []string{"payments"}, EvaluatedAt: time.Now().UTC()}
	publish(t, js.Conn, []byte("not a verdict"))
	publish(t, js.Conn, v1)
	ev := s.next(t)
	var got evaluate.Verdict
	if ev["id"] != "1" || ev["event"] != "verdict" || json.Unmarshal([]byte(ev["data"]), &got) != nil || got.Change != v1.Change || got.Status != evaluate.Fail {
		t.Fatalf("first event %v, want id 1, a verdict of %s", ev, v1.Change)
	}
	v2 := v1
	v2.Change, v2.Status = "demo.evidence.invalid/acme/payments@bb", evaluate.Pass
	publish(t, js.Conn, v2)
	if ev := s.next(t); ev["id"] != "2" || !strings.Contains(ev["data"], "@bb") {
		t.Errorf("second event %v, want id 2 of @bb", ev)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.comments) < 2 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond) // heartbeats every 30ms meanwhile
		publish(t, js.Conn, v2)
		s.next(t)
	}
	heartbeats := 0
	for _, c := range s.comments {
		if strings.HasPrefix(c, ": heartbeat") {
			heartbeats++
		}
	}
	if heartbeats == 0 {
		t.Errorf("no heartbeat comment among %v", s.comments)
	}

	// Reconnect after id 1: the missed verdicts first.
	r := openStream(t, srv.URL+"/live/events", http.Header{"Last-Event-Id": {"1"}})
	if ev := r.next(t); ev["id"] != "2" || !strings.Contains(ev["data"], "@bb") {
		t.Errorf("after reconnecting from id 1: %v, want id 2", ev)
	}

	// Closing the handler (evidenced shutting down) ends open streams.
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, s.resp.Body)
		close(done)
	}()
	h.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Error("the stream stayed open after Close")
	}
}
