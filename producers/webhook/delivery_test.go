package webhook_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

var received = time.Date(2025, 3, 3, 17, 0, 0, 500, time.FixedZone("CET", 3600))

// fieldOf is the field a *ce.Error names; it fails the test for any other
// error.
func fieldOf(t *testing.T, err error) (field, message string) {
	t.Helper()
	var fe *ce.Error
	if !errors.As(err, &fe) {
		t.Fatalf("error %v (%T), want a *ce.Error", err, err)
	}
	return fe.Field, fe.Message
}

func TestDecode(t *testing.T) {
	type payload struct {
		Object struct {
			IID    int64    `json:"iid"`
			Labels []string `json:"labels"`
		} `json:"object_attributes"`
		Draft bool `json:"draft"`
	}
	for _, tc := range []struct {
		name, body   string
		field, start string // start: how the message starts
	}{
		{"number as string", `{"object_attributes": {"iid": "7"}}`, "object_attributes.iid", "must be an integer, got a JSON string"},
		{"object as array", `{"object_attributes": []}`, "object_attributes", "must be an object, got a JSON array"},
		{"label as number", `{"object_attributes": {"labels": [1]}}`, "object_attributes.labels", "must be a string, got a JSON number"},
		{"bool as string", `{"draft": "yes"}`, "draft", "must be a boolean, got a JSON string"},
		{"array body", `[1, 2]`, "(body)", "must be an object, got a JSON array"},
		{"truncated", `{"draft": `, "(body)", "not valid JSON: "},
		{"not JSON", `draft=true`, "(body)", "not valid JSON: "},
		{"empty", ``, "(body)", "not valid JSON: unexpected end of JSON input"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var v payload
			field, msg := fieldOf(t, webhook.Decode([]byte(tc.body), &v))
			if field != tc.field || !strings.HasPrefix(msg, tc.start) {
				t.Errorf("%s: %s, want %s: %s...", field, msg, tc.field, tc.start)
			}
		})
	}
	var v payload
	if err := webhook.Decode([]byte(`{"object_attributes": {"iid": 7, "labels": ["a"]}, "draft": true, "other": 1}`), &v); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if v.Object.IID != 7 || !v.Draft || len(v.Object.Labels) != 1 {
		t.Errorf("decoded %+v", v)
	}
}

