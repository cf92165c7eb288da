package github

import (
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// keptHeaders are the delivery headers kept in webhook.received: what
// identifies and describes the delivery, and its signatures (an HMAC of
// the body, not the secret: with the secret, an auditor verifies the
// stored delivery again); never a credential.
var keptHeaders = []string{
	"X-GitHub-Event", "X-GitHub-Delivery", "X-GitHub-Hook-ID",
	"X-Hub-Signature-256", "X-Hub-Signature",
	"X-GitHub-Hook-Installation-Target-Type", "X-GitHub-Hook-Installation-Target-ID",
	"X-GitHub-Enterprise-Host", "X-GitHub-Enterprise-Version",
	"User-Agent", "Content-Type",
}

// delivery is one webhook delivery being translated: its key and id are
// X-GitHub-Delivery, which GitHub keeps on redeliveries, and so is the id
// of its webhook.received event.
type delivery struct {
	webhook.Delivery
	p *Provider
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
	received := p.now()
	event := strings.TrimSpace(h.Get("X-GitHub-Event"))
	if event == "" {
		return nil, missing("X-GitHub-Event header")
	}
	id := strings.TrimSpace(h.Get("X-GitHub-Delivery"))
	if id == "" {
		return nil, missing("X-GitHub-Delivery header")
	}
	translate, ok := translators[event]
	if !ok {
		return nil, ignored(event)
	}
	payload, err := payloadOf(h, body)
	if err != nil {
		return nil, err
	}
	d := &delivery{Delivery: webhook.NewDelivery(p.Name(), event, h, keptHeaders, body, received), p: p}
	d.Key, d.ID, d.RawID, d.Payload = id, id, id, payload
	res, err := translate(d)
	if err != nil {
		return nil, err
	}
	events := make([]*ce.Event, 0, len(res.facts)+1)
	for _, f := range res.facts {
		t := f.time
		if t.IsZero() {
			t = d.ReceivedAt
		}
		e, err := d.Event(res.repo.source, f.suffix, f.typ, f.subject, t.UTC(), f.data)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	subject := res.subject
	if subject == "" {
		subject = res.repo.key
	}
	raw, err := d.Raw(res.repo.source, subject, d.ReceivedAt)
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

	"branch_protection_rule": translateBranchProtectionRule,
	"member":                 translateMember,
	"deploy_key":             translateDeployKey,
	"repository":             translateRepository,
	"team":                   translateTeam,
	"membership":             translateMembership,
	"organization":           translateOrganization,
	"repository_ruleset":     translateRepositoryRuleset,
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
