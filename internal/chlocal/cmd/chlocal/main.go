// Command chlocal starts a local ClickHouse server for the quick start,
// unless one already answers on the port: it writes a configuration into
// -dir, starts the installed clickhouse-server in the background, waits
// until it answers and exits, leaving it running. It prints the URL of
// the read-only auditor user (docs/auditor-guide.md), whose password is
// EVIDENCE_CLICKHOUSE_AUDITOR_PASSWORD when set, else the one kept in
// -dir/auditor.password (generated at first start).
//
//	go run ./internal/chlocal/cmd/chlocal -dir ./data/clickhouse -tcp-port 9000
//	go run ./internal/chlocal/cmd/chlocal -dir ./data/clickhouse -stop
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/evidencepipeline/evidence/internal/chlocal"
)

func main() {
	dir := flag.String("dir", "./data/clickhouse", "directory of the server's configuration, data and logs")
	tcp := flag.Int("tcp-port", 9000, "native protocol port")
	httpPort := flag.Int("http-port", 8123, "HTTP port")
	stop := flag.Bool("stop", false, "stop the server started in -dir")
	flag.Parse()
	pidFile := filepath.Join(*dir, "server.pid")
	if *stop {
		if err := stopServer(pidFile); err != nil {
			fmt.Fprintln(os.Stderr, "chlocal:", err)
			os.Exit(1)
		}
		return
	}
	addr := "127.0.0.1:" + strconv.Itoa(*tcp)
	if chlocal.Ping(addr, time.Second) == nil {
		fmt.Printf("ClickHouse already answers on %s; using it\n", addr)
		printAuditor(addr, *dir)
		return
	}
	s, err := chlocal.NewWith(chlocal.Config{Dir: *dir, TCPPort: *tcp, HTTPPort: *httpPort, AuditorPassword: os.Getenv(chlocal.AuditorPasswordEnv)})
	if err != nil {
		fmt.Fprintln(os.Stderr, "chlocal:", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if err := s.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "chlocal:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(s.PID())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "chlocal:", err)
	}
	s.Detach()
	fmt.Printf("ClickHouse started on %s (data and logs in %s; stop it with: go run ./internal/chlocal/cmd/chlocal -dir %s -stop)\n", addr, s.Dir, *dir)
	fmt.Printf("Read-only auditor (database %s): %s\n", chlocal.DefaultAuditorDatabase, s.AuditorURL(chlocal.DefaultAuditorDatabase))
}

// printAuditor prints the auditor's URL of a server already running, when
// -dir holds the users.xml that chlocal wrote for it and the password is
// known; else how to get one.
func printAuditor(addr, dir string) {
	users, err := os.ReadFile(filepath.Join(dir, "users.xml"))
	if err != nil || !strings.Contains(string(users), "<"+chlocal.AuditorUser+">") {
		fmt.Printf("No auditor user known for it in %s: stop it and run this again to have one (docs/auditor-guide.md)\n", dir)
		return
	}
	pw := os.Getenv(chlocal.AuditorPasswordEnv)
	if pw == "" {
		b, err := os.ReadFile(filepath.Join(dir, chlocal.AuditorPasswordFile))
		if err != nil {
			fmt.Printf("Auditor password unknown (%v): set %s\n", err, chlocal.AuditorPasswordEnv)
			return
		}
		pw = strings.TrimSpace(string(b))
	}
	u := url.URL{Scheme: "clickhouse", User: url.UserPassword(chlocal.AuditorUser, pw), Host: addr, Path: "/" + chlocal.DefaultAuditorDatabase}
	fmt.Printf("Read-only auditor (database %s): %s\n", chlocal.DefaultAuditorDatabase, u.String())
}

func stopServer(pidFile string) error {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("no server started here: %w", err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		return fmt.Errorf("%s: %w", pidFile, err)
	}
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	os.Remove(pidFile)
	fmt.Println("ClickHouse stopped")
	return nil
}