func TestRaw(t *testing.T) {
	h := http.Header{}
	h.Set("X-Gitlab-Event", "Merge Request Hook")
	h.Set("X-Gitlab-Token", "secret")
	h.Set("Authorization", "Bearer secret")
	h.Set("Content-Type", "application/json")
	body := []byte(`{"object_kind": "merge_request"}`)
	d := webhook.NewDelivery("gitlab", "Merge Request Hook", h,
		[]string{"X-Gitlab-Event", "X-Gitlab-Event-UUID", "Content-Type"}, body, received)

	e, err := d.Raw("https://gitlab.example/g/p", "gitlab.example/g/p/-/merge_requests/1", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	key := "sha256:" + hex.EncodeToString(sum[:])
	wantEvent := ce.Event{
		ID: key + "/webhook.received", Source: "https://gitlab.example/g/p", Type: webhook.TypeWebhookReceived,
		Subject: "gitlab.example/g/p/-/merge_requests/1", Time: received.UTC(), DataContentType: "application/json",
	}
	got := *e
	got.Data = nil
	if diff := cmp.Diff(wantEvent, got); diff != "" {
		t.Errorf("attributes (-want +got):\n%s", diff)
	}
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	wantData := map[string]any{
		"provider": "gitlab",
		"event":    "Merge Request Hook",
		// Only the allow-listed headers that were sent, lower-cased: no
		// token, no Authorization, nothing for the absent event UUID.
		"headers":            map[string]any{"x-gitlab-event": "Merge Request Hook", "content-type": "application/json"},
		"payload":            map[string]any{"object_kind": "merge_request"},
		"payload_sha256":     hex.EncodeToString(sum[:]),
		"signature_verified": true,
		"received_at":        "2025-03-03T16:00:00.0000005Z",
	}
	if diff := cmp.Diff(wantData, data); diff != "" {
		t.Errorf("data (-want +got):\n%s", diff)
	}
	if err := e.Validate(); err != nil {
		t.Errorf("invalid event: %v", err)
	}
}

// TestRawOfForm: a form-encoded delivery keeps the form's JSON as payload
// and the SHA-256 of the body as received; RawID and the fact's time win.
func TestRawOfForm(t *testing.T) {
	body := []byte(`payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D`)
	d := webhook.NewDelivery("github", "push", http.Header{}, []string{"X-GitHub-Event"}, body, received)
	d.Key, d.ID, d.RawID, d.Payload = "d-1", "d-1", "d-1", []byte(`{"ref":"refs/heads/main"}`)
	at := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	e, err := d.Raw("https://github.com/acme/app", "github.com/acme/app", at)
	if err != nil {
		t.Fatal(err)
	}
	if e.ID != "d-1" || !e.Time.Equal(at) {
		t.Errorf("id %q, time %v; want d-1 at %v", e.ID, e.Time, at)
	}
	var data map[string]any
	if err := json.Unmarshal(e.Data, &data); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if data["payload_sha256"] != hex.EncodeToString(sum[:]) || data["delivery_id"] != "d-1" {
		t.Errorf("payload_sha256 %v, delivery_id %v: want the SHA-256 of the body and d-1", data["payload_sha256"], data["delivery_id"])
	}
	if diff := cmp.Diff(map[string]any{"ref": "refs/heads/main"}, data["payload"]); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if _, ok := data["headers"]; ok {
		t.Errorf("headers %v, want none (none of the kept ones was sent)", data["headers"])
	}
	// The form is what the sender signed: it is kept as received.
	if got, err := base64.StdEncoding.DecodeString(fmt.Sprint(data["body_base64"])); err != nil || !bytes.Equal(got, body) {
		t.Errorf("body_base64 %v (%v), want the form body as received", data["body_base64"], err)
	}
}

// TestRawKeepsPayloadBytes: the payload member of webhook.received holds
// the payload byte for byte (not re-encoded), through the canonical
// encoding and back; body_base64 is there only when the payload member is
// not the body.
func TestRawKeepsPayloadBytes(t *testing.T) {
	// Indentation, characters a JSON encoder escapes (<, >, &, U+2028) and
	// escapes it rewrites (\u00e9, \/).
	pretty := []byte("{\n  \"title\": \"<b>fix</b> & caf\\u00e9 \\/ \u2028\",\n  \"n\": 1.50\n}")
	for _, tc := range []struct {
		name    string
		body    []byte
		payload []byte // the member's raw bytes
		kept    bool   // body_base64 expected
	}{
		{"as sent", pretty, pretty, false},
		{"whitespace around", append(append([]byte(" \r\n"), pretty...), '\n'), pretty, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := webhook.NewDelivery("jira", "jira:issue_updated", http.Header{}, nil, tc.body, received)
			e, err := d.Raw("https://acme.atlassian.net", "CHG-1", time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Validate(); err != nil {
				t.Fatalf("invalid event: %v", err)
			}
			back, err := ce.ParseJSON(e.MarshalCanonical())
			if err != nil {
				t.Fatal(err)
			}
			var data struct {
				Payload    json.RawMessage `json:"payload"`
				BodyBase64 string          `json:"body_base64"`
			}
			if err := json.Unmarshal(back.Data, &data); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data.Payload, tc.payload) {
				t.Errorf("payload member %q, want %q byte for byte", data.Payload, tc.payload)
			}
			if (data.BodyBase64 != "") != tc.kept {
				t.Errorf("body_base64 %q, want it present: %v", data.BodyBase64, tc.kept)
			}
			if tc.kept {
				if got, _ := base64.StdEncoding.DecodeString(data.BodyBase64); !bytes.Equal(got, tc.body) {
					t.Errorf("body_base64 is %q, want the body %q", got, tc.body)
				}
			}
		})
	}
	d := webhook.NewDelivery("jira", "jira:issue_updated", http.Header{}, nil, []byte(`{"a": `), received)
	if _, err := d.Raw("https://acme.atlassian.net", "CHG-1", time.Time{}); err == nil || !strings.Contains(err.Error(), "not valid JSON") {
		t.Errorf("Raw of a payload that is not JSON: %v, want an error saying so", err)
	}
}

