package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

const gateCommit = "c0ffee1234567890abcdef1234567890abcdef12"

// lockedReader lets a test add facts while the server reads.
type lockedReader struct {
	mu sync.RWMutex
	s  *correlate.State
}

func (l *lockedReader) Change(ctx context.Context, id string) (correlate.Record, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return correlate.StateReader{State: l.s}.Change(ctx, id)
}

func (l *lockedReader) ChangesOf(ctx context.Context, repo, commit string) ([]correlate.Record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return correlate.StateReader{State: l.s}.ChangesOf(ctx, repo, commit)
}

func (l *lockedReader) ChangesOfArtifact(ctx context.Context, digest string) ([]correlate.Record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return correlate.StateReader{State: l.s}.ChangesOfArtifact(ctx, digest)
}

func (l *lockedReader) add(facts ...correlate.Fact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s.Add(facts...)
}

// gateFacts: testdata/gate/compliant.events.json (squash_merge before its
// deployment, plus SAST and dependency scans), the ticket approval apart.
func gateFacts(t *testing.T) (base, approval []correlate.Fact) {
	t.Helper()
	for _, e := range correlatetest.Events(t, "testdata/gate/compliant.events.json", 0) {
		facts := correlatetest.Facts(t, e)
		if e.Type == "dev.evidencepipeline.ticket.approved.v1" {
			approval = append(approval, facts...)
		} else {
			base = append(base, facts...)
		}
	}
	return base, approval
}

func gateAPI(t *testing.T, r correlate.Reader) string {
	t.Helper()
	url, _ := gateAPIAnswers(t, r)
	return url
}

// gateAPIAnswers is gateAPI, with the decisions it answers to GET
// /v1/gate recorded.
func gateAPIAnswers(t *testing.T, r correlate.Reader) (string, *gateAnswers) {
	t.Helper()
	e, err := evaluate.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	a := &gateAnswers{}
	h := api.New(api.Config{Changes: r, Gate: e})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tw := &teeWriter{ResponseWriter: w}
		h.ServeHTTP(tw, r)
		if r.URL.Path == "/v1/gate" {
			var v struct {
				Decision string `json:"decision"`
			}
			_ = json.Unmarshal(tw.body.Bytes(), &v)
			a.add(v.Decision)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, a
}

// gateAnswers are the decisions a gate API answered, in order ("" for an
// error answer).
type gateAnswers struct {
	mu        sync.Mutex
	decisions []string
}

func (a *gateAnswers) add(d string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.decisions = append(a.decisions, d)
}

func (a *gateAnswers) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.decisions)
}

// teeWriter keeps a copy of the body it writes.
type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (w *teeWriter) Write(b []byte) (int, error) {
	w.body.Write(b)
	return w.ResponseWriter.Write(b)
}

var (
	nowRE    = regexp.MustCompile(`20[2-9][0-9]-[0-9]{2}-[0-9]{2}T[0-9:.]+Z`)
	bundleRE = regexp.MustCompile(`policy bundle: [0-9a-f]{64}`)
)

// gateGolden compares the verdict with testdata/gate/name (times other
// than the fixture's 2025-03 ones and the bundle hash normalized).
func gateGolden(t *testing.T, name, got string) {
	t.Helper()
	got = nowRE.ReplaceAllStringFunc(got, func(s string) string {
		if strings.HasPrefix(s, "2025-03-") {
			return s
		}
		return "<now>"
	})
	got = bundleRE.ReplaceAllString(got, "policy bundle: <hash>")
	goldenAt(t, "gate", name, got)
}

