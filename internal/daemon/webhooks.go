package daemon

import (
	"log/slog"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/gitlab"
	"github.com/evidencepipeline/evidence/producers/jira"
	"github.com/evidencepipeline/evidence/producers/servicenow"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// registerWebhooks mounts POST /webhooks/<provider> for every adapter.
// Webhooks are authenticated by their own signatures, not by bearer
// tokens; a provider without a configured secret refuses every delivery.
func registerWebhooks(srv *api.Server, cfg *config.Config, pub webhook.Publisher, log *slog.Logger, m *metrics.Metrics) {
	tickets := cfg.Tickets()
	for _, w := range []struct {
		p      webhook.Provider
		secret string
	}{
		{github.New(github.Options{Tickets: tickets}), cfg.GitHubSecret},
		{gitlab.New(gitlab.Options{Tickets: tickets}), cfg.GitLabToken},
		{jira.New(cfg.JiraOptions()), cfg.JiraSecret},
		{servicenow.New(servicenow.Options{}), cfg.ServiceNowSecret},
	} {
		srv.Handle("POST /webhooks/"+w.p.Name(), auth.None, webhook.NewHandler(w.p, w.secret, pub, cfg.MaxBodyBytes, log, m))
		if w.secret == "" {
			log.Info("webhook disabled: no secret", "endpoint", "/webhooks/"+w.p.Name(), "env", w.p.SecretEnv())
		}
	}
}
