package gitlab_test

import (
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/gitlab"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const typeRaw = webhook.TypeWebhookReceived

// received is the fixed receive time of the tests.
var received = time.Date(2025, 3, 5, 12, 0, 0, 0, time.UTC)

func newProvider() *gitlab.Provider {
	return gitlab.New(gitlab.Options{Now: func() time.Time { return received }})
}
