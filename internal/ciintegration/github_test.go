package ciintegration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v4"
)

// actionFile is what the runner reads of action.yml.
type actionFile struct {
	Inputs map[string]struct {
		Required bool
		Default  string
	}
	Runs struct {
		Using string
		Steps []struct {
			Name  string
			ID    string
			If    string
			Uses  string
			Shell string
			Env   map[string]string
			Run   string
		}
	}
}

// githubJob is one job of GitHub Actions on a Linux runner: the
// variables GitHub documents for the job, the runner's files
// (GITHUB_PATH, GITHUB_OUTPUT) and its tool cache, kept between the
// steps of the job as the runner does.
type githubJob struct {
	t         *testing.T
	action    actionFile
	vars      map[string]string
	workspace string
	path      []string // directories added through GITHUB_PATH, newest first
}

var githubExpr = regexp.MustCompile(`\$\{\{\s*([^}]*?)\s*\}\}`)

func newGitHubJob(t *testing.T, server string, vars map[string]string) *githubJob {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var a actionFile
	if err := yaml.Unmarshal(raw, &a); err != nil {
		t.Fatalf("action.yml: %v", err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("action.yml runs.using %q, want composite", a.Runs.Using)
	}
	runner := t.TempDir()
	for _, d := range []string{"temp", "tool_cache", "home"} {
		if err := os.MkdirAll(filepath.Join(runner, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	j := &githubJob{t: t, action: a, workspace: workspace(t)}
	j.vars = merge(map[string]string{
		"CI": "true", "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": "https://api.github.com",
		"GITHUB_REPOSITORY": "acme/payments", "GITHUB_REPOSITORY_OWNER": "acme", "GITHUB_SHA": commit,
		"GITHUB_REF": "refs/heads/main", "GITHUB_REF_NAME": "main", "GITHUB_REF_TYPE": "branch",
		"GITHUB_RUN_ID": runID, "GITHUB_RUN_NUMBER": "118", "GITHUB_RUN_ATTEMPT": "1", "GITHUB_WORKFLOW": "release",
		"GITHUB_JOB": "release", "GITHUB_ACTOR": "bob", "GITHUB_TRIGGERING_ACTOR": "bob", "GITHUB_EVENT_NAME": "push",
		"GITHUB_WORKSPACE": j.workspace, "RUNNER_OS": "Linux", "RUNNER_ARCH": "X64",
		"RUNNER_TEMP": filepath.Join(runner, "temp"), "RUNNER_TOOL_CACHE": filepath.Join(runner, "tool_cache"),
		"HOME": filepath.Join(runner, "home"), "PATH": basePath(t),
		"EVIDENCE_SERVER": server,
	}, vars)
	return j
}

// uses runs `uses: evidencepipeline/evidence@...` with these inputs, as
// the runner runs a composite action: each run step's ${{ }} expressions
// evaluated, its env set, bash -eo pipefail; `uses:` steps inside (the
// cache) are the runner's own and skipped. It returns the steps' output (up to
// the first failing one, whose exit code it is) and their outputs.
func (j *githubJob) uses(with map[string]string) (script, map[string]string) {
	t := j.t
	t.Helper()
	inputs := map[string]string{}
	for name, in := range j.action.Inputs {
		inputs[name] = in.Default
	}
	for k, v := range with {
		if _, ok := j.action.Inputs[k]; !ok {
			t.Fatalf("action.yml has no input %q", k)
		}
		inputs[k] = v
	}
	for name, in := range j.action.Inputs {
		if in.Required && inputs[name] == "" {
			t.Fatalf("input %q is required", name)
		}
	}
	eval := func(s string) string {
		return githubExpr.ReplaceAllStringFunc(s, func(m string) string {
			e := githubExpr.FindStringSubmatch(m)[1]
			switch {
			case strings.HasPrefix(e, "inputs."):
				return inputs[strings.TrimPrefix(e, "inputs.")]
			case e == "runner.tool_cache":
				return j.vars["RUNNER_TOOL_CACHE"]
			case e == "runner.temp":
				return j.vars["RUNNER_TEMP"]
			}
			t.Fatalf("action.yml: expression %q is not one this test evaluates", e)
			return ""
		})
	}
	outputs := map[string]string{}
	var last script
	for _, s := range j.action.Runs.Steps {
		if s.Uses != "" {
			continue
		}
		if s.Shell != "bash" {
			t.Fatalf("step %q: shell %q, want bash (composite run steps must name it)", s.Name, s.Shell)
		}
		if s.If != "" {
			t.Fatalf("step %q: the run steps decide in their script, not with if:", s.Name)
		}
		dir := t.TempDir()
		outFile, pathFile := filepath.Join(dir, "output"), filepath.Join(dir, "path")
		vars := merge(j.vars, map[string]string{"GITHUB_ACTION_PATH": root(t), "GITHUB_OUTPUT": outFile, "GITHUB_PATH": pathFile})
		if len(j.path) > 0 {
			vars["PATH"] = strings.Join(j.path, ":") + ":" + j.vars["PATH"]
		}
		for k, v := range s.Env {
			vars[k] = eval(v)
		}
		r := runShell(t, j.workspace, vars, eval(s.Run), "--noprofile", "--norc", "-eo", "pipefail")
		last = script{r.code, last.stdout + r.stdout, last.stderr + r.stderr}
		if b, err := os.ReadFile(pathFile); err == nil {
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if l != "" {
					j.path = append([]string{l}, j.path...)
				}
			}
		}
		if b, err := os.ReadFile(outFile); err == nil && s.ID != "" {
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if k, v, ok := strings.Cut(l, "="); ok {
					outputs[s.ID+"."+k] = v
				}
			}
		}
		if last.code != 0 {
			return last, outputs
		}
	}
	return last, outputs
}

// releaseSteps are the evidence a release workflow sends through the
// action for the change's merge commit, as examples/ci/github/release.yml.
func releaseSteps(rel string) []map[string]string {
	in := func(kv ...string) map[string]string {
		m := map[string]string{"version": version, "release-url": rel}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	return []map[string]string{
		in("emit", "pipeline", "args", "--status started"),
		in("emit", "test", "args", "--suite unit --junit junit-unit.xml"),
		in("emit", "scan", "args", "--sarif scan-clean.sarif --tool semgrep --category sast --fail-on high"),
		in("emit", "scan", "args", "--sarif scan-clean.sarif --tool grype --category dependency"),
		in("emit", "scan", "args", "--sarif scan-clean.sarif --tool trivy --category container --digest "+imageDigest),
		in("emit", "artifact", "args", "--digest "+imageDigest+" --name ghcr.io/acme/payments"),
	}
}

// TestGitHubAction: a release job sends the change's pipeline, test, scan
// and artifact evidence through the action (installed once from the
// release, checksum verified, then from the tool cache) to a real
// evidenced; the gate step allows the compliant change (decision=allow),
// and denies it, failing the step, when the ticket has no approval.
func TestGitHubAction(t *testing.T) {
	rel := newRelease(t, false)
	for _, approved := range []bool{true, false} {
		name := map[bool]string{true: "approved", false: "no approval"}[approved]
		t.Run(name, func(t *testing.T) {
			server := startEvidenced(t, approved)
			j := newGitHubJob(t, server, map[string]string{"EVIDENCE_SPOOL_DIR": t.TempDir()})
			before := rel.downloads.Load()
			for _, with := range releaseSteps(rel.URL) {
				res, _ := j.uses(with)
				if res.code != 0 || !strings.Contains(res.stdout, "stored: ") {
					t.Fatalf("uses with %v: %+v", with, res)
				}
			}
			if n := rel.downloads.Load() - before; n != 1 {
				t.Errorf("%d downloads of the archive over 6 steps, want 1 (then the tool cache)", n)
			}
			if approved {
				res, out := j.uses(map[string]string{"version": version, "release-url": rel.URL, "gate": "production",
					"gate-args": "--wait 60s --poll-interval 200ms"})
				if res.code != 0 || out["gate.decision"] != "allow" || !strings.Contains("\n"+res.stdout, "\nALLOW: "+repo+"@"+commit+" to production\n") {
					t.Fatalf("gate: decision %q, %+v", out["gate.decision"], res)
				}
				return
			}
			waitAllButApproval(t, server)
			res, out := j.uses(map[string]string{"version": version, "release-url": rel.URL, "gate": "production"})
			if res.code != 1 || out["gate.decision"] != "deny" || !strings.Contains("\n"+res.stdout, "\nDENY: ") ||
				!strings.Contains(res.stdout, "ticket PAY-123 has no approval") {
				t.Fatalf("gate without approval: exit %d, decision %q, %+v", res.code, out["gate.decision"], res)
			}
		})
	}
}

// TestGitHubActionChecksum: an archive that does not match the release's
// checksums.txt is refused, nothing is installed, and the step says why.
func TestGitHubActionChecksum(t *testing.T) {
	rel := newRelease(t, true)
	j := newGitHubJob(t, "http://127.0.0.1:1", nil)
	res, _ := j.uses(map[string]string{"version": version, "release-url": rel.URL, "emit": "pipeline", "args": "--status started"})
	if res.code != 2 || !strings.Contains(res.stderr, "checksum mismatch for evidence_"+version) {
		t.Fatalf("tampered archive: %+v", res)
	}
	if entries, _ := os.ReadDir(filepath.Join(j.vars["RUNNER_TOOL_CACHE"], "evidence")); len(entries) != 0 {
		t.Fatalf("something was installed from a tampered archive: %v", entries)
	}
	res, _ = j.uses(map[string]string{"version": "1.4.0; rm -rf /", "release-url": rel.URL})
	if res.code != 2 || !strings.Contains(res.stderr, "is not a release version") {
		t.Fatalf("bad version: %+v", res)
	}
}

// TestActionlint runs actionlint over the example workflows, against the
// action's metadata (each `uses: evidencepipeline/evidence@...` is linted
// as the local action ./, so that actionlint checks its inputs against
// action.yml), and over the action's own steps as a workflow whose
// workflow_dispatch inputs are the action's inputs.
func TestActionlint(t *testing.T) {
	proj := t.TempDir()
	wf := filepath.Join(proj, ".github", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		t.Fatal(err)
	}
	// actionlint's project: a Git repository with .github/workflows.
	if err := os.WriteFile(filepath.Join(proj, ".git"), []byte("gitdir: none\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	actionRaw, err := os.ReadFile(filepath.Join(root(t), "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proj, "action.yml"), actionRaw, 0o644); err != nil {
		t.Fatal(err)
	}
	examples, err := filepath.Glob(filepath.Join(root(t), "examples", "ci", "github", "*.yml"))
	if err != nil || len(examples) == 0 {
		t.Fatalf("no example workflows (%v)", err)
	}
	files := map[string][]byte{}
	for _, f := range examples {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		local := regexp.MustCompile(`uses: evidencepipeline/evidence@\S+`).ReplaceAll(b, []byte("uses: ./"))
		if bytes.Equal(local, b) {
			t.Errorf("%s does not use the action", f)
		}
		files[filepath.Base(f)] = local
	}
	// The action's steps as a workflow.
	var a struct {
		Inputs map[string]struct {
			Description string
			Required    bool
			Default     string
		}
		Runs struct{ Steps []map[string]any }
	}
	if err := yaml.Unmarshal(actionRaw, &a); err != nil {
		t.Fatal(err)
	}
	dispatch := map[string]any{}
	for name, in := range a.Inputs {
		dispatch[name] = map[string]any{"description": in.Description, "required": in.Required, "default": in.Default, "type": "string"}
	}
	steps := a.Runs.Steps
	for _, s := range steps {
		if run, ok := s["run"].(string); ok {
			s["run"] = strings.ReplaceAll(run, "$GITHUB_ACTION_PATH", "$GITHUB_WORKSPACE")
		}
	}
	steps = append([]map[string]any{{"uses": "actions/checkout@v4"}}, steps...)
	asWorkflow, err := yaml.Marshal(map[string]any{
		"name": "action-steps", "on": map[string]any{"workflow_dispatch": map[string]any{"inputs": dispatch}},
		"jobs": map[string]any{"steps": map[string]any{"runs-on": "ubuntu-latest", "steps": steps}},
	})
	if err != nil {
		t.Fatal(err)
	}
	files["action-steps.yml"] = asWorkflow

	var paths []string
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(wf, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, filepath.Join(".github", "workflows", name))
	}
	if errs := actionlint(t, proj, paths...); len(errs) > 0 {
		t.Errorf("actionlint:\n%s", strings.Join(errs, "\n"))
	}
	// A wrong input is caught: the check can fail.
	bad := bytes.Replace(files["release.yml"], []byte("gate-args:"), []byte("gate-argz:"), 1)
	if err := os.WriteFile(filepath.Join(wf, "bad.yml"), bad, 0o644); err != nil {
		t.Fatal(err)
	}
	errs := actionlint(t, proj, filepath.Join(".github", "workflows", "bad.yml"))
	if !strings.Contains(strings.Join(errs, "\n"), "gate-argz") {
		t.Errorf("actionlint did not catch an input action.yml lacks: %v", errs)
	}
}

// actionlint runs the actionlint pinned in tools/go.mod over the files of
// the project at dir and returns its errors, one line each.
func actionlint(t *testing.T, dir string, files ...string) []string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "actionlint")
	build := exec.Command("go", "build", "-o", bin, "github.com/rhysd/actionlint/cmd/actionlint")
	build.Dir = filepath.Join(root(t), "tools")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build actionlint (tools/go.mod): %v\n%s", err, out)
	}
	cmd := exec.Command(bin, append([]string{"-no-color", "-oneline"}, files...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("actionlint: %v\n%s", err, out)
		}
	}
	var errs []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" {
			errs = append(errs, l)
		}
	}
	return errs
}
