package cdevents

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// corpus is the shared corpus of published payloads, read in place.
var corpus = filepath.Join("..", "..", "..", "shared", "corpus")

// corpusDir is a folder of the corpus: required in CI, skipped elsewhere
// when absent.
func corpusDir(t testing.TB, rel string) string {
	t.Helper()
	dir := filepath.Join(corpus, rel)
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("the corpus folder %s is required in CI: %v", rel, err)
		}
		t.Skipf("the corpus folder %s is not here (%v); set CI=true to make this a failure", rel, err)
	}
	return dir
}

// jsonFiles lists the *.json files of a folder, sorted.
func jsonFiles(t testing.TB, dir string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no *.json in %s", dir)
	}
	sort.Strings(files)
	return files
}

// readCDEvent reads a CDEvent (the data of a CloudEvent) and its
// context.type.
func readCDEvent(t testing.TB, path string) (eventType string, data []byte) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var head struct {
		Context struct {
			Type string `json:"type"`
		} `json:"context"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return head.Context.Type, data
}

// mutate decodes a CDEvent, applies f to it and encodes it again.
func mutate(t testing.TB, data []byte, f func(ev map[string]any)) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatal(err)
	}
	f(ev)
	out, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// at walks a decoded JSON object along keys.
func at(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m = m[k].(map[string]any)
	}
	return m
}

// problemsOf returns the problems of a Validate result, failing the test
// when it is another error.
func problemsOf(t testing.TB, err error) []Problem {
	t.Helper()
	if err == nil {
		return nil
	}
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("Validate returned %T (%v), want *ValidationError", err, err)
	}
	return ve.Problems
}
