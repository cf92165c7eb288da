package jira_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/jira"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

var (
	alice = map[string]any{"login": "712020:aa11bb22-cc33-dd44-ee55-ff6677889900", "name": "Alice Martin", "email": "alice@acme.example", "type": "user"}
	carol = map[string]any{"login": "5b10a2844c20165700ede21g", "name": "Carol Jones", "email": "carol@acme.example", "type": "user"}
	dave  = map[string]any{"login": "dave", "id": "JIRAUSER10100", "name": "Dave Ops", "email": "dave@acme.example", "type": "user"}
)

// want is one expected event: its attributes and its data, field by field.
type want struct {
	Type    string
	ID      string
	Source  string
	Subject string
	Time    time.Time
	Data    map[string]any
}

func got(t *testing.T, events []*ce.Event) []want {
	t.Helper()
	var out []want
	for _, e := range events {
		if e.Type == typeRaw {
			continue
		}
		out = append(out, want{Type: e.Type, ID: e.ID, Source: e.Source, Subject: e.Subject, Time: e.Time, Data: webhooktest.DataMap(t, e)})
	}
	return out
}

func TestTranslateFixtures(t *testing.T) {
	approvedAt := time.Date(2025, 3, 3, 17, 0, 0, 123e6, time.UTC)
	for _, tc := range []struct {
		file string
		opts func(*jira.Options)
		want []want
	}{{
		file: "change_created.json",
		opts: func(o *jira.Options) { o.LinksField = "customfield_10050" },
		want: []want{{
			Type: "dev.evidencepipeline.ticket.created.v1", ID: "d-1/ticket.created", Source: "https://acme.atlassian.net",
			Subject: "CHG-7", Time: time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC),
			Data: map[string]any{
				"key": "CHG-7", "system": "jira", "ticket_type": "normal", "raw_type": "Change", "status": "Open",
				"summary":      "Payments: retry card captures on gateway timeout (PAY-123)",
				"url":          "https://acme.atlassian.net/browse/CHG-7",
				"requested_by": alice,
				"links": map[string]any{
					"repositories": []any{"gitlab.acme.example/payments/payments-api"},
					"changes": []any{map[string]any{
						"repository": "gitlab.acme.example/payments/payments-api", "number": 42.0,
						"url": "https://gitlab.acme.example/Payments/Payments-API/-/merge_requests/42",
					}},
					"commits": []any{"9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4"},
				},
				"created_at": "2025-03-03T10:00:00Z",
			},
		}},
	}, {
		file: "change_approved.json",
		want: []want{{
			Type: "dev.evidencepipeline.ticket.transitioned.v1", ID: "d-1/ticket.transitioned", Source: "https://acme.atlassian.net",
			Subject: "CHG-7", Time: approvedAt,
			Data: map[string]any{
				"key": "CHG-7", "system": "jira", "ticket_type": "emergency", "raw_type": "Change",
				"status": "Approved", "previous_status": "Authorize",
				"summary":         "Payments: retry card captures on gateway timeout (PAY-123)",
				"url":             "https://acme.atlassian.net/browse/CHG-7",
				"requested_by":    map[string]any{"login": "712020:aa11bb22-cc33-dd44-ee55-ff6677889900", "name": "Alice Martin", "type": "user"},
				"transitioned_by": carol,
				"transitioned_at": "2025-03-03T17:00:00.123Z",
			},
		}, {
			Type: "dev.evidencepipeline.ticket.approved.v1", ID: "d-1/ticket.approved", Source: "https://acme.atlassian.net",
			Subject: "CHG-7", Time: approvedAt,
			Data: map[string]any{
				"key": "CHG-7", "system": "jira", "ticket_type": "emergency", "raw_type": "Change", "status": "Approved",
				"summary":      "Payments: retry card captures on gateway timeout (PAY-123)",
				"url":          "https://acme.atlassian.net/browse/CHG-7",
				"requested_by": map[string]any{"login": "712020:aa11bb22-cc33-dd44-ee55-ff6677889900", "name": "Alice Martin", "type": "user"},
				"approver":     carol,
				"approved_at":  "2025-03-03T17:00:00.123Z",
			},
		}},
	}, {
		file: "change_transitioned.json",
		want: []want{{
			Type: "dev.evidencepipeline.ticket.transitioned.v1", ID: "d-1/ticket.transitioned", Source: "https://jira.acme.example/jira",
			Subject: "OPS-88", Time: time.Date(2025, 3, 4, 7, 1, 0, 0, time.UTC),
			Data: map[string]any{
				"key": "OPS-88", "system": "jira", "ticket_type": "standard", "raw_type": "Change Request",
				"status": "Implementing", "previous_status": "Approved",
				"summary":         "Rotate the payments database password",
				"url":             "https://jira.acme.example/jira/browse/OPS-88",
				"requested_by":    map[string]any{"login": "erin", "name": "Erin Sec", "type": "user"},
				"transitioned_by": dave,
				"transitioned_at": "2025-03-04T07:01:00Z",
			},
		}},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			var opts []func(*jira.Options)
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			// As Jira sends it: without the file's final newline (a body
			// with whitespace around its JSON is also kept in body_base64).
			body := bytes.TrimSpace(webhooktest.Testdata(t, tc.file))
			h := webhooktest.Header("X-Atlassian-Webhook-Identifier", "d-1", "X-Hub-Signature", "sha256=00", "X-Evidence-Token", "s3cret",
				"Content-Type", "application/json; charset=utf-8", "User-Agent", "Atlassian Webhook HTTP Client")
			events, err := newProvider(opts...).Translate(h, body)
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			if diff := cmp.Diff(tc.want, got(t, events)); diff != "" {
				t.Errorf("catalog events (-want +got):\n%s", diff)
			}
			raw := events[len(events)-1]
			var payload any
			if err := json.Unmarshal(body, &payload); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			wantRaw := want{
				Type: typeRaw, ID: "d-1/webhook.received", Source: tc.want[0].Source, Subject: tc.want[0].Subject, Time: tc.want[0].Time,
				Data: map[string]any{
					"provider": "jira", "event": webhooktest.DataMap(t, raw)["event"], "delivery_id": "d-1",
					"headers": map[string]any{ // never x-evidence-token
						"x-atlassian-webhook-identifier": "d-1", "x-hub-signature": "sha256=00",
						"content-type": "application/json; charset=utf-8", "user-agent": "Atlassian Webhook HTTP Client",
					},
					"payload": payload, "payload_sha256": hex.EncodeToString(sum[:]),
					"signature_verified": true, "received_at": "2025-03-05T12:00:00Z",
				},
			}
			gotRaw := want{Type: raw.Type, ID: raw.ID, Source: raw.Source, Subject: raw.Subject, Time: raw.Time, Data: webhooktest.DataMap(t, raw)}
			if diff := cmp.Diff(wantRaw, gotRaw); diff != "" {
				t.Errorf("raw event (-want +got):\n%s", diff)
			}
			if ev := gotRaw.Data["event"]; ev != payload.(map[string]any)["webhookEvent"] {
				t.Errorf("raw event name %v", ev)
			}
		})
	}
}

