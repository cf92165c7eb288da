package servicenow_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/webhook/webhooktest"
)

const (
	source = "https://acme.service-now.com"
	chgURL = source + "/change_request.do?sys_id=3f1c0d2e1b2a4c5d6e7f8091a2b3c4d5"
)

var (
	alice  = map[string]any{"login": "alice", "name": "Alice Martin", "email": "alice@acme.example", "type": "user"}
	carol  = map[string]any{"login": "carol.jones", "name": "Carol Jones", "email": "carol@acme.example", "type": "user"}
	window = map[string]any{"start": "2025-03-04T07:00:00Z", "end": "2025-03-04T08:00:00Z"}
)

// want is one expected event: its attributes and its data, field by field.
type want struct {
	Type    string
	ID      string
	Subject string
	Time    time.Time
	Data    map[string]any
}

func catalogEvents(t *testing.T, events []*ce.Event) []want {
	t.Helper()
	var out []want
	for _, e := range events {
		if e.Type == typeRaw {
			continue
		}
		if e.Source != source {
			t.Errorf("%s: source %q, want %q", e.Type, e.Source, source)
		}
		out = append(out, want{Type: e.Type, ID: e.ID, Subject: e.Subject, Time: e.Time, Data: webhooktest.DataMap(t, e)})
	}
	return out
}

