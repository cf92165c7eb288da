package ciintegration

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// jenkinsStep is what vars/evidence.groovy makes of evidence(version:,
// args:, releaseUrl:): the library resource it writes to the workspace's
// tmp directory and runs with `bash RESOURCE ARGS...`, inside withEnv of
// the variables it sets. The test checks the step says so, then runs
// that resource the same way with Jenkins' environment (Jenkins runs the
// sh step's script with /bin/sh -xe; the step's script is one bash line).
func jenkinsStep(t *testing.T) (resource string) {
	t.Helper()
	groovy, err := os.ReadFile(filepath.Join(root(t), "vars", "evidence.groovy"))
	if err != nil {
		t.Fatal(err)
	}
	g := string(groovy)
	for _, want := range []string{
		"libraryResource('evidence/run.sh')", `(['bash', runner] + args)`,
		`"EVIDENCE_VERSION=${version}"`, `"EVIDENCE_RELEASE_URL=${opts.releaseUrl}"`, `"EVIDENCE_CACHE_DIR=`,
		"returnStatus: true",
	} {
		if !strings.Contains(g, want) {
			t.Fatalf("vars/evidence.groovy no longer has %s: the test's model of the step is out of date", want)
		}
	}
	// Every variable it sets is one run.sh reads.
	run, err := os.ReadFile(filepath.Join(root(t), "resources", "evidence", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"(EVIDENCE_[A-Z_]+)=`).FindAllStringSubmatch(g, -1) {
		if !strings.Contains(string(run), "${"+m[1]) {
			t.Errorf("the step sets %s, which run.sh does not read", m[1])
		}
	}
	return filepath.Join(root(t), "resources", "evidence", "run.sh")
}

// jenkinsVars: a multibranch pipeline's build of main with the Git plugin,
// as Jenkins documents its variables.
func jenkinsVars(t *testing.T, server, workspace string) map[string]string {
	return map[string]string{
		"JENKINS_URL": "https://jenkins.acme.example/", "JENKINS_HOME": "/var/jenkins_home",
		"JOB_NAME": "payments/main", "JOB_BASE_NAME": "main", "BUILD_NUMBER": "57", "BUILD_ID": "57",
		"BUILD_TAG": "jenkins-payments-main-57", "BUILD_URL": "https://jenkins.acme.example/job/payments/job/main/57/",
		"BRANCH_NAME": "main", "GIT_URL": "https://github.com/acme/payments.git", "GIT_COMMIT": commit, "GIT_BRANCH": "origin/main",
		"WORKSPACE": workspace, "WORKSPACE_TMP": workspace + "@tmp", "EVIDENCE_SERVER": server, "PATH": basePath(t),
	}
}

// evidenceStep runs evidence(version: version, releaseUrl: rel, args:
// args) as the step does.
func evidenceStep(t *testing.T, resource string, vars map[string]string, rel string, args ...string) script {
	t.Helper()
	env := merge(vars, map[string]string{"EVIDENCE_VERSION": version, "EVIDENCE_RELEASE_URL": rel,
		"EVIDENCE_CACHE_DIR": vars["HOME"] + "/.cache/evidence"})
	quoted := []string{"bash", resource}
	quoted = append(quoted, args...)
	for i, a := range quoted {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return runShell(t, vars["WORKSPACE"], env, strings.Join(quoted, " ")+"\n", "-xe")
}

// TestJenkinsStep: the shared-library step, called once per stage of a
// Jenkinsfile, sends the change's evidence to a real evidenced; the gate
// call returns 0 for the compliant change and 1 (the missing approval
// named) without the approval.
func TestJenkinsStep(t *testing.T) {
	resource := jenkinsStep(t)
	rel := newRelease(t, false)
	for _, approved := range []bool{true, false} {
		name := map[bool]string{true: "approved", false: "no approval"}[approved]
		t.Run(name, func(t *testing.T) {
			server := startEvidenced(t, approved)
			vars := merge(jenkinsVars(t, server, workspace(t)), map[string]string{"HOME": t.TempDir(), "EVIDENCE_SPOOL_DIR": t.TempDir()})
			before := rel.downloads.Load()
			for _, step := range releaseSteps(rel.URL) {
				args := append([]string{"emit", step["emit"]}, strings.Fields(step["args"])...)
				res := evidenceStep(t, resource, vars, rel.URL, args...)
				if res.code != 0 || !strings.Contains(res.stdout, "stored: ") {
					t.Fatalf("evidence %v: %+v", args, res)
				}
			}
			if n := rel.downloads.Load() - before; n != 1 {
				t.Errorf("%d downloads of the archive over 6 steps, want 1 (then the agent's cache)", n)
			}
			gate := []string{"gate", "--env", "production"}
			if approved {
				gate = append(gate, "--wait", "60s", "--poll-interval", "200ms")
			} else {
				waitAllButApproval(t, server)
			}
			res := evidenceStep(t, resource, vars, rel.URL, gate...)
			if approved {
				if res.code != 0 || !strings.HasPrefix(res.stdout, "ALLOW: "+repo+"@"+commit+" to production") {
					t.Fatalf("gate: %+v", res)
				}
				return
			}
			if res.code != 1 || !strings.HasPrefix(res.stdout, "DENY: ") || !strings.Contains(res.stdout, "ticket PAY-123 has no approval") {
				t.Fatalf("gate without approval: %+v", res)
			}
		})
	}
}
