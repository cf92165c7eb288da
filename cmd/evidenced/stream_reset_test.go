package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

// lockedLog is a process's stderr, readable while it runs.
type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startWatched is startProc with a log that can be read while it runs;
// stop sends SIGTERM and waits.
func startWatched(t *testing.T, args ...string) (log *lockedLog, stop func()) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EVIDENCED_TEST_AS_MAIN=1")
	log = &lockedLog{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-done
			}
		})
	}
	t.Cleanup(stop)
	return log, stop
}

// TestStreamReplacedUnderKeptClickHouse: evidenced archives 300 events,
// then starts again on a new --data-dir (a new embedded JetStream store)
// with the same ClickHouse. The new stream is first shorter than the
// archive (100 events), then longer (500): both times the archive refuses,
// says what happened and how to continue, and writes nothing, where it
// used to skip the new stream's first 300 events. Back on the original
// data dir it goes on: every event of the original stream once, one chain.
func TestStreamReplacedUnderKeptClickHouse(t *testing.T) {
	chURL := testenv.DatabaseURL(t)
	st := testenv.StoreAt(t, chURL)
	ctx := context.Background()
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	dirA, dirB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	run := func(dir string) (*lockedLog, func()) {
		log, stop := startWatched(t, "--http-addr", "127.0.0.1:"+strconv.Itoa(port), "--data-dir", dir, "--clickhouse-url", chURL,
			"--archive-flush-interval", "20ms", "--correlate=false", "--log-level", "info")
		testenv.Eventually(t, 30*time.Second, func() error {
			_, err := emitter.New(base, "").Post(ctx, "application/cloudevents-batch+json", []byte("[]"))
			if err != nil && strings.Contains(err.Error(), "connection refused") {
				return err
			}
			return nil
		})
		return log, stop
	}
	post := func(from, n int) {
		t.Helper()
		c := emitter.New(base, "")
		c.Attempts = 50
		for i := from; i < from+n; i += 100 {
			if _, err := c.Post(ctx, "application/cloudevents-batch+json", batchBody(i, min(100, from+n-i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	rows := func() uint64 {
		var c uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM events").Scan(&c); err != nil {
			t.Fatal(err)
		}
		return c
	}

	_, stop := run(dirA)
	post(0, 300)
	testenv.WaitForRows(t, st, 300, 30*time.Second)
	stop()

	for _, tc := range []struct {
		post int
		want string
	}{
		{100, "but stream EVIDENCE_EVENTS (created "},
		{400, `at stream_seq 300 ClickHouse holds event \"crash-00299\"`}, // quoted in the log's err=""
	} {
		log, stop := run(dirB)
		post(10000+rowsPosted(tc.post), tc.post)
		testenv.Eventually(t, 30*time.Second, func() error {
			// The archive checks the stream at each (re)start: the first
			// refusal may still see the new stream before this post.
			if !strings.Contains(log.String(), tc.want) {
				l := log.String()
				return fmt.Errorf("no refusal naming %q in the log yet; the log ends:\n%s", tc.want, l[max(0, len(l)-1500):])
			}
			return nil
		})
		l := log.String()
		for _, want := range []string{"the event stream is not the one archived", "replaced", "To continue: point evidenced back at the stream the archive came from"} {
			if !strings.Contains(l, want) {
				t.Errorf("after %d events on the new stream, the log lacks %q:\n%s", tc.post, want, l)
			}
		}
		if r := rows(); r != 300 {
			t.Fatalf("%d rows after the refusal, want the 300 of the original stream", r)
		}
		stop()
	}

	// Back on the original stream: it goes on after its 300 events.
	_, stop = run(dirA)
	post(300, 200)
	testenv.WaitForRows(t, st, 500, 30*time.Second)
	stop()
	all := testenv.ArchivedRows(t, st)
	for i, r := range all {
		if r.StreamSeq != uint64(i+1) || r.EventID != fmt.Sprintf("crash-%05d", i) {
			t.Fatalf("row %d: stream_seq %d, event %s", i, r.StreamSeq, r.EventID)
		}
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, all); i >= 0 {
		t.Fatalf("chain broken at row %d: %s", i, why)
	}
}

// rowsPosted keeps the new stream's events distinct from the original's.
func rowsPosted(n int) int { return n * 10 }
