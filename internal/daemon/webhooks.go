package daemon

import (
	"fmt"
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
// Every event a delivery makes passes the door's one check
// (srv.CheckEvent), as events posted to /v1/events do.
func registerWebhooks(srv *api.Server, cfg *config.Config, pub webhook.Publisher, seen *webhook.Seen, log *slog.Logger, m *metrics.Metrics) error {
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
		h, err := webhook.NewHandler(webhook.Config{Provider: w.p, Secret: w.secret, Publisher: pub, Seen: seen,
			Check: srv.CheckEvent, MaxBody: cfg.MaxBodyBytes, Log: log, Metrics: m})
		if err != nil {
			return fmt.Errorf("webhook %s: %w", w.p.Name(), err)
		}
		srv.Handle("POST /webhooks/"+w.p.Name(), auth.None, h)
		if w.secret == "" {
			log.Info("webhook disabled: no secret", "endpoint", "/webhooks/"+w.p.Name(), "env", w.p.SecretEnv())
		}
	}
	return nil
}
