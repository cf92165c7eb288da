package helm

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
)

// lint runs the chart linter (helm lint --strict --with-subcharts) on dir
// with the values of files on top of the chart's.
func lint(t *testing.T, dir string, files ...string) *action.LintResult {
	t.Helper()
	vals := map[string]any{}
	if len(files) > 0 {
		var err error
		vals, err = mergeValues(files)
		if err != nil {
			t.Fatal(err)
		}
	}
	l := action.NewLint()
	l.Strict = true
	l.WithSubcharts = true
	l.Namespace = namespace
	return l.Run([]string{dir}, vals)
}

// TestChartLints: the linter finds nothing wrong (warnings count, as with
// --strict) with the default values or the production profile; what it
// says for information is logged.
func TestChartLints(t *testing.T) {
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			r := lint(t, chartDir, p.files...)
			for _, err := range r.Errors {
				t.Errorf("lint: %v", err)
			}
			for _, m := range r.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("lint: %s", m.Error())
				} else {
					t.Logf("lint: %s", m.Error())
				}
			}
			if r.TotalChartsLinted != 1 {
				t.Errorf("linted %d charts, want 1", r.TotalChartsLinted)
			}
		})
	}
}

// TestLintFindsProblems shows the linter above can fail: on copies of the
// chart broken in one way each, it reports the problem.
func TestLintFindsProblems(t *testing.T) {
	for _, c := range []struct {
		name, file, find, replace, want string
	}{
		{"template syntax", "templates/service.yaml", "{{ int .Values.service.port }}", "{{ int .Values.service.port ", "templates/service.yaml"},
		{"not YAML", "templates/service.yaml", "  type: {{ .Values.service.type }}", "  type: [{{ .Values.service.type }}", "service.yaml"},
		{"no chart version", "Chart.yaml", "version: 0.1.0\n", "", "version"},
		{"values not YAML", "values.yaml", "replicas: 2\n", "replicas: [2\n", "values.yaml"},
		// The linter renders in lint mode, where the templates' fail and
		// required only log: the chart's guards are checked by
		// TestChartRefusesBadValues instead.
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := copyChart(t)
			path := filepath.Join(dir, c.file)
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(raw), c.find) {
				t.Fatalf("%s does not hold %q: the test needs updating", c.file, c.find)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(raw), c.find, c.replace, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			r := lint(t, dir)
			var found []string
			for _, m := range r.Messages {
				if m.Severity >= support.WarningSev {
					found = append(found, m.Error())
				}
			}
			for _, err := range r.Errors {
				found = append(found, err.Error())
			}
			if len(found) == 0 {
				t.Fatalf("lint reports nothing on the broken chart")
			}
			if !strings.Contains(strings.Join(found, "\n"), c.want) {
				t.Errorf("lint reports\n  %s\nnone naming %q", lines(found), c.want)
			}
			t.Logf("lint: %s", lines(found))
		})
	}
}

// copyChart copies the chart into a temporary directory named like it
// (the linter wants the directory's name to be the chart's).
func copyChart(t *testing.T) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "evidence")
	err := filepath.WalkDir(chartDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(chartDir, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), raw, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}
