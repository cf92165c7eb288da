package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// gateFixture is the squash_merge scenario before its deployment, with the
// SAST and dependency scans CM-5 needs: a compliant change.
const gateFixture = "../cli/testdata/gate/compliant.events.json"

const (
	gateRepo   = "github.com/acme/payments"
	gateCommit = "c0ffee1234567890abcdef1234567890abcdef12"
)

// gateFacts are the fixture's facts, and separately those of its ticket
// approval.
func gateFacts(t testing.TB) (base, approval []correlate.Fact) {
	t.Helper()
	for _, e := range correlatetest.Events(t, gateFixture, 0) {
		facts := correlatetest.Facts(t, e)
		if e.Type == "dev.evidencepipeline.ticket.approved.v1" {
			approval = append(approval, facts...)
			continue
		}
		base = append(base, facts...)
	}
	return base, approval
}

// lockedState is a Reader over a State that a test adds to while the
// server reads.
type lockedState struct {
	mu sync.RWMutex
	s  *correlate.State
}

func (l *lockedState) Change(ctx context.Context, id string) (correlate.Record, bool, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return correlate.StateReader{State: l.s}.Change(ctx, id)
}

func (l *lockedState) ChangesOf(ctx context.Context, repo, commit string) ([]correlate.Record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return correlate.StateReader{State: l.s}.ChangesOf(ctx, repo, commit)
}

func (l *lockedState) ChangesOfArtifact(ctx context.Context, digest string) ([]correlate.Record, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return correlate.StateReader{State: l.s}.ChangesOfArtifact(ctx, digest)
}

func (l *lockedState) add(facts ...correlate.Fact) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.s.Add(facts...)
}

func gateServer(t testing.TB, r correlate.Reader, tokens *auth.Tokens) *httptest.Server {
	t.Helper()
	e, err := evaluate.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, api.New(api.Config{Changes: r, Gate: e, Tokens: tokens}))
	t.Cleanup(srv.Close)
	return srv
}

func askGate(t *testing.T, srv *httptest.Server, query, token string) (int, api.GateResponse, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/gate?"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var raw json.RawMessage
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	var g api.GateResponse
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &g); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode, g, string(raw)
}

func statusOf(g api.GateResponse, id string) evaluate.Status {
	for _, c := range g.Controls {
		if c.ID == id {
			return c.Status
		}
	}
	return ""
}

const gateQ = "repo=" + gateRepo + "&commit=" + gateCommit + "&env=production"

// The sequence: a compliant change is allowed; the same change
// missing its ticket approval is denied with CM-1 named; after the
// approval event arrives, allowed.
func TestGateApprovalSequence(t *testing.T) {
	base, approval := gateFacts(t)
	full := correlate.NewState()
	full.Add(base...)
	full.Add(approval...)
	code, g, raw := askGate(t, gateServer(t, correlate.StateReader{State: full}, nil), gateQ, "")
	if code != 200 || g.Decision != api.GateAllow || g.Change == nil || *g.Change != gateRepo+"@"+gateCommit || len(g.Controls) != 8 {
		t.Fatalf("compliant: %d %s", code, raw)
	}
	for _, c := range g.Controls {
		if c.Status != evaluate.Pass {
			t.Errorf("compliant: %s %s %q", c.ID, c.Status, c.Reasons)
		}
	}
	if g.BundleHash == "" || g.EvaluatedAt.IsZero() || !g.Production {
		t.Fatalf("compliant: %s", raw)
	}

	st := &lockedState{s: correlate.NewState()}
	st.add(base...)
	srv := gateServer(t, st, nil)
	code, g, raw = askGate(t, srv, gateQ, "")
	if code != 200 || g.Decision != api.GateDeny || statusOf(g, "CM-1") != evaluate.Pending ||
		!strings.Contains(strings.Join(g.Reasons, "\n"), "CM-1 pending: ticket PAY-123 has no approval") {
		t.Fatalf("without the approval: %d %s", code, raw)
	}
	for _, c := range g.Controls {
		if c.ID == "CM-1" && (c.Deadline == nil || !c.Deadline.After(time.Now())) {
			t.Fatalf("pending CM-1 without a future deadline: %s", raw)
		}
		if c.ID != "CM-1" && c.Status != evaluate.Pass {
			t.Errorf("without the approval: %s %s %q", c.ID, c.Status, c.Reasons)
		}
	}
	st.add(approval...)
	if code, g, raw = askGate(t, srv, gateQ, ""); code != 200 || g.Decision != api.GateAllow {
		t.Fatalf("after the approval: %d %s", code, raw)
	}
	// An abbreviated commit, the artifact with its repository, and the
	// artifact alone find the same change.
	for _, q := range []string{"repo=" + gateRepo + "&commit=c0ffee1&env=PRODUCTION",
		"repo=https://github.com/acme/payments&artifact=sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899&env=prod",
		"artifact=sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899&env=prod"} {
		if code, g, raw = askGate(t, srv, q, ""); code != 200 || g.Decision != api.GateAllow || *g.Change != gateRepo+"@"+gateCommit ||
			g.Repo != gateRepo || !strings.HasPrefix(gateCommit, g.Commit) || len(g.Commit) < 7 {
			t.Fatalf("%s: %d %s", q, code, raw)
		}
	}
}

