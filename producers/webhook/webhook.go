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
// Deliveries are de-duplicated twice. Event ids come from the sender's
// delivery id (or the body's hash), so JetStream stores a redelivery
// within its duplicate window once. And once every event of a delivery is
// acknowledged, the handler writes a seen marker (Seen: a KV bucket, one
// entry per provider and SHA-256 of the body, the part the signature
// covers): a later delivery of the same body, with any delivery id, at
// any time within the marker's max age, is answered as a duplicate and
// nothing is published.
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
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/problem"
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
	seen     *Seen
	check    func(*ce.Event) error
	maxBody  int64
	log      *slog.Logger
	stage    *metrics.Stage
	ignored  *prometheus.CounterVec

	labelsMu sync.Mutex
	labels   map[string]bool // the reason labels in use, at most maxReasonLabels
}

// maxReasonLabels bounds the reason labels of evidence_webhook_ignored_total:
// a reason may hold what the sender wrote (an event name, an action), and
// a signed sender must not grow the metrics without bound.
const maxReasonLabels = 64

// reasonLabel is the label of an ignored delivery's reason: valid UTF-8
// (the client panics on any other), at most 80 bytes, and "other" once
// maxReasonLabels distinct ones are in use.
func (h *Handler) reasonLabel(reason string) string {
	l := strings.ToValidUTF8(reason, "?")
	if len(l) > 80 {
		l = strings.ToValidUTF8(l[:80], "")
	}
	h.labelsMu.Lock()
	defer h.labelsMu.Unlock()
	if h.labels == nil {
		h.labels = map[string]bool{}
	}
	if !h.labels[l] {
		if len(h.labels) >= maxReasonLabels {
			return "other"
		}
		h.labels[l] = true
	}
	return l
}

// Config configures a Handler. Provider, Publisher and Seen are required.
type Config struct {
	Provider Provider
	// Secret is the provider's webhook secret. Empty, every delivery is
	// refused with a message saying the secret is not configured.
	Secret string
	// Publisher stores the events (bus.Publisher).
	Publisher Publisher
	// Seen is the durable record of the bodies already stored (NewSeen),
	// shared by the handlers of every provider: a replay of a stored body
	// is answered as a duplicate and not stored again, whatever its
	// delivery id and however long after.
	Seen *Seen
	// Check, when set, is the door's check of every event the delivery
	// makes (api.Server.CheckEvent: the input rules, the catalog, what the
	// later stages would refuse), the same as for POST /v1/events. A
	// delivery any of whose events it refuses is answered 400 naming the
	// field, and nothing of it is stored.
	Check func(*ce.Event) error
	// MaxBody limits the body (0 means 25 MiB, GitHub's cap).
	MaxBody int64
	// Log and Metrics may be nil.
	Log     *slog.Logger
	Metrics *metrics.Metrics
}

// markTimeout bounds the write of a seen marker, which goes on when the
// sender hangs up once its events are stored.
const markTimeout = 10 * time.Second

// NewHandler returns the handler of one provider. A missing Provider,
// Publisher or Seen is an error.
func NewHandler(c Config) (*Handler, error) {
	if c.Provider == nil {
		return nil, errors.New("webhook: Config.Provider is nil")
	}
	name := c.Provider.Name()
	if !providerNameRe.MatchString(name) {
		return nil, fmt.Errorf("webhook: provider name %q: want lower-case letters, digits, - or _", name)
	}
	if c.Publisher == nil {
		return nil, fmt.Errorf("webhook %s: Config.Publisher is nil: the handler has nowhere to store events", name)
	}
	if c.Seen == nil {
		return nil, fmt.Errorf("webhook %s: Config.Seen is nil: without the seen markers (webhook.NewSeen, bucket %s) a signed body replayed with a new delivery id, or after JetStream's duplicate window, would be stored again", name, SeenBucket)
	}
	log := c.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	maxBody := c.MaxBody
	if maxBody <= 0 {
		maxBody = 25 << 20 // GitHub caps payloads at 25 MB
	}
	m := c.Metrics
	h := &Handler{provider: c.Provider, secret: c.Secret, pub: c.Publisher, seen: c.Seen, check: c.Check, maxBody: maxBody,
		log: log.With("webhook", name), stage: m.Stage("webhook_" + name)}
	h.ignored = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "evidence_webhook_ignored_total", Help: "Webhook deliveries acknowledged without evidence, by provider and reason.",
	}, []string{"provider", "reason"})
	if err := m.Registerer().Register(h.ignored); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			h.ignored = are.ExistingCollector.(*prometheus.CounterVec)
		}
	}
	return h, nil
}

