package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/live"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/schemas"

	"github.com/evidencepipeline/evidence/internal/version"
)

// wholeServer is the API as evidenced builds it: the receiver on a real
// JetStream, the change records, and the live page mounted on it.
type wholeServer struct {
	srv  *httptest.Server
	port string
	js   *testenv.JetStream
}

func newWholeServer(t *testing.T, tokens *auth.Tokens) *wholeServer {
	t.Helper()
	js := testenv.NATS(t)
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Config{Publisher: bus.NewPublisher(js.JS), Catalog: cat, Tokens: tokens,
		Changes: correlate.StateReader{State: scenarioState(t, "squash_merge", 0)}})
	lv, err := live.New(live.Config{NATS: js.Conn, Tokens: tokens, Heartbeat: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range lv.Patterns() {
		s.Handle(p, auth.None, lv)
	}
	srv := apitest.NewServer(t, s)
	t.Cleanup(func() { lv.Close(); srv.Close() })
	u, _ := url.Parse(srv.URL)
	return &wholeServer{srv: srv, port: u.Port(), js: js}
}

// request is one request to send with a given Host header.
type request struct {
	method, path, body string
	header             http.Header
}

var (
	postEvent  = request{method: "POST", path: "/v1/events", body: structured("host-1", runData("c0ffee1234567890abcdef1234567890abcdef12")), header: ct(api.MediaStructured)}
	listChange = request{method: "GET", path: "/v1/changes?repo=github.com/acme/payments&commit=c0ffee1"}
	livePage   = request{method: "GET", path: "/live/"}
	liveStream = request{method: "GET", path: "/live/events"}
	healthz    = request{method: "GET", path: "/healthz"}
	// servedAll are those requests with the status they get when served.
	servedAll = []struct {
		rq   request
		want int
	}{{postEvent, 202}, {listChange, 200}, {livePage, 200}, {liveStream, 200}, {healthz, 200}}
)

// send sends rq with Host host (the connection goes to the test server) and
// returns the answer; the body of a stream is not read.
func (ws *wholeServer) send(t *testing.T, host string, rq request, token string) answer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, rq.method, ws.srv.URL+rq.path, strings.NewReader(rq.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range rq.header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/event-stream" {
		return answer{resp.StatusCode, nil, resp.Header}
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, b, resp.Header}
}

// TestHostCheckOpenMode: without tokens, a request addressed to a name
// that is not loopback (what a DNS-rebinding page sends) is refused with
// 421 on every route, the receiver's, the change records' and the live
// page's, and stores nothing; loopback names and addresses are served.
func TestHostCheckOpenMode(t *testing.T) {
	ws := newWholeServer(t, nil)
	for _, host := range []string{"evil.example", "evil.example:" + ws.port, "127.0.0.1.nip.io:" + ws.port,
		"localhost.evil.example", "evillocalhost:" + ws.port, "127.1:" + ws.port, "0.0.0.0:" + ws.port, "[::ffff:10.0.0.1]:" + ws.port, "[::2]:" + ws.port} {
		for _, rq := range []request{postEvent, listChange, livePage, liveStream, healthz} {
			a := ws.send(t, host, rq, "")
			if a.code != http.StatusMisdirectedRequest {
				t.Errorf("Host %q: %s %s answered %d, want 421", host, rq.method, rq.path, a.code)
				continue
			}
			msg := errorOf(t, a)
			for _, want := range []string{`"` + host + `"`, "DNS rebinding", "--tokens-file", "http://" + ws.srv.Listener.Addr().String() + "/"} {
				if !strings.Contains(msg, want) {
					t.Errorf("Host %q: %s %s: the refusal %q does not say %q", host, rq.method, rq.path, msg, want)
				}
			}
		}
	}
	if n := streamCount(t, ws.js); n != 0 {
		t.Fatalf("%d events stored from refused requests", n)
	}

	for _, host := range []string{"127.0.0.1:" + ws.port, "localhost:" + ws.port, "LocalHost:" + ws.port, "localhost",
		"evidence.localhost:" + ws.port, "127.0.0.2:" + ws.port, "127.0.0.1", "[::1]:" + ws.port, "[::1]", "[::ffff:127.0.0.1]:" + ws.port} {
		for _, x := range servedAll {
			if a := ws.send(t, host, x.rq, ""); a.code != x.want {
				rq, want := x.rq, x.want
				t.Errorf("Host %q: %s %s answered %d %.300s, want %d", host, rq.method, rq.path, a.code, a.body, want)
			}
		}
	}
	if n := streamCount(t, ws.js); n != 1 {
		t.Fatalf("%d events stored, want the one event (sent under every loopback name, stored once)", n)
	}

	// Without tokens evidenced listens only where config.Validate allows
	// (a loopback host), and that address is always served as Host.
	for _, host := range []string{"localhost", "127.0.0.1", "127.8.9.10", "::1"} {
		if !config.IsLoopback(host) {
			t.Fatalf("config does not take %s as loopback", host)
		}
		if a := ws.send(t, net.JoinHostPort(host, ws.port), healthz, ""); a.code != 200 {
			t.Errorf("--http-addr %s: Host %s refused: %d %s", host, net.JoinHostPort(host, ws.port), a.code, a.body)
		}
	}
}

