package ciintegration

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	yaml "go.yaml.in/yaml/v4"
)

// gitlabJob is what the test reads of a job of the component.
type gitlabJob struct {
	Extends      string
	Stage        string
	Variables    map[string]string
	BeforeScript []string `yaml:"before_script"`
	Script       []string
}

var gitlabInput = regexp.MustCompile(`\$\[\[\s*inputs\.([A-Za-z0-9_-]+)\s*\]\]`)

// includeComponent is `include: component: .../evidence@VERSION` with
// these inputs: the spec's defaults and required inputs applied, the
// $[[ inputs.X ]] interpolated into the rest, and the job it defines
// (its `extends:` merged) returned with its name.
func includeComponent(t *testing.T, with map[string]string) (string, gitlabJob) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root(t), "templates", "evidence.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var header struct {
		Spec struct {
			Inputs map[string]*struct {
				Default *string
			}
		}
	}
	if err := dec.Decode(&header); err != nil {
		t.Fatalf("templates/evidence.yml header: %v", err)
	}
	inputs := map[string]string{}
	for name, in := range header.Spec.Inputs {
		if in != nil && in.Default != nil {
			inputs[name] = *in.Default
		}
	}
	for k, v := range with {
		if _, ok := header.Spec.Inputs[k]; !ok {
			t.Fatalf("the component has no input %q", k)
		}
		inputs[k] = v
	}
	for name := range header.Spec.Inputs {
		if _, ok := inputs[name]; !ok {
			t.Fatalf("input %q is required", name)
		}
	}
	parts := bytes.SplitN(raw, []byte("\n---\n"), 2)
	if len(parts) != 2 {
		t.Fatal("templates/evidence.yml: no --- between the spec and the jobs")
	}
	body := gitlabInput.ReplaceAllStringFunc(string(parts[1]), func(m string) string {
		return inputs[gitlabInput.FindStringSubmatch(m)[1]]
	})
	var jobs map[string]gitlabJob
	if err := yaml.Unmarshal([]byte(body), &jobs); err != nil {
		t.Fatalf("templates/evidence.yml jobs, interpolated: %v\n%s", err, body)
	}
	var rest struct{}
	if err := dec.Decode(&rest); !errors.Is(err, io.EOF) && err != nil {
		t.Fatal(err)
	}
	name := inputs["job"]
	job, ok := jobs[name]
	if !ok {
		t.Fatalf("the component defines no job %q: %v", name, jobs)
	}
	if job.Extends != "" {
		base, ok := jobs[job.Extends]
		if !ok {
			t.Fatalf("job %s extends %s, which the component lacks", name, job.Extends)
		}
		vars := merge(base.Variables, job.Variables)
		if job.BeforeScript == nil {
			job.BeforeScript = base.BeforeScript
		}
		job.Variables = vars
	}
	return name, job
}

// runGitLabJob runs a job as the GitLab Runner's shell executor does: the
// predefined variables, the job's variables (expanded), then
// before_script and script in one shell, stopping at the first failure.
func runGitLabJob(t *testing.T, job gitlabJob, vars map[string]string) script {
	t.Helper()
	env := merge(vars)
	for k, v := range job.Variables {
		env[k] = os.Expand(v, func(n string) string { return env[n] })
	}
	lines := append(append([]string{}, job.BeforeScript...), job.Script...)
	return runShell(t, vars["CI_PROJECT_DIR"], env, strings.Join(lines, "\n")+"\n", "-e")
}

