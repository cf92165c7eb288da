// Package daemon wires evidenced together: NATS (embedded or external) and
// its streams, the HTTP API, and the archive, with a graceful shutdown that
// drains in-flight work. cmd/evidenced only parses flags and calls Start.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/bus/embedded"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/internal/jobtoken"
	"github.com/evidencepipeline/evidence/internal/live"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/schemas"
)

// Daemon is a running evidenced.
type Daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	embedded *embedded.Server
	nc       *nats.Conn
	js       jetstream.JetStream
	http     *http.Server
	listener net.Listener
	// pprof serves the profiler with --pprof-addr (else nil).
	pprof         *http.Server
	pprofListener net.Listener
	// Registry holds the daemon's Prometheus metrics.
	Registry *prometheus.Registry

	bgCancel context.CancelFunc
	bg       sync.WaitGroup
	served   chan error
	stopping atomic.Bool // set before the NATS connection is closed on purpose

	mu    sync.Mutex
	store *store.Store

	signer *verify.SigningKey // signs the archive's checkpoints
}

// Options are what tests and benchmarks add to a configuration.
type Options struct {
	// ArchiveHooks observe the archive.
	ArchiveHooks archive.Hooks
	// ArchiveStandby and ArchiveAcquired, when set, are called when this
	// replica finds the archive lease held by another (holder), and when
	// it takes it.
	ArchiveStandby  func(holder string)
	ArchiveAcquired func()
	// AccessSwept, when set, is called after each sweep of the access
	// stage's judge that wrote everything it had to (tests wait on it).
	AccessSwept func()
	// Demo, with --demo, sets the demo's run, history, pace and limit
	// (server, token and log are the daemon's).
	Demo *demo.Config
}

