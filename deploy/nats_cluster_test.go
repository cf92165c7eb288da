package deploy_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/chlocal"
)

// TestNATSClusterConfig loads deploy/nats/nats-cluster.conf with the
// nats-server parser (passwords and names from the environment), checks
// the cluster and the users, then starts three nodes from it on loopback
// (routes, ports and stores moved) and checks what each user may do: the
// evidenced user places the streams on three replicas; the producer's
// event is acknowledged, its checkpoint and its deletion of a stream are
// refused; a wrong password is refused.
func TestNATSClusterConfig(t *testing.T) {
	pw := map[string]string{"evidenced": "e-0123456789abcdef", "producer": "p-0123456789abcdef", "auditor": "a-0123456789abcdef"}
	t.Setenv("EVIDENCED_NATS_PASSWORD", pw["evidenced"])
	t.Setenv("PRODUCER_NATS_PASSWORD", pw["producer"])
	t.Setenv("AUDITOR_NATS_PASSWORD", pw["auditor"])
	load := func(name string) *server.Options {
		t.Helper()
		t.Setenv("NATS_SERVER_NAME", name)
		opts, err := server.ProcessConfigFile(filepath.Join(repoRoot(t), "deploy", "nats", "nats-cluster.conf"))
		if err != nil {
			t.Fatalf("nats-cluster.conf: %v", err)
		}
		return opts
	}
	opts := load("evidence-nats-0")
	if opts.ServerName != "evidence-nats-0" || opts.Cluster.Name != "evidence" || len(opts.Routes) != 3 || !opts.JetStream {
		t.Fatalf("server %q, cluster %q, %d routes, jetstream %v", opts.ServerName, opts.Cluster.Name, len(opts.Routes), opts.JetStream)
	}
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	if p := users["producer"]; p == nil || p.Permissions == nil || !slices.Equal(p.Permissions.Publish.Allow, []string{bus.EventSubjects}) {
		t.Fatalf("producer user %+v: want publish allowed on %s only (as the embedded NATS's)", p, bus.EventSubjects)
	}

	// Three nodes from the file, on loopback.
	ports := make([]int, 3)
	routes := make([]string, 3)
	for i := range ports {
		p, err := chlocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i], routes[i] = p, "nats-route://127.0.0.1:"+strconv.Itoa(p)
	}
	var urls []string
	for i := 0; i < 3; i++ {
		o := load(fmt.Sprintf("evidence-nats-%d", i))
		o.Host, o.Port, o.HTTPPort = "127.0.0.1", server.RANDOM_PORT, 0
		o.Cluster.Host, o.Cluster.Port = "127.0.0.1", ports[i]
		o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		o.StoreDir = t.TempDir()
		o.NoSigs = true
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(30 * time.Second) {
			t.Fatalf("node %d not ready", i)
		}
		urls = append(urls, s.ClientURL())
	}
	url := strings.Join(urls, ",")
	ctx := context.Background()
	connect := func(user string, extra ...nats.Option) (jetstream.JetStream, error) {
		nc, err := nats.Connect(url, append([]nats.Option{nats.UserInfo(user, pw[user]), nats.NoReconnect(),
			nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})}, extra...)...)
		if err != nil {
			return nil, err
		}
		t.Cleanup(nc.Close)
		return jetstream.New(nc)
	}
	ev, err := connect("evidenced")
	if err != nil {
		t.Fatal(err)
	}
	js := bus.NeverWeaken(ev, bus.Replication{Streams: 3, KV: 3})
	deadline := time.Now().Add(60 * time.Second)
	for {
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err = bus.EnsureStreams(cctx, js, bus.StreamConfig{Duplicates: time.Minute})
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("streams at 3 replicas on the cluster: %v", err)
		}
		time.Sleep(200 * time.Millisecond) // the cluster elects its meta leader; nothing to wait on from a client
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "EVIDENCE_CHECKPOINTS", Subjects: []string{"evidence.checkpoints"}}); err != nil {
		t.Fatal(err)
	}

	prod, err := connect("producer")
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := prod.Publish(pctx, bus.Subject("com.example.test"), []byte(`{}`)); err != nil {
		t.Errorf("producer publishing an event: %v", err)
	}
	for what, op := range map[string]func(context.Context) error{
		"publish a checkpoint": func(ctx context.Context) error {
			_, err := prod.Publish(ctx, "evidence.checkpoints", []byte(`{}`))
			return err
		},
		"delete the event stream": func(ctx context.Context) error { return prod.DeleteStream(ctx, bus.EventStream) },
	} {
		octx, ocancel := context.WithTimeout(ctx, time.Second)
		if err := op(octx); err == nil {
			t.Errorf("producer could %s", what)
		}
		ocancel()
	}
	if s, err := ev.Stream(ctx, bus.EventStream); err != nil || s.CachedInfo().Config.Replicas != 3 {
		t.Fatalf("event stream after the producer's attempts: %v", err)
	}
	pw["producer"] += "x"
	if _, err := connect("producer"); err == nil {
		t.Error("a wrong password connected")
	}
}
