package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/zklocal"
)

// ZooKeeper starts a standalone ZooKeeper (Debian's zookeeper package) for
// this test on a free loopback port with a temporary data directory,
// stopped at the test's end. Missing, it fails the test in CI and skips it
// elsewhere.
func ZooKeeper(t testing.TB) *zklocal.Server {
	t.Helper()
	z, err := zklocal.New(t.TempDir(), 0)
	if err != nil {
		Unavailable(t, "ZooKeeper", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := z.Start(ctx); err != nil {
		t.Fatalf("start ZooKeeper: %v", err)
	}
	t.Cleanup(func() { _ = z.Stop() })
	return z
}

// CHCluster is a ClickHouse cluster of one shard: replicas coordinated by
// a ZooKeeper, on loopback.
type CHCluster struct {
	// Name is the cluster's name in remote_servers (ClusterName).
	Name      string
	ZooKeeper *zklocal.Server
	Replicas  []*chlocal.Server
}

// ClusterName is the name the test cluster has in remote_servers.
const ClusterName = "evidence"

// ClickHouseCluster starts ZooKeeper and n ClickHouse replicas of one
// shard (cluster ClusterName, shard 01, replicas r1..rn), each with its
// own directory and free ports, stopped at the test's end.
func ClickHouseCluster(t testing.TB, n int) *CHCluster {
	t.Helper()
	if _, err := chlocal.Binary(); err != nil {
		Unavailable(t, "ClickHouse", err)
	}
	zk := ZooKeeper(t)
	c := &CHCluster{Name: ClusterName, ZooKeeper: zk}
	ports := make([]int, n)
	addrs := make([]string, n)
	for i := range ports {
		p, err := chlocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		ports[i], addrs[i] = p, fmt.Sprintf("127.0.0.1:%d", p)
	}
	dir := t.TempDir()
	for i := range n {
		s, err := chlocal.NewWith(chlocal.Config{
			Dir: filepath.Join(dir, fmt.Sprintf("r%d", i+1)), TCPPort: ports[i],
			Cluster: &chlocal.Cluster{Name: ClusterName, Shard: "01", Replica: fmt.Sprintf("r%d", i+1), Replicas: addrs, ZooKeeper: []string{zk.Addr()}},
		})
		if err != nil {
			t.Fatal(err)
		}
		c.Replicas = append(c.Replicas, s)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, s := range c.Replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
			defer cancel()
			errs[i] = s.Start(ctx)
		}()
	}
	wg.Wait()
	// At the end the replicas are killed, not stopped: their data is
	// thrown away, and 18.16 takes up to 20 s each to stop gracefully.
	t.Cleanup(func() {
		for i, s := range c.Replicas {
			_ = s.Kill()
			if t.Failed() {
				t.Logf("replica r%d's log: %s", i+1, logTail(filepath.Join(s.Dir, "log", "server.err.log"), 3000))
			}
		}
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start ClickHouse replica r%d: %v", i+1, err)
		}
	}
	// Ready: each replica has a ZooKeeper session (18.16 gives its
	// handshake 1 s, which a loaded machine can miss at start; DDL ON
	// CLUSTER before the session is up is what crashed it).
	for i, s := range c.Replicas {
		st, err := store.Open(context.Background(), s.URL("default"), nil)
		if err != nil {
			t.Fatalf("replica r%d: %v", i+1, err)
		}
		Eventually(t, 120*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var n uint64
			if err := st.Conn().QueryRow(ctx, "SELECT count() FROM system.zookeeper WHERE path = '/'").Scan(&n); err != nil {
				return fmt.Errorf("replica r%d has no ZooKeeper session yet: %w", i+1, err)
			}
			return nil
		})
		st.Close()
	}
	return c
}

func logTail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// URL is the evidence URL of database listing every replica, r1 first.
func (c *CHCluster) URL(database string) string {
	addrs := make([]string, len(c.Replicas))
	for i, s := range c.Replicas {
		addrs[i] = s.Addr()
	}
	return "clickhouse://" + strings.Join(addrs, ",") + "/" + database
}
