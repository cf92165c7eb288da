package daemon

import (
	"log/slog"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// registerWebhooks mounts /webhooks/<provider> for every adapter. Webhooks
// are authenticated by their own signatures, not by bearer tokens.
func registerWebhooks(srv *api.Server, cfg *config.Config, pub webhook.Publisher, log *slog.Logger, m *metrics.Metrics) {
}
