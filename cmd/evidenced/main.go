// Command evidenced is the evidence pipeline's daemon: it receives
// CloudEvents and webhooks over HTTP, stores them in NATS JetStream and
// archives them in ClickHouse.
//
//	evidenced [flags]            run (the default)
//	evidenced migrate [flags]    apply the ClickHouse migrations and exit
//	evidenced healthcheck        exit 0 when the local evidenced is ready (/readyz: NATS)
//
// Every flag has an environment variable; run evidenced -help for the list.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/version"
	"github.com/evidencepipeline/evidence/schemas"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 1 && (args[0] == "--version" || args[0] == "-version" || args[0] == "version") {
		fmt.Println("evidenced " + version.Get().String())
		return 0
	}
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
		if err := healthcheck(ctx, cfg.HTTPAddr); err != nil {
			fmt.Fprintf(os.Stderr, "evidenced healthcheck: %v\n", err)
			return 1
		}
		return 0
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
	st, err := store.OpenCluster(ctx, cfg.ClickHouseURL, cfg.ClickHouseCluster, nil)
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

// healthcheck asks the evidenced listening on addr (0.0.0.0 and :: asked
// on 127.0.0.1) whether it is ready: GET /readyz, whose required check is
// NATS, so a container whose evidenced has lost NATS (and ingests nothing)
// is reported unhealthy, with the failing checks named. It sends no token:
// the anonymous answer names the checks, the errors are for admin tokens
// and the log.
func healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--http-addr %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	url := "http://" + net.JoinHostPort(host, port) + "/readyz"
	// /readyz bounds its checks at 3s; the compose healthcheck gives 5s.
	ctx, cancel := context.WithTimeout(ctx, 4*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: no answer from evidenced: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("unhealthy: GET %s: %s, reading the answer: %w", url, resp.Status, err)
	}
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var ready map[string]any
	if resp.StatusCode != http.StatusServiceUnavailable || json.Unmarshal(body, &ready) != nil {
		if p := problem.Parse(resp.Header.Get("Content-Type"), body); p != nil {
			return fmt.Errorf("unhealthy: GET %s: %s: %s", url, resp.Status, p.Text())
		}
		return fmt.Errorf("unhealthy: GET %s: %s", url, resp.Status)
	}
	return notReady(url, resp.Status, ready)
}

// notReady says which checks of a 503 /readyz answer fail: the required
// ones ("failing"), then the others that are unavailable too, each with its
// error when the answer has it (open mode; with tokens an anonymous caller
// gets none).
func notReady(url, status string, ready map[string]any) error {
	var failing, others []string
	if list, ok := ready["failing"].([]any); ok {
		for _, v := range list {
			if name, ok := v.(string); ok {
				failing = append(failing, name)
			}
		}
	}
	for name, v := range ready {
		if s, ok := v.(string); ok && name != "status" && strings.HasPrefix(s, "unavailable") && !slices.Contains(failing, name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	detailed := false
	describe := func(names []string) string {
		out := make([]string, len(names))
		for i, name := range names {
			out[i] = name
			if v, _ := ready[name].(string); strings.HasPrefix(v, "unavailable: ") {
				out[i] += " (" + strings.TrimPrefix(v, "unavailable: ") + ")"
				detailed = true
			}
		}
		return strings.Join(out, ", ")
	}
	msg := "not ready"
	switch len(failing) {
	case 0:
		msg += " (the answer names no failing required check)"
	case 1:
		msg += ": the required check " + describe(failing) + " fails"
	default:
		msg += ": the required checks " + describe(failing) + " fail"
	}
	switch len(others) {
	case 0:
	case 1:
		msg += "; " + describe(others) + " is unavailable too (not required)"
	default:
		msg += "; " + describe(others) + " are unavailable too (not required)"
	}
	msg += ". GET " + url + ": " + status
	if !detailed {
		msg += ". evidenced's log says why; /readyz shows the errors to an admin token"
	}
	return errors.New(msg)
}
