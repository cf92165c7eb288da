package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The handler's tests use the GitHub provider (a real one) and pushes to
// a branch: each gives one event, webhook.received, whose id is the
// delivery id.

const secret = "It's a Secret to Everybody"

// push is the body of a push of commit n to main of acme/app.
func push(n int) []byte {
	return fmt.Appendf(nil, `{"ref": "refs/heads/main", "after": "%040x", "repository": {"name": "app", "full_name": "acme/app", "html_url": "https://github.com/acme/app"}}`, n)
}

// signed is a push delivery's headers, signed for body.
func signed(delivery string, body []byte) http.Header {
	return webhooktest.Header("X-GitHub-Event", "push", "X-GitHub-Delivery", delivery,
		"Content-Type", "application/json", "X-Hub-Signature-256", webhooktest.SignHex(secret, body))
}

// post posts a delivery and checks the status.
func post(t *testing.T, f *webhooktest.Fixture, delivery string, body []byte, wantCode int) webhook.Response {
	t.Helper()
	code, r := f.Post(t, signed(delivery, body), body)
	if code != wantCode {
		t.Fatalf("delivery %s: %d %+v, want %d", delivery, code, r, wantCode)
	}
	return r
}

var (
	stored    = webhook.Response{Provider: "github", Accepted: 1, Events: []string{webhook.TypeWebhookReceived}}
	duplicate = webhook.Response{Provider: "github", Accepted: 1, Duplicates: 1, Events: []string{webhook.TypeWebhookReceived}}
)

// checkResponse compares an answer with the one wanted.
func checkResponse(t *testing.T, what string, got, want webhook.Response) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: %+v, want %+v", what, got, want)
	}
}

// checkCount checks the number of messages in the event stream.
func checkCount(t *testing.T, f *webhooktest.Fixture, what string, want uint64) {
	t.Helper()
	if n := f.StreamCount(t); n != want {
		t.Errorf("%s: the stream holds %d messages, want %d", what, n, want)
	}
}

