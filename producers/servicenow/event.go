package servicenow

import (
	"time"

	"github.com/evidencepipeline/evidence/producers/webhook"
)

// keptHeaders are the request headers stored with the raw payload. It is an
// allow-list: X-Evidence-Token (the shared secret) and Authorization are
// never kept.
var keptHeaders = []string{"X-Evidence-Signature", "User-Agent", "Content-Type"}

// timestamp parses ServiceNow's "2025-03-03 17:00:00" (UTC, what
// GlideRecord.getValue returns) and RFC 3339. An empty s is the zero time.
func timestamp(field, s string) (time.Time, error) {
	return webhook.ParseTime(field, s, "2006-01-02 15:04:05", time.RFC3339Nano)
}
