package junit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
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
		"", "\ufeff", `{"tests": 3}`, "<html/>", `<testsuite tests="-1" failures="9"/>`,
		`<testsuites><testsuite><testsuite><testcase><failure/><error/></testcase></testsuite></testsuite></testsuites>`,
		`<testsuite time="1e308"><testcase time="NaN"/><testcase time="9e18"/></testsuite>`,
		"<?xml version=\"1.0\" encoding=\"latin1\"?><testsuite name=\"\xff\"/>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := Parse(strings.NewReader(string(in)))
		if err != nil {
			if s != nil {
				t.Fatalf("Parse() = %+v and error %v", s, err)
			}
			if !errors.Is(err, ErrEmpty) && !errors.Is(err, ErrNotXML) && !errors.Is(err, ErrNotJUnit) {
				t.Fatalf("Parse() error %v is none of the package's errors", err)
			}
			return
		}
		checkConsistent(t, s)
	})
}