// gitlabVars: a pipeline of GitLab's "CI/CD for external repositories"
// (a pull mirror of the GitHub repository), as GitLab documents its
// predefined variables; EVIDENCE_REPO names the mirrored repository.
func gitlabVars(t *testing.T, server, job string) map[string]string {
	return map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_SERVER_URL": "https://gitlab.example.com", "CI_SERVER_HOST": "gitlab.example.com",
		"CI_SERVER_FQDN": "gitlab.example.com", "CI_PROJECT_URL": "https://gitlab.example.com/acme/payments", "CI_PROJECT_PATH": "acme/payments",
		"CI_COMMIT_SHA": commit, "CI_COMMIT_BRANCH": "main", "CI_COMMIT_REF_NAME": "main", "CI_DEFAULT_BRANCH": "main",
		"CI_PIPELINE_ID": runID, "CI_PIPELINE_IID": "118", "CI_PIPELINE_URL": "https://gitlab.example.com/acme/payments/-/pipelines/" + runID,
		"CI_PIPELINE_SOURCE": "push", "CI_PIPELINE_NAME": "release", "CI_JOB_NAME": job, "CI_JOB_ID": "5550001",
		"GITLAB_USER_LOGIN": "bob", "EVIDENCE_REPO": repo, "EVIDENCE_SERVER": server, "PATH": basePath(t),
	}
}

// TestGitLabComponent: the component included once per step of a
// release pipeline sends the change's evidence to a real evidenced and
// its gate job passes for the compliant change, and fails (exit 1, the
// missing approval named) when the ticket has no approval.
func TestGitLabComponent(t *testing.T) {
	rel := newRelease(t, false)
	for _, approved := range []bool{true, false} {
		name := map[bool]string{true: "approved", false: "no approval"}[approved]
		t.Run(name, func(t *testing.T) {
			server := startEvidenced(t, approved)
			dir, home, spool := workspace(t), t.TempDir(), t.TempDir()
			jobVars := func(job string) map[string]string {
				return merge(gitlabVars(t, server, job), map[string]string{"CI_PROJECT_DIR": dir, "HOME": home, "EVIDENCE_SPOOL_DIR": spool})
			}
			before := rel.downloads.Load()
			for i, step := range releaseSteps(rel.URL) {
				job := "evidence-" + step["emit"] + "-" + string(rune('a'+i))
				name, j := includeComponent(t, map[string]string{"version": version, "release-url": rel.URL, "job": job,
					"command": "emit " + step["emit"] + " " + step["args"]})
				res := runGitLabJob(t, j, jobVars(name))
				if res.code != 0 || !strings.Contains(res.stdout, "stored: ") {
					t.Fatalf("job %s: %+v", name, res)
				}
			}
			if n := rel.downloads.Load() - before; n != 1 {
				t.Errorf("%d downloads of the archive over 6 jobs, want 1 (then the job cache)", n)
			}
			command := "gate --env production"
			if approved {
				command += " --wait 60s --poll-interval 200ms"
			} else {
				waitAllButApproval(t, server)
			}
			name, j := includeComponent(t, map[string]string{"version": version, "release-url": rel.URL, "job": "gate-production",
				"stage": "deploy", "command": command})
			if j.Stage != "deploy" {
				t.Errorf("stage %q, want the input deploy", j.Stage)
			}
			res := runGitLabJob(t, j, jobVars(name))
			if approved {
				if res.code != 0 || !strings.HasPrefix(res.stdout, "ALLOW: "+repo+"@"+commit+" to production") {
					t.Fatalf("gate job: %+v", res)
				}
				return
			}
			if res.code != 1 || !strings.HasPrefix(res.stdout, "DENY: ") || !strings.Contains(res.stdout, "ticket PAY-123 has no approval") {
				t.Fatalf("gate job without approval: %+v", res)
			}
		})
	}
}

// TestGitLabComponentChecksum: the inline installer refuses an archive
// that does not match checksums.txt and installs nothing.
func TestGitLabComponentChecksum(t *testing.T) {
	rel := newRelease(t, true)
	dir := workspace(t)
	name, j := includeComponent(t, map[string]string{"version": version, "release-url": rel.URL, "command": "emit pipeline --status started"})
	res := runGitLabJob(t, j, merge(gitlabVars(t, "http://127.0.0.1:1", name), map[string]string{"CI_PROJECT_DIR": dir, "HOME": t.TempDir()}))
	if res.code != 2 || !strings.Contains(res.stderr, "checksum mismatch for evidence_"+version) {
		t.Fatalf("tampered archive: %+v", res)
	}
	filepath.WalkDir(filepath.Join(dir, ".evidence-cache"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "evidence" && !d.IsDir() {
			t.Errorf("installed from a tampered archive: %s", path)
		}
		return nil
	})
}
