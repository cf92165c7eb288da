// Package testenv starts the real components the tests need: an embedded
// NATS JetStream server on a random port with a temporary store, and a real
// ClickHouse server from the installed clickhouse-server binary, with a
// generated configuration in a temporary directory on free ports, shared by
// the tests of one package and stopped after them.
//
// Use it from a package's TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// When clickhouse-server is not installed, tests that need it fail when
// CI=true and are skipped, with a message saying how to install it,
// elsewhere.
package testenv

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/bus/embedded"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/schemas"
)

var (
	chOnce   sync.Once
	chShared *chlocal.Server
	chDir    string
	chErr    error
	dbSeq    atomic.Int64
)

// Main runs the package's tests and then stops the shared servers.
func Main(m *testing.M) {
	code := m.Run()
	if chShared != nil {
		_ = chShared.Stop()
	}
	if chDir != "" {
		_ = os.RemoveAll(chDir)
	}
	os.Exit(code)
}

// InCI reports whether the tests run in CI, where a missing server is a
// failure.
func InCI() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// Unavailable fails the test in CI and skips it elsewhere.
func Unavailable(t testing.TB, what string, err error) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s is required in CI: %v", what, err)
	}
	t.Skipf("%s unavailable (%v); set CI=true to make this a failure", what, err)
}

// ClickHouse returns the package's shared ClickHouse server, starting it on
// first use.
func ClickHouse(t testing.TB) *chlocal.Server {
	t.Helper()
	chOnce.Do(func() {
		chDir, chErr = os.MkdirTemp("", "evidence-clickhouse-")
		if chErr != nil {
			return
		}
		var s *chlocal.Server
		s, chErr = chlocal.New(chDir, 0, 0)
		if chErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if chErr = s.Start(ctx); chErr == nil {
			chShared = s
		}
	})
	if chErr != nil {
		Unavailable(t, "ClickHouse", chErr)
	}
	return chShared
}

// OwnClickHouse starts a ClickHouse server for this test alone (for tests
// that stop and restart it), stopped at the end of the test.
func OwnClickHouse(t testing.TB) *chlocal.Server {
	t.Helper()
	s, err := chlocal.New(t.TempDir(), 0, 0)
	if err != nil {
		Unavailable(t, "ClickHouse", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		t.Fatalf("start ClickHouse: %v", err)
	}
	t.Cleanup(func() { _ = s.Stop() })
	return s
}

// DatabaseURL creates a fresh database on the shared server for this test
// and returns its evidence URL. The database is dropped after the test.
func DatabaseURL(t testing.TB) string {
	t.Helper()
	s := ClickHouse(t)
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.Add(1))
	u := s.URL(name)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if st, err := store.Open(ctx, s.URL("default"), nil); err == nil {
			_ = st.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+name)
			st.Close()
		}
	})
	return u
}

// AuditorURL lets the read-only auditor user read database on the shared
// server (waiting until the server has reloaded its users) and returns the
// auditor's URL for it: clickhouse://auditor:<random password>@host:port/database.
// The auditor may not create a database: connect with store.OpenReadOnly
// (or AuditorConn), not store.Open.
func AuditorURL(t testing.TB, database string) string {
	t.Helper()
	s := ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.AllowAuditor(ctx, database); err != nil {
		t.Fatalf("let the auditor read %s: %v", database, err)
	}
	return s.AuditorURL(database)
}

// AuditorConn connects to database on the shared server as the read-only
// auditor user (see AuditorURL), closed after the test.
func AuditorConn(t testing.TB, database string) driver.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := store.OpenReadOnly(ctx, AuditorURL(t, database), nil)
	if err != nil {
		t.Fatalf("connect as the auditor: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st.Conn()
}

// Store opens a migrated store on a fresh database of the shared server.
func Store(t testing.TB) *store.Store {
	t.Helper()
	return StoreAt(t, DatabaseURL(t))
}

// StoreAt opens and migrates the database at url, closed after the test.
func StoreAt(t testing.TB, url string) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := store.Open(ctx, url, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	ms, err := store.LoadMigrations(schemas.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Migrate(ctx, ms); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return st
}

// JetStream is an embedded NATS server with JetStream on a random port and
// a temporary store, with a client connection, the evidence streams created.
type JetStream struct {
	Server *embedded.Server
	Conn   *nats.Conn
	JS     jetstream.JetStream
	URL    string
}

// NATS starts an embedded JetStream server for this test, stopped at its
// end.
func NATS(t testing.TB) *JetStream {
	t.Helper()
	return NATSAt(t, filepath.Join(t.TempDir(), "jetstream"))
}

// NATSAt is NATS with a given store directory, so a test can restart the
// server on the same store.
func NATSAt(t testing.TB, storeDir string) *JetStream {
	t.Helper()
	e, err := embedded.Start(embedded.Config{StoreDir: storeDir, Listen: "127.0.0.1:-1"})
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(e.Server.ClientURL())
	if err != nil {
		e.Shutdown()
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, js, bus.StreamConfig{Duplicates: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		nc.Close()
		e.Shutdown()
	})
	return &JetStream{Server: e, Conn: nc, JS: js, URL: e.Server.ClientURL()}
}

// Eventually polls cond every 20ms until it returns nil or the timeout
// passes, then fails the test with cond's last error.
func Eventually(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ArchivedRows reads every row of the events table, in stream order.
func ArchivedRows(t testing.TB, st *store.Store) []store.EventRow {
	t.Helper()
	var rows []store.EventRow
	err := st.ScanEvents(context.Background(), 0, 0, func(r *store.EventRow) error {
		c := *r
		c.Data = append([]byte(nil), r.Data...)
		rows = append(rows, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// WaitForRows waits until the events table holds exactly n rows.
func WaitForRows(t testing.TB, st *store.Store, n uint64, timeout time.Duration) {
	t.Helper()
	Eventually(t, timeout, func() error {
		var got uint64
		if err := st.Conn().QueryRow(context.Background(), "SELECT count() FROM events").Scan(&got); err != nil {
			return err
		}
		if got != n {
			return fmt.Errorf("events holds %d rows, want %d", got, n)
		}
		return nil
	})
}
