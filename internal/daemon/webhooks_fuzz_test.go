package daemon_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/producers/github"
	"github.com/evidencepipeline/evidence/producers/ticketkeys"
	"github.com/evidencepipeline/evidence/producers/webhook"
	"github.com/evidencepipeline/evidence/schemas"
)

const webhookSecret = "fuzz-secret"

// Fuzz flags of a GitHub delivery. A wrong signature is one value of
// 256, not a bit: half the inputs would be answered 401 before anything
// else is read, and the fuzzer would spend its time there.
const (
	flagForm          byte = 1 << iota // application/x-www-form-urlencoded, payload=<body>
	flagNoContentType                  // no Content-Type header
	flagBadSignature  byte = 0xff      // signed with another secret: 401
)

// clock is the time the test's own translation is made at: where it
// shows (an event's time, received_at), evidenced's clock gave its own.
var clock = time.Date(2001, 2, 3, 4, 5, 6, 123456789, time.UTC)

// webhookCheck posts GitHub deliveries and checks them against the
// provider's translation of the same delivery, made in the test.
type webhookCheck struct {
	o        *archiveOracle
	provider *github.Provider
	door     *api.Server // CheckEvent as the receiver has it
}

func newWebhookCheck(tb testing.TB) *webhookCheck {
	tb.Helper()
	o := newArchiveOracle(tb, "--github-secret", webhookSecret)
	catalog, err := schemas.Load()
	if err != nil {
		tb.Fatal(err)
	}
	kv, err := correlate.NewKVState(context.Background(), o.js, correlate.KVOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	extractor, limit := correlate.Extractor{Tickets: ticketkeys.Default()}, kv.MaxValueSize()
	door := api.New(api.Config{Catalog: catalog, Admit: func(e *ce.Event) error { return extractor.Admit(e, limit) }})
	return &webhookCheck{o: o, door: door,
		provider: github.New(github.Options{Tickets: ticketkeys.Default(), Now: func() time.Time { return clock }})}
}

// deliver posts one delivery and checks: an answer within answerTimeout,
// never a 5xx; a bad signature is a 401; nothing is stored unless the
// answer is 202; a 202 is for a delivery the provider translates, each of
// whose events is archived exactly as translated (evidenced's clock in
// place of the test's), not dead-lettered; evidenced stays ready.
func (w *webhookCheck) deliver(t *testing.T, flags byte, event, delivery string, body []byte) {
	o := w.o
	start := time.Now()
	status := 0
	defer func() {
		o.trace("webhook flags=%d status=%d took=%s len=%d", flags, status, time.Since(start), len(body))
	}()
	sent, ct := body, "application/json"
	if flags != flagBadSignature && flags&flagForm != 0 {
		sent, ct = []byte("payload="+url.QueryEscape(string(body))), "application/x-www-form-urlencoded"
	}
	if flags != flagBadSignature && flags&flagNoContentType != 0 {
		ct = ""
	}
	event = strings.Trim(event, " \t")
	if !validHeaderValue(event) {
		event = ""
	}
	// The delivery id is what JetStream de-duplicates the delivery's
	// events by: one per request, so that a duplicate is a redelivery.
	sum := sha256.Sum256([]byte(event + "\n" + ct + "\n" + string(sent)))
	delivery = strings.Trim(delivery, " \t")
	if !validHeaderValue(delivery) {
		delivery = ""
	}
	delivery += "." + hex.EncodeToString(sum[:8])
	h := http.Header{"User-Agent": {"evidence-fuzz"}, "X-Github-Delivery": {delivery}}
	if event != "" {
		h.Set("X-GitHub-Event", event)
	}
	if ct != "" {
		h.Set("Content-Type", ct)
	}
	secret := webhookSecret
	if flags == flagBadSignature {
		secret = "not-" + webhookSecret
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(sent)
	h.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))

	before := o.lastSeq(t)
	code, answer, err := o.send("/webhooks/github", h, sent)
	status = code
	if err != nil && !utf8.ValidString(event) {
		if after := o.lastSeq(t); after != before {
			t.Fatalf("no answer (%v), yet the event stream went from seq %d to %d", err, before, after)
		}
		o.ready(t)
		knownDefect(t, "W3", fmt.Sprintf("X-GitHub-Event %q: no answer: %v", event, err))
	}
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if code == 500 && bytes.Contains(answer, []byte("translator produced an invalid event: data: not valid JSON")) {
		if after := o.lastSeq(t); after != before {
			t.Fatalf("answered %d (%s), yet the event stream went from seq %d to %d", code, clip(answer), before, after)
		}
		o.ready(t)
		knownDefect(t, "W2", fmt.Sprintf("answered 500 %s (flags %d)", clip(answer), flags))
	}
	if code >= 500 {
		t.Fatalf("answered %d: %s", code, clip(answer))
	}
	if flags == flagBadSignature && code != 401 {
		t.Fatalf("a wrong signature answered %d: %s", code, clip(answer))
	}
	if code != 202 {
		if after := o.lastSeq(t); after != before {
			t.Fatalf("answered %d (%s), yet the event stream went from seq %d to %d", code, clip(answer), before, after)
		}
		o.ready(t)
		return
	}
	events, err := w.provider.Translate(h, sent)
	if err != nil || len(events) == 0 {
		t.Fatalf("accepted (%s), but the provider's translation gives %d events: %v", clip(answer), len(events), err)
	}
	var resp webhook.Response
	decodeAnswer(t, answer, &resp)
	if resp.Accepted != len(events) {
		t.Fatalf("%d events translated, answer %s", len(events), clip(answer))
	}
	if resp.Duplicates == resp.Accepted {
		// A replay of a body already stored (its seen marker, or the same
		// delivery id within the duplicate window): nothing new is stored.
		o.consumersDone(t)
		if after := o.lastSeq(t); after != before {
			t.Fatalf("answered as a duplicate (%s), yet the event stream went from seq %d to %d", clip(answer), before, after)
		}
		o.ready(t)
		return
	}
	// What the door would refuse of these events (defect W1).
	var refused []string
	for _, e := range events {
		if err := w.door.CheckEvent(e); err != nil {
			refused = append(refused, fmt.Sprintf("%s %s: %v", e.Type, clip([]byte(e.ID)), clipErr(err)))
		}
	}
	o.consumersDone(t)
	var observed []string
	rows := make([]*store.EventRow, len(events))
	var received time.Time // evidenced's clock: the raw event's time
	for i, e := range events {
		rows[i] = w.row(t, e)
		if rows[i] != nil && e.Type == webhook.TypeWebhookReceived {
			received = time.Unix(0, rows[i].EventTimeNs).UTC()
		}
	}
	for i, e := range events {
		if rows[i] == nil {
			observed = append(observed, fmt.Sprintf("%s not archived", e.Type))
			continue
		}
		want := e.MarshalCanonical()
		if e.Time.Equal(clock) || bytes.Contains(want, []byte(clock.Format(time.RFC3339Nano))) {
			c := *e
			if c.Time.Equal(clock) {
				c.Time = received
			}
			want = bytes.ReplaceAll(c.MarshalCanonical(), []byte(clock.Format(time.RFC3339Nano)), []byte(received.Format(time.RFC3339Nano)))
		}
		got, err := verify.EventFromRow(rows[i])
		if err != nil {
			t.Fatalf("%s: the row does not rebuild an event: %v", e.Type, err)
		}
		if len(refused) > 0 {
			o.known[rows[i].StreamSeq] = "W1"
		}
		if h, err := archive.RowHash(rows[i]); err != nil || h != rows[i].Hash {
			if len(refused) == 0 {
				t.Fatalf("%s (seq %d): the row's hash does not match its content (%v)", e.Type, rows[i].StreamSeq, err)
			}
			observed = append(observed, fmt.Sprintf("seq %d (%s): the row's hash does not match its content, evidence verify reports it altered", rows[i].StreamSeq, e.Type))
		}
		if secs := w.eventTime(t, rows[i].StreamSeq); rows[i].EventTimeNs != 0 && int64(secs) != rows[i].EventTimeNs/1e9 {
			if len(refused) == 0 {
				t.Fatalf("%s (seq %d): event_time column %d s, event_time_ns %d", e.Type, rows[i].StreamSeq, secs, rows[i].EventTimeNs)
			}
			observed = append(observed, fmt.Sprintf("seq %d (%s): event_time column %d s (%s), event_time_ns %d", rows[i].StreamSeq, e.Type,
				secs, time.Unix(int64(secs), 0).UTC().Format(time.RFC3339), rows[i].EventTimeNs))
		}
		if g := got.MarshalCanonical(); !bytes.Equal(g, want) {
			if len(refused) == 0 {
				t.Fatalf("%s archived as\n%q\nbut published as\n%q", e.Type, g, want)
			}
			observed = append(observed, fmt.Sprintf("%s archived as %q, published as %q", e.Type, clip(g), clip(want)))
			continue
		}
		if len(refused) == 0 {
			o.expect(t, rows[i].StreamSeq, want, resp.Duplicates > 0)
			o.checkRow(t, rows[i].StreamSeq)
		}
	}
	dl := o.newDeadLetters(t)
	for _, l := range dl {
		observed = append(observed, l.String())
	}
	if len(refused) == 0 {
		if len(observed) > 0 {
			t.Fatalf("accepted a delivery whose events the door admits, but: %s", strings.Join(observed, "; "))
		}
		o.ready(t)
		o.accepted++
		if o.accepted%100 == 0 {
			o.verifyAll(t)
		}
		return
	}
	o.deadLetters += uint64(len(dl))
	o.ready(t)
	if len(observed) == 0 {
		observed = append(observed, "archived as published")
	}
	knownDefect(t, "W1", fmt.Sprintf("accepted events the door refuses (%s); then: %s", strings.Join(refused, "; "), strings.Join(observed, "; ")))
}