// A request without a Host header (HTTP/1.0) is refused in open mode.
func TestHostCheckNoHost(t *testing.T) {
	ws := newWholeServer(t, nil)
	c, err := net.Dial("tcp", ws.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /healthz HTTP/1.0\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(string(b), "no Host header") {
		t.Errorf("no Host: %d %s, want 421 saying there is no Host header", resp.StatusCode, b)
	}
}

// With tokens the Host is not checked: a token opens the API under any
// name (a DNS-rebinding page has none to send), and no token is refused
// for that reason, not for the Host.
func TestHostCheckWithTokens(t *testing.T) {
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("admin %s ops\n", auth.Hash("tok-admin"))))
	if err != nil {
		t.Fatal(err)
	}
	ws := newWholeServer(t, tokens)
	for _, host := range []string{"evil.example", "evidence.example.com:443", "127.0.0.1:" + ws.port} {
		for _, x := range servedAll {
			if a := ws.send(t, host, x.rq, "tok-admin"); a.code != x.want {
				rq, want := x.rq, x.want
				t.Errorf("Host %q with a token: %s %s answered %d %.300s, want %d", host, rq.method, rq.path, a.code, a.body, want)
			}
		}
		if a := ws.send(t, host, postEvent, ""); a.code != http.StatusUnauthorized {
			t.Errorf("Host %q without a token: %d, want 401", host, a.code)
		}
	}
}

func streamCount(t *testing.T, js *testenv.JetStream) uint64 {
	t.Helper()
	s, err := js.JS.Stream(context.Background(), bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// readyServer serves /readyz with a required check that fails while
// natsDown is set and an informative one that always fails with an error
// naming an address.
func readyServer(t *testing.T, tokens *auth.Tokens, natsDown *atomic.Bool) *httptest.Server {
	t.Helper()
	s := api.New(api.Config{
		Tokens: tokens,
		Required: map[string]api.Check{"nats": func(context.Context) error {
			if natsDown.Load() {
				return errors.New("connection RECONNECTING")
			}
			return nil
		}},
		Informative: map[string]api.Check{"clickhouse": func(context.Context) error {
			return errors.New("dial tcp 10.1.2.3:9000: connect: connection refused")
		}},
	})
	srv := apitest.NewServer(t, s)
	t.Cleanup(srv.Close)
	return srv
}

func readyBody(t *testing.T, a answer) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(a.body, &m); err != nil {
		t.Fatalf("/readyz answer is not a JSON object: %s", a.body)
	}
	return m
}

// TestReadyzDetails: anonymous callers (and bad tokens, and roles other
// than admin) get the status and each check's "ok" or "unavailable", never
// the error (it names addresses); admin gets the errors; open mode shows
// them to anyone (everyone has every role). The status codes do not depend
// on who asks, and /healthz stays 200 while NATS is down.
func TestReadyzDetails(t *testing.T) {
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("auditor %s audit\nadmin %s ops\n", auth.Hash("tok-auditor"), auth.Hash("tok-admin"))))
	if err != nil {
		t.Fatal(err)
	}
	var natsDown atomic.Bool
	withTokens, open := readyServer(t, tokens, &natsDown), readyServer(t, nil, &natsDown)
	for _, down := range []bool{false, true} {
		natsDown.Store(down)
		wantCode, wantStatus, wantNATS := 200, "ready", "ok"
		if down {
			wantCode, wantStatus, wantNATS = 503, "not ready", "unavailable"
		}
		for _, tc := range []struct {
			name    string
			srv     *httptest.Server
			token   string
			details bool
		}{
			{"anonymous", withTokens, "", false},
			{"unknown token", withTokens, "nope", false},
			{"auditor", withTokens, "tok-auditor", false},
			{"admin", withTokens, "tok-admin", true},
			{"open mode", open, "", true},
		} {
			a := get(t, tc.srv, "/readyz", tc.token)
			m := readyBody(t, a)
			what := fmt.Sprintf("nats down=%v, %s", down, tc.name)
			if a.code != wantCode || m["status"] != wantStatus {
				t.Errorf("%s: %d %s, want %d %q", what, a.code, a.body, wantCode, wantStatus)
			}
			nats, _ := m["nats"].(string)
			ch, _ := m["clickhouse"].(string)
			if tc.details {
				if want := "unavailable: dial tcp 10.1.2.3:9000"; !strings.HasPrefix(ch, want) {
					t.Errorf("%s: clickhouse %q, want the error (%q...)", what, ch, want)
				}
				if down && nats != "unavailable: connection RECONNECTING" {
					t.Errorf("%s: nats %q, want the error", what, nats)
				}
			} else {
				if ch != "unavailable" || strings.Contains(string(a.body), "10.1.2.3") || strings.Contains(string(a.body), "RECONNECTING") {
					t.Errorf("%s: %s, want each check ok or unavailable without its error", what, a.body)
				}
				if nats != wantNATS {
					t.Errorf("%s: nats %q, want %q", what, nats, wantNATS)
				}
			}
			failing, hasFailing := m["failing"].([]any)
			if down && (len(failing) != 1 || failing[0] != "nats") {
				t.Errorf("%s: failing %v, want [nats] (the required check; clickhouse is informative)", what, m["failing"])
			}
			if !down && hasFailing {
				t.Errorf("%s: failing %v while ready", what, failing)
			}
		}
		wantHealth := `{"status":"ok","version":"` + version.Get().Version + `"}` + "\n"
		if a := get(t, withTokens, "/healthz", ""); a.code != 200 || string(a.body) != wantHealth {
			t.Errorf("/healthz with nats down=%v: %d %s, want 200 %s", down, a.code, a.body, wantHealth)
		}
	}
}

