package live

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/problem"
)

// CookieName is the cookie that carries an auditor's page session, once a
// token was given as ?token=.
const CookieName = "evidence_live"

// SessionLifetime is how long a page session lasts; then ?token= again.
const SessionLifetime = 12 * time.Hour

// sessions are the page's sessions: a random id (the cookie) standing for
// the identity of the token that opened it, in memory only. The token
// itself never leaves the request that gave it: a cookie read off a
// browser opens the page for a while, not the API. A restart of evidenced
// ends every session.
type sessions struct {
	mu sync.Mutex
	m  map[string]session
}

type session struct {
	id      auth.Identity
	expires time.Time
}

func (s *sessions) open(id auth.Identity, now time.Time) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	sid := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]session{}
	}
	for k, v := range s.m { // drop the expired ones
		if !now.Before(v.expires) {
			delete(s.m, k)
		}
	}
	s.m[sid] = session{id: id, expires: now.Add(SessionLifetime)}
	return sid, nil
}

func (s *sessions) get(sid string, now time.Time) (auth.Identity, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[sid]
	if !ok || !now.Before(v.expires) {
		delete(s.m, sid)
		return auth.Identity{}, false
	}
	return v.id, true
}

// authorize lets a request through when access is open, or when it carries
// a token of role auditor (or admin) in the Authorization header or the
// page's session cookie. A ?token= is checked, opens a session whose random
// id goes into an HttpOnly, SameSite=Strict cookie, and the browser is
// redirected to the same address without it, so the token leaves the
// address bar and the history and is never stored in the browser.
func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) bool {
	if h.cfg.Tokens == nil {
		return true
	}
	if tok := r.URL.Query().Get("token"); tok != "" {
		id, err := h.check(tok)
		if err != nil {
			h.denied(w, r, http.StatusUnauthorized, "the token given in ?token= is not known")
			return false
		}
		if !id.Allows(auth.Auditor) {
			h.denied(w, r, http.StatusForbidden, "token "+id.Name+" has role "+string(id.Role)+"; the live page needs role auditor")
			return false
		}
		sid, err := h.sessions.open(id, time.Now())
		if err != nil {
			h.denied(w, r, http.StatusInternalServerError, "could not open a session: "+err.Error())
			return false
		}
		http.SetCookie(w, &http.Cookie{
			Name: CookieName, Value: sid, Path: "/", HttpOnly: true, MaxAge: int(SessionLifetime / time.Second),
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
		})
		u := *r.URL
		q := u.Query()
		q.Del("token")
		u.RawQuery = q.Encode()
		http.Redirect(w, r, (&url.URL{Path: u.Path, RawQuery: u.RawQuery}).String(), http.StatusSeeOther)
		return false
	}
	var (
		id  auth.Identity
		err = auth.ErrNoToken
	)
	if r.Header.Get("Authorization") != "" {
		id, err = h.cfg.Tokens.Authenticate(r)
	} else if c, cerr := r.Cookie(CookieName); cerr == nil && c.Value != "" {
		if sid, ok := h.sessions.get(c.Value, time.Now()); ok {
			id, err = sid, nil
		} else {
			err = auth.ErrNoToken
		}
	}
	if err != nil {
		h.denied(w, r, http.StatusUnauthorized, "the live page needs an auditor token: open /live/?token=<token> once (a session of 12 hours is kept in a cookie), or send Authorization: Bearer <token>")
		return false
	}
	if !id.Allows(auth.Auditor) {
		h.denied(w, r, http.StatusForbidden, "token "+id.Name+" has role "+string(id.Role)+"; the live page needs role auditor")
		return false
	}
	return true
}

func (h *Handler) check(token string) (auth.Identity, error) {
	r := &http.Request{Header: http.Header{"Authorization": {"Bearer " + token}}}
	return h.cfg.Tokens.Authenticate(r)
}

func (h *Handler) denied(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="evidence"`)
	}
	if strings.HasPrefix(r.URL.Path, "/live/api/") {
		// The JSON API answers a problem document, not the page.
		t := map[int]problem.Type{http.StatusUnauthorized: problem.Unauthorized, http.StatusForbidden: problem.Forbidden}[code]
		if t.Slug == "" {
			t = problem.Internal
		}
		problem.Write(w, r, problem.New(t, msg))
		return
	}
	h.render(w, code, "denied.html", map[string]any{"Title": http.StatusText(code), "Message": msg})
}
