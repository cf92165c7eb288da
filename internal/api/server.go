// Package api is evidenced's HTTP API: the CloudEvents receiver
// (POST /v1/events), the webhook endpoints, health (/healthz, /readyz) and
// Prometheus metrics (/metrics), behind bearer-token access control with
// roles.
//
// Every error answer is an RFC 9457 problem document (internal/problem;
// docs/api.md#errors), a request that matches no route included. The
// routes are described in OpenAPI 3.1 (openapi/openapi.yaml, served at GET
// /v1/openapi.yaml); the tests hold the server to it (apitest).
//
// Every answer carries security headers (no sniffing, no caching, no
// framing). Without tokens (open mode, on loopback only) the server answers
// only requests whose Host is a loopback name or address, so a web page that
// rebinds its own name to 127.0.0.1 cannot post events or read evidence;
// others get 421 Misdirected Request.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/evidencepipeline/evidence/internal/api/openapi"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/schemas"

	"github.com/evidencepipeline/evidence/internal/version"
)

// OpenAPI is the OpenAPI 3.1 description of the API (every route of the
// server, the webhooks and the live page; openapi/openapi.yaml), served at
// GET /v1/openapi.yaml.
var OpenAPI = openapi.YAML

func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	_, _ = w.Write(OpenAPI)
}

// Check is one readiness check: nil when the dependency is usable.
type Check func(ctx context.Context) error

// Config is what the server is built from.
type Config struct {
	// Publisher stores accepted events (bus.Publisher).
	Publisher webhook.Publisher
	// Catalog validates the data of catalog event types.
	Catalog *schemas.Catalog
	// Admit, when set, refuses what a later stage would refuse (the
	// correlation stage's extraction and keys: correlate.Extractor.Admit),
	// so that an event is refused at the door rather than dead-lettered
	// after a 202. Its error names the field when it can (*ce.Error).
	Admit func(*ce.Event) error
	// Tokens is the access control; nil means open access: evidenced then
	// listens on loopback only, and the server refuses (421) every request
	// whose Host is not a loopback name or address (localhost, *.localhost,
	// 127.0.0.0/8, [::1]), which keeps DNS-rebinding pages out. With tokens
	// the Host is not checked: a rebinding page has no token to send.
	Tokens *auth.Tokens
	// JobTokens, with Tokens, also accepts CI job tokens (OIDC ID tokens
	// of the configured issuers, jobtoken.Verifier) as producer
	// credentials for the evidence of their own run (jobtoken.go).
	JobTokens JobTokenVerifier
	// MaxBodyBytes limits request bodies (default 10 MiB).
	MaxBodyBytes int64
	// Required checks make /readyz fail; Informative ones are reported in
	// its body only (ClickHouse: ingestion works without it). Each is
	// reported under its name, which must not be "status" or "failing"
	// (the body's other keys); only a caller of role admin (anyone in open
	// mode) sees a failing check's error.
	Required    map[string]Check
	Informative map[string]Check
	// Gatherer serves /metrics (default: prometheus.DefaultGatherer).
	Gatherer prometheus.Gatherer
	Metrics  *metrics.Metrics
	Log      *slog.Logger
	// Changes reads change records for GET /v1/changes (role auditor);
	// nil leaves those routes out (404).
	Changes correlate.Reader
	// Gate judges changes for GET /v1/gate (role gate; docs/gate.md) with
	// GateParams; the route is mounted only when Changes and Gate are set.
	Gate       *evaluate.Engine
	GateParams evaluate.Params
	// Watermark, when set, is how far the correlation stage has come in
	// stream time (correlate.StreamWatermark): the gate answers only from
	// a state that has taken in every event that arrived before the
	// question, waiting up to GateCatchUp for it, and otherwise denies,
	// saying the state is behind (a pipeline that just sent its evidence
	// must not be judged without it).
	Watermark func(ctx context.Context) (time.Time, error)
	// GateCatchUp bounds that wait (default 10s).
	GateCatchUp time.Duration
	// TLog serves the transparency log's checkpoint and proofs under
	// /v1/log (role auditor; log.go); nil leaves those routes out.
	TLog LogSource
}

// Server is the HTTP API.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	log     *slog.Logger
	receive *metrics.Stage
	routes  []string
}

