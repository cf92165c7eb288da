package gitlab

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// Catalog event types emitted by this package.
const (
	typeChangeOpened       = "dev.evidencepipeline.change.opened.v1"
	typeChangeUpdated      = "dev.evidencepipeline.change.updated.v1"
	typeChangeMerged       = "dev.evidencepipeline.change.merged.v1"
	typeChangeClosed       = "dev.evidencepipeline.change.closed.v1"
	typeReviewSubmitted    = "dev.evidencepipeline.review.submitted.v1"
	typePipelineStarted    = "dev.evidencepipeline.pipelinerun.started.v1"
	typePipelineFinished   = "dev.evidencepipeline.pipelinerun.finished.v1"
	typeDeploymentStarted  = "dev.evidencepipeline.deployment.started.v1"
	typeDeploymentFinished = "dev.evidencepipeline.deployment.finished.v1"
	typeWebhookReceived    = "dev.evidencepipeline.webhook.received.v1"
)

// keptHeaders are the request headers stored with the raw payload. It is an
// allow-list: X-Gitlab-Token (the secret) is never kept.
var keptHeaders = []string{
	"X-Gitlab-Event", "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID", "X-Gitlab-Instance",
	"Idempotency-Key", "User-Agent", "Content-Type",
}

// delivery is what one HTTP delivery contributes to every event made from it.
type delivery struct {
	key        string // base of the event ids
	deliveryID string
	name       string // the provider's event name
	headers    map[string]string
	body       []byte
	receivedAt time.Time
}

func newDelivery(h http.Header, body []byte, event string, now time.Time) delivery {
	d := delivery{name: event, body: body, receivedAt: now.UTC()}
	idem := strings.TrimSpace(h.Get("Idempotency-Key"))
	uuid := strings.TrimSpace(h.Get("X-Gitlab-Event-UUID"))
	switch {
	case idem != "":
		d.key = idem
	case uuid != "":
		d.key = uuid
	default:
		d.key = "sha256:" + bodySHA(body)
	}
	d.deliveryID = uuid
	if d.deliveryID == "" {
		d.deliveryID = idem
	}
	for _, name := range keptHeaders {
		if v := h.Get(name); v != "" {
			if d.headers == nil {
				d.headers = make(map[string]string)
			}
			d.headers[strings.ToLower(name)] = v
		}
	}
	return d
}

func bodySHA(body []byte) string {
	sum := sha256.Sum256(body)
	return hex.EncodeToString(sum[:])
}

// event builds one CloudEvent of the delivery; suffix makes its id distinct
// from the other events of the same delivery.
func (d delivery) event(source, suffix, typ, subject string, t time.Time, data any) (*ce.Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", typ, err)
	}
	return &ce.Event{
		ID:              d.key + "/" + suffix,
		Source:          source,
		Type:            typ,
		Subject:         subject,
		Time:            t,
		DataContentType: "application/json",
		Data:            b,
	}, nil
}

type rawData struct {
	Provider          string            `json:"provider"`
	Event             string            `json:"event"`
	DeliveryID        string            `json:"delivery_id,omitempty"`
	Headers           map[string]string `json:"headers,omitempty"`
	Payload           json.RawMessage   `json:"payload"`
	PayloadSHA256     string            `json:"payload_sha256"`
	SignatureVerified bool              `json:"signature_verified"`
	ReceivedAt        string            `json:"received_at"`
}

// raw is the webhook.received event that keeps the original payload. Its
// time is the fact's time when the delivery has one, else the time it was
// received.
func (d delivery) raw(source, subject string, t time.Time) (*ce.Event, error) {
	if t.IsZero() {
		t = d.receivedAt
	}
	return d.event(source, "webhook.received", typeWebhookReceived, subject, t, rawData{
		Provider:   providerName,
		Event:      d.name,
		DeliveryID: d.deliveryID,
		Headers:    d.headers,
		Payload:    json.RawMessage(d.body),
		// The handler calls Translate only after Verify succeeded.
		PayloadSHA256:     bodySHA(d.body),
		SignatureVerified: true,
		ReceivedAt:        d.receivedAt.Format(time.RFC3339Nano),
	})
}

// fieldErr is a malformed-payload error naming the JSON field at fault
// (a dot-separated path into the payload).
func fieldErr(field, format string, args ...any) error {
	return &ce.Error{Field: field, Message: fmt.Sprintf(format, args...)}
}

// decode unmarshals the body into v, naming the field of a type mismatch.
func decode(body []byte, v any) error {
	err := json.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "(body)"
		}
		return fieldErr(field, "must be %s, got a JSON %s", kindName(te.Type), te.Value)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fieldErr("(body)", "not valid JSON: %v at byte %d", se, se.Offset)
	}
	return fieldErr("(body)", "%v", err)
}

func kindName(t reflect.Type) string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil {
		return "a value"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	default:
		return "a " + t.Kind().String()
	}
}

var (
	shaRe  = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	repoRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9_.~-]+){2,}$`)
	botRe  = regexp.MustCompile(`^(project|group)_[0-9]+_bot`)
)

// sha returns the lower-case commit SHA in s, or an error naming field when
// s is not one. An empty s is returned as is.
func sha(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	l := strings.ToLower(strings.TrimSpace(s))
	if !shaRe.MatchString(l) {
		return "", fieldErr(field, "%q is not a commit SHA", s)
	}
	return l, nil
}

// isNullSHA reports whether s is git's all-zero SHA (a created or deleted
// ref).
func isNullSHA(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}

// repository normalizes a project URL to the catalog's host/group/project
// form in lower case.
func repository(field, u string) (string, error) {
	r := strings.ToLower(ci.NormalizeRepository(u))
	if !repoRe.MatchString(r) {
		return "", fieldErr(field, "%q is not a repository URL (host/group/project)", u)
	}
	return r, nil
}

// webURL returns u when it is an absolute http(s) URL the catalog accepts as
// a uri, else "".
func webURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" || p.User != nil || strings.Contains(p.Hostname(), ":") {
		return ""
	}
	return u
}

// timestamp parses the timestamp formats GitLab uses (RFC 3339,
// "2016-08-12 15:23:28 UTC", "2021-04-28 21:50:00 +0200"). An empty s is the
// zero time.
func timestamp(field, s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05 UTC", "2006-01-02 15:04:05 -0700", "2006-01-02T15:04:05.999999999-0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, fieldErr(field, "%q is out of range", s)
			}
			return t, nil
		}
	}
	return time.Time{}, fieldErr(field, "%q is not a timestamp", s)
}

// rfc3339 formats t for event data, "" for the zero time.
func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// firstTime is the first non-zero time.
func firstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// lastSegment is the last path segment of a repository (the project path).
func lastSegment(repo string) string {
	return repo[strings.LastIndexByte(repo, '/')+1:]
}
