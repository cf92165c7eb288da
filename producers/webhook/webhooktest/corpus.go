package webhooktest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/evidencepipeline/evidence/internal/testenv"
)

// CorpusPath is the folder rel (path elements, e.g. "gitlab") of the
// shared corpus of published payloads, ../shared/corpus from the repository
// root (the first folder up from the working directory that holds go.mod),
// and whether that folder is there.
func CorpusPath(rel ...string) (dir string, ok bool) {
	dir, err := corpusPath(rel...)
	return dir, err == nil
}

// Corpus is CorpusPath for a test that needs the corpus: without it the
// test fails in CI and is skipped elsewhere.
func Corpus(t testing.TB, rel ...string) string {
	t.Helper()
	dir, err := corpusPath(rel...)
	if err != nil {
		testenv.Unavailable(t, "the shared corpus "+filepath.Join(rel...), err)
	}
	return dir
}

func corpusPath(rel ...string) (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(append([]string{root, "..", "shared", "corpus"}, rel...)...)
	st, err := os.Stat(dir)
	if err == nil && !st.IsDir() {
		err = fmt.Errorf("%s is not a folder", dir)
	}
	return dir, err
}

// CorpusFiles lists every file below dir, relative to it with slashes,
// sorted. A folder without files fails the test.
func CorpusFiles(t testing.TB, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files = append(files, filepath.ToSlash(rel))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no files in %s", dir)
	}
	sort.Strings(files)
	return files
}

// Seeds are fuzz seeds: the bodies of testdata/*.json and, when corpus is
// not "" and that folder of the shared corpus is present, of its
// */*.json files. A missing corpus is not a failure: fuzzing runs on the
// fixtures alone.
func Seeds(t testing.TB, corpus string) [][]byte {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	if corpus != "" {
		if dir, ok := CorpusPath(corpus); ok {
			more, _ := filepath.Glob(filepath.Join(dir, "*", "*.json"))
			names = append(names, more...)
		}
	}
	out := make([][]byte, 0, len(names))
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// Testdata is the file testdata/name of the package under test.
func Testdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// repoRoot is the first folder up from the working directory with a go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
