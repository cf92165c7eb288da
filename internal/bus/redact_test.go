package bus_test

import (
	"context"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/bus"
)

// TestConnectErrorHidesPassword: a NATS URL's password never reaches the
// error (which evidenced logs), for one URL or a list of them.
func TestConnectErrorHidesPassword(t *testing.T) {
	for _, u := range []string{
		"nats://evidenced:s3cretpw@127.0.0.1:1",
		"nats://evidenced:s3cretpw@127.0.0.1:1,nats://evidenced:s3cretpw@127.0.0.1:2",
	} {
		_, err := bus.Connect(context.Background(), u, "test", nil)
		if err == nil {
			t.Fatalf("%s: connected to a closed port", u)
		}
		if strings.Contains(err.Error(), "s3cretpw") || !strings.Contains(err.Error(), "evidenced:xxxxx@127.0.0.1:1") {
			t.Errorf("error %q: want the URL with its password hidden", err)
		}
	}
	if got := bus.RedactedURL("nats://a:b@h:1, nats://h:2"); got != "nats://a:xxxxx@h:1,nats://h:2" {
		t.Errorf("RedactedURL = %q", got)
	}
}