func TestGateUnknownAndNonProduction(t *testing.T) {
	base, _ := gateFacts(t)
	s := correlate.NewState()
	s.Add(base...)
	srv := gateServer(t, correlate.StateReader{State: s}, nil)

	code, g, raw := askGate(t, srv, "repo="+gateRepo+"&commit=0123456789abcdef&env=production", "")
	want := "no change record for " + gateRepo + "@0123456789abcdef: the change is unknown (CM-8)"
	if code != 200 || g.Decision != api.GateDeny || g.Change != nil || statusOf(g, "CM-8") != evaluate.Fail ||
		!slices.Contains(g.Reasons, want) || !strings.Contains(raw, `"change":null`) {
		t.Fatalf("unknown commit: %d %s", code, raw)
	}
	code, g, raw = askGate(t, srv, "repo="+gateRepo+"&artifact=sha256:"+strings.Repeat("e", 64)+"&env=production", "")
	if code != 200 || g.Decision != api.GateDeny || !strings.Contains(strings.Join(g.Reasons, ""), "(CM-8)") {
		t.Fatalf("unknown artifact: %d %s", code, raw)
	}
	code, g, raw = askGate(t, srv, "artifact=sha256:"+strings.Repeat("e", 64)+"&env=production", "")
	if code != 200 || g.Decision != api.GateDeny || !strings.Contains(strings.Join(g.Reasons, ""), "no change built or deployed it") {
		t.Fatalf("unknown artifact, no repo: %d %s", code, raw)
	}
	// Staging: the missing approval is informational.
	code, g, raw = askGate(t, srv, "repo="+gateRepo+"&commit="+gateCommit+"&env=staging", "")
	if code != 200 || g.Decision != api.GateAllow || g.Production || statusOf(g, "CM-1") != evaluate.Pending {
		t.Fatalf("staging: %d %s", code, raw)
	}
}

func TestGateProductionParams(t *testing.T) {
	base, _ := gateFacts(t)
	s := correlate.NewState()
	s.Add(base...)
	e, err := evaluate.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := apitest.NewServer(t, api.New(api.Config{Changes: correlate.StateReader{State: s}, Gate: e,
		GateParams: evaluate.Params{ProductionEnvironments: []string{"live-eu"}}}))
	defer srv.Close()
	if code, g, raw := askGate(t, srv, "repo="+gateRepo+"&commit="+gateCommit+"&env=live-EU", ""); code != 200 || !g.Production || g.Decision != api.GateDeny {
		t.Fatalf("live-eu: %d %s", code, raw)
	}
	if code, g, raw := askGate(t, srv, "repo="+gateRepo+"&commit="+gateCommit+"&env=production", ""); code != 200 || g.Production || g.Decision != api.GateAllow {
		t.Fatalf("production is not in the list: %d %s", code, raw)
	}
}

func TestGateBadParams(t *testing.T) {
	srv := gateServer(t, correlate.StateReader{State: correlate.NewState()}, nil)
	for q, want := range map[string]string{
		"":                                       "repo is required",
		"repo=acme&commit=abcdef1&env=p":         `repo "acme" is not a repository`,
		"repo=" + gateRepo + "&env=p":            "commit is required",
		"repo=" + gateRepo + "&commit=xyz&env=p": `commit "xyz" is not a commit SHA`,
		"repo=" + gateRepo + "&commit=abcdef1":   "env is required",
		"repo=" + gateRepo + "&commit=abcdef1&artifact=sha256:" + strings.Repeat("a", 64) + "&env=p": "give commit or artifact, not both",
		"repo=" + gateRepo + "&artifact=md5:1&env=p":                                                 `artifact "md5:1" is not a digest`,
	} {
		code, _, raw := askGate(t, srv, q, "")
		if code != 400 || !strings.Contains(strings.ReplaceAll(raw, `\"`, `"`), want) {
			t.Errorf("%q: %d %s, want 400 with %q", q, code, raw, want)
		}
	}
}

func TestGateRoles(t *testing.T) {
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("producer %s ci\ngate %s deployer\nauditor %s sox-audit\nadmin %s ops\n",
		auth.Hash("evd_p"), auth.Hash("evd_g"), auth.Hash("evd_au"), auth.Hash("evd_ad"))))
	if err != nil {
		t.Fatal(err)
	}
	srv := gateServer(t, correlate.StateReader{State: correlate.NewState()}, tokens)
	for tok, want := range map[string]int{"evd_g": 200, "evd_ad": 200, "evd_p": 403, "evd_au": 403, "": 401} {
		if code, _, raw := askGate(t, srv, gateQ, tok); code != want {
			t.Errorf("token %q: %d %s, want %d", tok, code, raw, want)
		}
	}
	// Without an engine the route is not mounted.
	plain := apitest.NewServer(t, api.New(api.Config{Changes: correlate.StateReader{State: correlate.NewState()}}))
	defer plain.Close()
	if resp, err := http.Get(plain.URL + "/v1/gate?" + gateQ); err != nil || resp.StatusCode != 404 {
		t.Fatalf("no engine: %v %v", resp, err)
	}
}