func bodyID(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func TestTranslateFixtures(t *testing.T) {
	for _, tc := range []struct {
		file string
		want func(id string) []want
	}{{
		file: "created.json",
		want: func(id string) []want {
			return []want{{
				Type: "dev.evidencepipeline.ticket.created.v1", ID: id + "/ticket.created", Subject: "CHG0031234",
				Time: time.Date(2025, 3, 3, 10, 0, 0, 0, time.UTC),
				Data: map[string]any{
					"key": "CHG0031234", "system": "servicenow", "ticket_type": "normal", "raw_type": "normal",
					"status":         "New", // state "-5"
					"summary":        "Payments: retry card captures on gateway timeout (PAY-123)",
					"url":            chgURL,
					"requested_by":   alice,
					"planned_window": window,
					"links": map[string]any{
						"repositories": []any{"github.com/acme/payments"},
						"changes": []any{map[string]any{
							"repository": "github.com/acme/payments", "number": 42.0, "url": "https://github.com/acme/payments/pull/42",
						}},
					},
					"created_at": "2025-03-03T10:00:00Z",
				},
			}}
		},
	}, {
		file: "approved.json",
		want: func(id string) []want {
			base := func(m map[string]any) map[string]any {
				out := map[string]any{
					"key": "CHG0031234", "system": "servicenow", "ticket_type": "normal", "raw_type": "normal",
					"status":         "Scheduled",
					"summary":        "Payments: retry card captures on gateway timeout (PAY-123)",
					"url":            chgURL,
					"requested_by":   alice,
					"planned_window": window,
				}
				for k, v := range m {
					out[k] = v
				}
				return out
			}
			return []want{{
				Type: "dev.evidencepipeline.ticket.transitioned.v1", ID: id + "/ticket.transitioned", Subject: "CHG0031234",
				Time: time.Date(2025, 3, 3, 17, 5, 0, 0, time.UTC),
				Data: base(map[string]any{
					"previous_status": "Authorize",
					"transitioned_by": map[string]any{"login": "system", "type": "service"},
					"transitioned_at": "2025-03-03T17:05:00Z",
				}),
			}, {
				Type: "dev.evidencepipeline.ticket.approved.v1", ID: id + "/ticket.approved/carol.jones", Subject: "CHG0031234",
				Time: time.Date(2025, 3, 3, 17, 0, 0, 0, time.UTC),
				Data: base(map[string]any{
					"approver": carol, "approved_at": "2025-03-03T17:00:00Z",
					"approval_group": "Payments CAB", "comment": "Low risk, rollback tested.",
				}),
			}, {
				Type: "dev.evidencepipeline.ticket.approved.v1", ID: id + "/ticket.approved/erin.sec", Subject: "CHG0031234",
				Time: time.Date(2025, 3, 3, 16, 40, 0, 0, time.UTC),
				Data: base(map[string]any{
					"approver":    map[string]any{"login": "erin.sec", "name": "Erin Sec", "email": "erin@acme.example", "type": "user"},
					"approved_at": "2025-03-03T16:40:00Z",
				}),
			}}
		},
	}, {
		file: "rejected.json",
		want: func(id string) []want {
			base := func(m map[string]any) map[string]any {
				out := map[string]any{
					"key": "CHG0031301", "system": "servicenow", "ticket_type": "emergency", "raw_type": "emergency",
					"status":       "Canceled", // 4
					"summary":      "Hotfix: disable capture retries",
					"url":          source + "/change_request.do?sys_id=0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e",
					"requested_by": map[string]any{"login": "bob", "name": "Bob Chen", "type": "user"},
				}
				for k, v := range m {
					out[k] = v
				}
				return out
			}
			return []want{{
				Type: "dev.evidencepipeline.ticket.transitioned.v1", ID: id + "/ticket.transitioned", Subject: "CHG0031301",
				Time: time.Date(2025, 3, 5, 11, 20, 5, 0, time.UTC),
				Data: base(map[string]any{
					"previous_status": "Authorize", // -3
					"transitioned_by": map[string]any{"login": "carol.jones", "type": "user"},
					"transitioned_at": "2025-03-05T11:20:05Z",
				}),
			}, {
				Type: "dev.evidencepipeline.ticket.rejected.v1", ID: id + "/ticket.rejected/carol.jones", Subject: "CHG0031301",
				Time: time.Date(2025, 3, 5, 11, 20, 0, 0, time.UTC),
				Data: base(map[string]any{
					"approver": carol, "rejected_at": "2025-03-05T11:20:00Z",
					"approval_group": "Payments CAB", "reason": "No rollback plan.",
				}),
			}}
		},
	}} {
		t.Run(tc.file, func(t *testing.T) {
			// As the business rule sends it (JSON.stringify): without the
			// file's final newline (a body with whitespace around its JSON is
			// also kept in body_base64).
			body := bytes.TrimSpace(webhooktest.Testdata(t, tc.file))
			h := webhooktest.Header("X-Evidence-Signature", "sha256=abc", "X-Evidence-Token", "s3cret", "Authorization", "Basic eDp5",
				"Content-Type", "application/json", "User-Agent", "ServiceNow/1.0")
			events, err := newProvider().Translate(h, body)
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			id := bodyID(body)
			wants := tc.want(id)
			if diff := cmp.Diff(wants, catalogEvents(t, events)); diff != "" {
				t.Errorf("catalog events (-want +got):\n%s", diff)
			}
			raw := events[len(events)-1]
			var payload any
			if err := json.Unmarshal(body, &payload); err != nil {
				t.Fatal(err)
			}
			wantRaw := want{
				Type: typeRaw, ID: id + "/webhook.received", Subject: wants[0].Subject, Time: wants[0].Time,
				Data: map[string]any{
					"provider": "servicenow", "event": "change_request." + payload.(map[string]any)["operation"].(string),
					"headers": map[string]any{ // never the token or authorization
						"x-evidence-signature": "sha256=abc", "content-type": "application/json", "user-agent": "ServiceNow/1.0",
					},
					"payload": payload, "payload_sha256": id[len("sha256:"):],
					"signature_verified": true, "received_at": "2025-03-05T12:00:00Z",
				},
			}
			gotRaw := want{Type: raw.Type, ID: raw.ID, Subject: raw.Subject, Time: raw.Time, Data: webhooktest.DataMap(t, raw)}
			if diff := cmp.Diff(wantRaw, gotRaw); diff != "" {
				t.Errorf("raw event (-want +got):\n%s", diff)
			}
		})
	}
}

// edit returns the fixture with top-level fields replaced (nil deletes).
func edit(t testing.TB, name string, kv ...any) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(webhooktest.Testdata(t, name), &m); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(m, kv[i].(string))
		} else {
			m[kv[i].(string)] = kv[i+1]
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestNumericStates(t *testing.T) {
	for _, tc := range []struct {
		state any
		label string
	}{
		{"-5", "New"}, {"-4", "Assess"}, {"-3", "Authorize"}, {-2.0, "Scheduled"}, {-1.0, "Implement"},
		{"0", "Review"}, {1.0, "Open"}, {"2", "Work in Progress"}, {3.0, "Closed"}, {"4", "Canceled"},
		{"7", "Closed Skipped"}, {"implement", "Implement"}, {"CLOSED", "Closed"}, {"Peer Review", "Peer Review"},
	} {
		t.Run(fmt.Sprint(tc.state), func(t *testing.T) {
			body := edit(t, "approved.json", "state", tc.state, "previous_state", "-3", "approval", "requested")
			events, err := newProvider().Translate(webhooktest.Header(), body)
			if tc.label == "Authorize" { // the same state as before: no transition
				if !webhooktest.IsIgnored(err) {
					t.Fatalf("Translate() = %d events, %v; want *webhook.Ignored", len(events), err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			if events[0].Type != "dev.evidencepipeline.ticket.transitioned.v1" {
				t.Fatalf("type %s", events[0].Type)
			}
			d := webhooktest.DataMap(t, events[0])
			if d["status"] != tc.label || d["previous_status"] != "Authorize" {
				t.Errorf("status %v from %v, want %s from Authorize", d["status"], d["previous_status"], tc.label)
			}
		})
	}
}

func TestTranslateVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		body  []byte
		types []string
	}{
		{"created without operation", edit(t, "created.json", "operation", nil), []string{"dev.evidencepipeline.ticket.created.v1"}},
		{"approval already approved: not repeated", edit(t, "approved.json", "previous_approval", "approved"), []string{"dev.evidencepipeline.ticket.transitioned.v1"}},
		{"approval without previous_approval", edit(t, "approved.json", "previous_approval", nil, "previous_state", nil),
			[]string{"dev.evidencepipeline.ticket.approved.v1", "dev.evidencepipeline.ticket.approved.v1"}},
		{"approval values with underscores", edit(t, "approved.json", "approval", "Approved", "previous_approval", "not_requested", "previous_state", "Scheduled"),
			[]string{"dev.evidencepipeline.ticket.approved.v1", "dev.evidencepipeline.ticket.approved.v1"}},
		{"insert with an approval (standard change with an approver)", edit(t, "created.json", "approval", "approved", "approvers", []any{
			map[string]any{"user_name": "cab.bot", "state": "approved", "sys_updated_on": "2025-03-03 10:00:01"},
		}), []string{"dev.evidencepipeline.ticket.created.v1", "dev.evidencepipeline.ticket.approved.v1"}},
		{"one approver in two groups", edit(t, "approved.json", "previous_state", nil, "approvers", []any{
			map[string]any{"user_name": "carol.jones", "state": "approved", "group": "CAB"},
			map[string]any{"user_name": "carol.jones", "state": "approved", "group": "Security"},
		}), []string{"dev.evidencepipeline.ticket.approved.v1", "dev.evidencepipeline.ticket.approved.v1"}},
		{"unknown type kept raw", edit(t, "created.json", "type", "Model B"), []string{"dev.evidencepipeline.ticket.created.v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := newProvider().Translate(webhooktest.Header(), tc.body)
			if err != nil {
				t.Fatal(err)
			}
			webhooktest.CheckEvents(t, events)
			var types []string
			for _, e := range catalogEvents(t, events) {
				types = append(types, e.Type)
			}
			if diff := cmp.Diff(tc.types, types); diff != "" {
				t.Errorf("types (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIgnored(t *testing.T) {
	for name, body := range map[string][]byte{
		"other table":              edit(t, "approved.json", "table", "incident"),
		"no state change":          edit(t, "approved.json", "previous_state", "Scheduled", "previous_approval", "approved"),
		"standard, no approvers":   edit(t, "approved.json", "previous_state", nil, "approvers", []any{}),
		"approval still requested": edit(t, "approved.json", "previous_state", nil, "approval", "requested"),
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
		field string
	}{
		{"not JSON", []byte(`{"table":`), "(body)"},
		{"array", []byte(`[]`), "(body)"},
		{"no table", edit(t, "approved.json", "table", nil), "table"},
		{"no number", edit(t, "approved.json", "number", nil), "number"},
		{"no instance", edit(t, "approved.json", "instance", nil), "instance"},
		{"instance not a URL", edit(t, "approved.json", "instance", "acme"), "instance"},
		{"unknown state number", edit(t, "approved.json", "state", "5"), "state"},
		{"fractional state", edit(t, "approved.json", "state", -2.5), "state"},
		{"state an object", edit(t, "approved.json", "state", map[string]any{"value": "-2"}), "state"},
		{"bad previous state", edit(t, "approved.json", "previous_state", 99.0), "previous_state"},
		{"bad timestamp", edit(t, "approved.json", "sys_updated_on", "25/11/2026 10:00"), "sys_updated_on"},
		{"bad start", edit(t, "approved.json", "start_date", "tomorrow"), "start_date"},
		{"approver without user name", edit(t, "approved.json", "approvers", []any{map[string]any{"name": "Carol", "state": "approved"}}), "approvers[0].user_name"},
		{"approver bad time", edit(t, "approved.json", "approvers", []any{map[string]any{"user_name": "c", "state": "approved", "sys_updated_on": "x"}}), "approvers[0].sys_updated_on"},
		{"approvers not a list", edit(t, "approved.json", "approvers", "carol"), "approvers"},
		{"number a number", edit(t, "approved.json", "number", 31234.0), "number"},
		{"bad link commit", edit(t, "approved.json", "links", map[string]any{"commits": []any{"HEAD"}}), "links.commits[0]"},
		{"bad link repository", edit(t, "approved.json", "links", map[string]any{"repositories": []any{"payments"}}), "links.repositories[0]"},
		{"bad link change", edit(t, "approved.json", "links", map[string]any{"changes": []any{map[string]any{"repository": "github.com/a/b"}}}), "links.changes[0].number"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			events, err := newProvider().Translate(webhooktest.Header(), tc.body)
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

func TestReplayIDs(t *testing.T) {
	body := webhooktest.Testdata(t, "approved.json")
	ids := func() []string {
		events, err := newProvider().Translate(webhooktest.Header(), body)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range events {
			out = append(out, e.Source+" "+e.ID)
		}
		return out
	}
	first := ids()
	if diff := cmp.Diff(first, ids()); diff != "" {
		t.Errorf("a redelivery changed the ids (-first +replay):\n%s", diff)
	}
	other, err := newProvider().Translate(webhooktest.Header(), edit(t, "approved.json", "sys_updated_on", "2025-03-03 17:06:00"))
	if err != nil {
		t.Fatal(err)
	}
	if other[0].ID == events0(first) {
		t.Errorf("another delivery has the same id %s", other[0].ID)
	}
}

func events0(ids []string) string { return ids[0][len(source)+1:] }
