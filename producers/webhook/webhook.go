// Package webhook is the HTTP side of the webhook adapters (GitHub, GitLab,
// Jira, ServiceNow): one handler that checks the sender before anything
// else, translates the native payload into catalog events with the
// provider's translator, publishes them to JetStream and answers only once
// JetStream has acknowledged them.
//
// A provider is a small interface: it verifies a delivery and translates
// it. Kinds of deliveries that carry no evidence are acknowledged with 200
// and counted, not archived.
//
// The adapters share the rest of their plumbing from here: Delivery builds
// each delivery's events and the webhook.received event that keeps the
// original payload; Decode, FieldError, CommitSHA and ParseTime read
// payloads with errors that name the field at fault.
package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/metrics"
)

// ErrBadSignature means the delivery's signature or token does not match
// the configured secret, or is missing.
var ErrBadSignature = errors.New("signature does not match")

// Ignored is returned by a translator (wrapped or as is) for a delivery
// that carries no evidence: it is acknowledged and counted, not stored.
type Ignored struct{ Reason string }

func (i *Ignored) Error() string { return "ignored: " + i.Reason }

// Provider verifies and translates the deliveries of one system.
type Provider interface {
	// Name is the provider's name, as in the endpoint /webhooks/<name>.
	Name() string
	// SecretEnv names the environment variable of the secret, for the
	// message shown when none is configured.
	SecretEnv() string
	// Verify checks the delivery against secret. It returns an error
	// wrapping ErrBadSignature that says what is wrong.
	Verify(h http.Header, body []byte, secret string) error
	// Translate turns one delivery into events. An *Ignored error means
	// the delivery carries no evidence; any other error means the payload
	// is malformed, and says how.
	Translate(h http.Header, body []byte) ([]*ce.Event, error)
}

// Publisher stores events and reports, per event, JetStream's
// acknowledgement (see bus.Publisher).
type Publisher interface {
	Publish(ctx context.Context, events []*ce.Event) ([]bus.Published, error)
}

// Handler serves POST /webhooks/<provider>.
type Handler struct {
	provider Provider
	secret   string
	pub      Publisher
	maxBody  int64
	log      *slog.Logger
	stage    *metrics.Stage
	ignored  *prometheus.CounterVec
}

// NewHandler returns the handler of one provider. An empty secret makes
// every request be refused with a message saying the secret is not
// configured. m and log may be nil.
func NewHandler(p Provider, secret string, pub Publisher, maxBody int64, log *slog.Logger, m *metrics.Metrics) *Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if maxBody <= 0 {
		maxBody = 25 << 20 // GitHub caps payloads at 25 MB
	}
	h := &Handler{provider: p, secret: secret, pub: pub, maxBody: maxBody,
		log: log.With("webhook", p.Name()), stage: m.Stage("webhook_" + p.Name())}
	h.ignored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evidence_webhook_ignored_total", Help: "Webhook deliveries acknowledged without evidence, by provider and reason.",
	}, []string{"provider", "reason"})
	if err := m.Registerer().Register(h.ignored); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			h.ignored = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return h
}

// Response is the JSON body of every answer.
type Response struct {
	Provider string `json:"provider"`
	// Accepted is the number of events stored (including duplicates of
	// events already stored, which are not stored twice).
	Accepted   int      `json:"accepted,omitempty"`
	Duplicates int      `json:"duplicates,omitempty"`
	Events     []string `json:"events,omitempty"` // types of the events stored
	Ignored    string   `json:"ignored,omitempty"`
	Error      string   `json:"error,omitempty"`
}

func (h *Handler) reply(w http.ResponseWriter, code int, r Response) {
	r.Provider = h.provider.Name()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer h.stage.Since(start)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.reply(w, http.StatusMethodNotAllowed, Response{Error: "use POST"})
		return
	}
	if h.secret == "" {
		h.stage.Failed("no_secret", 1)
		h.reply(w, http.StatusUnauthorized, Response{Error: fmt.Sprintf(
			"the %s webhook secret is not configured on this server (set %s): every delivery is refused", h.provider.Name(), h.provider.SecretEnv())})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.stage.Failed("too_large", 1)
			h.reply(w, http.StatusRequestEntityTooLarge, Response{Error: fmt.Sprintf("body over the limit of %d bytes", mbe.Limit)})
			return
		}
		h.reply(w, http.StatusBadRequest, Response{Error: "reading body: " + err.Error()})
		return
	}
	if err := h.provider.Verify(r.Header, body, h.secret); err != nil {
		h.stage.Failed("signature", 1)
		h.log.Warn("webhook refused", "reason", err.Error(), "remote", r.RemoteAddr)
		h.reply(w, http.StatusUnauthorized, Response{Error: err.Error()})
		return
	}
	h.stage.Received(1)
	events, err := h.provider.Translate(r.Header, body)
	var ign *Ignored
	switch {
	case errors.As(err, &ign):
		h.ignored.WithLabelValues(h.provider.Name(), ign.Reason).Inc()
		h.reply(w, http.StatusOK, Response{Ignored: ign.Reason})
		return
	case err != nil:
		h.stage.Failed("invalid", 1)
		h.reply(w, http.StatusBadRequest, Response{Error: err.Error()})
		return
	}
	for _, e := range events {
		if err := e.Validate(); err != nil {
			// A translator bug, not the sender's fault: say so, keep nothing half-done.
			h.log.Error("webhook translator produced an invalid event", "type", e.Type, "err", err)
			h.reply(w, http.StatusInternalServerError, Response{Error: "translator produced an invalid event: " + err.Error()})
			return
		}
	}
	res, err := h.pub.Publish(r.Context(), events)
	if err != nil {
		h.reply(w, http.StatusServiceUnavailable, Response{Error: "event stream unavailable: " + err.Error()})
		return
	}
	out := Response{}
	for i, p := range res {
		if p.Err != nil {
			h.stage.Failed("unavailable", 1)
			h.reply(w, http.StatusServiceUnavailable, Response{Error: fmt.Sprintf("event %d of %d not stored: %v (the sender should retry the delivery; stored events are not stored twice)", i+1, len(res), p.Err)})
			return
		}
		out.Accepted++
		if p.Duplicate {
			out.Duplicates++
		}
		out.Events = append(out.Events, events[i].Type)
	}
	h.stage.Written(out.Accepted - out.Duplicates)
	h.reply(w, http.StatusAccepted, out)
}
