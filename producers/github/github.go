package github

import (
	"time"

	"github.com/evidencepipeline/evidence/producers/ticketkeys"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// Options configures the provider. The zero value is ready to use.
type Options struct {
	// Tickets finds ticket keys in pull request titles and branches
	// (nil: ticketkeys.Default()).
	Tickets *ticketkeys.Matcher
	// Now is the clock for received_at and for facts without a time of
	// their own (nil: time.Now).
	Now func() time.Time
}

// Provider verifies and translates GitHub webhook deliveries.
type Provider struct {
	tickets *ticketkeys.Matcher
	now     func() time.Time
}

// New returns the GitHub provider.
func New(opts Options) *Provider {
	if opts.Tickets == nil {
		opts.Tickets = ticketkeys.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Provider{tickets: opts.Tickets, now: opts.Now}
}

// Name is the provider's name in /webhooks/github.
func (p *Provider) Name() string { return "github" }

// SecretEnv names the variable that holds the webhook secret.
func (p *Provider) SecretEnv() string { return "EVIDENCE_GITHUB_SECRET" }

var _ webhook.Provider = (*Provider)(nil)
