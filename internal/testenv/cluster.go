package testenv

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/chlocal"
)

// Cluster is a JetStream cluster of nats-server nodes in this process,
// routed to each other on loopback.
type Cluster struct {
	Servers []*server.Server
	// URL lists every node's client URL, comma-separated (what nats.Connect
	// and --nats-url take).
	URL string
}

// NATSCluster starts an n-node JetStream cluster (nodes n1..nN, each with
// its own store in a temporary directory, client ports random, route ports
// free loopback ports) and returns once it can place a stream on n
// replicas. The nodes are shut down at the test's end.
func NATSCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ports := make([]int, n)
	routes := make([]string, n)
	for i := range ports {
		p, err := chlocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i], routes[i] = p, "nats-route://127.0.0.1:"+strconv.Itoa(p)
	}
	c := &Cluster{}
	dir := t.TempDir()
	for i := 0; i < n; i++ {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: filepath.Join(dir, fmt.Sprintf("n%d", i+1)),
			NoSigs: true, NoLog: true, MaxPayload: 32 << 20,
			Cluster: server.ClusterOpts{Name: "evidence", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		c.Servers = append(c.Servers, s)
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	urls := make([]string, n)
	for i, s := range c.Servers {
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("NATS node %d not ready", i+1)
		}
		urls[i] = s.ClientURL()
	}
	c.URL = strings.Join(urls, ",")
	nc, err := nats.Connect(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// Ready: a stream can be placed on every node.
	Eventually(t, 60*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "TESTENV_READY", Subjects: []string{"testenv.ready"}, Replicas: n}); err != nil {
			return fmt.Errorf("cluster not ready: %w", err)
		}
		return js.DeleteStream(ctx, "TESTENV_READY")
	})
	return c
}

// Node is the running node named name (n1..), or nil.
func (c *Cluster) Node(name string) *server.Server {
	for _, s := range c.Servers {
		if s.Name() == name {
			return s
		}
	}
	return nil
}
