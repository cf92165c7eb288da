package cdevents

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// FuzzValidate feeds Validate event types and data, seeded with the
// conformance examples of the corpus (when it is here) and the package's
// own examples. Validate must not panic; it returns nil or a
// *ValidationError of the given type whose problems all sit under data,
// the same for the same input.
func FuzzValidate(f *testing.F) {
	seed := func(dir string) {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, path := range files {
			typ, data := readCDEvent(f, path)
			f.Add(typ, data)
		}
	}
	for _, rel := range []string{
		"cdevents/spec-v0.5.1/conformance",
		"cdevents/spec-main-unreleased-approval/conformance",
	} {
		dir := filepath.Join(corpus, rel)
		if _, err := os.Stat(dir); err != nil {
			f.Logf("the corpus is not at %s: seeding with the package's examples only", dir)
			continue
		}
		seed(dir)
	}
	seed(filepath.Join("testdata", "valid"))
	f.Add("dev.cdevents.service.deployed.0.3.0", []byte(`{"context":{"specversion":"0.5.1"},"subject":{"content":[]}}`))
	f.Add("dev.cdevents.service.deployed.0.2.0", []byte(`{"context":{"version":"0.4.1","links":[1,{}]},"subject":null}`))
	f.Add("dev.cdevents.pipelinerun.finished.0.1.0", []byte(`{"userId":null,"build":{"number":167}}`))
	f.Add("com.example.other", []byte(`{}`))

	f.Fuzz(func(t *testing.T, eventType string, data []byte) {
		err := Validate(eventType, data)
		if err == nil {
			return
		}
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Fatalf("Validate returned %T: %v", err, err)
		}
		if ve.Type != eventType || len(ve.Problems) == 0 {
			t.Fatalf("ValidationError{Type: %q, %d problems} for type %q", ve.Type, len(ve.Problems), eventType)
		}
		for _, p := range ve.Problems {
			if p.Path != "data" && !strings.HasPrefix(p.Path, "data/") {
				t.Errorf("problem path %q is not under data", p.Path)
			}
			if p.Message == "" {
				t.Errorf("problem at %s has no message", p.Path)
			}
		}
		if again := Validate(eventType, data); !reflect.DeepEqual(again, err) {
			t.Fatalf("Validate is not deterministic:\n%v\n%v", err, again)
		}
	})
}
