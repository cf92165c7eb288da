package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/problem"
)

// pprofHandler serves Go's profiler (net/http/pprof) under /debug/pprof/.
// With tokens, every request needs an admin token: a goroutine dump or a
// heap profile shows what the process holds, which is the auditor's and
// the operator's business, not a producer's.
func pprofHandler(tokens *auth.Tokens) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also heap, goroutine, allocs, block, mutex, threadcreate
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if tokens == nil {
		return mux
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := tokens.Authenticate(r)
		switch {
		case err != nil:
			w.Header().Set("WWW-Authenticate", `Bearer realm="evidence"`)
			problem.Write(w, r, problem.New(problem.Unauthorized, err.Error()))
		case id.Role != auth.Admin:
			problem.Write(w, r, problem.New(problem.Forbidden, "token "+id.Name+" has role "+string(id.Role)+"; the profiler needs role admin"))
		default:
			mux.ServeHTTP(w, r)
		}
	})
}

// startPprof listens on addr (config.Validate has checked that it is
// loopback unless tokens are set) and serves the profiler until the
// server is shut down.
func startPprof(addr string, tokens *auth.Tokens, log *slog.Logger) (*http.Server, net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("--pprof-addr %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           pprofHandler(tokens),
		ReadHeaderTimeout: 10 * time.Second,
		// No write timeout: a CPU profile or a trace runs for ?seconds=N.
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("profiler stopped", "err", err)
		}
	}()
	log.Info("profiler listening", "url", "http://"+l.Addr().String()+"/debug/pprof/", "token_required", tokens != nil)
	return srv, l, nil
}