func clipErr(err error) string { return clip([]byte(err.Error())) }

// eventTime is the event_time column (seconds) of row seq.
func (w *webhookCheck) eventTime(t *testing.T, seq uint64) uint32 {
	t.Helper()
	var secs uint32
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	if err := w.o.st.Conn().QueryRow(ctx, "SELECT toUnixTimestamp(event_time) FROM events WHERE stream_seq = ?", seq).Scan(&secs); err != nil {
		t.Fatalf("event_time of seq %d: %v", seq, err)
	}
	return secs
}

// row is the archived row of e (by source and id), nil when there is none.
func (w *webhookCheck) row(t *testing.T, e *ce.Event) *store.EventRow {
	t.Helper()
	var seq uint64
	ctx, cancel := context.WithTimeout(context.Background(), answerTimeout)
	defer cancel()
	if err := w.o.st.Conn().QueryRow(ctx, "SELECT max(stream_seq) FROM events WHERE event_id = ? AND source = ?", e.ID, e.Source).Scan(&seq); err != nil {
		t.Fatalf("row of %s: %v", e.ID, err)
	}
	if seq == 0 {
		return nil
	}
	rs := w.o.rows(t, seq, seq)
	return &rs[0]
}

// githubSeeds are the deliveries of producers/github's tests: its
// testdata payloads and the minimal payloads of its FuzzTranslate, as
// JSON and as a form, and once with a wrong signature.
func githubSeeds(tb testing.TB) [][2]string {
	tb.Helper()
	var out [][2]string
	files, err := filepath.Glob(filepath.Join("..", "..", "producers", "github", "testdata", "*.json"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("producers/github/testdata: %v (%d files)", err, len(files))
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			tb.Fatal(err)
		}
		event, _, _ := strings.Cut(filepath.Base(name), ".")
		out = append(out, [2]string{event, string(b)})
	}
	repo := `"repository": {"name": "app", "html_url": "https://github.com/acme/app", "default_branch": "main"}`
	for _, s := range [][2]string{
		{"pull_request", `{"action": "opened", "pull_request": {"number": 1, "title": "PAY-1", "user": {"login": "a"}, "head": {"ref": "pay-1-x", "sha": "0123456789abcdef0123456789abcdef01234567"}, "base": {"ref": "main"}}, ` + repo + `}`},
		{"pull_request", `{"action": "closed", "pull_request": {"number": 1, "merged": true, "merge_commit_sha": "abcdef0", "head": {"sha": "0123456"}, "base": {"ref": "main"}}, ` + repo + `}`},
		{"pull_request_review", `{"action": "submitted", "review": {"state": "approved", "commit_id": "0123456", "user": {"login": "b"}, "submitted_at": "2026-01-02T03:04:05Z"}, "pull_request": {"number": 1}, ` + repo + `}`},
		{"push", `{"ref": "refs/heads/main", "after": "0123456", ` + repo + `}`},
		{"workflow_run", `{"action": "completed", "workflow_run": {"id": 5, "head_sha": "0123456", "conclusion": "failure", "event": "push"}, ` + repo + `}`},
		{"check_suite", `{"action": "completed", "check_suite": {"id": 5, "head_sha": "0123456", "app": {"name": "Circle CI"}}, ` + repo + `}`},
		{"status", `{"state": "pending", "sha": "0123456", "context": "ci", ` + repo + `}`},
		{"deployment", `{"action": "created", "deployment": {"id": 3, "sha": "0123456", "environment": "prod", "payload": "{\"service\": \"x\"}"}, ` + repo + `}`},
		{"deployment_status", `{"action": "created", "deployment_status": {"state": "success"}, "deployment": {"sha": "0123456", "environment": "prod"}, ` + repo + `}`},
		{"ping", `{"zen": "x"}`},
		{"pull_request", `{"action": "opened", "pull_request": null}`},
		{"push", `[]`},
	} {
		out = append(out, s)
	}
	return out
}

// FuzzGitHubWebhook posts signed GitHub deliveries to one evidenced
// (started once for the fuzz process) and checks each (see deliver);
// every 100 accepted deliveries, and at the end, the whole archive is
// checked as evidence verify checks it.
func FuzzGitHubWebhook(f *testing.F) {
	for i, s := range githubSeeds(f) {
		f.Add(byte(0), s[0], "seed", []byte(s[1]))
		if i%4 == 0 {
			f.Add(flagForm, s[0], "seed", []byte(s[1]))
			f.Add(flagNoContentType, s[0], "seed", []byte(s[1]))
			f.Add(flagBadSignature, s[0], "seed", []byte(s[1]))
		}
	}
	w := newWebhookCheck(f)
	f.Cleanup(func() {
		w.o.verifyAll(f)
		w.o.ready(f)
	})
	f.Fuzz(func(t *testing.T, flags byte, event, delivery string, body []byte) {
		w.deliver(t, flags, event, delivery, body)
	})
}