// New builds the server and its routes.
func New(cfg Config) *Server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 10 << 20
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Gatherer == nil {
		cfg.Gatherer = prometheus.DefaultGatherer
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), log: cfg.Log, receive: cfg.Metrics.Stage("receiver")}
	s.Handle("POST /v1/events", auth.Producer, http.HandlerFunc(s.postEvents))
	s.Handle("GET /healthz", auth.None, http.HandlerFunc(s.healthz))
	s.Handle("GET /readyz", auth.None, http.HandlerFunc(s.readyz))
	s.Handle("GET /metrics", auth.None, promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	s.Handle("GET /v1/openapi.yaml", auth.None, http.HandlerFunc(serveOpenAPI))
	if cfg.Changes != nil {
		s.Handle("GET /v1/changes", auth.Auditor, http.HandlerFunc(s.listChanges))
		s.Handle("GET /v1/changes/{id...}", auth.Auditor, http.HandlerFunc(s.getChange))
	}
	if cfg.TLog != nil {
		s.Handle("GET /v1/log/checkpoint", auth.Auditor, http.HandlerFunc(s.logCheckpoint))
		s.Handle("GET /v1/log/proof/inclusion", auth.Auditor, http.HandlerFunc(s.logInclusion))
		s.Handle("GET /v1/log/proof/consistency", auth.Auditor, http.HandlerFunc(s.logConsistency))
		s.Handle("POST /v1/log/cosignature", auth.Auditor, http.HandlerFunc(s.logCosignature))
	}
	if cfg.Changes != nil && cfg.Gate != nil {
		s.Handle("GET /v1/gate", auth.Gate, http.HandlerFunc(s.gate))
	}
	return s
}

// Handle adds a route that requires role (auth.None: open).
func (s *Server) Handle(pattern string, role auth.Role, h http.Handler) {
	s.mux.Handle(pattern, s.authorize(role, h))
	s.routes = append(s.routes, pattern)
}

// Routes lists the patterns of the routes added, in order (each must be
// described in OpenAPI).
func (s *Server) Routes() []string { return slices.Clone(s.routes) }

// ServeHTTP sets the security headers, refuses a request of open mode that
// is not addressed to loopback, answers a request that matches no route
// with a problem (no-route, or method-not-allowed with its Allow header),
// and routes the rest.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if s.cfg.Tokens == nil && !isLoopbackHost(r.Host) {
		s.refuseHost(w, r)
		return
	}
	if h, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(w, r, h)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) authorize(role auth.Role, h http.Handler) http.Handler {
	if role == auth.None {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.cfg.Tokens == nil {
			h.ServeHTTP(w, r)
			return
		}
		id, err := s.authenticate(r) // a static token, else a CI job token (jobtoken.go)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="evidence"`)
			t := problem.Unauthorized
			if authStatus(err) == http.StatusServiceUnavailable { // the issuer's keys cannot be read now
				t = problem.Unavailable
			}
			fail(w, r, t, err.Error())
			return
		}
		if !id.Allows(role) {
			fail(w, r, problem.Forbidden, "token "+id.Name+" has role "+string(id.Role)+"; this endpoint needs role "+string(role))
			return
		}
		h.ServeHTTP(w, r.WithContext(auth.WithIdentity(r.Context(), id)))
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "version": version.Get().Version})
}

// readyz answers 200 when every Required check passes, else 503, with
// each check "ok" or "unavailable" and, when not ready, the failing
// required checks' names under "failing". The checks' errors (they may
// name addresses and users) are added ("unavailable: <error>") only for a
// caller of role admin, or anyone in open mode.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	details := s.showsDetails(r)
	out := map[string]any{}
	var failing []string
	run := func(checks map[string]Check, required bool) {
		for name, c := range checks {
			if err := c(ctx); err != nil {
				out[name] = "unavailable"
				if details {
					out[name] = "unavailable: " + err.Error()
				}
				if required {
					failing = append(failing, name)
				}
				continue
			}
			out[name] = "ok"
		}
	}
	run(s.cfg.Required, true)
	run(s.cfg.Informative, false)
	code := http.StatusOK
	out["status"] = "ready"
	if len(failing) > 0 {
		slices.Sort(failing)
		code, out["status"], out["failing"] = http.StatusServiceUnavailable, "not ready", failing
	}
	writeJSON(w, code, out)
}

// showsDetails reports whether /readyz may show r the checks' errors: in
// open mode, or to a token of role admin. Any other caller, a bad token
// included, gets the anonymous answer (a probe is not refused).
func (s *Server) showsDetails(r *http.Request) bool {
	if s.cfg.Tokens == nil {
		return true
	}
	if r.Header.Get("Authorization") == "" {
		return false
	}
	id, err := s.cfg.Tokens.Authenticate(r)
	return err == nil && id.Role == auth.Admin
}

// fail answers with a problem of type t (docs/api.md#errors).
func fail(w http.ResponseWriter, r *http.Request, t problem.Type, detail string) {
	problem.Write(w, r, problem.New(t, detail))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil && !errors.Is(err, http.ErrHandlerTimeout) {
		return
	}
}

// invalidParameters answers a request whose parameters are at fault: an
// invalid-parameter problem listing each, its detail all of them.
func invalidParameters(w http.ResponseWriter, r *http.Request, errs []problem.FieldError) {
	details := make([]string, len(errs))
	for i, e := range errs {
		details[i] = e.Detail
	}
	p := problem.New(problem.InvalidParameter, strings.Join(details, "; "))
	p.Errors = errs
	problem.Write(w, r, p)
}
