package api

import (
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/evidencepipeline/evidence/internal/problem"
)

// What every request goes through before its route (Server.ServeHTTP): the
// security headers of every answer, and, in open mode, the Host check.

// setSecurityHeaders gives every answer of the API the headers a JSON API
// should send to browsers: no content sniffing, no caching (answers hold
// evidence), never framed, no script or style of any kind. A handler mounted
// on the server may replace them (the live page sets its own, from one
// place).
func setSecurityHeaders(h http.Header) {
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// isLoopbackHost reports whether a Host header names this machine on
// loopback: localhost or a name under .localhost (reserved by RFC 6761: no
// one can register one, and browsers resolve them to loopback), or an address of
// 127.0.0.0/8 or ::1 (IPv6 in brackets), with or without a port. Names are
// compared without case. Any other name, even one whose DNS answer is
// 127.0.0.1, is not: that is what a DNS-rebinding page sends.
func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else if strings.HasPrefix(host, "[") && strings.HasSuffix(host, "]") {
		host = host[1 : len(host)-1]
	}
	host = strings.ToLower(host)
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Zone() == "" && ip.Unmap().IsLoopback()
}

// refuseHost answers a request of open mode addressed to a name that is not
// loopback: 421 Misdirected Request, saying why and what to do.
func (s *Server) refuseHost(w http.ResponseWriter, r *http.Request) {
	use := "http://127.0.0.1:<port>/"
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		use = "http://" + a.String() + "/"
	}
	what := "host " + `"` + r.Host + `"`
	if r.Host == "" {
		what = "no host (the request has no Host header)"
	}
	s.log.Warn("refused a request addressed to a host that is not loopback (no --tokens-file: the API is open, on loopback only)",
		"host", r.Host, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
	fail(w, r, problem.MisdirectedHost,
		"refused: this request is addressed to "+what+". Without --tokens-file evidenced's API is open and answers only requests addressed to a loopback name or address "+
			"(localhost, *.localhost, 127.0.0.1 or [::1], any port), so that a web page whose name is pointed at 127.0.0.1 (DNS rebinding) cannot use it. "+
			"Open "+use+" instead (a tunnel or proxy in front must keep that Host), or start evidenced with --tokens-file to serve other names")
}

// noRoute answers a request that matches no route. The mux's own answer
// (h: 404, 405 with Allow, or a redirect to the path with a trailing slash
// or cleaned) is run into a recorder first: a redirect is sent as it is,
// a 405 keeps its Allow header, and the text body becomes a problem.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, r)
	switch {
	case rec.code >= 300 && rec.code < 400:
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.code)
	case rec.code == http.StatusMethodNotAllowed:
		allow := rec.header.Get("Allow")
		w.Header().Set("Allow", allow)
		fail(w, r, problem.MethodNotAllowed, r.Method+" "+r.URL.Path+": this route answers "+allow)
	default:
		fail(w, r, problem.NoRoute, "no route "+r.Method+" "+r.URL.Path+" (the routes are described at GET /v1/openapi.yaml)")
	}
}

// statusRecorder keeps the status and headers of an answer and drops its
// body.
type statusRecorder struct {
	header http.Header
	code   int
}

func (r *statusRecorder) Header() http.Header { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return len(b), nil
}
func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