// edit returns the fixture with JSON edits applied: each edit is a path of
// object keys (or array indexes) and the value to set there (nil deletes
// it).
func edit(t testing.TB, name string, edits ...[]any) []byte {
	t.Helper()
	var m any
	if err := json.Unmarshal(webhooktest.Testdata(t, name), &m); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		path, v := e[:len(e)-1], e[len(e)-1]
		node := m
		for _, k := range path[:len(path)-1] {
			switch n := node.(type) {
			case map[string]any:
				if _, ok := n[k.(string)]; !ok {
					n[k.(string)] = map[string]any{}
				}
				node = n[k.(string)]
			case []any:
				node = n[k.(int)]
			}
		}
		switch n := node.(type) {
		case map[string]any:
			if v == nil {
				delete(n, path[len(path)-1].(string))
			} else {
				n[path[len(path)-1].(string)] = v
			}
		case []any:
			n[path[len(path)-1].(int)] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func at(keysAndValue ...any) []any { return keysAndValue }

func TestTranslateVariants(t *testing.T) {
	for _, tc := range []struct {
		name      string
		body      []byte
		opts      func(*jira.Options)
		wantTypes []string
		want      map[string]any // fields of the last catalog event's data
	}{
		{"rejected", edit(t, "change_approved.json", at("changelog", "items", 1, "toString", "Declined")), nil,
			[]string{"dev.evidencepipeline.ticket.transitioned.v1", "dev.evidencepipeline.ticket.rejected.v1"},
			map[string]any{"approver": carol, "rejected_at": "2025-03-03T17:00:00.123Z", "status": "Declined", "approved_at": nil}},
		{"custom approved status, any case", edit(t, "change_approved.json", at("changelog", "items", 1, "toString", "cab approved")),
			func(o *jira.Options) { o.ApprovedStatuses = []string{"CAB Approved"} },
			[]string{"dev.evidencepipeline.ticket.transitioned.v1", "dev.evidencepipeline.ticket.approved.v1"},
			map[string]any{"status": "cab approved", "approver": carol}},
		{"type from a custom select field", edit(t, "change_created.json", at("issue", "fields", "customfield_10060", "value", "Emergency")),
			func(o *jira.Options) { o.TypeField = "customfield_10060" },
			[]string{"dev.evidencepipeline.ticket.created.v1"}, map[string]any{"ticket_type": "emergency", "links": nil}},
		{"type field absent", edit(t, "change_created.json", at("issue", "fields", "customfield_10060", nil)),
			func(o *jira.Options) { o.TypeField = "customfield_10060" },
			[]string{"dev.evidencepipeline.ticket.created.v1"}, map[string]any{"ticket_type": "normal"}},
		{"links field of another shape", edit(t, "change_created.json", at("issue", "fields", "customfield_10050", 12.0)),
			func(o *jira.Options) { o.LinksField = "customfield_10050" },
			[]string{"dev.evidencepipeline.ticket.created.v1"}, map[string]any{"links": nil}},
		{"base URL option", webhooktest.Testdata(t, "change_transitioned.json"),
			func(o *jira.Options) { o.BaseURL = "https://jira.acme.example/jira/" },
			[]string{"dev.evidencepipeline.ticket.transitioned.v1"}, map[string]any{"url": "https://jira.acme.example/jira/browse/OPS-88"}},
		{"no timestamp", edit(t, "change_transitioned.json", at("timestamp", nil)), nil,
			[]string{"dev.evidencepipeline.ticket.transitioned.v1"}, map[string]any{"transitioned_at": "2025-03-05T12:00:00Z"}},
		{"app user", edit(t, "change_approved.json", at("user", "accountType", "app")), nil,
			[]string{"dev.evidencepipeline.ticket.transitioned.v1", "dev.evidencepipeline.ticket.approved.v1"},
			map[string]any{"approver": map[string]any{"login": "5b10a2844c20165700ede21g", "name": "Carol Jones", "email": "carol@acme.example", "type": "bot"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []func(*jira.Options)
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			events, err := newProvider(opts...).Translate(webhooktest.Header(), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			evs := got(t, events)
			var types []string
			for _, e := range evs {
				types = append(types, e.Type)
			}
			if diff := cmp.Diff(tc.wantTypes, types); diff != "" {
				t.Fatalf("types (-want +got):\n%s", diff)
			}
			data := evs[len(evs)-1].Data
			gotFields := map[string]any{}
			for k := range tc.want {
				gotFields[k] = data[k]
			}
			if diff := cmp.Diff(tc.want, gotFields); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	for name, body := range map[string][]byte{
		"not a change type":     edit(t, "change_approved.json", at("issue", "fields", "issuetype", "name", "Story")),
		"no issue type":         edit(t, "change_approved.json", at("issue", "fields", "issuetype", nil)),
		"edit without a status": edit(t, "change_approved.json", at("changelog", "items", 1, "field", "summary"), at("changelog", "items", 1, "fieldId", "summary")),
		"no changelog":          edit(t, "change_approved.json", at("changelog", nil)),
		"comment":               edit(t, "change_approved.json", at("webhookEvent", "comment_created")),
		"deleted":               edit(t, "change_approved.json", at("webhookEvent", "jira:issue_deleted")),
	} {
		t.Run(name, func(t *testing.T) {
			events, err := newProvider().Translate(webhooktest.Header(), body)
			if !webhooktest.IsIgnored(err) {
				t.Fatalf("Translate() = %d events, %v; want *webhook.Ignored", len(events), err)
			}
		})
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  []byte
		opts  func(*jira.Options)
		field string
	}{
		{"not JSON", []byte(`{"webhookEvent"`), nil, "(body)"},
		{"array", []byte(`[]`), nil, "(body)"},
		{"no webhookEvent", []byte(`{"issue":{}}`), nil, "webhookEvent"},
		{"no issue", edit(t, "change_approved.json", at("issue", nil)), nil, "issue"},
		{"no key", edit(t, "change_approved.json", at("issue", "key", nil)), nil, "issue.key"},
		{"key with space", edit(t, "change_approved.json", at("issue", "key", "CHG 7")), nil, "issue.key"},
		{"issue type a string", edit(t, "change_approved.json", at("issue", "fields", "issuetype", "Change")), nil, "issue.fields.issuetype"},
		{"labels not a list", edit(t, "change_approved.json", at("issue", "fields", "labels", "emergency-change")), nil, "issue.fields.labels"},
		{"status name a number", edit(t, "change_approved.json", at("issue", "fields", "status", "name", 3.0)), nil, "issue.fields.status.name"},
		{"timestamp a string", edit(t, "change_approved.json", at("timestamp", "now")), nil, "timestamp"},
		{"timestamp out of range", edit(t, "change_approved.json", at("timestamp", 9e15)), nil, "timestamp"},
		{"bad created", edit(t, "change_created.json", at("issue", "fields", "created", "yesterday")), nil, "issue.fields.created"},
		{"no site", edit(t, "change_approved.json", at("issue", "self", nil)), nil, "issue.self"},
		{"approved without user", edit(t, "change_approved.json", at("user", nil)), nil, "user"},
		{"user not an object", edit(t, "change_approved.json", at("user", "carol")), nil, "user"},
		{"changelog items not a list", edit(t, "change_approved.json", at("changelog", "items", "status")), nil, "changelog.items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var opts []func(*jira.Options)
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			events, err := newProvider(opts...).Translate(webhooktest.Header(), tc.body)
			if err == nil || webhooktest.IsIgnored(err) {
				t.Fatalf("Translate() = %d events, %v; want an error naming %s", len(events), err, tc.field)
			}
			var fe *ce.Error
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("error %q, want one naming %q", err, tc.field)
			}
		})
	}
}

func TestIDs(t *testing.T) {
	p := newProvider()
	body := webhooktest.Testdata(t, "change_approved.json")
	ids := func(h map[string]string, body []byte) []string {
		t.Helper()
		hh := webhooktest.Header()
		for k, v := range h {
			hh.Set(k, v)
		}
		events, err := p.Translate(hh, body)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range events {
			out = append(out, e.Source+" "+e.ID)
		}
		return out
	}
	sum := sha256.Sum256(body)
	for name, tc := range map[string]struct {
		h    map[string]string
		base string
	}{
		"identifier": {map[string]string{"X-Atlassian-Webhook-Identifier": "d-9", "X-Atlassian-Webhook-Retry": "2"}, "d-9"},
		"body hash":  {nil, "sha256:" + hex.EncodeToString(sum[:])},
	} {
		t.Run(name, func(t *testing.T) {
			first := ids(tc.h, body)
			src := "https://acme.atlassian.net "
			want := []string{src + tc.base + "/ticket.transitioned", src + tc.base + "/ticket.approved", src + tc.base + "/webhook.received"}
			if diff := cmp.Diff(want, first); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(first, ids(tc.h, body)); diff != "" {
				t.Errorf("a redelivery changed the ids (-first +replay):\n%s", diff)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (jira.Options{}).Validate(); err != nil {
		t.Errorf("zero options: %v", err)
	}
	if err := (jira.Options{BaseURL: "acme.atlassian.net"}).Validate(); err == nil {
		t.Error("a base URL without scheme was accepted")
	}
	if err := (jira.Options{ApprovedStatuses: []string{"Done"}, RejectedStatuses: []string{"done"}}).Validate(); err == nil {
		t.Error("a status both approved and rejected was accepted")
	}
}
