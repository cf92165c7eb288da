package cdevents

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// TestConformanceExamples validates every conformance example of CDEvents
// v0.5.1 and the draft approval examples: each is a valid CDEvent of its
// type, alone and as the data of a CloudEvent parsed as the receiver does.
func TestConformanceExamples(t *testing.T) {
	for _, rel := range []string{
		"cdevents/spec-v0.5.1/conformance",
		"cdevents/spec-main-unreleased-approval/conformance",
	} {
		dir := corpusDir(t, rel)
		for _, path := range jsonFiles(t, dir) {
			t.Run(filepath.Join(filepath.Base(filepath.Dir(filepath.Dir(path))), filepath.Base(path)), func(t *testing.T) {
				typ, data := readCDEvent(t, path)
				if !Is(typ) {
					t.Fatalf("Is(%q) = false", typ)
				}
				if err := Validate(typ, data); err != nil {
					t.Fatalf("Validate: %v", err)
				}
				e := wrap(t, typ, data)
				if err := Validate(e.Type, e.Data); err != nil {
					t.Fatalf("Validate of the CloudEvent's data: %v", err)
				}
			})
		}
	}
}

// wrap makes a CloudEvent of a CDEvent, as a producer sends it, and parses
// it as the receiver does.
func wrap(t *testing.T, typ string, data []byte) *ce.Event {
	t.Helper()
	var head struct {
		Context struct {
			ID     string `json:"id"`
			Source string `json:"source"`
		} `json:"context"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		t.Fatal(err)
	}
	envelope, err := json.Marshal(map[string]any{
		"specversion": "1.0", "id": head.Context.ID, "source": head.Context.Source, "type": typ,
		"datacontenttype": "application/json", "data": json.RawMessage(data),
	})
	if err != nil {
		t.Fatal(err)
	}
	e, err := ce.ParseJSON(envelope)
	if err != nil {
		t.Fatalf("ce.ParseJSON: %v", err)
	}
	return e
}

// TestCustomConformanceExample: custom events (dev.cdeventsx.*) are not
// CDEvents types for Is, so the receiver passes them with their CloudEvents
// attributes checked.
func TestCustomConformanceExample(t *testing.T) {
	dir := corpusDir(t, "cdevents/spec-v0.5.1/custom")
	typ, _ := readCDEvent(t, filepath.Join(dir, "conformance.json"))
	if !strings.HasPrefix(typ, "dev.cdeventsx.") || Is(typ) {
		t.Fatalf("type %q: Is = %v, want a dev.cdeventsx type that Is refuses", typ, Is(typ))
	}
}

// TestJenkinsExamples: the Jenkins plugin's documented events are
// CloudEvents 0.3 with the pre-0.1 CDEvents format (the fields are
// CloudEvents attributes; the data has no context). The receiver refuses
// them at the CloudEvents spec version; Validate, given their type and
// data, names an unsupported CDEvents spec version.
func TestJenkinsExamples(t *testing.T) {
	dir := corpusDir(t, "jenkins/cdevents-plugin-docs-examples")
	for _, path := range jsonFiles(t, dir) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			var ev struct {
				SpecVersion string          `json:"specversion"`
				Type        string          `json:"type"`
				Data        json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(raw, &ev); err != nil {
				t.Fatal(err)
			}
			if ev.SpecVersion != "0.3" || !Is(ev.Type) {
				t.Fatalf("expected a CloudEvents 0.3 event of a CDEvents type, got specversion %q type %q", ev.SpecVersion, ev.Type)
			}
			var fe *ce.Error
			if _, err := ce.ParseJSON(raw); !errors.As(err, &fe) || fe.Field != "specversion" {
				t.Errorf("ce.ParseJSON: %v, want a specversion error", err)
			}
			ps := problemsOf(t, Validate(ev.Type, ev.Data))
			if len(ps) != 1 || ps[0].Path != "data/context" || !strings.Contains(ps[0].Message, "unsupported CDEvents spec version") {
				t.Fatalf("problems %+v, want one unsupported CDEvents spec version problem at data/context", ps)
			}
		})
	}
}

// TestValidFixtures validates the project's own examples of every accepted
// spec version (testdata/valid), written for this package.
func TestValidFixtures(t *testing.T) {
	for _, path := range jsonFiles(t, filepath.Join("testdata", "valid")) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			typ, data := readCDEvent(t, path)
			if err := Validate(typ, data); err != nil {
				t.Fatal(err)
			}
		})
	}
}
