package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

// replicaSet is evidenced processes sharing one NATS and one ClickHouse
// database, each with --archive.
type replicaSet struct {
	t    *testing.T
	args []string
	mu   sync.Mutex
	live map[int]*replica // by pid
	runs int              // processes started
}

type replica struct {
	p    *proc
	base string
}

func (s *replicaSet) start() *replica {
	s.t.Helper()
	port, err := chlocal.FreePort()
	if err != nil {
		s.t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	args := append([]string{"--http-addr", addr, "--data-dir", filepath.Join(s.t.TempDir(), "data")}, s.args...)
	r := &replica{p: startProc(s.t, args...), base: "http://" + addr}
	s.mu.Lock()
	s.live[r.p.cmd.Process.Pid] = r
	s.runs++
	s.mu.Unlock()
	return r
}

func (s *replicaSet) kill(pid int) {
	s.t.Helper()
	s.mu.Lock()
	r := s.live[pid]
	delete(s.live, pid)
	s.mu.Unlock()
	if r == nil {
		s.t.Fatalf("the lease names pid %d, which is not a live replica", pid)
	}
	if err := r.p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatal(err)
	}
	err := <-r.p.done
	r.p.done <- err
}

// any returns a live replica's base URL, the k-th in pid order.
func (s *replicaSet) any(k int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	pids := make([]int, 0, len(s.live))
	for pid := range s.live {
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		return ""
	}
	sort.Ints(pids)
	return s.live[pids[k%len(pids)]].base
}

// holderPid is the pid in the archive lease's holder (host:pid:random), or
// 0 when nobody holds it.
func holderPid(ctx context.Context, kv jetstream.KeyValue) int {
	e, err := kv.Get(ctx, "archive")
	if err != nil {
		return 0
	}
	parts := strings.Split(string(e.Value()), ":")
	if len(parts) < 3 {
		return 0
	}
	pid, _ := strconv.Atoi(parts[len(parts)-2])
	return pid
}

