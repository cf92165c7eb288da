package sarif

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.sarif"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seed files: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "null", "[]", `{"version": "2.1.0"}`, `{"version": "2.1.0", "runs": [{}]}`,
		`{"version": "2.1.0", "runs": [{"results": [{"ruleIndex": -5, "rule": {"index": 99999999999, "toolComponent": {"index": -1}}}]}]}`,
		`{"version": "2.1.0", "runs": [{"tool": {"driver": {"rules": [{"properties": {"security-severity": 1e400, "tags": "x", "problem": 3}}]}}, "results": [{"ruleIndex": 0, "message": {"id": "a", "arguments": ["{0}"]}}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Parse(strings.NewReader(string(in)))
		if err != nil {
			if s != nil {
				t.Fatalf("Parse() = %+v and error %v", s, err)
			}
			for _, known := range []error{ErrEmpty, ErrNotJSON, ErrNotSARIF, ErrVersion, ErrNoRuns} {
				if errors.Is(err, known) {
					return
				}
			}
			t.Fatalf("Parse() error %v is none of the package's errors", err)
		}
		checkConsistent(t, s)
	})
}
