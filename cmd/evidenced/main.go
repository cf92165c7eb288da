// Command evidenced is the evidence pipeline's daemon: it receives
// CloudEvents and webhooks over HTTP, stores them in NATS JetStream and
// archives them in ClickHouse.
//
//	evidenced [flags]            run (the default)
//	evidenced migrate [flags]    apply the ClickHouse migrations and exit
//	evidenced healthcheck        exit 0 when the local evidenced answers /healthz
//
// Every flag has an environment variable; run evidenced -help for the list.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/schemas"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	cmd := "run"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "run", "migrate", "healthcheck":
	default:
		fmt.Fprintf(os.Stderr, "evidenced: unknown command %q (want run, migrate or healthcheck)\n", cmd)
		return 2
	}
	cfg, _, err := config.Parse("evidenced "+cmd, args, os.Getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "evidenced: %v\n", err)
		return 2
	}
	log := daemon.NewLogger(os.Stderr, cfg.LogLevel, cfg.LogFormat)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "migrate":
		if err := migrate(ctx, cfg); err != nil {
			fmt.Fprintf(os.Stderr, "evidenced migrate: %v\n", err)
			return 1
		}
		return 0
	case "healthcheck":
		return healthcheck(cfg.HTTPAddr)
	}
	code := 0
	d, err := daemon.Start(ctx, cfg, log, daemon.Options{})
	if err != nil {
		log.Error("start failed", "err", err)
		return 1
	}
	select {
	case <-ctx.Done():
	case err := <-d.Served():
		code = 1
		log.Error("evidenced cannot go on", "err", err)
	}
	stop() // a second signal kills at once
	if err := d.Shutdown(context.Background()); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return code
}

func migrate(ctx context.Context, cfg *config.Config) error {
	st, err := store.Open(ctx, cfg.ClickHouseURL, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	ms, err := store.LoadMigrations(schemas.Migrations())
	if err != nil {
		return err
	}
	done, err := st.Migrate(ctx, ms)
	for _, name := range done {
		fmt.Println("applied", name)
	}
	if err == nil && len(done) == 0 {
		fmt.Printf("database %s is up to date (%d migrations)\n", st.Database(), len(ms))
	}
	return err
}

func healthcheck(addr string) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "unhealthy:", resp.Status)
		return 1
	}
	return 0
}