// seenKV opens the bucket of the seen markers as any client would.
func seenKV(t *testing.T, f *webhooktest.Fixture) jetstream.KeyValue {
	t.Helper()
	kv, err := f.JS.JS.KeyValue(t.Context(), webhook.SeenBucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// TestSeenNewDeliveryID: the same signed body with a new delivery id (not
// signed) is stored once and answered as a duplicate; a different body is
// stored.
func TestSeenNewDeliveryID(t *testing.T) {
	f := webhooktest.Handler(t, github.New(github.Options{}), secret)
	body := push(1)
	checkResponse(t, "first delivery", post(t, f, "delivery-1", body, http.StatusAccepted), stored)
	checkCount(t, f, "after the first delivery", 1)

	e, err := seenKV(t, f).Get(t.Context(), "github."+webhook.BodySHA(body))
	if err != nil {
		t.Fatalf("no seen marker for the stored body: %v", err)
	}
	var mark struct{ Source, ID string }
	if err := json.Unmarshal(e.Value(), &mark); err != nil || mark.ID != "delivery-1" || mark.Source != "https://github.com/acme/app" {
		t.Errorf("marker %s (%v), want the webhook.received event delivery-1 of https://github.com/acme/app", e.Value(), err)
	}

	for _, id := range []string{"delivery-2", "delivery-3"} {
		checkResponse(t, "same body, "+id, post(t, f, id, body, http.StatusAccepted), duplicate)
	}
	checkCount(t, f, "after two replays with new delivery ids", 1)

	checkResponse(t, "another body", post(t, f, "delivery-4", push(2), http.StatusAccepted), stored)
	checkCount(t, f, "after a different body", 2)
	ids := map[string]bool{}
	for _, e := range f.StreamEvents(t) {
		ids[e.ID] = true
	}
	if !ids["delivery-1"] || !ids["delivery-4"] || len(ids) != 2 {
		t.Errorf("stored events %v, want delivery-1 and delivery-4", ids)
	}
}

// TestSeenAfterDuplicateWindow: with the stream's duplicate window passed,
// JetStream alone would store a redelivery again; the seen marker is what
// stores it once.
func TestSeenAfterDuplicateWindow(t *testing.T) {
	js := testenv.NATS(t)
	ctx := t.Context()
	const window = 100 * time.Millisecond // JetStream's least
	if err := bus.EnsureStreams(ctx, js.JS, bus.StreamConfig{Duplicates: window}); err != nil {
		t.Fatal(err)
	}
	f := webhooktest.Serve(t, js, webhook.Config{Provider: github.New(github.Options{}), Secret: secret})
	body := push(1)
	checkResponse(t, "first delivery", post(t, f, "delivery-1", body, http.StatusAccepted), stored)

	// A probe published after the delivery's event: once JetStream no
	// longer de-duplicates the probe, the delivery's message id is out of
	// the window too. The two probes stored are counted below.
	probe := func() bool {
		m := nats.NewMsg("evidence.events.test.probe")
		m.Data = []byte(`{}`)
		m.Header.Set(jetstream.MsgIDHeader, "probe")
		ack, err := js.JS.PublishMsg(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		return ack.Duplicate
	}
	if probe() {
		t.Fatal("the first probe is a duplicate")
	}
	testenv.Eventually(t, 10*time.Second, func() error {
		if probe() {
			return fmt.Errorf("JetStream still de-duplicates within its %s window", window)
		}
		return nil
	})
	checkCount(t, f, "after the first delivery and two probes", 3)

	// The same delivery (same id: the same message id) and the same body
	// with a new id, after the window: both answered as duplicates,
	// neither stored.
	checkResponse(t, "redelivery after the window", post(t, f, "delivery-1", body, http.StatusAccepted), duplicate)
	checkResponse(t, "new delivery id after the window", post(t, f, "delivery-2", body, http.StatusAccepted), duplicate)
	checkCount(t, f, "after the replays", 3)

	// Without the marker, the redelivery after the window is stored again:
	// the marker was what caught it.
	if err := seenKV(t, f).Purge(ctx, "github."+webhook.BodySHA(body)); err != nil {
		t.Fatal(err)
	}
	checkResponse(t, "redelivery without a marker", post(t, f, "delivery-1", body, http.StatusAccepted), stored)
	checkCount(t, f, "after the redelivery without a marker", 4)
}

// syncBuffer is a log destination the handler writes while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSeenMarkerFailures: when the marker cannot be written after the
// events are stored, the delivery is still answered 202 (its events are
// stored) and a warning is logged; a replay is then stored again, never
// lost. When the bucket is gone, deliveries are stored likewise.
func TestSeenMarkerFailures(t *testing.T) {
	js := testenv.NATS(t)
	ctx := t.Context()
	seen, err := webhook.NewSeen(ctx, js.JS, webhook.SeenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	f := webhooktest.Serve(t, js, webhook.Config{Provider: github.New(github.Options{}), Secret: secret, Seen: seen,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})

	t.Run("write refused", func(t *testing.T) {
		// The bucket refuses any value now: reads work, writes fail.
		if _, err := js.JS.UpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: webhook.SeenBucket, History: 1,
			TTL: webhook.DefaultSeenMaxAge, Storage: jetstream.FileStorage, MaxValueSize: 1}); err != nil {
			t.Fatal(err)
		}
		body := push(1)
		checkResponse(t, "delivery whose marker is refused", post(t, f, "delivery-1", body, http.StatusAccepted), stored)
		checkCount(t, f, "after the delivery", 1)
		if l := logs.String(); !strings.Contains(l, "level=WARN") || !strings.Contains(l, "seen marker was not written") ||
			!strings.Contains(l, "github."+webhook.BodySHA(body)) {
			t.Errorf("log %q, want a warning that the marker of github.<sha256> was not written", l)
		}
		if _, err := seenKV(t, f).Get(ctx, "github."+webhook.BodySHA(body)); err == nil {
			t.Error("a marker was written")
		}
		checkResponse(t, "replay with a new id", post(t, f, "delivery-2", body, http.StatusAccepted), stored)
		checkCount(t, f, "after the replay", 2)
	})

	t.Run("bucket gone", func(t *testing.T) {
		if err := js.JS.DeleteKeyValue(ctx, webhook.SeenBucket); err != nil {
			t.Fatal(err)
		}
		before := f.StreamCount(t)
		checkResponse(t, "delivery without a bucket", post(t, f, "delivery-3", push(3), http.StatusAccepted), stored)
		checkCount(t, f, "after the delivery", before+1)
		key := "github." + webhook.BodySHA(push(3))
		if l := logs.String(); !strings.Contains(l, `msg="webhook: the seen marker could not be read; storing the delivery`) || !strings.Contains(l, "key="+key) {
			t.Errorf("log %q, want a warning that the marker of %s could not be read", l, key)
		}
	})
}

// TestNewHandlerRefusesIncompleteConfig: a handler without a provider, a
// publisher or seen markers is not built, with an error naming what is
// missing; NewSeen refuses what it cannot use.
func TestNewHandlerRefusesIncompleteConfig(t *testing.T) {
	js := testenv.NATS(t)
	seen, err := webhook.NewSeen(t.Context(), js.JS, webhook.SeenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := github.New(github.Options{})
	pub := bus.NewPublisher(js.JS)
	for _, tc := range []struct {
		name string
		c    webhook.Config
		want string
	}{
		{"no provider", webhook.Config{Secret: secret, Publisher: pub, Seen: seen}, "Config.Provider is nil"},
		{"no publisher", webhook.Config{Provider: p, Secret: secret, Seen: seen}, "webhook github: Config.Publisher is nil"},
		{"no seen markers", webhook.Config{Provider: p, Secret: secret, Publisher: pub}, "webhook github: Config.Seen is nil"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := webhook.NewHandler(tc.c)
			if h != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewHandler = %v, %v; want no handler and an error saying %q", h, err, tc.want)
			}
		})
	}
	if h, err := webhook.NewHandler(webhook.Config{Provider: p, Publisher: pub, Seen: seen}); h == nil || err != nil {
		t.Errorf("NewHandler without a secret = %v, %v; want a handler (it refuses every delivery)", h, err)
	}

	if s, err := webhook.NewSeen(t.Context(), nil, webhook.SeenOptions{}); s != nil || err == nil {
		t.Errorf("NewSeen without JetStream = %v, %v; want an error", s, err)
	}
	if s, err := webhook.NewSeen(t.Context(), js.JS, webhook.SeenOptions{MaxAge: -time.Hour}); s != nil || err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("NewSeen with a negative MaxAge = %v, %v; want an error saying so", s, err)
	}
}

