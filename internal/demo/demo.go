// Package demo is evidenced --demo: a realistic, continuous stream of
// evidence for a few services, sent through the same public path a real
// producer uses (HTTP POST /v1/events, with a producer token when access
// control is on), so that a newcomer sees a living dashboard within a
// minute.
//
// Most changes are compliant: a change ticket created and approved, a pull
// request opened, reviewed and merged, a pipeline run with tests, scans and
// an artifact, a deployment to staging then production. In every block of
// 32 changes (22 compliant), each violation kind appears once (Kinds): a self-approved
// pull request, a ticket never approved, a ticket approved after the
// deployment, failing tests, a critical finding, an artifact built outside
// the pipeline, a deployment matching no change, a deployer who is the
// author; and an emergency change approved retroactively and an exception
// granted. The order, services and people come from the seed, so a run is
// reproducible; identifiers also come from the run's name, so two runs
// against the same evidenced never mix.
//
// At start a history of changes over the last 7 days is sent at once
// (Backfill), so the posture has numbers straight away; then changes
// follow live, an event every Pace. Every demo event's source starts with
// https://demo.evidence.invalid/ and every repository with
// demo.evidence.invalid/: demo data cannot be taken for real evidence.
package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

// Config configures a demo run.
type Config struct {
	// Server is evidenced's base URL.
	Server string
	// Token is a producer token (empty when access is open).
	Token string
	// Seed decides the kinds, services and people (default 1).
	Seed uint64
	// Run names the run; identifiers derive from it (default: the start
	// time, so each start of evidenced makes new changes).
	Run string
	// Backfill is how many changes of the last 7 days are sent at start
	// (default 32; negative: none).
	Backfill int
	// Pace is the time between two live events (default 700ms); a change
	// takes about 18 of them.
	Pace time.Duration
	// Limit stops after this many live changes (0: until ctx ends).
	Limit int
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
	// Sent, when set, is told of every scenario once all its events were
	// accepted.
	Sent func(Scenario)
}

func (c *Config) defaults() {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Run == "" {
		c.Run = fmt.Sprintf("%x", c.Now().Unix())
	}
	if c.Backfill == 0 {
		c.Backfill = 32
	}
	if c.Pace <= 0 {
		c.Pace = 700 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
}

// Run sends the backfill, then live changes until ctx ends (or Limit). A
// refused event (4xx) stops it with the server's reasons: the demo's
// events must all be valid.
func Run(ctx context.Context, cfg Config) error {
	cfg.defaults()
	client := emitter.New(cfg.Server, cfg.Token)
	client.Attempts = 8
	log := cfg.Log.With("component", "demo", "run", cfg.Run, "seed", cfg.Seed)
	send := func(sc Scenario, events []event.Event) error {
		_, err := client.Send(ctx, events...)
		var refused *emitter.RefusedError
		if errors.As(err, &refused) {
			return fmt.Errorf("demo: evidenced refused change %d (%s): %w", sc.N, sc.Kind, err)
		}
		return err
	}

	now := cfg.Now()
	n := 0
	if cfg.Backfill > 0 {
		// Spread over the last 7 days, a quarter of them within 24 h; each
		// change's events 2 minutes apart.
		for i := 0; i < cfg.Backfill; i++ {
			var start time.Time
			if i < cfg.Backfill*3/4 {
				start = now.Add(-7*24*time.Hour + time.Duration(i)*(6*24*time.Hour)/time.Duration(cfg.Backfill*3/4))
			} else {
				j := i - cfg.Backfill*3/4
				start = now.Add(-23*time.Hour + time.Duration(j)*(20*time.Hour)/time.Duration(cfg.Backfill-cfg.Backfill*3/4))
			}
			sc := Build(cfg.Seed, cfg.Run, n, start, 2*time.Minute)
			if err := send(sc, sc.Events); err != nil {
				return err
			}
			if cfg.Sent != nil {
				cfg.Sent(sc)
			}
			n++
		}
		log.Info("demo history sent", "changes", cfg.Backfill)
	}
	for live := 0; cfg.Limit == 0 || live < cfg.Limit; live++ {
		sc := Build(cfg.Seed, cfg.Run, n, cfg.Now(), cfg.Pace)
		log.Debug("demo change", "n", n, "kind", sc.Kind, "change", sc.Change)
		for _, e := range sc.Events {
			if wait := e.Time().Sub(cfg.Now()); wait > 0 {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
			}
			if err := send(sc, []event.Event{e}); err != nil {
				return err
			}
		}
		if cfg.Sent != nil {
			cfg.Sent(sc)
		}
		n++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * cfg.Pace):
		}
	}
	return nil
}

// TokenName names the demo's producer token in logs.
const TokenName = "evidenced-demo"

// WithToken reads the tokens file at path and adds a new producer token
// for the demo, kept in memory only: it returns the token set to serve
// with and the token.
func WithToken(path string) (*auth.Tokens, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("tokens file: %w", err)
	}
	defer f.Close()
	tok, err := auth.NewToken()
	if err != nil {
		return nil, "", err
	}
	// Check the file as it is first, so its errors name its own lines.
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("tokens file %s: %w", path, err)
	}
	if _, err := auth.Parse(strings.NewReader(strings.Join(lines, "\n"))); err != nil {
		return nil, "", fmt.Errorf("tokens file %s: %w", path, err)
	}
	lines = append(lines, string(auth.Producer)+" "+auth.Hash(tok)+" "+TokenName)
	t, err := auth.Parse(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		return nil, "", err
	}
	return t, tok, nil
}
