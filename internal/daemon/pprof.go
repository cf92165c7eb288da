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
)

// startPprof serves net/http/pprof on addr, a listener of its own (never
// the API's). With tokens, every request needs an admin token (config
// refuses a non-loopback addr without them).
func (d *Daemon) startPprof(addr string, tokens *auth.Tokens, log *slog.Logger) error {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	var h http.Handler = mux
	if tokens != nil {
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := tokens.Authenticate(r)
			if err != nil {
				w.Header().Set("WWW-Authenticate", `Bearer realm="evidenced pprof"`)
				http.Error(w, err.Error(), http.StatusUnauthorized)
				return
			}
			if !id.Allows(auth.Admin) {
				http.Error(w, fmt.Sprintf("forbidden: profiles need an admin token, %s is %s", id.Name, id.Role), http.StatusForbidden)
				return
			}
			mux.ServeHTTP(w, r)
		})
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-addr %s: %w", addr, err)
	}
	d.pprofListener = l
	// No write timeout: /debug/pprof/profile and trace stream for as long
	// as asked (?seconds=).
	d.pprof = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := d.pprof.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("pprof listener stopped", "err", err)
		}
	}()
	log.Info("pprof listening", "url", "http://"+l.Addr().String()+"/debug/pprof/", "auth", tokens != nil)
	return nil
}

// PprofAddr is where the profiles are served ("" when --pprof-addr is off).
func (d *Daemon) PprofAddr() string {
	if d.pprofListener == nil {
		return ""
	}
	return d.pprofListener.Addr().String()
}
