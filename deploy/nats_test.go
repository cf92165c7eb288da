package deploy_test

import (
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSConfig loads deploy/nats/nats.conf with the nats-server parser and
// starts a real server from it (store moved to a temp dir, random ports),
// then asks its monitoring endpoint the question the compose healthcheck
// asks.
func TestNATSConfig(t *testing.T) {
	opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy", "nats", "nats.conf"))
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if !opts.JetStream {
		t.Error("JetStream is not enabled")
	}
	if opts.StoreDir == "" {
		t.Error("jetstream store_dir is not set: the default is a temp dir, lost on restart")
	}
	if opts.JetStreamMaxMemory <= 0 || opts.JetStreamMaxStore <= 0 {
		t.Errorf("max_memory_store = %d, max_file_store = %d: set both limits", opts.JetStreamMaxMemory, opts.JetStreamMaxStore)
	}
	if opts.Port != 4222 || opts.HTTPPort != 8222 {
		t.Errorf("ports client/monitor = %d/%d, want 4222/8222 as in docker-compose.yml", opts.Port, opts.HTTPPort)
	}

	opts.StoreDir = t.TempDir()
	opts.Port = server.RANDOM_PORT
	opts.HTTPPort = server.RANDOM_PORT
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	if !s.JetStreamEnabled() {
		t.Fatal("JetStream not enabled on the running server")
	}

	// The compose healthcheck URL, pointed at this server's monitor port.
	nats := service(t, loadProject(t), "nats")
	var check string
	for _, arg := range nats.HealthCheck.Test {
		if strings.HasPrefix(arg, "http://") {
			check = arg
		}
	}
	u, err := url.Parse(check)
	if err != nil || u.Host != "localhost:8222" || u.Path != "/healthz" {
		t.Fatalf("nats healthcheck URL %q, want http://localhost:8222/healthz?...", check)
	}
	u.Host = s.MonitorAddr().String()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(u.String())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s", u, resp.Status)
	}
}
