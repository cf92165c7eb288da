// Package evidenced starts a real evidenced in-process for tests: on a free
// loopback port, with an embedded NATS in a temporary directory, stopped at
// the test's end. It is apart from testenv because it imports the daemon,
// which imports packages whose own tests use testenv.
package evidenced

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
)

// Start runs evidenced with --http-addr 127.0.0.1:0, a fresh --data-dir
// and the given ClickHouse database, then args (which may override
// them), and returns it once it serves HTTP.
func Start(t testing.TB, clickhouseURL string, args ...string) *daemon.Daemon {
	t.Helper()
	all := append([]string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--clickhouse-url", clickhouseURL}, args...)
	cfg, _, err := config.Parse("evidenced", all, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), cfg, nil, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	return d
}