// Start brings evidenced up and returns once it serves HTTP. The archive
// waits in the background for ClickHouse; ingestion does not.
func Start(ctx context.Context, cfg *config.Config, log *slog.Logger, opts Options) (*Daemon, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	applyMemoryLimit(cfg, log)
	d := &Daemon{cfg: cfg, log: log, Registry: prometheus.NewRegistry(), served: make(chan error, 2)}
	d.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(d.Registry)
	ok := false
	defer func() {
		if !ok {
			if d.pprof != nil {
				_ = d.pprof.Close()
			}
			d.closeNATS()
		}
	}()

	var tokens *auth.Tokens
	if cfg.TokensFile != "" {
		t, err := auth.Load(cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("--tokens-file: %w", err)
		}
		tokens = t
		log.Info("access control on", "tokens", t.Len(), "file", cfg.TokensFile)
	} else {
		log.Warn("no --tokens-file: the API is open to anyone who can reach it, so it listens on loopback only", "http_addr", cfg.HTTPAddr)
	}
	var jobTokens api.JobTokenVerifier
	if len(cfg.OIDCIssuers) > 0 {
		v, err := jobtoken.New(jobtoken.Config{Issuers: cfg.OIDCIssuers, Log: log})
		if err != nil {
			return nil, fmt.Errorf("--oidc-issuer: %w", err)
		}
		jobTokens = v
		for _, is := range cfg.OIDCIssuers {
			log.Info("CI job tokens accepted", "issuer", is.URL, "audience", is.Audience, "system", is.System(), "repositories", is.RepositoryHost())
		}
	}
	var demoToken string // --demo with a tokens file: a producer token kept in memory
	if cfg.Demo && cfg.TokensFile != "" {
		var derr error
		if tokens, demoToken, derr = demo.WithToken(cfg.TokensFile); derr != nil {
			return nil, fmt.Errorf("--tokens-file: %w", derr)
		}
	}

	if err := d.connectNATS(ctx); err != nil {
		return nil, err
	}
	if err := bus.EnsureStreams(ctx, d.js, bus.StreamConfig{MaxAge: cfg.StreamMaxAge, Duplicates: cfg.DedupeWindow}); err != nil {
		return nil, err
	}
	if cfg.Archive {
		signer, err := checkpoint.LoadKey(cfg.SigningKey, cfg.DataDir, log)
		if err != nil {
			return nil, err
		}
		d.signer = signer
		if err := checkpoint.EnsureStream(ctx, d.js, 1); err != nil {
			return nil, err
		}
	}
	catalog, err := schemas.Load()
	if err != nil {
		return nil, fmt.Errorf("event catalog: %w", err)
	}
	var kv *correlate.KVState
	var changes correlate.Reader
	var gate *evaluate.Engine
	if cfg.Correlate {
		if kv, err = correlate.NewKVState(ctx, d.js, kvOptions(cfg)); err != nil {
			return nil, fmt.Errorf("correlation state: %w", err)
		}
		changes = correlate.KVReader{KV: kv}
		if cfg.PoliciesDir != "" {
			gate, err = evaluate.LoadDir(ctx, cfg.PoliciesDir)
		} else {
			gate, err = evaluate.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("--policies-dir: %w", err)
		}
		log.Info("controls loaded", "controls", len(gate.Controls()), "bundle_hash", gate.BundleHash())
	}

	var accessEngine *evaluate.AccessEngine
	if cfg.Access {
		if accessEngine, err = evaluate.NewAccessEngine(ctx); err != nil {
			return nil, err
		}
		log.Info("access controls loaded", "controls", len(accessEngine.Controls()), "bundle_hash", accessEngine.BundleHash(),
			"production_repos", cfg.ProductionRepos)
	}

	// The door refuses what the correlation stage would refuse, whether or
	// not this replica correlates (another one does).
	extractor := correlate.Extractor{Tickets: cfg.Tickets()}
	entryLimit := 0
	if kv != nil {
		entryLimit = kv.MaxValueSize()
	}
	srv := api.New(api.Config{
		Publisher:    bus.NewPublisher(d.js),
		Catalog:      catalog,
		Admit:        func(e *ce.Event) error { return extractor.Admit(e, entryLimit) },
		Tokens:       tokens,
		JobTokens:    jobTokens,
		MaxBodyBytes: cfg.MaxBodyBytes,
		Required: map[string]api.Check{"nats": func(ctx context.Context) error {
			if st := d.nc.Status(); st != nats.CONNECTED {
				return fmt.Errorf("connection %s", st)
			}
			_, err := d.js.Stream(ctx, bus.EventStream)
			return err
		}},
		Informative: map[string]api.Check{"clickhouse": func(ctx context.Context) error {
			st := d.Store()
			if st == nil {
				return errors.New("not connected yet")
			}
			return st.Ping(ctx)
		}},
		Changes:    changes,
		TLog:       checkpoint.LogSource{Store: d.Store},
		Gate:       gate,
		GateParams: d.controlParams(),
		Watermark:  correlate.StreamWatermark{JS: d.js}.Watermark,
		Gatherer:   d.Registry,
		Metrics:    m,
		Log:        log,
	})
	seen, err := webhook.NewSeen(ctx, d.js, webhook.SeenOptions{MaxAge: cfg.StreamMaxAge})
	if err != nil {
		return nil, fmt.Errorf("webhook seen markers: %w", err)
	}
	if err := registerWebhooks(srv, cfg, bus.NewPublisher(d.js), seen, log, m); err != nil {
		return nil, err
	}
	lv, err := live.New(live.Config{Store: d.Store, NATS: d.nc, Changes: changes, Tokens: tokens, Log: log,
		ProductionEnvironments: cfg.ProductionEnvironments})
	if err != nil {
		return nil, fmt.Errorf("live page: %w", err)
	}
	for _, p := range lv.Patterns() {
		srv.Handle(p, auth.None, lv) // the page checks the auditor role itself (cookie or header)
	}

	if cfg.PprofAddr != "" {
		if d.pprof, d.pprofListener, err = startPprof(cfg.PprofAddr, tokens, log); err != nil {
			return nil, err
		}
	}
	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr %s: %w", cfg.HTTPAddr, err)
	}
	d.listener = l
	d.http = &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	d.http.RegisterOnShutdown(lv.Close) // ends the live page's streams
	go func() {
		err := d.http.Serve(l)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		d.served <- err
	}()
	log.Info("evidenced listening", "http", "http://"+l.Addr().String(), "correlation", cfg.Correlate)
	log.Info("live page", "url", "http://"+l.Addr().String()+"/live/", "demo", cfg.Demo)

	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	d.bgCancel = cancel
	if cfg.Demo {
		dc := demo.Config{}
		if opts.Demo != nil {
			dc = *opts.Demo
		}
		dc.Server, dc.Token, dc.Log = "http://"+l.Addr().String(), demoToken, log
		if dc.Seed == 0 {
			dc.Seed = uint64(max(cfg.DemoSeed, 1))
		}
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			if err := demo.Run(bg, dc); err != nil && bg.Err() == nil {
				log.Error("demo stopped", "err", err)
			}
		}()
	}
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		d.runStorage(bg, m, opts)
	}()
	if accessEngine != nil {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.runAccess(bg, accessEngine, m, opts)
		}()
	}
	if kv != nil {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.runCorrelation(bg, kv, m)
		}()
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.runEvaluation(bg, gate, changes, m)
		}()
	}
	ok = true
	return d, nil
}

// Addr is the HTTP API's listening address.
func (d *Daemon) Addr() string { return d.listener.Addr().String() }

// PprofAddr is where the profiler listens (--pprof-addr), or "" when off.
func (d *Daemon) PprofAddr() string {
	if d.pprofListener == nil {
		return ""
	}
	return d.pprofListener.Addr().String()
}

// JetStream is the daemon's JetStream context.
func (d *Daemon) JetStream() jetstream.JetStream { return d.js }