// TestArchiveWriterTakeover: two, then three evidenced replicas started at
// once with --archive on one NATS and one ClickHouse database, under a
// steady load of distinct events posted to any replica; the replica
// holding the archive lease is killed (SIGKILL) at random moments and a
// new replica started in its place. Exactly one writes at a time: at the
// end the events table holds every acknowledged event once, stream_seq
// 1..N without a gap or a repeat, one hash chain from the genesis, and
// evidence verify finds every checkpoint (signed by whichever replica
// wrote) consistent with it. The takeover time (kill to a new holder of
// the lease) is logged.
//
// EVIDENCE_WRITER_KILLS sets the kills per round (default 2; 9 gives the
// 20 starts of the acceptance run).
func TestArchiveWriterTakeover(t *testing.T) {
	kills := 2
	if v := os.Getenv("EVIDENCE_WRITER_KILLS"); v != "" {
		var err error
		if kills, err = strconv.Atoi(v); err != nil || kills < 1 {
			t.Fatalf("EVIDENCE_WRITER_KILLS=%q: want a positive number", v)
		}
	}
	ctx := context.Background()
	n := testenv.NATS(t)
	chURL := testenv.DatabaseURL(t)
	keyDir := t.TempDir()
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err := verify.WriteKeyPair(keyDir, key)
	if err != nil {
		t.Fatal(err)
	}
	set := &replicaSet{t: t, live: map[int]*replica{}, args: []string{
		"--nats-url", n.URL, "--clickhouse-url", chURL, "--signing-key", priv,
		"--archive-lease-ttl", "1s", "--archive-batch-size", "200", "--archive-flush-interval", "20ms",
		"--checkpoint-every", "500", "--correlate=false", "--log-level", "warn",
	}}

	// The producer: batches of distinct events to any live replica; a
	// batch is posted again (to another replica) until one acknowledges
	// it, so every event posted is acknowledged by the end (a re-post is
	// stored once: same source and id).
	var acked atomic.Int64
	stop := make(chan struct{})
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		const per = 50
		pace := time.NewTicker(10 * time.Millisecond) // at most 5000 events/s
		defer pace.Stop()
		for from, k := 0, 0; ; from += per {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			body := batchBody(from, per)
			for {
				k++
				base := set.any(k)
				if base == "" {
					time.Sleep(20 * time.Millisecond) // no replica up yet
					continue
				}
				c := emitter.New(base, "")
				c.Attempts = 1
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := c.Post(pctx, "application/cloudevents-batch+json", body)
				cancel()
				if err == nil {
					break
				}
			}
			acked.Store(int64(from + per))
		}
	}()

	var leaseKV jetstream.KeyValue
	waitHolder := func(not int) (int, time.Duration) {
		t.Helper()
		start := time.Now()
		var pid int
		testenv.Eventually(t, 30*time.Second, func() error {
			if leaseKV == nil {
				kv, err := n.JS.KeyValue(ctx, bus.ArchiveLeaseBucket)
				if err != nil {
					return err
				}
				leaseKV = kv
			}
			pid = holderPid(ctx, leaseKV)
			set.mu.Lock()
			_, live := set.live[pid]
			set.mu.Unlock()
			if pid == 0 || pid == not || !live {
				return fmt.Errorf("archive lease held by pid %d (killed: %d)", pid, not)
			}
			return nil
		})
		return pid, time.Since(start)
	}
	st := testenv.StoreAt(t, chURL)
	rowsNow := func() uint64 {
		var c uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM events").Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	var takeovers []time.Duration
	for _, replicas := range []int{2, 3} {
		// Started at once: they race for the lease.
		for i := 0; i < replicas; i++ {
			set.start()
		}
		holder, _ := waitHolder(0)
		for k := 0; k < kills; k++ {
			// Let the writer write, then kill it at a random moment.
			before := rowsNow()
			testenv.Eventually(t, 30*time.Second, func() error {
				if r := rowsNow(); r <= before {
					return fmt.Errorf("no row archived since %d", before)
				}
				return nil
			})
			time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond) // a random moment, not a synchronisation
			set.kill(holder)
			var took time.Duration
			holder, took = waitHolder(holder)
			takeovers = append(takeovers, took)
			set.start()
		}
		// End of the round: every replica goes (the last writer by SIGKILL).
		set.mu.Lock()
		pids := make([]int, 0, len(set.live))
		for pid := range set.live {
			pids = append(pids, pid)
		}
		set.mu.Unlock()
		for _, pid := range pids {
			if pid != holder {
				set.kill(pid)
			}
		}
		set.kill(holder)
	}
	// One last replica archives what is left, then the load stops (the
	// batch in hand is posted until acknowledged).
	set.start()
	close(stop)
	<-produced
	want := acked.Load()
	testenv.Eventually(t, 60*time.Second, func() error {
		if r := rowsNow(); r < uint64(want) {
			return fmt.Errorf("%d rows archived, want %d", r, want)
		}
		return nil
	})

	rows := testenv.ArchivedRows(t, st)
	seen := map[string]bool{}
	for i, r := range rows {
		if seen[r.EventID] {
			t.Fatalf("event %s archived twice (row %d, stream_seq %d, %d rows for %d events)", r.EventID, i, r.StreamSeq, len(rows), want)
		}
		seen[r.EventID] = true
		if r.StreamSeq != uint64(i+1) {
			t.Fatalf("row %d has stream_seq %d: a repeat, a gap or a reorder", i, r.StreamSeq)
		}
	}
	if int64(len(rows)) != want {
		t.Fatalf("%d rows, want %d (the acknowledged events)", len(rows), want)
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, rows); i >= 0 {
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
		t.Fatalf("verify: %d checkpoints matched, problems %+v", res.Checkpoints, res.Problems)
	}
	sort.Slice(takeovers, func(i, j int) bool { return takeovers[i] < takeovers[j] })
	t.Logf("%d starts, %d kills of the writer, %d events, %d checkpoints; takeover (kill to new lease holder, --archive-lease-ttl 1s): median %s, max %s",
		set.runs, len(takeovers), len(rows), res.Checkpoints, takeovers[len(takeovers)/2].Round(time.Millisecond), takeovers[len(takeovers)-1].Round(time.Millisecond))
}
