package github

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Event types the adapter emits.
const (
	typeReceived           = "dev.evidencepipeline.webhook.received.v1"
	typeChangeOpened       = "dev.evidencepipeline.change.opened.v1"
	typeChangeUpdated      = "dev.evidencepipeline.change.updated.v1"
	typeChangeMerged       = "dev.evidencepipeline.change.merged.v1"
	typeChangeClosed       = "dev.evidencepipeline.change.closed.v1"
	typeReviewSubmitted    = "dev.evidencepipeline.review.submitted.v1"
	typePipelineStarted    = "dev.evidencepipeline.pipelinerun.started.v1"
	typePipelineFinished   = "dev.evidencepipeline.pipelinerun.finished.v1"
	typeDeploymentStarted  = "dev.evidencepipeline.deployment.started.v1"
	typeDeploymentFinished = "dev.evidencepipeline.deployment.finished.v1"
)

// keptHeaders are the delivery headers kept in webhook.received: what
// identifies and describes the delivery, never a credential.
var keptHeaders = []string{
	"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID",
	"X-GitHub-Hook-Installation-Target-Type", "X-GitHub-Hook-Installation-Target-ID",
	"X-GitHub-Enterprise-Host", "X-GitHub-Enterprise-Version",
	"User-Agent", "Content-Type",
}

// delivery is one webhook delivery being translated.
type delivery struct {
	p        *Provider
	event    string // X-GitHub-Event
	id       string // X-GitHub-Delivery
	header   http.Header
	body     []byte // as received (what GitHub signed)
	payload  []byte // the JSON payload
	received time.Time
}

// fact is one catalog event derived from a delivery.
type fact struct {
	typ     string
	suffix  string // appended to the delivery id: <delivery>/<suffix>
	subject string
	time    time.Time
	data    any
}

// result is what a translator makes of a delivery it does not ignore: the
// catalog events derived from it (none for a delivery kept only raw), the
// repository (which gives the events' source) and the subject of the
// webhook.received event.
type result struct {
	repo    repo
	facts   []fact
	subject string
}

// Translate turns one delivery into its catalog events and one
// webhook.received event that keeps the payload.
func (p *Provider) Translate(h http.Header, body []byte) ([]*ce.Event, error) {
	d := &delivery{p: p, header: h, body: body, received: p.now().UTC()}
	d.event = strings.TrimSpace(h.Get("X-GitHub-Event"))
	if d.event == "" {
		return nil, missing("X-GitHub-Event header")
	}
	d.id = strings.TrimSpace(h.Get("X-GitHub-Delivery"))
	if d.id == "" {
		return nil, missing("X-GitHub-Delivery header")
	}
	translate, ok := translators[d.event]
	if !ok {
		return nil, ignored(d.event)
	}
	payload, err := payloadOf(h, body)
	if err != nil {
		return nil, err
	}
	d.payload = payload
	res, err := translate(d)
	if err != nil {
		return nil, err
	}
	events := make([]*ce.Event, 0, len(res.facts)+1)
	for _, f := range res.facts {
		e, err := d.cloudEvent(res.repo.source, d.id+"/"+f.suffix, f.typ, f.subject, f.time, f.data)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	raw, err := d.receivedEvent(res)
	if err != nil {
		return nil, err
	}
	return append(events, raw), nil
}

type translator func(d *delivery) (result, error)

// translators by X-GitHub-Event. Events not listed carry no evidence.
var translators = map[string]translator{
	"pull_request":        translatePullRequest,
	"pull_request_review": translateReview,
	"push":                translatePush,
	"workflow_run":        translateWorkflowRun,
	"workflow_job":        ignoreAll("workflow_job carries no evidence beyond workflow_run"),
	"check_suite":         translateCheckSuite,
	"check_run":           ignoreAll("check_run carries no evidence beyond check_suite and workflow_run"),
	"status":              translateStatus,
	"deployment":          translateDeployment,
	"deployment_status":   translateDeploymentStatus,
	"deployment_review":   translateDeploymentReview,
	"release":             translateRelease,
}

func ignoreAll(reason string) translator {
	return func(*delivery) (result, error) { return result{}, &webhook.Ignored{Reason: reason} }
}

// ignored is the answer for a delivery that carries no evidence; what
// names it (pull_request.labeled).
func ignored(what string) error {
	return &webhook.Ignored{Reason: what + " carries no evidence"}
}

// payloadOf returns the JSON payload of the body: the body itself for
// application/json, the payload field of an
// application/x-www-form-urlencoded body.
func payloadOf(h http.Header, body []byte) ([]byte, error) {
	ct := h.Get("Content-Type")
	mt := "application/json"
	if strings.TrimSpace(ct) != "" {
		var err error
		mt, _, err = mime.ParseMediaType(ct)
		if err != nil {
			return nil, fmt.Errorf("Content-Type header: %q is not a media type", ct)
		}
	}
	var payload []byte
	switch mt {
	case "application/json":
		payload = body
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, fmt.Errorf("payload: the form body does not parse: %v", err)
		}
		v, ok := form["payload"]
		if !ok || len(v) == 0 {
			return nil, missing("payload form field")
		}
		payload = []byte(v[0])
	default:
		return nil, fmt.Errorf("Content-Type header: %q is neither application/json nor application/x-www-form-urlencoded", ct)
	}
	if !jsonObject(payload) {
		return nil, fmt.Errorf("payload: not a JSON object")
	}
	return payload, nil
}

// cloudEvent builds one event with the delivery's attributes.
func (d *delivery) cloudEvent(source, id, typ, subject string, t time.Time, data any) (*ce.Event, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", typ, err)
	}
	if t.IsZero() {
		t = d.received
	}
	return &ce.Event{
		ID:              id,
		Source:          source,
		Type:            typ,
		Subject:         subject,
		Time:            t.UTC(),
		DataContentType: "application/json",
		Data:            b,
	}, nil
}

type receivedData struct {
	Provider          string            `json:"provider"`
	Event             string            `json:"event"`
	DeliveryID        string            `json:"delivery_id"`
	Headers           map[string]string `json:"headers,omitempty"`
	Payload           json.RawMessage   `json:"payload"`
	PayloadSHA256     string            `json:"payload_sha256"`
	SignatureVerified bool              `json:"signature_verified"`
	ReceivedAt        string            `json:"received_at"`
}

// receivedEvent keeps the delivery's payload as evidence.
func (d *delivery) receivedEvent(res result) (*ce.Event, error) {
	headers := map[string]string{}
	for _, name := range keptHeaders {
		if v := d.header.Get(name); v != "" {
			headers[strings.ToLower(name)] = v
		}
	}
	sum := sha256.Sum256(d.body)
	data := receivedData{
		Provider:      "github",
		Event:         d.event,
		DeliveryID:    d.id,
		Headers:       headers,
		Payload:       json.RawMessage(d.payload),
		PayloadSHA256: hex.EncodeToString(sum[:]),
		// Translate runs after Verify (webhook.Handler refuses unsigned
		// deliveries before translating them).
		SignatureVerified: true,
		ReceivedAt:        d.received.Format(time.RFC3339Nano),
	}
	subject := res.subject
	if subject == "" {
		subject = res.repo.key
	}
	return d.cloudEvent(res.repo.source, d.id, typeReceived, subject, d.received, data)
}