// Store is the ClickHouse store once connected, else nil.
func (d *Daemon) Store() *store.Store {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.store
}

func (d *Daemon) connectNATS(ctx context.Context) error {
	var err error
	if d.cfg.NATSURL == "" {
		dir := filepath.Join(d.cfg.DataDir, "nats")
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return fmt.Errorf("--data-dir: %w", err)
		}
		ec := embedded.Config{StoreDir: dir, Listen: d.cfg.NATSListen, Log: d.log}
		if d.cfg.NATSListen != "" {
			// A bus others can reach has users (docs/scale-out.md).
			users, created, err := embedded.LoadOrCreateUsers(filepath.Join(d.cfg.DataDir, embedded.UsersFile))
			if err != nil {
				return fmt.Errorf("--nats-listen: %w", err)
			}
			ec.Users = users
			d.log.Info("embedded NATS requires its users", "users_file", users.Path, "created", created)
		}
		d.embedded, err = embedded.Start(ec)
		if err != nil {
			return err
		}
		d.nc, err = d.embedded.Connect("evidenced")
	} else {
		d.nc, err = bus.Connect(ctx, d.cfg.NATSURL, "evidenced", d.log)
	}
	if err != nil {
		return fmt.Errorf("nats: %w", err)
	}
	// nats.go reconnects by itself after a lost connection, forever; but
	// a connection the server closes with a protocol error stays closed.
	// Then nothing is ingested or processed any more: say so, and stop
	// (exit 1) so that the supervisor (systemd, Kubernetes, docker) starts
	// evidenced again, rather than serve as healthy with a dead bus.
	d.nc.SetClosedHandler(func(nc *nats.Conn) {
		if d.stopping.Load() {
			return
		}
		err := fmt.Errorf("the NATS connection was closed (%v): evidenced stops so that its supervisor restarts it", nc.LastError())
		d.log.Error("NATS connection closed", "err", nc.LastError())
		select {
		case d.served <- err:
		default:
		}
	})
	js, err := jetstream.New(d.nc, jetstream.WithPublishAsyncMaxPending(16384))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	// Every stream and bucket any stage creates gets the replicas asked
	// and keeps what an operator set stronger (docs/scale-out.md).
	d.js = bus.NeverWeaken(js, bus.Replication{Streams: d.cfg.StreamReplicas, KV: d.cfg.KVReplicas})
	return nil
}

// runStorage connects to ClickHouse (retrying until it answers), applies
// the migrations and runs the archive, restarting it after a failure.
func (d *Daemon) runStorage(ctx context.Context, m *metrics.Metrics, opts Options) {
	migrations, err := store.LoadMigrations(schemas.Migrations())
	if err != nil {
		d.log.Error("migrations", "err", err)
		return
	}
	backoff := time.Second
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff):
			backoff = min(backoff*2, 30*time.Second)
			return true
		}
	}
	for {
		st, err := store.Open(ctx, d.cfg.ClickHouseURL, d.log)
		if err == nil {
			if _, err = st.Migrate(ctx, migrations); err != nil {
				st.Close()
			}
		}
		if err == nil {
			d.mu.Lock()
			d.store = st
			d.mu.Unlock()
			d.log.Info("ClickHouse connected", "url", store.Redacted(d.cfg.ClickHouseURL))
			break
		}
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("ClickHouse unavailable; the archive waits (ingestion goes on)", "url", store.Redacted(d.cfg.ClickHouseURL), "err", err, "retry_in", backoff)
		if !wait() {
			return
		}
	}
	if d.cfg.Archive {
		d.runArchive(ctx, m, opts)
	}
}

// Shutdown stops accepting requests, waits (up to the configured timeout,
// or ctx) for those in flight to be answered, stops the archive after the
// batch in hand, and closes NATS.
func (d *Daemon) Shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.ShutdownTimeout)
	defer cancel()
	d.log.Info("shutting down: draining in-flight requests")
	err := d.http.Shutdown(ctx)
	if d.pprof != nil {
		_ = d.pprof.Close() // a profile in progress is cut short
	}
	d.bgCancel()
	done := make(chan struct{})
	go func() { d.bg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		err = errors.Join(err, errors.New("archive did not stop in time; its batch will be replayed at next start"))
	}
	if st := d.Store(); st != nil {
		st.Close()
	}
	d.closeNATS()
	d.log.Info("stopped")
	return err
}

// Served returns a channel that receives the HTTP server's exit, or why
// evidenced cannot go on (its NATS connection closed for good).
func (d *Daemon) Served() <-chan error { return d.served }

func (d *Daemon) closeNATS() {
	d.stopping.Store(true)
	if d.nc != nil {
		_ = d.nc.Drain()
		for i := 0; i < 100 && !d.nc.IsClosed(); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		d.nc.Close()
	}
	if d.embedded != nil {
		d.embedded.Shutdown()
	}
}