// TestSeenMaxAge: the bucket's TTL is the MaxAge given, 720h when zero.
func TestSeenMaxAge(t *testing.T) {
	js := testenv.NATS(t)
	for _, tc := range []struct{ given, want time.Duration }{
		{0, 720 * time.Hour},
		{48 * time.Hour, 48 * time.Hour},
	} {
		s, err := webhook.NewSeen(t.Context(), js.JS, webhook.SeenOptions{MaxAge: tc.given})
		if err != nil {
			t.Fatal(err)
		}
		kv, err := js.JS.KeyValue(t.Context(), webhook.SeenBucket)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if st.TTL() != tc.want || s.MaxAge() != tc.want {
			t.Errorf("MaxAge %s: bucket TTL %s, Seen.MaxAge %s; want %s", tc.given, st.TTL(), s.MaxAge(), tc.want)
		}
	}
}

// TestIgnoredReasonLabels: an ignored delivery whose reason holds what the
// sender wrote (here an X-GitHub-Event of invalid UTF-8, which made the
// Prometheus client panic and the connection drop unanswered) is answered
// 200, and the reasons' labels stay bounded however many distinct ones a
// signed sender makes up.
func TestIgnoredReasonLabels(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := webhooktest.Serve(t, testenv.NATS(t), webhook.Config{Provider: github.New(github.Options{}), Secret: secret, Metrics: metrics.New(reg)})
	send := func(event string) int {
		body := []byte(`{"zen":"x"}`)
		code, _ := f.Post(t, webhooktest.Header("X-GitHub-Event", event, "X-GitHub-Delivery", "d-"+event,
			"Content-Type", "application/json", "X-Hub-Signature-256", webhooktest.SignHex(secret, body)), body)
		return code
	}
	if code := send("\xd5"); code != http.StatusOK {
		t.Fatalf("event name of invalid UTF-8: %d, want 200 (ignored)", code)
	}
	for i := range 200 {
		if code := send(fmt.Sprintf("made_up_%d", i)); code != http.StatusOK {
			t.Fatalf("made-up event %d: %d, want 200", i, code)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels, total := 0, 0.0
	for _, mf := range mfs {
		if mf.GetName() != "evidence_webhook_ignored_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels++
			total += m.GetCounter().GetValue()
		}
	}
	if labels > 65 || labels < 2 || total != 201 {
		t.Fatalf("%d reason labels counting %v deliveries, want at most 65 (64 and other) counting 201", labels, total)
	}
}