func TestEvent(t *testing.T) {
	body := []byte(`{}`)
	d := webhook.NewDelivery("servicenow", "change_request.update", http.Header{}, nil, body, received)
	e, err := d.Event("https://acme.service-now.com", "ticket.created", webhook.TypeTicketCreated, "CHG0001", received, map[string]string{"key": "CHG0001"})
	if err != nil {
		t.Fatal(err)
	}
	if want := "sha256:" + webhook.BodySHA(body) + "/ticket.created"; e.ID != want {
		t.Errorf("id %q, want %q", e.ID, want)
	}
	if e.Type != webhook.TypeTicketCreated || e.DataContentType != "application/json" || string(e.Data) != `{"key":"CHG0001"}` {
		t.Errorf("event %+v", e)
	}
	d.Key = "idem-7"
	if e, _ = d.Event("https://acme.service-now.com", "ticket.approved/2", webhook.TypeTicketApproved, "CHG0001", received, nil); e.ID != "idem-7/ticket.approved/2" {
		t.Errorf("id %q, want idem-7/ticket.approved/2", e.ID)
	}
	if _, err := d.Event("s", "x", webhook.TypeTicketCreated, "", received, func() {}); err == nil || !strings.Contains(err.Error(), webhook.TypeTicketCreated) {
		t.Errorf("data that does not encode: %v, want an error naming the type", err)
	}
}

func TestCommitSHA(t *testing.T) {
	for _, s := range []struct{ in, want string }{
		{"", ""},
		{"abcdef0", "abcdef0"},
		{" ABCDEF0123 ", "abcdef0123"},
		{strings.Repeat("a1", 20), strings.Repeat("a1", 20)},
		{strings.Repeat("F", 64), strings.Repeat("f", 64)},
	} {
		got, err := webhook.CommitSHA("after", s.in)
		if err != nil || got != s.want {
			t.Errorf("CommitSHA(%q) = %q, %v; want %q", s.in, got, err, s.want)
		}
	}
	for _, s := range []string{"abcdef", strings.Repeat("a", 65), "main", "g123456", "abc def0", " "} {
		got, err := webhook.CommitSHA("checkout_sha", s)
		if got != "" || err == nil {
			t.Errorf("CommitSHA(%q) = %q, %v; want an error", s, got, err)
			continue
		}
		if field, msg := fieldOf(t, err); field != "checkout_sha" || !strings.Contains(msg, "is not a commit SHA") {
			t.Errorf("CommitSHA(%q): %v, want checkout_sha: ... is not a commit SHA", s, err)
		}
	}
}

func TestParseTime(t *testing.T) {
	layouts := []string{time.RFC3339Nano, "2006-01-02 15:04:05"}
	for _, s := range []struct{ in, want string }{
		{"", ""},
		{" 2025-03-03 17:00:00 ", "2025-03-03T17:00:00Z"},
		{"2024-05-29T14:18:38.402+01:00", "2024-05-29T13:18:38.402Z"},
	} {
		got, err := webhook.ParseTime("sys_updated_on", s.in, layouts...)
		if err != nil || webhook.FormatTime(got) != s.want {
			t.Errorf("ParseTime(%q) = %v, %v; want %q", s.in, got, err, s.want)
		}
	}
	for _, s := range []struct{ in, msg string }{
		{"yesterday", `"yesterday" is not a timestamp`},
		{"0000-01-01T00:30:00+01:00", "is out of range"},
	} {
		_, err := webhook.ParseTime("sys_updated_on", s.in, layouts...)
		if field, msg := fieldOf(t, err); field != "sys_updated_on" || !strings.Contains(msg, s.msg) {
			t.Errorf("ParseTime(%q): %v, want sys_updated_on: ...%s", s.in, err, s.msg)
		}
	}
	a := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if got := webhook.FirstTime(time.Time{}, a, a.Add(time.Hour)); !got.Equal(a) {
		t.Errorf("FirstTime = %v, want %v", got, a)
	}
}

// FuzzDecode: whatever the body, Decode returns nil or a *ce.Error.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"iid": 7, "labels": ["a"]}`, `{"iid": "7"}`, `{"labels": {}}`, `[1]`, `{"iid": `, ``, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v struct {
			IID    int64             `json:"iid"`
			Labels []string          `json:"labels"`
			Meta   map[string]string `json:"meta"`
		}
		if err := webhook.Decode(body, &v); err != nil {
			fieldOf(t, err)
		}
	})
}
