package hygiene_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root not found from %s", dir)
	}
	return dir
}

// TestEveryPackageHasADoc fails when a package has no package comment in
// any of its non-test files.
func TestEveryPackageHasADoc(t *testing.T) {
	root := repoRoot(t)
	dirs := map[string]bool{}
	_ = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if d.IsDir() {
			name := d.Name()
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "data" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			dirs[filepath.Dir(path)] = true
		}
		return nil
	})
	for dir := range dirs {
		fset := token.NewFileSet()
		pkgs, err := parser.ParseDir(fset, dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
			continue
		}
		for name, p := range pkgs {
			documented := false
			for _, f := range p.Files {
				if f.Doc != nil && strings.TrimSpace(f.Doc.Text()) != "" {
					documented = true
				}
			}
			if !documented {
				rel, _ := filepath.Rel(root, dir)
				t.Errorf("package %s (%s) has no package doc comment", name, rel)
			}
		}
	}
}

// TestProducerCLIStaysSmall keeps the server side out of the evidence CLI,
// which runs in every pipeline. The auditor's commands (report, verify)
// read ClickHouse directly, as the read-only auditor user, so that an
// audit does not depend on the service audited; the policy commands
// (policy test, policy replay) run OPA. Neither needs the NATS server, the
// daemon, its metrics or its HTTP API.
func TestProducerCLIStaysSmall(t *testing.T) {
	root := repoRoot(t)
	cmd := exec.Command("go", "list", "-deps", "./cmd/evidence")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/nats-io/nats-server", "github.com/prometheus/", "github.com/santhosh-tekuri/",
		"github.com/compose-spec/", "github.com/evidencepipeline/evidence/internal/daemon",
		"github.com/evidencepipeline/evidence/internal/api", "github.com/evidencepipeline/evidence/processors/archive",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("cmd/evidence depends on %s", dep)
			}
		}
	}
}
