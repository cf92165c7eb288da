// Package live is evidenced's built-in live page: the quick start's
// dashboard, no Grafana needed. It serves, under /live/:
//
//   - the posture summary (share of production deployments that passed
//     every control over 24 h and 7 d, open violations, pending controls
//     with their deadlines, unmatched deployments), read from ClickHouse
//     (deployment_verdicts FINAL, the newest control_results row per change
//     and control), read in the background and served from the newest
//     reading (snapshot.go); the access controls' findings, per
//     repository and quarter, counted apart from the changes;
//   - the attention lists: pending controls with the time left, exceptions
//     expiring within a week, unmatched production deployments;
//   - the stream of verdicts as they happen, as server-sent events
//     (/live/events) fed from the core NATS subject evaluate.LiveSubject;
//   - a searchable list of change records (changes FINAL);
//   - the trace of one change: its record from the live state
//     (correlate.Reader) and each control's current result.
//
// Everything (templates, script, style) is embedded in the binary; the page
// loads nothing from elsewhere. With a tokens file, every route needs the
// auditor role: a bearer token in the Authorization header, or the page's
// cookie, set once from ?token= (docs/live.md).
//
// ClickHouse down: the summary and the lists say so, and the stream and
// the change trace (from the live state) go on working.
package live

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

//go:embed assets
var assets embed.FS

// Config is what the page is built from.
type Config struct {
	// Store returns the ClickHouse store, or nil while it is not connected.
	Store func() *store.Store
	// NATS is the connection the verdict stream subscribes on.
	NATS *nats.Conn
	// Subject is the verdicts' subject (default evaluate.LiveSubject).
	Subject string
	// Changes reads change records from the live state; nil: the trace
	// page reads the ClickHouse copy.
	Changes correlate.Reader
	// Tokens is the access control; nil: open (evidenced then listens on
	// loopback only).
	Tokens *auth.Tokens
	// ProductionEnvironments count as production (default: the controls'
	// defaults, production and prod).
	ProductionEnvironments []string
	// Heartbeat is the interval of the stream's heartbeat comments
	// (default 15s).
	Heartbeat time.Duration
	// QueryTimeout bounds each ClickHouse query of a page (default 5s).
	QueryTimeout time.Duration
	// ReadTimeout bounds a background reading of the posture summary
	// (default 2m).
	ReadTimeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// Handler serves the live page. Close it before shutting the HTTP server
// down: open streams end then.
type Handler struct {
	cfg    Config
	mux    *http.ServeMux
	tmpl   *template.Template
	broker *broker
	sub    *nats.Subscription
	log    *slog.Logger

	closeOnce sync.Once
	closed    chan struct{}
	// bg is cancelled by Close: the background readings end.
	bg       context.Context
	bgCancel context.CancelFunc
	pc       postureCache

	sessions sessions
}

// New builds the handler and subscribes to the verdicts.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		cfg.Store = func() *store.Store { return nil }
	}
	if cfg.Subject == "" {
		cfg.Subject = evaluate.LiveSubject
	}
	if len(cfg.ProductionEnvironments) == 0 {
		cfg.ProductionEnvironments = evaluate.DefaultParams().ProductionEnvironments
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	if cfg.QueryTimeout <= 0 {
		cfg.QueryTimeout = 5 * time.Second
	}
	if cfg.ReadTimeout <= 0 {
		cfg.ReadTimeout = 2 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.NATS == nil {
		return nil, errors.New("live: a NATS connection is required for the verdict stream")
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(assets, "assets/*.html")
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), tmpl: tmpl, broker: newBroker(256), log: cfg.Log.With("component", "live"), closed: make(chan struct{})}
	h.bg, h.bgCancel = context.WithCancel(context.Background())
	h.sub, err = cfg.NATS.Subscribe(cfg.Subject, h.receive)
	if err != nil {
		return nil, err
	}
	static, _ := fs.Sub(assets, "assets/static")
	h.mux.HandleFunc("GET /{$}", h.root)
	h.mux.Handle("GET /live/static/", http.StripPrefix("/live/static/", http.FileServerFS(static)))
	h.mux.HandleFunc("GET /live/{$}", h.page)
	h.mux.HandleFunc("GET /live/posture", h.postureFragment)
	h.mux.HandleFunc("GET /live/api/posture", h.postureJSON)
	h.mux.HandleFunc("GET /live/attention", h.attentionFragment)
	h.mux.HandleFunc("GET /live/api/attention", h.attentionJSON)
	h.mux.HandleFunc("GET /live/trend", h.trendFragment)
	h.mux.HandleFunc("GET /live/api/trend", h.trendJSON)
	h.mux.HandleFunc("GET /live/events", h.events)
	h.mux.HandleFunc("GET /live/changes", h.changes)
	h.mux.HandleFunc("GET /live/changes.csv", h.changesCSV)
	h.mux.HandleFunc("GET /live/changes/{id...}", h.trace)
	return h, nil
}

// Patterns are the routes to mount the handler on (with no role: it checks
// access itself).
func (h *Handler) Patterns() []string { return []string{"GET /{$}", "GET /live/"} }

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	static := strings.HasPrefix(r.URL.Path, "/live/static/")
	setSecurityHeaders(w.Header(), static)
	// The redirect and the page's style and script (public code, no data)
	// need no token: the page that says "denied" uses the style.
	if r.URL.Path != "/" && !static && !h.authorize(w, r) {
		return
	}
	h.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy is the page's policy: everything from evidenced
// itself, nothing inline, never framed.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"

// setSecurityHeaders gives every answer of the page, whatever its route
// and status (the pages, the stream, the redirects, the login's 303, the
// 401 and 403 pages, errors), the same security headers, from this one
// place, before any handler runs. Nothing but the public static files may
// be stored by a browser or a proxy: the pages hold evidence, and a
// redirect's address may hold a token. The static files are revalidated
// each time (no-cache), so a new evidenced's script is picked up at once.
func setSecurityHeaders(h http.Header, static bool) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if static {
		h.Set("Cache-Control", "no-cache")
	} else {
		h.Set("Cache-Control", "no-store")
	}
}

// Close unsubscribes and ends the open streams.
func (h *Handler) Close() {
	h.closeOnce.Do(func() {
		close(h.closed)
		h.bgCancel()
		if h.sub != nil {
			_ = h.sub.Unsubscribe()
		}
	})
}

func (h *Handler) root(w http.ResponseWriter, r *http.Request) {
	target := "/live/"
	if q := r.URL.RawQuery; q != "" {
		target += "?" + q
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// ctx bounds a page's ClickHouse queries.
func (h *Handler) queryCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), h.cfg.QueryTimeout)
}

func (h *Handler) isProduction(env string) bool {
	for _, p := range h.cfg.ProductionEnvironments {
		if strings.EqualFold(p, env) {
			return true
		}
	}
	return false
}

var _ http.Handler = (*Handler)(nil)
