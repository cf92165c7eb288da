package ciintegration

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestVersion links both binaries as a release does (-ldflags -X, as
// .goreleaser.yaml) and checks that the version reaches `--version` of
// each, evidenced's /healthz and its evidence_build_info metric.
func TestVersion(t *testing.T) {
	const v, c = "9.8.7-test", "0123456789abcdef0123456789abcdef01234567"
	dir := t.TempDir()
	ld := "-X github.com/evidencepipeline/evidence/internal/version.Version=v" + v +
		" -X github.com/evidencepipeline/evidence/internal/version.Commit=" + c
	build := exec.Command("go", "build", "-ldflags", ld, "-o", dir+"/", "./cmd/evidence", "./cmd/evidenced")
	build.Dir = root(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, name := range []string{"evidence", "evidenced"} {
		out, err := exec.Command(filepath.Join(dir, name), "--version").CombinedOutput()
		want := fmt.Sprintf("%s %s (commit 0123456789ab, %s)\n", name, v, runtime.Version())
		if err != nil || string(out) != want {
			t.Errorf("%s --version: %v %q, want %q", name, err, out, want)
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	d := exec.Command(filepath.Join(dir, "evidenced"), "--http-addr", addr, "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--clickhouse-url", testenv.DatabaseURL(t))
	d.Stderr = io.Discard
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Process.Kill(); d.Wait() })
	var health struct{ Status, Version string }
	testenv.Eventually(t, 60*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		return json.NewDecoder(resp.Body).Decode(&health)
	})
	if health.Status != "ok" || health.Version != v {
		t.Errorf("/healthz %+v, want version %s", health, v)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := fmt.Sprintf(`evidence_build_info{goversion=%q,revision=%q,version=%q} 1`, runtime.Version(), c, v)
	if !strings.Contains(string(body), want) {
		t.Errorf("/metrics lacks %s:\n%s", want, grepLines(string(body), "build_info"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
