package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

// The test binary doubles as evidenced, so tests can run it as a real
// process and kill it.
func TestMain(m *testing.M) {
	if os.Getenv("EVIDENCED_TEST_AS_MAIN") == "1" {
		os.Exit(run(os.Args[1:]))
	}
	testenv.Main(m)
}

type proc struct {
	cmd  *exec.Cmd
	done chan error
	log  *strings.Builder
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "EVIDENCED_TEST_AS_MAIN=1")
	var log strings.Builder
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), log: &log}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill(); <-p.done })
	return p
}

func waitHealthy(t *testing.T, base string, p *proc) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		select {
		case err := <-p.done:
			p.done <- err
			t.Fatalf("evidenced exited at start: %v\n%s", err, p.log.String())
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

func batchBody(from, n int) []byte {
	var b strings.Builder
	b.WriteString("[")
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"specversion":"1.0","id":"crash-%05d","source":"https://ci.example/crash","type":"com.example.crash.test","data":{"i":%d,"pad":"%0200d"}}`, i, i, i)
	}
	b.WriteString("]")
	return []byte(b.String())
}

// TestCrashAndRestart kills evidenced (SIGKILL: NATS, API and archive at
// once) in the middle of a run while a producer keeps posting with
// retries, restarts it, and checks that ClickHouse ends with every event
// exactly once, in stream order, with an intact hash chain.
func TestCrashAndRestart(t *testing.T) {
	chURL := testenv.DatabaseURL(t)
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--http-addr", "127.0.0.1:" + strconv.Itoa(port), "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--clickhouse-url", chURL, "--archive-batch-size", "500", "--archive-flush-interval", "20ms", "--log-level", "warn"}
	p := startProc(t, args...)
	waitHealthy(t, base, p)

	const total, per = 6000, 100
	c := emitter.New(base, "")
	c.Attempts, c.MinBackoff, c.MaxBackoff = 200, 20*time.Millisecond, 200*time.Millisecond
	killed := false
	for from := 0; from < total; from += per {
		if from == 2500 && !killed {
			// Crash: no shutdown, no flush, no ack.
			if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			<-p.done
			p.done <- nil
			killed = true
			p = startProc(t, args...)
		}
		if _, err := c.Post(context.Background(), "application/cloudevents-batch+json", batchBody(from, per)); err != nil {
			t.Fatalf("post %d: %v\n%s", from, err, p.log.String())
		}
	}

	st := testenv.StoreAt(t, chURL)
	testenv.WaitForRows(t, st, total, 60*time.Second)
	rows := testenv.ArchivedRows(t, st)
	seen := map[string]bool{}
	for i, r := range rows {
		if seen[r.EventID] {
			t.Fatalf("event %s archived twice", r.EventID)
		}
		seen[r.EventID] = true
		if r.StreamSeq != uint64(i+1) {
			t.Fatalf("row %d has stream_seq %d: a gap or a reorder", i, r.StreamSeq)
		}
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, rows); i >= 0 {
		t.Fatalf("chain broken at row %d: %s", i, why)
	}
}

// TestGracefulShutdown: SIGTERM answers the requests in flight, then exits
// 0; what was acknowledged is archived after the restart.
func TestGracefulShutdown(t *testing.T) {
	chURL := testenv.DatabaseURL(t)
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	args := []string{"--http-addr", "127.0.0.1:" + strconv.Itoa(port), "--data-dir", filepath.Join(t.TempDir(), "data"),
		"--clickhouse-url", chURL, "--log-level", "info"}
	p := startProc(t, args...)
	waitHealthy(t, base, p)
	c := emitter.New(base, "")
	c.Attempts = 1
	results := make(chan error, 20)
	for k := 0; k < 20; k++ {
		go func() {
			_, err := c.Post(context.Background(), "application/cloudevents-batch+json", batchBody(k*200, 200))
			results <- err
		}()
	}
	// SIGTERM once the receiver has taken in some events: requests are then
	// in flight or answered, and the drain must not lose any of them.
	testenv.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, `evidence_stage_received_total{stage="receiver"} `); ok && v != "0" {
				return nil
			}
		}
		return fmt.Errorf("the receiver has taken in nothing yet")
	})
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		p.done <- err
		if err != nil {
			t.Fatalf("evidenced exited with %v after SIGTERM\n%s", err, p.log.String())
		}
	case <-time.After(40 * time.Second):
		t.Fatal("evidenced did not exit within 40s of SIGTERM")
	}
	if !strings.Contains(p.log.String(), "shutting down") || !strings.Contains(p.log.String(), "stopped") {
		t.Fatalf("log does not show the drain:\n%s", p.log.String())
	}
	accepted := 0
	for k := 0; k < 20; k++ {
		err := <-results
		switch {
		case err == nil:
			accepted += 200
		case errors.Is(err, emitter.ErrUnavailable):
			// Refused at the door (connection refused or closed before
			// the request was read): the producer retries later.
		default:
			t.Fatalf("post: %v", err)
		}
	}
	// Everything acknowledged to a producer is archived after a restart.
	p = startProc(t, args...)
	waitHealthy(t, base, p)
	st := testenv.StoreAt(t, chURL)
	testenv.WaitForRows(t, st, uint64(accepted), 60*time.Second)
	if accepted == 0 {
		t.Fatal("no post was acknowledged although the receiver had taken events in before SIGTERM")
	}
}

func TestMigrateCommand(t *testing.T) {
	chURL := testenv.DatabaseURL(t)
	if code := run([]string{"migrate", "--clickhouse-url", chURL}); code != 0 {
		t.Fatalf("migrate exited %d", code)
	}
	st := testenv.StoreAt(t, chURL) // re-applying is a no-op
	var tables uint64
	if err := st.Conn().QueryRow(context.Background(),
		"SELECT count() FROM system.tables WHERE database = ? AND name IN ('events', 'schema_migrations')", st.Database()).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if tables != 2 {
		t.Fatalf("%d of the 2 tables exist after migrate", tables)
	}
	if code := run([]string{"migrate", "--clickhouse-url", "http://nope"}); code != 2 {
		t.Fatalf("migrate with a bad URL exited %d, want 2", code)
	}
	if code := run([]string{"frobnicate"}); code != 2 {
		t.Fatalf("unknown command exited %d, want 2", code)
	}
}
