package daemon_test

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPprofLoopback: --pprof-addr on loopback serves the profiler's index
// and a real profile, on its own listener (not on the API's).
func TestPprofLoopback(t *testing.T) {
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), testenv.DatabaseURL(t), "--pprof-addr", "127.0.0.1:0")
	if d.PprofAddr() == "" || d.PprofAddr() == d.Addr() {
		t.Fatalf("profiler at %q, API at %q: want a listener of its own", d.PprofAddr(), d.Addr())
	}
	code, body := get(t, "http://"+d.PprofAddr()+"/debug/pprof/", "")
	if code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Fatalf("index: %d %.200q", code, body)
	}
	code, body = get(t, "http://"+d.PprofAddr()+"/debug/pprof/goroutine?debug=1", "")
	if code != http.StatusOK || !strings.Contains(body, "goroutine profile: total") {
		t.Fatalf("goroutine profile: %d %.200q", code, body)
	}
	code, body = get(t, "http://"+d.PprofAddr()+"/debug/pprof/heap", "")
	if code != http.StatusOK || len(body) < 100 || body[0] != 0x1f { // gzipped protobuf
		t.Fatalf("heap profile: %d, %d bytes", code, len(body))
	}
	if code, _ := get(t, "http://"+d.Addr()+"/debug/pprof/", ""); code != http.StatusNotFound {
		t.Fatalf("the API serves the profiler too: %d", code)
	}
}

// TestPprofNeedsTokensOffLoopback: without a tokens file a non-loopback
// profiler address is refused at start, naming the flag; with one, the
// profiler asks for an admin token.
func TestPprofNeedsTokensOffLoopback(t *testing.T) {
	base := []string{"--http-addr", "127.0.0.1:0", "--data-dir", t.TempDir()}
	_, _, err := config.Parse("evidenced", append(base, "--pprof-addr", "0.0.0.0:6060"), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "--pprof-addr") || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("non-loopback profiler without tokens: %v, want a refusal naming --pprof-addr", err)
	}
	for _, bad := range []string{"6060", "127.0.0.1:x"} {
		if _, _, err := config.Parse("evidenced", append(base, "--pprof-addr", bad), func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "pprof-addr") {
			t.Errorf("--pprof-addr %q: %v, want an error naming it", bad, err)
		}
	}

	tokens := filepath.Join(t.TempDir(), "tokens")
	lines := "admin " + auth.Hash("admin-secret") + " ops\nauditor " + auth.Hash("auditor-secret") + " audit\n"
	if err := os.WriteFile(tokens, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), testenv.DatabaseURL(t), "--pprof-addr", "127.0.0.1:0", "--tokens-file", tokens)
	url := "http://" + d.PprofAddr() + "/debug/pprof/goroutine?debug=1"
	if code, body := get(t, url, ""); code != http.StatusUnauthorized || !strings.Contains(body, "bearer token") {
		t.Fatalf("no token: %d %q, want 401", code, body)
	}
	if code, _ := get(t, url, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d, want 401", code)
	}
	if code, body := get(t, url, "auditor-secret"); code != http.StatusForbidden || !strings.Contains(body, "role admin") ||
		!strings.Contains(body, `"type":"`+problem.Forbidden.URI()+`"`) {
		t.Fatalf("auditor token: %d %q, want a 403 forbidden problem naming the admin role", code, body)
	}
	if code, body := get(t, url, "admin-secret"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("admin token: %d %.200q", code, body)
	}
}