// TestAPISecurityHeaders: every answer of the JSON API, whatever its
// status and route (an error, a refusal, a 404 of the mux, metrics), is
// not sniffed, not cached and not framed.
func TestAPISecurityHeaders(t *testing.T) {
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("producer %s ci\nadmin %s ops\n", auth.Hash("tok-producer"), auth.Hash("tok-admin"))))
	if err != nil {
		t.Fatal(err)
	}
	withTokens, open := newWholeServer(t, tokens), newWholeServer(t, nil)
	want := map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
		"Referrer-Policy":         "no-referrer",
	}
	seen := map[int]bool{}
	for _, tc := range []struct {
		ws    *wholeServer
		host  string
		rq    request
		token string
	}{
		{withTokens, "", postEvent, "tok-producer"},
		{withTokens, "", postEvent, ""},
		{withTokens, "", listChange, "tok-producer"},
		{withTokens, "", listChange, "tok-admin"},
		{withTokens, "", request{method: "POST", path: "/v1/events", body: "[", header: ct(api.MediaBatch)}, "tok-producer"},
		{withTokens, "", request{method: "POST", path: "/v1/events", body: "x", header: ct("text/plain")}, "tok-producer"},
		{withTokens, "", request{method: "GET", path: "/v1/changes/nope"}, "tok-admin"},
		{withTokens, "", request{method: "GET", path: "/v1/gate"}, "tok-admin"},
		{withTokens, "", request{method: "DELETE", path: "/healthz"}, ""},
		{withTokens, "", healthz, ""},
		{withTokens, "", request{method: "GET", path: "/readyz"}, ""},
		{withTokens, "", request{method: "GET", path: "/metrics"}, ""},
		{open, "evil.example", postEvent, ""},
		{open, "", listChange, ""},
	} {
		host := tc.host
		if host == "" {
			host = tc.ws.srv.Listener.Addr().String()
		}
		a := tc.ws.send(t, host, tc.rq, tc.token)
		seen[a.code] = true
		for k, v := range want {
			if got := a.h.Get(k); got != v {
				t.Errorf("%s %s (Host %s, token %q): %d with %s %q, want %q", tc.rq.method, tc.rq.path, host, tc.token, a.code, k, got, v)
			}
		}
	}
	for _, code := range []int{200, 202, 400, 401, 403, 404, 405, 415, 421} {
		if !seen[code] {
			t.Errorf("no answer of status %d was checked (seen %v)", code, seen)
		}
	}
}
