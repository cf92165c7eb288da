package webhooktest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

// timeout bounds each request to the handler and each read of the stream.
const timeout = 30 * time.Second

// Fixture is a provider's webhook.Handler served over HTTP by a test
// server, publishing to an embedded JetStream with the evidence streams
// and keeping its seen markers there. Both stop at the end of the test
// that made the fixture.
type Fixture struct {
	// JS is the embedded JetStream the handler publishes to.
	JS *testenv.JetStream
	// Seen holds the handler's seen markers (bucket webhook.SeenBucket).
	Seen *webhook.Seen
	// URL is where deliveries are posted: /webhooks/<provider> on the
	// test server.
	URL    string
	client *http.Client
}

// Handler starts an embedded JetStream and serves webhook.NewHandler for
// p and secret (the default body limit and seen markers, no log, no
// metrics) in front of it.
func Handler(t testing.TB, p webhook.Provider, secret string) *Fixture {
	t.Helper()
	return Serve(t, testenv.NATS(t), webhook.Config{Provider: p, Secret: secret})
}

// Another serves a second handler, for p and secret, that publishes to
// the same JetStream as f, with the same seen markers: a server
// configured otherwise, same stream.
func (f *Fixture) Another(t testing.TB, p webhook.Provider, secret string) *Fixture {
	t.Helper()
	return Serve(t, f.JS, webhook.Config{Provider: p, Secret: secret, Seen: f.Seen})
}

// Serve serves webhook.NewHandler(c) in front of js. A nil c.Publisher
// publishes to js; a nil c.Seen is the bucket webhook.NewSeen makes in js
// with the default options. A configuration NewHandler refuses stops the
// test.
func Serve(t testing.TB, js *testenv.JetStream, c webhook.Config) *Fixture {
	t.Helper()
	if c.Publisher == nil {
		c.Publisher = bus.NewPublisher(js.JS)
	}
	if c.Seen == nil {
		ctx, cancel := context.WithTimeout(t.Context(), timeout)
		defer cancel()
		seen, err := webhook.NewSeen(ctx, js.JS, webhook.SeenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.Seen = seen
	}
	h, err := webhook.NewHandler(c)
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, h) // every answer checked against the API's OpenAPI description
	return &Fixture{JS: js, Seen: c.Seen, URL: srv.URL + "/webhooks/" + c.Provider.Name(), client: srv.Client()}
}

// Post sends a delivery with header h and body, and decodes the answer.
// An answer that is not a JSON webhook.Response stops the test.
func (f *Fixture) Post(t testing.TB, h http.Header, body []byte) (int, webhook.Response) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = h
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r webhook.Response
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("answer %d is not JSON: %v", resp.StatusCode, err)
	}
	return resp.StatusCode, r
}

// StreamCount is the number of messages in the event stream.
func (f *Fixture) StreamCount(t testing.TB) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	_, info := f.stream(ctx, t)
	return info.State.Msgs
}

// StreamEvents reads every event of the event stream back, in order; a
// message that is not an event stops the test, and one whose subject is
// not bus.Subject of its type is reported as an error.
func (f *Fixture) StreamEvents(t testing.TB) []*ce.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	s, info := f.stream(ctx, t)
	var out []*ce.Event
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatalf("message %d: %v", seq, err)
		}
		e, err := ce.ParseJSON(m.Data)
		if err != nil {
			t.Fatalf("message %d is not an event: %v", seq, err)
		}
		if m.Subject != bus.Subject(e.Type) {
			t.Errorf("message %d on %s, want %s", seq, m.Subject, bus.Subject(e.Type))
		}
		out = append(out, e)
	}
	return out
}

// stream is the event stream and its current state.
func (f *Fixture) stream(ctx context.Context, t testing.TB) (jetstream.Stream, *jetstream.StreamInfo) {
	t.Helper()
	s, err := f.JS.JS.Stream(ctx, bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return s, info
}