func TestGateCLI(t *testing.T) {
	base, approval := gateFacts(t)
	st := &lockedReader{s: correlate.NewState()}
	st.add(base...)
	server, answers := gateAPIAnswers(t, st)
	vars := map[string]string{"EVIDENCE_SERVER": server}

	r := run(t, vars, "", "gate", "--env", "production", "--repo", "github.com/acme/payments", "--commit", gateCommit)
	if r.code != 1 || !strings.Contains(r.stdout, "PENDING CM-1") {
		t.Fatalf("without approval: %+v", r)
	}
	gateGolden(t, "deny_pending.txt.golden", r.stdout)

	r = run(t, vars, "", "gate", "--env", "production", "--repo", "github.com/acme/payments", "--commit", "0123456789abcdef")
	if r.code != 1 || !strings.Contains(r.stdout, "the change is unknown (CM-8)") {
		t.Fatalf("unknown: %+v", r)
	}
	gateGolden(t, "deny_unknown.txt.golden", r.stdout)

	// --wait: the approval arrives during the wait, once the gate has
	// denied the command's first question (not after a guessed delay: a
	// slow machine would ask first after it, and never see the deny).
	// The wait is long enough for any machine; it ends at the allow.
	asked := len(answers.list())
	added := make(chan struct{})
	go func() {
		defer close(added)
		deadline := time.Now().Add(2 * time.Minute)
		for !slices.Contains(answers.list()[asked:], "deny") {
			if time.Now().After(deadline) {
				t.Errorf("the gate answered no deny to the waiting command within 2m: %q", answers.list()[asked:])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		st.add(approval...)
	}()
	r = run(t, vars, "", "gate", "--env", "production", "--repo", "github.com/acme/payments", "--commit", gateCommit, "--wait", "2m", "--poll-interval", "50ms")
	<-added
	// Denied (pending) until the approval, then allowed once, and the
	// command said it was waiting.
	got := answers.list()[asked:]
	if i := slices.Index(got, "allow"); i < 1 || i != len(got)-1 || slices.ContainsFunc(got[:i], func(d string) bool { return d != "deny" }) {
		t.Errorf("the gate answered %q to the waiting command, want deny at least once, then allow", got)
	}
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ALLOW") || !strings.Contains(r.stderr, "asking again") {
		t.Fatalf("wait: %+v", r)
	}
	gateGolden(t, "allow.txt.golden", r.stdout)

	// Repository and commit from GitHub Actions; JSON output.
	ci := map[string]string{"EVIDENCE_SERVER": vars["EVIDENCE_SERVER"], "GITHUB_ACTIONS": "true", "GITHUB_SERVER_URL": "https://github.com",
		"GITHUB_REPOSITORY": "acme/payments", "GITHUB_SHA": gateCommit}
	r = run(t, ci, "", "gate", "--env", "production", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"decision": "allow"`) {
		t.Fatalf("from CI: %+v", r)
	}
	// The image alone, outside CI: found across repositories.
	r = run(t, vars, "", "gate", "--env", "production", "--artifact", "sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ALLOW: github.com/acme/payments artifact sha256:4a5b6c7d") ||
		!strings.Contains(r.stdout, "change: github.com/acme/payments@"+gateCommit) {
		t.Fatalf("by artifact alone: %+v", r)
	}
	// An image the pull request's pipeline built from its final head, not
	// the merge commit: denied, though the merge commit's image passes.
	headImage := "sha256:9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b49f2c1e7a4b5d6c8e0f1a2b3c"
	e, err := ce.ParseJSON([]byte(`{"specversion":"1.0","id":"9876500002-image","source":"/ci/github-actions/acme/payments",
		"type":"dev.evidencepipeline.artifact.built.v1","time":"2025-03-03T14:11:00Z","datacontenttype":"application/json",
		"data":{"digest":"` + headImage + `","name":"ghcr.io/acme/payments","repository":"github.com/acme/payments",
		"commit":"9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4","run_id":"9876500002","system":"github-actions",
		"builder":{"login":"github-actions[bot]","type":"service"},"built_at":"2025-03-03T14:11:00Z"}}`))
	if err != nil {
		t.Fatal(err)
	}
	st.add(correlatetest.Facts(t, e)...)
	r = run(t, ci, "", "gate", "--env", "production", "--artifact", headImage)
	if r.code != 1 || !strings.Contains(r.stdout, "FAIL    CM-6 Provenance\n        - artifact "+headImage+" built from 9f2c1e7a4b5d, not the merged commit c0ffee123456\n") ||
		!strings.Contains(r.stdout, "change: github.com/acme/payments@"+gateCommit) {
		t.Fatalf("the head's image: %+v", r)
	}
	// --wait gives up on a definite failure at once, and after D on pending.
	r = run(t, vars, "", "gate", "--env", "production", "--repo", "github.com/acme/payments", "--commit", "0123456789abcdef", "--wait", "200ms", "--poll-interval", "50ms")
	if r.code != 1 {
		t.Fatalf("wait expiring: %+v", r)
	}
}

func TestGateCLIErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"gate"}, "--env is required"},
		{[]string{"gate", "--env", "production"}, "--repo is required outside CI (or --artifact alone)"},
		{[]string{"gate", "--env", "production", "--repo", "github.com/a/b"}, "--commit or --artifact is required"},
		{[]string{"gate", "--env", "production", "--repo", "github.com/a/b", "--commit", "xyz"}, "is not a commit SHA"},
		{[]string{"gate", "--env", "p", "--repo", "github.com/a/b", "--commit", "abcdef1", "-o", "yaml"}, "want text or json"},
		{[]string{"gate", "--env", "p", "--server", "http://127.0.0.1:1", "--repo", "github.com/a/b", "--commit", "abcdef1"}, "cannot reach evidenced"},
	} {
		r := run(t, nil, "", tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: %+v, want 2 and %q", tc.args, r, tc.want)
		}
	}
	// A server error (here 400 from the server) is exit 2.
	url := gateAPI(t, correlate.StateReader{State: correlate.NewState()})
	r := run(t, map[string]string{"EVIDENCE_SERVER": url}, "", "gate", "--env", "p", "--repo", "github.com/a/b", "--artifact", "sha256:zz")
	if r.code != 2 || !strings.Contains(r.stderr, "is not a digest") {
		t.Fatalf("server 400: %+v", r)
	}
}
