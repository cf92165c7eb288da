package jira

import (
	"net/http"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// keptHeaders are the request headers stored with the raw payload. It is an
// allow-list: X-Evidence-Token (the shared secret) and Authorization (the
// JWT of app webhooks) are never kept.
var keptHeaders = []string{
	"X-Atlassian-Webhook-Identifier", "X-Atlassian-Webhook-Retry", "X-Atlassian-Webhook-Flow",
	"X-Hub-Signature", "User-Agent", "Content-Type",
}

// newDelivery is the delivery of body. Jira names each delivery in
// X-Atlassian-Webhook-Identifier, which a retry keeps: it is the key of
// the events, else the SHA-256 of the body.
func newDelivery(h http.Header, body []byte, event string, now time.Time) webhook.Delivery {
	d := webhook.NewDelivery(providerName, event, h, keptHeaders, body, now)
	if id := strings.TrimSpace(h.Get("X-Atlassian-Webhook-Identifier")); id != "" {
		d.ID, d.Key = id, id
	}
	return d
}

// timestamp parses the timestamp formats Jira uses (RFC 3339 and
// "2024-05-29T14:18:38.402+0100"). An empty s is the zero time.
func timestamp(field, s string) (time.Time, error) {
	return webhook.ParseTime(field, s, time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700")
}
