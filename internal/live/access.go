package live

import (
	"net/http"
	"net/url"

	"github.com/evidencepipeline/evidence/internal/auth"
)

// CookieName is the cookie that carries an auditor's token for the page,
// once given as ?token=.
const CookieName = "evidence_live"

// authorize lets a request through when access is open, or when it carries
// a token of role auditor (or admin) in the Authorization header or the
// page's cookie. A ?token= is checked, stored in an HttpOnly, SameSite=Strict
// cookie, and the browser redirected to the same address without it, so the
// token leaves the address bar and the history.
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
		http.SetCookie(w, &http.Cookie{
			Name: CookieName, Value: tok, Path: "/", HttpOnly: true,
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
		id, err = h.check(c.Value)
	}
	if err != nil {
		h.denied(w, r, http.StatusUnauthorized, "the live page needs an auditor token: open /live/?token=<token> once (it is kept in a cookie), or send Authorization: Bearer <token>")
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
	h.render(w, code, "denied.html", map[string]any{"Title": http.StatusText(code), "Message": msg})
}