// providerNameRe is what a provider name may be: it is the endpoint's
// last segment and the first token of its seen markers' keys.
var providerNameRe = regexp.MustCompile(`^[a-z0-9_-]+$`)

// Response is the JSON body of every answer. An error answer is a problem
// document (RFC 9457: the embedded Problem's members are set, content type
// application/problem+json) whose extension member is the provider.
type Response struct {
	problem.Problem
	Provider string `json:"provider"`
	// Accepted is the number of events stored (including duplicates of
	// events already stored, which are not stored twice).
	Accepted   int      `json:"accepted,omitempty"`
	Duplicates int      `json:"duplicates,omitempty"`
	Events     []string `json:"events,omitempty"` // types of the events stored
	Ignored    string   `json:"ignored,omitempty"`
}

func (h *Handler) reply(w http.ResponseWriter, code int, r Response) {
	r.Provider = h.provider.Name()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(r)
}

// refuse answers with a problem of type t naming the provider; errs name
// the payload's fields at fault.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, t problem.Type, detail string, errs ...problem.FieldError) {
	out := Response{Problem: *problem.New(t, detail), Provider: h.provider.Name()}
	out.Errors = errs
	problem.Write(w, r, &out)
}

// fieldErrors names the field of err when it is a *ce.Error.
func fieldErrors(err error) []problem.FieldError {
	var fe *ce.Error
	if errors.As(err, &fe) {
		return []problem.FieldError{{Field: fe.Field, Detail: fe.Message}}
	}
	return nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer h.stage.Since(start)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		h.refuse(w, r, problem.MethodNotAllowed, r.Method+" "+r.URL.Path+": use POST")
		return
	}
	if h.secret == "" {
		h.stage.Failed("no_secret", 1)
		h.refuse(w, r, problem.WebhookNotConfigured, fmt.Sprintf(
			"the %s webhook secret is not configured on this server (set %s): every delivery is refused", h.provider.Name(), h.provider.SecretEnv()))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.stage.Failed("too_large", 1)
			h.refuse(w, r, problem.BodyTooLarge, fmt.Sprintf("body over the limit of %d bytes", mbe.Limit))
			return
		}
		h.refuse(w, r, problem.MalformedBody, "reading body: "+err.Error())
		return
	}
	if err := h.provider.Verify(r.Header, body, h.secret); err != nil {
		h.stage.Failed("signature", 1)
		h.log.Warn("webhook refused", "reason", err.Error(), "remote", r.RemoteAddr)
		h.refuse(w, r, problem.WebhookSignature, err.Error())
		return
	}
	h.stage.Received(1)
	events, err := h.provider.Translate(r.Header, body)
	var ign *Ignored
	switch {
	case errors.As(err, &ign):
		h.ignored.WithLabelValues(h.provider.Name(), h.reasonLabel(ign.Reason)).Inc()
		h.reply(w, http.StatusOK, Response{Ignored: ign.Reason})
		return
	case err != nil:
		h.stage.Failed("invalid", 1)
		h.refuse(w, r, problem.InvalidPayload, err.Error(), fieldErrors(err)...)
		return
	}
	if len(events) == 0 {
		// A translator bug: a delivery it does not ignore has events.
		h.log.Error("webhook translator produced no events and no error")
		h.refuse(w, r, problem.Internal, "translator produced no events")
		return
	}
	for _, e := range events {
		// The door's check includes Validate's (Admit checks the
		// attributes and the data, strictly); without one, Validate.
		var err error
		if h.check != nil {
			err = h.check(e)
		} else {
			err = e.Validate()
		}
		if err == nil {
			continue
		}
		var fe *ce.Error
		if errors.As(err, &fe) && fe.Field == "type" {
			// The one attribute the translator alone sets (id, source,
			// subject and time come from the delivery): its bug, not the
			// sender's fault. Say so, keep nothing half-done.
			h.log.Error("webhook translator produced an invalid event", "type", e.Type, "err", err)
			h.refuse(w, r, problem.Internal, "translator produced an invalid event: "+err.Error())
			return
		}
		// What the delivery carries breaks the input rules (a payload
		// nested too deeply, invalid UTF-8, a member named twice, a time
		// the archive cannot hold, an identifier too long to correlate):
		// refused now, not dead-lettered after a 202.
		h.stage.Failed("invalid", 1)
		h.refuse(w, r, problem.InvalidPayload, fmt.Sprintf("the delivery cannot be kept as evidence (%s event): %v; nothing was stored", e.Type, err), fieldErrors(err)...)
		return
	}
	// The seen marker is checked once the signature is verified: it is
	// keyed by what the signature covers. A delivery whose marker cannot
	// be read is stored all the same (at worst a second copy, never a
	// loss).
	key := seenKey(h.provider.Name(), body)
	seen, err := h.seen.has(r.Context(), key)
	if err != nil {
		h.stage.Failed("seen_read", 1)
		h.log.Warn("webhook: the seen marker could not be read; storing the delivery (a replay may be stored twice)", "key", key, "err", err)
	}
	if seen {
		out := Response{Accepted: len(events), Duplicates: len(events)}
		for _, e := range events {
			out.Events = append(out.Events, e.Type)
		}
		h.log.Info("webhook: body already stored, not stored again", "key", key, "event", h.mark(events).ID)
		h.reply(w, http.StatusAccepted, out)
		return
	}
	res, err := h.pub.Publish(r.Context(), events)
	var tle *bus.TooLargeError
	if errors.As(err, &tle) {
		h.stage.Failed("too_large", 1)
		h.refuse(w, r, problem.BodyTooLarge, tle.Error()+"; nothing was stored")
		return
	}
	if err != nil {
		h.refuse(w, r, problem.Unavailable, "event stream unavailable: "+err.Error())
		return
	}
	out := Response{}
	for i, p := range res {
		if p.Err != nil {
			h.stage.Failed("unavailable", 1)
			h.refuse(w, r, problem.Unavailable, fmt.Sprintf("event %d of %d not stored: %v (the sender should retry the delivery; stored events are not stored twice)", i+1, len(res), p.Err))
			return
		}
		out.Accepted++
		if p.Duplicate {
			out.Duplicates++
		}
		out.Events = append(out.Events, events[i].Type)
	}
	h.stage.Written(out.Accepted - out.Duplicates)
	// Every event is acknowledged: only now is the body marked as
	// stored. A crash before this line leaves no marker, so a replay is
	// de-duplicated by JetStream's message ids (within the duplicate
	// window) or stored again, never lost. The sender hanging up does not
	// stop the write.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), markTimeout)
	defer cancel()
	if err := h.seen.mark(ctx, key, h.mark(events)); err != nil {
		h.stage.Failed("seen_write", 1)
		h.log.Warn("webhook: the delivery is stored but its seen marker was not written: a replay of the same body after JetStream's duplicate window, or with a new delivery id, will be stored again", "key", key, "err", err)
	}
	h.reply(w, http.StatusAccepted, out)
}

// mark is the seen marker of a delivery's events (at least one): its
// webhook.received event, else its first event.
func (h *Handler) mark(events []*ce.Event) seenMark {
	raw := events[0]
	for _, e := range events {
		if e.Type == TypeWebhookReceived {
			raw = e
		}
	}
	return seenMark{Source: raw.Source, ID: raw.ID, StoredAt: time.Now().UTC().Format(time.RFC3339Nano)}
}
