// Command chlocal starts a local ClickHouse server for the quick start,
// unless one already answers on the port: it writes a configuration into
// -dir, starts the installed clickhouse-server in the background, waits
// until it answers and exits, leaving it running.
//
//	go run ./internal/chlocal/cmd/chlocal -dir ./data/clickhouse -tcp-port 9000
//	go run ./internal/chlocal/cmd/chlocal -dir ./data/clickhouse -stop
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
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
		return
	}
	s, err := chlocal.New(*dir, *tcp, *httpPort)
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
