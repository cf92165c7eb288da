package ciintegration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// The change of ../cli/testdata/gate/compliant.events.json: alice's pull
// request #42 of github.com/acme/payments, reviewed and merged by bob,
// ticket PAY-123 approved by carol, the merge commit built by run
// 9876543210 into imageDigest.
const (
	version     = "1.4.0"
	repo        = "github.com/acme/payments"
	commit      = "c0ffee1234567890abcdef1234567890abcdef12"
	runID       = "9876543210"
	imageDigest = "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899"
)

// root is the repository's root, where the integrations are.
func root(t *testing.T) string {
	t.Helper()
	r, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// release is a release server on loopback: vVERSION/ with the archive of a
// freshly built evidence for this machine and its checksums.txt, as the
// goreleaser configuration names them.
type release struct {
	URL       string
	downloads atomic.Int32 // archive requests
}

func newRelease(t *testing.T, tamper bool) *release {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "evidence")
	build := exec.Command("go", "build", "-o", bin, "./cmd/evidence")
	build.Dir = root(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/evidence: %v\n%s", err, out)
	}
	exe, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	var archive bytes.Buffer
	gz := gzip.NewWriter(&archive)
	tw := tar.NewWriter(gz)
	for _, f := range []struct {
		name string
		body []byte
		mode int64
	}{{"README.md", []byte("evidence\n"), 0o644}, {"evidence", exe, 0o755}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: f.mode, Size: int64(len(f.body)), ModTime: time.Now()}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("evidence_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
	sum := sha256.Sum256(archive.Bytes())
	checksums := fmt.Sprintf("%s  evidence_%s_windows_amd64.zip\n%s  %s\n", strings.Repeat("0", 64), version, hex.EncodeToString(sum[:]), name)
	served := archive.Bytes()
	if tamper {
		served = append(append([]byte(nil), served...), 0)
	}
	r := &release{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v"+version+"/"+name, func(w http.ResponseWriter, _ *http.Request) {
		r.downloads.Add(1)
		w.Write(served)
	})
	mux.HandleFunc("GET /v"+version+"/checksums.txt", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, checksums)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.URL = srv.URL
	return r
}

// startEvidenced starts evidenced and posts the change's events that do
// not come from its release pipeline (ticket, pull request, reviews,
// merge; the approval only when approved), so that the integration under
// test sends the rest.
func startEvidenced(t *testing.T, approved bool) string {
	t.Helper()
	d := evidenced.Start(t, testenv.DatabaseURL(t))
	server := "http://" + d.Addr()
	raw, err := os.ReadFile("../cli/testdata/gate/compliant.events.json")
	if err != nil {
		t.Fatal(err)
	}
	var events []map[string]any
	if err := json.Unmarshal(raw, &events); err != nil {
		t.Fatal(err)
	}
	var keep []map[string]any
	for _, e := range events {
		data, _ := e["data"].(map[string]any)
		fromRelease := data["run_id"] == runID
		if fromRelease || !approved && e["type"] == "dev.evidencepipeline.ticket.approved.v1" {
			continue
		}
		keep = append(keep, e)
	}
	if len(keep) < 6 || len(keep) == len(events) {
		t.Fatalf("kept %d of %d events: the fixture changed", len(keep), len(events))
	}
	body, _ := json.Marshal(keep)
	resp, err := http.Post(server+"/v1/events", "application/cloudevents-batch+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("post the change's events: %s", resp.Status)
	}
	return server
}

// gateStatuses asks evidenced's gate directly for the statuses of the
// change's controls.
func gateStatuses(server string) (map[string]string, error) {
	resp, err := http.Get(server + "/v1/gate?env=production&repo=" + repo + "&commit=" + commit)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v struct {
		Controls []struct{ ID, Status string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, err
	}
	s := map[string]string{}
	for _, c := range v.Controls {
		s[c.ID] = c.Status
	}
	return s, nil
}

// waitAllButApproval waits until every control but CM-1 passes: all the
// evidence the integration sent is in the change record.
func waitAllButApproval(t *testing.T, server string) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, func() error {
		s, err := gateStatuses(server)
		if err != nil {
			return err
		}
		for _, id := range []string{"CM-2", "CM-3", "CM-4", "CM-5", "CM-6", "CM-7", "CM-8"} {
			if s[id] != "pass" {
				return fmt.Errorf("%s is %q: %v", id, s[id], s)
			}
		}
		return nil
	})
}

// script is one shell step's result.
type script struct {
	code           int
	stdout, stderr string
}

// runShell runs body as CI systems run a step: written to a file and
// given to bash (GitHub Actions' `bash --noprofile --norc -eo pipefail
// {0}`; GitLab's and Jenkins' sh steps with -e), in dir, with exactly
// vars as the environment.
func runShell(t *testing.T, dir string, vars map[string]string, body string, bashArgs ...string) script {
	t.Helper()
	f := filepath.Join(t.TempDir(), "step.sh")
	if err := os.WriteFile(f, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", append(bashArgs, f)...)
	cmd.Dir = dir
	for k, v := range vars {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run step: %v", err)
		}
		code = ee.ExitCode()
	}
	return script{code, out.String(), errb.String()}
}

// basePath is a PATH with the system's tools and no evidence binary.
func basePath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("evidence"); err == nil {
		t.Fatalf("an evidence binary is already on PATH (%s): the test could not tell it installed one", p)
	}
	return os.Getenv("PATH")
}

// workspace is a checkout's working directory with the reports the
// pipeline's tools wrote.
func workspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []string{"junit-unit.xml", "scan-clean.sarif"} {
		b, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}
