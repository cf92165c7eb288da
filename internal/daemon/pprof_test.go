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
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
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
	return resp.StatusCode, b
}

// TestPprofLoopback: --pprof-addr on loopback serves the index and a
// profile, on a listener that is not the API's.
func TestPprofLoopback(t *testing.T) {
	d := startDaemon(t, t.TempDir(), testenv.DatabaseURL(t), "--pprof-addr", "127.0.0.1:0")
	if d.PprofAddr() == "" || d.PprofAddr() == d.Addr() {
		t.Fatalf("pprof addr %q, API %q", d.PprofAddr(), d.Addr())
	}
	code, b := get(t, "http://"+d.PprofAddr()+"/debug/pprof/", "")
	if code != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("index: %d %.200s", code, b)
	}
	code, b = get(t, "http://"+d.PprofAddr()+"/debug/pprof/heap", "")
	// A profile is gzipped protobuf.
	if code != 200 || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
		t.Fatalf("heap profile: %d %q", code, b[:min(len(b), 40)])
	}
	// Not on the API's listener.
	if code, _ := get(t, "http://"+d.Addr()+"/debug/pprof/", ""); code == 200 {
		t.Fatal("the API serves pprof")
	}
}

// TestPprofOffByDefault: without the flag, nothing listens.
func TestPprofOffByDefault(t *testing.T) {
	d := startDaemon(t, t.TempDir(), testenv.DatabaseURL(t))
	if d.PprofAddr() != "" {
		t.Fatalf("pprof on by default at %s", d.PprofAddr())
	}
}

// TestPprofNonLoopbackNeedsTokens: a non-loopback --pprof-addr without a
// tokens file stops evidenced at start, naming the flag.
func TestPprofNonLoopbackNeedsTokens(t *testing.T) {
	_, _, err := config.Parse("evidenced", []string{"--data-dir", t.TempDir(), "--pprof-addr", "0.0.0.0:6060"}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "--pprof-addr (EVIDENCE_PPROF_ADDR)") || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("want a refusal naming --pprof-addr, got %v", err)
	}
}

// TestPprofTokens: with a tokens file the profiles need an admin token:
// none is 401, another role 403, admin 200.
func TestPprofTokens(t *testing.T) {
	dir := t.TempDir()
	tf := filepath.Join(dir, "tokens")
	lines := "admin " + auth.Hash("adm-secret") + " ops\nproducer " + auth.Hash("prod-secret") + " ci\n"
	if err := os.WriteFile(tf, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, filepath.Join(dir, "data"), testenv.DatabaseURL(t), "--tokens-file", tf, "--pprof-addr", "127.0.0.1:0")
	url := "http://" + d.PprofAddr() + "/debug/pprof/"
	if code, _ := get(t, url, ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := get(t, url, "wrong"); code != http.StatusUnauthorized {
		t.Fatalf("unknown token: %d, want 401", code)
	}
	if code, _ := get(t, url, "prod-secret"); code != http.StatusForbidden {
		t.Fatalf("producer token: %d, want 403", code)
	}
	if code, b := get(t, url, "adm-secret"); code != 200 || !strings.Contains(string(b), "goroutine") {
		t.Fatalf("admin token: %d %.200s", code, b)
	}
}
