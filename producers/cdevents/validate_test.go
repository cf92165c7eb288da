package cdevents

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestIs(t *testing.T) {
	for typ, want := range map[string]bool{
		"dev.cdevents.service.deployed.0.3.0":          true,
		"dev.cdevents.pipelinerun.finished.0.1.0":      true,
		"dev.cdevents.approval.created.0.1.0-draft":    true,
		"dev.cdevents.foo.bar.1.2.3-rc.1+build.5":      true,
		"dev.cdevents.testcaserun.skipped.10.20.30":    true,
		"dev.cdevents.service.deployed":                false,
		"dev.cdevents.service.deployed.0.3":            false,
		"dev.cdevents.service.deployed.0.3.0.1":        false,
		"dev.cdevents.service.deployed.01.3.0":         false,
		"dev.cdevents.service.deployed.0.3.0-":         false,
		"dev.cdevents.service.deployed.0.3.0-01":       false,
		"dev.cdevents.Service.deployed.0.3.0":          false,
		"dev.cdevents..deployed.0.3.0":                 false,
		"dev.cdevents.service.de-ployed.0.3.0":         false,
		"dev.cdeventsx.mytool-resource.created.0.1.0":  false,
		"dev.evidencepipeline.change.opened.v1":        false,
		"com.github.pull_request.opened":               false,
		"":                                             false,
		"dev.cdevents.service.deployed.0.3.0 ":         false,
		"dev.cdevents.service.deployed.v0.3.0":         false,
		"dev.cdevents.service.deployed.0.3.0+":         false,
		"dev.cdevents.service.deployed.0.3.0-draft..1": false,
	} {
		if got := Is(typ); got != want {
			t.Errorf("Is(%q) = %v, want %v", typ, got, want)
		}
	}
	et, ok := ParseType("dev.cdevents.testcaserun.finished.0.3.0")
	if want := (EventType{Subject: "testcaserun", Predicate: "finished", Version: "0.3.0"}); !ok || et != want {
		t.Errorf("ParseType = %+v, %v; want %+v", et, ok, want)
	}
	if et.String() != "dev.cdevents.testcaserun.finished.0.3.0" || et.Name() != "testcaserun.finished" {
		t.Errorf("String %q Name %q", et.String(), et.Name())
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "valid", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestInvalid checks the problems of invalid events: their paths and
// messages, exactly.
func TestInvalid(t *testing.T) {
	const (
		deployed05 = "dev.cdevents.service.deployed.0.3.0"
		deployed04 = "dev.cdevents.service.deployed.0.2.0"
		finished05 = "dev.cdevents.pipelinerun.finished.0.3.0"
	)
	v05 := fixture(t, "v05-service-deployed.json")
	v04 := fixture(t, "v04-service-deployed.json")
	run05 := fixture(t, "v05-pipelinerun-finished.json")
	approval := fixture(t, "draft-approval-closed.json")
	set := func(data []byte, value any, keys ...string) []byte {
		return mutate(t, data, func(ev map[string]any) { at(ev, keys[:len(keys)-1]...)[keys[len(keys)-1]] = value })
	}
	del := func(data []byte, keys ...string) []byte {
		return mutate(t, data, func(ev map[string]any) { delete(at(ev, keys[:len(keys)-1]...), keys[len(keys)-1]) })
	}
	withType := func(data []byte, typ string) []byte { return set(data, typ, "context", "type") }

	for _, c := range []struct {
		name string
		typ  string
		data []byte
		want []Problem
	}{
		{"missing context.id", deployed05, del(v05, "context", "id"),
			[]Problem{{"data/context/id", "required property is missing"}}},
		{"empty context.id", deployed05, set(v05, "", "context", "id"),
			[]Problem{{"data/context/id", "must not be empty"}}},
		{"context.source not a string", deployed05, set(v05, 42, "context", "source"),
			[]Problem{{"data/context/source", "must be a string, got a number"}}},
		{"context.type is not the CloudEvents type", deployed05, withType(v05, "dev.cdevents.service.upgraded.0.3.0"),
			[]Problem{{"data/context/type", `must equal the CloudEvents type "dev.cdevents.service.deployed.0.3.0", got "dev.cdevents.service.upgraded.0.3.0"`}}},
		{"missing context.type", deployed05, del(v05, "context", "type"),
			[]Problem{{"data/context/type", "required property is missing"}}},
		{"unknown predicate", "dev.cdevents.service.exploded.0.3.0", withType(v05, "dev.cdevents.service.exploded.0.3.0"),
			[]Problem{{"data/context/type", "CDEvents 0.5 has no event service.exploded (service has: deployed, published, removed, rolledback, upgraded)"}}},
		{"unknown subject", "dev.cdevents.rocket.launched.0.1.0", withType(v05, "dev.cdevents.rocket.launched.0.1.0"),
			[]Problem{{"data/context/type", `CDEvents 0.5 has no subject "rocket"`}}},
		{"event version of 0.4 in a 0.5 event", deployed04, withType(v05, deployed04),
			[]Problem{{"data/context/type", `CDEvents 0.5 defines service.deployed 0.3.0, not "0.2.0" (0.2.0 is its version in CDEvents 0.4)`}}},
		{"event version of 0.5 in a 0.4 event", deployed05, withType(v04, deployed05),
			[]Problem{{"data/context/type", `CDEvents 0.4 defines service.deployed 0.2.0, not "0.3.0" (0.3.0 is its version in CDEvents 0.5)`}}},
		{"unknown event version", "dev.cdevents.service.deployed.9.0.0", withType(v05, "dev.cdevents.service.deployed.9.0.0"),
			[]Problem{{"data/context/type", `CDEvents 0.5 defines service.deployed 0.3.0, not "9.0.0"`}}},
		{"missing required content member", deployed05, del(v05, "subject", "content", "artifactId"),
			[]Problem{{"data/subject/content/artifactId", "required property is missing"}}},
		{"missing required nested member", deployed05, del(v05, "subject", "content", "environment", "id"),
			[]Problem{{"data/subject/content/environment/id", "required property is missing"}}},
		{"wrong type of a content member", deployed05, set(v05, 7, "subject", "content", "environment", "id"),
			[]Problem{{"data/subject/content/environment/id", "must be a string, got a number"}}},
		{"content member of the wrong kind", deployed05, set(v05, "prod", "subject", "content", "environment"),
			[]Problem{{"data/subject/content/environment", "must be an object, got a string"}}},
		{"unknown content member in 0.5", deployed05, set(v05, "x", "subject", "content", "replicas"),
			[]Problem{{"data/subject/content/replicas", "property is not allowed here (the CDEvents schema has additionalProperties: false)"}}},
		{"unknown top-level member in 0.5", deployed05, set(v05, "x", "extra"),
			[]Problem{{"data/extra", "property is not allowed here (the CDEvents schema has additionalProperties: false)"}}},
		{"bad timestamp", deployed05, set(v05, "2025-06-02 09:15", "context", "timestamp"),
			[]Problem{{"data/context/timestamp", `must be an RFC 3339 timestamp, got "2025-06-02 09:15"`}}},
		{"schemaUri not absolute", deployed05, set(v05, "schemas/custom.json", "context", "schemaUri"),
			[]Problem{{"data/context/schemaUri", `must be an absolute URI, got "schemas/custom.json"`}}},
		{"missing subject.id and content", deployed05, set(v05, map[string]any{}, "subject"),
			[]Problem{{"data/subject/id", "required property is missing"}, {"data/subject/content", "required property is missing"}}},
		{"subject.content not an object", deployed05, set(v05, []any{}, "subject", "content"),
			[]Problem{{"data/subject/content", "must be an object, got an array"}}},
		{"enum", finished05, set(run05, "ok", "subject", "content", "outcome"),
			[]Problem{{"data/subject/content/outcome", `must be one of "success", "failure", "cancel", "error", got "ok"`}}},
		{"customData of the wrong kind", finished05, set(run05, 3, "customData"),
			[]Problem{{"data/customData", "must be an object or a string (base64), got a number"}}},
		{"link of an unknown type", finished05, set(run05, []any{map[string]any{"linkType": "CAUSE"}}, "context", "links"),
			[]Problem{{"data/context/links/0/linkType", `must be one of "END", "PATH", "RELATION", got "CAUSE"`}}},
		{"PATH link without from", finished05, set(run05, []any{map[string]any{"linkType": "PATH"}}, "context", "links"),
			[]Problem{{"data/context/links/0/from", "required property is missing"}}},
		{"several problems", deployed05, mutate(t, v05, func(ev map[string]any) {
			delete(at(ev, "context"), "id")
			at(ev, "context")["timestamp"] = "now"
			delete(at(ev, "subject", "content"), "artifactId")
		}), []Problem{
			{"data/context/id", "required property is missing"},
			{"data/context/timestamp", `must be an RFC 3339 timestamp, got "now"`},
			{"data/subject/content/artifactId", "required property is missing"},
		}},

		// Spec versions.
		{"unsupported spec version", deployed05, set(v05, "0.3.0", "context", "specversion"),
			[]Problem{{"data/context/specversion", `unsupported CDEvents spec version "0.3.0": ` + accepted}}},
		{"0.1 spec version in context.version", "dev.cdevents.service.deployed.0.1.0",
			mutate(t, withType(v04, "dev.cdevents.service.deployed.0.1.0"), func(ev map[string]any) { at(ev, "context")["version"] = "0.1.0" }),
			[]Problem{{"data/context/version", `unsupported CDEvents spec version "0.1.0": ` + accepted}}},
		{"0.5 with context.version", deployed05, mutate(t, v05, func(ev map[string]any) {
			delete(at(ev, "context"), "specversion")
			at(ev, "context")["version"] = "0.5.1"
		}), []Problem{{"data/context/specversion", `required property is missing: CDEvents 0.5 holds the spec version in context.specversion (0.5 renamed context.version), got version "0.5.1"`}}},
		{"0.4 with context.specversion", deployed04, mutate(t, v04, func(ev map[string]any) {
			delete(at(ev, "context"), "version")
			at(ev, "context")["specversion"] = "0.4.1"
		}), []Problem{{"data/context/version", `required property is missing: CDEvents 0.4 holds the spec version in context.version (context.specversion came with 0.5), got specversion "0.4.1"`}}},
		{"no spec version", deployed05, del(v05, "context", "specversion"),
			[]Problem{{"data/context/specversion", "required property is missing: the CDEvents spec version (" + accepted + ")"}}},
		{"spec version not a string", deployed05, set(v05, 0.5, "context", "specversion"),
			[]Problem{{"data/context/specversion", "must be a string, got a number"}}},
		{"0.5 pre-release", deployed05, set(v05, "0.5.0-rc1", "context", "specversion"),
			[]Problem{{"data/context/specversion", `unsupported CDEvents spec version "0.5.0-rc1": ` + accepted}}},
		{"draft spec version for a released event", deployed05, set(v05, "0.6.0-draft", "context", "specversion"),
			[]Problem{{"data/context/specversion", `unsupported CDEvents spec version "0.6.0-draft" for service.deployed: only the draft approval events are accepted with it`}}},
		{"approval event in 0.5", "dev.cdevents.approval.closed.0.1.0", set(approval, "0.5.1", "context", "specversion"),
			[]Problem{{"data/context/type", `CDEvents 0.5 has no subject "approval" (it is an event of CDEvents 0.6.0-draft)`}}},
		{"approval without decision", "dev.cdevents.approval.closed.0.1.0", del(approval, "subject", "content", "decision"),
			[]Problem{{"data/subject/content/decision", "required property is missing"}}},
		{"approval link target without id", "dev.cdevents.approval.closed.0.1.0",
			set(approval, []any{map[string]any{"linkType": "RELATION", "linkKind": "GATES", "target": map[string]any{}}}, "context", "links"),
			[]Problem{{"data/context/links/0/target", "must have one of the properties contextId, domainId"}}},
		{"approval link domainId not canonical", "dev.cdevents.approval.closed.0.1.0",
			set(approval, []any{map[string]any{"linkType": "RELATION", "linkKind": "GATES", "target": map[string]any{"domainId": "github:pr:55"}}}, "context", "links"),
			[]Problem{{"data/context/links/0/target/domainId", `must match ^cdevents:v0:[^:]*:[^:]*:[^:]*:([^:/]([^:]*[^:/])?)?:[^:]+:.+$, got "github:pr:55"`}}},

		// The data as a whole.
		{"not a CDEvents type", "dev.evidencepipeline.change.opened.v1", v05,
			[]Problem{{"data/context/type", `the CloudEvents type "dev.evidencepipeline.change.opened.v1" is not a CDEvents event type (dev.cdevents.<subject>.<predicate>.<version>)`}}},
		{"no data", deployed05, nil,
			[]Problem{{"data", "required: a CDEvent is the JSON data of its CloudEvent"}}},
		{"not JSON", deployed05, []byte(`{"context":`),
			[]Problem{{"data", "not valid JSON: unexpected end of JSON at byte 11"}}},
		{"an array", deployed05, []byte(`[]`),
			[]Problem{{"data", "must be an object (a CDEvent: context and subject), got an array"}}},
		{"no context", deployed05, []byte(`{"subject": {}}`),
			[]Problem{{"data/context", "required property is missing: unsupported CDEvents spec version (the data has no CDEvents context; CDEvents 0.4 and 0.5 carry {context, subject} as the data, earlier formats such as the Jenkins plugin's do not)"}}},
		{"context not an object", deployed05, []byte(`{"context": "0.5.1", "subject": {}}`),
			[]Problem{{"data/context", "must be an object, got a string"}}},

		// 0.4: what it checks, and what it lets through.
		{"0.4 missing required content member", "dev.cdevents.pipelinerun.started.0.2.0",
			del(fixture(t, "v04-pipelinerun-started.json"), "subject", "content", "url"),
			[]Problem{{"data/subject/content/url", "required property is missing"}}},
		{"0.4 ticket without summary", "dev.cdevents.ticket.created.0.1.0",
			del(fixture(t, "v04-ticket-created.json"), "subject", "content", "summary"),
			[]Problem{{"data/subject/content/summary", "required property is missing"}}},
		{"0.4 missing subject.id", deployed04, del(v04, "subject", "id"),
			[]Problem{{"data/subject/id", "required property is missing"}}},
		{"0.4 subject.type not a string", deployed04, set(v04, true, "subject", "type"),
			[]Problem{{"data/subject/type", "must be a string, got a boolean"}}},
		{"0.4 unknown members pass", deployed04, mutate(t, v04, func(ev map[string]any) {
			at(ev, "subject", "content")["replicas"] = 3
			at(ev, "context")["specversion"] = "0.4.1"
			ev["extra"] = true
		}), nil},
		{"0.4 envelope-only type takes any content", deployed04, set(v04, map[string]any{"anything": 1}, "subject", "content"), nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := problemsOf(t, Validate(c.typ, c.data))
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := Validate("dev.cdevents.service.deployed.0.3.0", []byte(`[]`))
	want := "data is not a valid CDEvent of type dev.cdevents.service.deployed.0.3.0: data: must be an object (a CDEvent: context and subject), got an array"
	if err == nil || err.Error() != want {
		t.Fatalf("Error() = %v, want %q", err, want)
	}
}

// TestEveryTypeValidates builds a minimal event of every type of every
// spec version from its table and checks that it validates, and that the
// same event is refused without each required content member.
func TestEveryTypeValidates(t *testing.T) {
	for _, sp := range specs {
		for _, name := range sp.names() {
			e := sp.events[name]
			typ := TypePrefix + name + "." + e.version
			t.Run(sp.name+"/"+name, func(t *testing.T) {
				content := minimal(e.contentSchema()).(map[string]any)
				ctx := map[string]any{
					sp.field: sp.release, "id": "1", "source": "/s", "type": typ, "timestamp": "2025-01-01T00:00:00Z",
				}
				ev := map[string]any{"context": ctx, "subject": map[string]any{"id": "x", "content": content}}
				data := mutate(t, []byte(`{}`), func(m map[string]any) {
					for k, v := range ev {
						m[k] = v
					}
				})
				if err := Validate(typ, data); err != nil {
					t.Fatalf("minimal event: %v", err)
				}
				for _, p := range e.contentSchema().props {
					if !p.required {
						continue
					}
					without := deleteKey(t, data, "subject", "content", p.name)
					got := problemsOf(t, Validate(typ, without))
					want := []Problem{{"data/subject/content/" + p.name, "required property is missing"}}
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("without %s (-want +got):\n%s", p.name, diff)
					}
				}
			})
		}
	}
}

func deleteKey(t *testing.T, data []byte, keys ...string) []byte {
	return mutate(t, data, func(ev map[string]any) { delete(at(ev, keys[:len(keys)-1]...), keys[len(keys)-1]) })
}

// minimal builds the smallest valid value of a schema: required members
// only, the first enum value, strings that satisfy the format.
func minimal(s *schema) any {
	switch s.kind {
	case kindString:
		switch {
		case len(s.enum) > 0:
			return s.enum[0]
		case s.format == fmtURI:
			return "https://example.org/x"
		case s.format == fmtDateTime:
			return "2025-01-01T00:00:00Z"
		case s.pattern != "":
			return "cdevents:v0:github::acme:app:pr:1"
		}
		return strings.Repeat("x", max(s.minLen, 1))
	case kindObject:
		m := map[string]any{}
		for _, p := range s.props {
			if p.required {
				m[p.name] = minimal(p.s)
			}
		}
		return m
	case kindArray:
		return []any{}
	default:
		return map[string]any{}
	}
}
