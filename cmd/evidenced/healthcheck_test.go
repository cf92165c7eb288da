package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestHealthcheckSaysWhenNATSIsDown runs a real evidenced (in-process) on
// an external NATS server, without ClickHouse, with and without a tokens
// file. healthcheck passes while NATS is there (ClickHouse is not
// required), and once the NATS server is gone (/healthz still 200) it
// fails, naming the nats check, without a token and without the checks'
// error text; the command exits 1. With a tokens file it is run as the
// compose file does, on --http-addr 0.0.0.0.
func TestHealthcheckSaysWhenNATSIsDown(t *testing.T) {
	for _, withTokens := range []bool{false, true} {
		t.Run(map[bool]string{false: "open", true: "tokens file"}[withTokens], func(t *testing.T) {
			js := testenv.NATS(t)
			chPort, err := chlocal.FreePort() // nothing listens there: ClickHouse is down
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			args := []string{"--http-addr", "127.0.0.1:0", "--nats-url", js.URL, "--data-dir", filepath.Join(dir, "data"),
				"--clickhouse-url", "clickhouse://127.0.0.1:" + strconv.Itoa(chPort) + "/evidence"}
			var tokenArgs []string
			if withTokens {
				admin, _ := auth.NewToken()
				tokens := filepath.Join(dir, "tokens")
				if err := os.WriteFile(tokens, []byte(fmt.Sprintf("admin %s ops\n", auth.Hash(admin))), 0o600); err != nil {
					t.Fatal(err)
				}
				tokenArgs = []string{"--tokens-file", tokens}
			}
			cfg, _, err := config.Parse("evidenced", append(args, tokenArgs...), func(string) string { return "" })
			if err != nil {
				t.Fatal(err)
			}
			d, err := daemon.Start(context.Background(), cfg, nil, daemon.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
			addr := d.Addr()
			if withTokens {
				addr = "0.0.0.0:" + addr[strings.LastIndex(addr, ":")+1:]
			}
			cmd := append([]string{"healthcheck", "--http-addr", addr}, tokenArgs...)

			ctx := context.Background()
			if err := healthcheck(ctx, addr); err != nil {
				t.Fatalf("healthcheck of a ready evidenced (NATS up, ClickHouse down and not required): %v", err)
			}
			if code := run(cmd); code != 0 {
				t.Fatalf("evidenced %v exited %d with NATS up", cmd, code)
			}

			js.Server.Shutdown()
			testenv.Eventually(t, 15*time.Second, func() error {
				if healthcheck(ctx, addr) == nil {
					return errors.New("healthcheck still passes with the NATS server shut down")
				}
				return nil
			})
			err = healthcheck(ctx, addr)
			msg := err.Error()
			for _, want := range []string{"not ready: the required check nats", "clickhouse", "is unavailable too (not required)", "/readyz: 503"} {
				if !strings.Contains(msg, want) {
					t.Errorf("healthcheck with NATS down: %q does not say %q", msg, want)
				}
			}
			// The checks' errors come only with an open /readyz (every
			// caller is admin there); with tokens, only their names.
			hasErrors := strings.Contains(msg, "nats (connection ") && strings.Contains(msg, "clickhouse (")
			if hasErrors == withTokens {
				t.Errorf("healthcheck with NATS down, tokens file %v: %q, want the checks' errors %s", withTokens, msg,
					map[bool]string{false: "(open /readyz)", true: "left out (anonymous /readyz)"}[withTokens])
			}
			if code := run(cmd); code != 1 {
				t.Errorf("evidenced %v exited %d with NATS down, want 1", cmd, code)
			}
		})
	}
}

// TestHealthcheckNoEvidenced: nothing listening is unhealthy, and says so.
func TestHealthcheckNoEvidenced(t *testing.T) {
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	err = healthcheck(context.Background(), "127.0.0.1:"+strconv.Itoa(port))
	if err == nil || !strings.Contains(err.Error(), "no answer from evidenced") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("healthcheck with nothing listening: %v", err)
	}
}
