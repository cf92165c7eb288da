package gitlab

import (
	"cmp"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// keptHeaders are the request headers stored with the raw payload. It is an
// allow-list: X-Gitlab-Token (the secret) is never kept.
var keptHeaders = []string{
	"X-Gitlab-Event", "X-Gitlab-Event-UUID", "X-Gitlab-Webhook-UUID", "X-Gitlab-Instance",
	"Idempotency-Key", "User-Agent", "Content-Type",
}

// newDelivery is the delivery of body. Its events are keyed by
// Idempotency-Key (the same on retries), else X-Gitlab-Event-UUID, else the
// SHA-256 of the body; its id is the event UUID, else the Idempotency-Key.
func newDelivery(h http.Header, body []byte, event string, now time.Time) webhook.Delivery {
	d := webhook.NewDelivery(providerName, event, h, keptHeaders, body, now)
	idem := strings.TrimSpace(h.Get("Idempotency-Key"))
	uuid := strings.TrimSpace(h.Get("X-Gitlab-Event-UUID"))
	d.Key = cmp.Or(idem, uuid, d.Key)
	d.ID = cmp.Or(uuid, idem)
	return d
}

// botRe matches the usernames of project and group access tokens.
var botRe = regexp.MustCompile(`^(project|group)_[0-9]+_bot`)

// isNullSHA reports whether s is git's all-zero SHA (a created or deleted
// ref).
func isNullSHA(s string) bool {
	return s != "" && strings.Trim(s, "0") == ""
}

// timestamp parses the timestamp formats GitLab uses (RFC 3339,
// "2016-08-12 15:23:28 UTC", "2021-04-28 21:50:00 +0200"). An empty s is the
// zero time.
func timestamp(field, s string) (time.Time, error) {
	return webhook.ParseTime(field, s, time.RFC3339Nano, "2006-01-02 15:04:05 UTC", "2006-01-02 15:04:05 -0700", "2006-01-02T15:04:05.999999999-0700")
}

// lastSegment is the last path segment of a repository (the project path).
func lastSegment(repo string) string {
	return repo[strings.LastIndexByte(repo, '/')+1:]
}
