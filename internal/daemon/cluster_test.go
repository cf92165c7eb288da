package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

func clusterBatch(from, n int) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"cl-%06d","source":"https://ci.example/cluster","type":"com.example.cluster.test","data":{"i":%d}}`, i, i)
	}
	b.WriteString("]")
	return []byte(b.String())
}

// TestNATSClusterR3: three nats-server nodes routed on loopback, every
// stream and bucket at three replicas (--stream-replicas 3
// --kv-replicas 3), two evidenced replicas with the archive. Under a
// steady load of distinct events posted to either replica, the event
// stream's leader node is shut down, then the first evidenced replica:
// every acknowledged event is in ClickHouse once, stream_seq 1..N without
// a gap, the chain and its checkpoints verify, and ingestion goes on (the
// longest pause between two acknowledged posts is logged).
func TestNATSClusterR3(t *testing.T) {
	ctx := context.Background()
	cl := testenv.NATSCluster(t, 3)
	chURL := testenv.DatabaseURL(t)
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := verify.WriteKeyPair(t.TempDir(), key)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--nats-url", cl.URL, "--stream-replicas", "3", "--kv-replicas", "3", "--signing-key", priv,
		"--archive-lease-ttl", "2s", "--archive-batch-size", "200", "--archive-flush-interval", "20ms",
		"--checkpoint-every", "300", "--correlate=false"}
	var logs lockedBuffer // both replicas' logs, shown when the test fails
	t.Cleanup(func() {
		if t.Failed() {
			l := logs.String()
			t.Logf("evidenced logs (last 8000 bytes):\n%s", l[max(0, len(l)-8000):])
		}
	})
	start := func(name string) *daemon.Daemon {
		all := append([]string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), name), "--clickhouse-url", chURL}, args...)
		cfg, _, err := config.Parse("evidenced", all, func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo})).With("replica", name)
		d, err := daemon.Start(ctx, cfg, log, daemon.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
		return d
	}
	d1, d2 := start("d1"), start("d2")

	// The producer posts each batch until one replica acknowledges it.
	var mu sync.Mutex
	bases := []string{"http://" + d1.Addr(), "http://" + d2.Addr()}
	var acked atomic.Int64
	var longest time.Duration
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		const per = 50
		last := time.Now()
		for from, k := 0, 0; ; from += per {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			body := clusterBatch(from, per)
			for {
				mu.Lock()
				base := bases[k%len(bases)]
				mu.Unlock()
				k++
				c := emitter.New(base, "")
				c.Attempts = 1
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := c.Post(pctx, "application/cloudevents-batch+json", body)
				cancel()
				if err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond) // back off before the other replica
			}
			now := time.Now()
			mu.Lock()
			longest = max(longest, now.Sub(last))
			mu.Unlock()
			last = now
			acked.Store(int64(from + per))
		}
	}()
	st := testenv.StoreAt(t, chURL)
	rows := func() uint64 {
		var c uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM events").Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	waitMore := func(than uint64) {
		t.Helper()
		testenv.Eventually(t, 60*time.Second, func() error {
			if r := rows(); r < than+500 {
				return fmt.Errorf("%d rows archived, waiting for %d", r, than+500)
			}
			return nil
		})
	}
	waitMore(0)
	// Every stream and bucket at 3 replicas (the archive's lease bucket
	// exists once a replica archives).
	for _, name := range []string{bus.EventStream, bus.DLQStream, "EVIDENCE_CHECKPOINTS", "KV_" + bus.ArchiveLeaseBucket, "KV_EVIDENCE_WEBHOOK_SEEN"} {
		s, err := d2.JetStream().Stream(ctx, name)
		if err != nil {
			t.Fatalf("stream %s: %v", name, err)
		}
		if r := s.CachedInfo().Config.Replicas; r != 3 {
			t.Errorf("stream %s has %d replicas, want 3", name, r)
		}
	}

	// The event stream's leader node goes.
	s, err := d2.JetStream().Stream(ctx, bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream cluster info: %v", err)
	}
	leader := cl.Node(info.Cluster.Leader)
	if leader == nil {
		t.Fatalf("no node named %q", info.Cluster.Leader)
	}
	killedAt := rows()
	leader.Shutdown()
	t.Logf("stream leader %s shut down at %d rows", info.Cluster.Leader, killedAt)
	waitMore(killedAt)

	// Then the first evidenced replica.
	mu.Lock()
	bases = bases[1:]
	mu.Unlock()
	stoppedAt := rows()
	if err := d1.Shutdown(ctx); err != nil {
		t.Logf("replica 1 shutdown: %v", err)
	}
	waitMore(stoppedAt)
	close(stop)
	<-done
	want := uint64(acked.Load())
	deadline := time.Now().Add(60 * time.Second)
	for rows() < want && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	all := testenv.ArchivedRows(t, st)
	if uint64(len(all)) < want {
		t.Errorf("%d rows archived within 60s, want the %d acknowledged events; %s", len(all), want, archiveGaps(all, int(want)))
	}
	seen := map[string]bool{}
	for i, r := range all {
		if seen[r.EventID] {
			t.Fatalf("event %s archived twice (stream_seq %d)", r.EventID, r.StreamSeq)
		}
		seen[r.EventID] = true
		if r.StreamSeq != uint64(i+1) {
			t.Fatalf("row %d has stream_seq %d: a gap, a repeat or a reorder", i, r.StreamSeq)
		}
	}
	if uint64(len(all)) != want {
		t.Fatalf("%d rows, want the %d acknowledged events", len(all), want)
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, all); i >= 0 {
		t.Fatalf("chain broken at row %d: %s", i, why)
	}
	keys, err := verify.LoadPublicKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	res, err := verify.Verify(ctx, st.Conn(), verify.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Checkpoints == 0 {
		t.Fatalf("verify: %d checkpoints, problems %+v", res.Checkpoints, res.Problems)
	}
	resp, err := http.Get("http://" + d2.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("replica 2 /readyz %d after the node and replica 1 went", resp.StatusCode)
	}
	mu.Lock()
	t.Logf("%d events, %d checkpoints; longest pause between two acknowledged posts: %s", len(all), res.Checkpoints, longest.Round(time.Millisecond))
	mu.Unlock()
}

// archiveGaps describes what is missing from the archived rows: the
// stream sequences skipped and the event ids (cl-000000...) not present.
func archiveGaps(all []store.EventRow, want int) string {
	var seqGaps []string
	for i := 1; i < len(all); i++ {
		if d := all[i].StreamSeq - all[i-1].StreamSeq; d != 1 {
			seqGaps = append(seqGaps, fmt.Sprintf("%d..%d", all[i-1].StreamSeq+1, all[i].StreamSeq-1))
		}
	}
	have := make(map[string]bool, len(all))
	for _, r := range all {
		have[r.EventID] = true
	}
	var missing []string
	from := -1
	flush := func(to int) {
		if from >= 0 {
			missing = append(missing, fmt.Sprintf("cl-%06d..cl-%06d", from, to))
			from = -1
		}
	}
	for i := 0; i < want; i++ {
		if !have[fmt.Sprintf("cl-%06d", i)] {
			if from < 0 {
				from = i
			}
		} else {
			flush(i - 1)
		}
	}
	flush(want - 1)
	last := uint64(0)
	if len(all) > 0 {
		last = all[len(all)-1].StreamSeq
	}
	return fmt.Sprintf("last stream_seq %d; stream_seq gaps %v; event ids missing %v", last, seqGaps, missing)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
