package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/cli"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
	"github.com/evidencepipeline/evidence/schemas"
)

// changeCase is a state the correlator reaches from a fixture's events
// (the first n of them; 0: all), and the record of it the golden files
// show.
type changeCase struct {
	name   string // golden file prefix
	events string // events.json
	n      int
	id     string
}

const scenarios = "../../processors/correlate/testdata/scenarios"

var changeCases = []changeCase{
	{"squash_merge", scenarios + "/squash_merge/events.json", 0,
		"github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"},
	{"stale_approval", scenarios + "/stale_approval/events.json", 0,
		"gitlab.acme.example/payments/payments-api@e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4"},
	{"unmatched_relinked", scenarios + "/unmatched_relinked/events.json", 0,
		"github.com/acme/payments@72c0ffee00112233445566778899aabbccddee72"},
	// Before the merge arrives the deployment matches no change.
	{"unmatched_relinked_early", scenarios + "/unmatched_relinked/events.json", 1,
		"unmatched:production/payments/github.com/acme/payments@72c0ffee00112233445566778899aabbccddee72"},
	{"direct_push", scenarios + "/direct_push/events.json", 0,
		"github.com/acme/ledger@d1ec7a11ce5e5f60718293a4b5c6d7e8f90a1b2c"},
	// Ours: a dismissed review, a rejected then approved emergency ticket,
	// a run and a deployment still in progress, a granted exception.
	{"emergency_exception", "testdata/changes/emergency_exception.events.json", 0,
		"github.com/acme/billing@b0b0000000000000000000000000000000000b0b"},
}

// changeState correlates the first n events of a fixture (0: all), after
// checking them against the catalog as evidenced would.
func changeState(t *testing.T, path string, n int) *correlate.State {
	t.Helper()
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	events := correlatetest.Events(t, path, n)
	for i, e := range events {
		if err := cat.Validate(e.Type, e.Data); err != nil {
			t.Fatalf("%s: event %d (%s): %v", path, i, e.ID, err)
		}
	}
	return correlatetest.State(t, events...)
}

// changesAPI serves the API over the state (the daemon does not serve
// change records yet; the API is what the CLI talks to).
func changesAPI(t *testing.T, s *correlate.State, tokens *auth.Tokens) string {
	t.Helper()
	srv := httptest.NewServer(api.New(api.Config{Changes: correlate.StateReader{State: s}, Tokens: tokens}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// changesGolden compares got with testdata/changes/name, or rewrites it
// with -update (the flag of emit_ci_test.go).
func changesGolden(t *testing.T, name, got string) {
	t.Helper()
	goldenAt(t, "changes", name, got)
}

// eventRefs collects every "events" list of a record's JSON.
func eventRefs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if l, ok := e.([]any); ok && k == "events" {
				for _, r := range l {
					out = append(out, r.(string))
				}
				continue
			}
			out = append(out, eventRefs(e)...)
		}
	case []any:
		for _, e := range x {
			out = append(out, eventRefs(e)...)
		}
	}
	return out
}

func TestChangesShow(t *testing.T) {
	for _, tc := range changeCases {
		t.Run(tc.name, func(t *testing.T) {
			s := changeState(t, tc.events, tc.n)
			rec, ok := s.Record(tc.id)
			if !ok {
				t.Fatalf("no record %s", tc.id)
			}
			vars := map[string]string{"EVIDENCE_SERVER": changesAPI(t, s, nil)}

			text := run(t, vars, "", "changes", "show", tc.id)
			if text.code != 0 || text.stderr != "" {
				t.Fatalf("show: %+v", text)
			}
			changesGolden(t, tc.name+".text.golden", text.stdout)

			withEvents := run(t, vars, "", "changes", "show", "--events", tc.id)
			if withEvents.code != 0 {
				t.Fatalf("show --events: %+v", withEvents)
			}
			changesGolden(t, tc.name+".events.golden", withEvents.stdout)

			// Flags after the id too; the JSON is the record as the API
			// serves it, indented.
			js := run(t, vars, "", "changes", "show", tc.id, "-o", "json")
			if js.code != 0 {
				t.Fatalf("show -o json: %+v", js)
			}
			changesGolden(t, tc.name+".json.golden", js.stdout)
			var compact bytes.Buffer
			if err := json.Compact(&compact, []byte(js.stdout)); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(rec)
			if !bytes.Equal(compact.Bytes(), want) {
				t.Errorf("-o json is not the record:\n got %s\nwant %s", compact.Bytes(), want)
			}

			// --events names every event behind the record, each once
			// per item that rests on it; without it, none is named.
			var v any
			_ = json.Unmarshal(want, &v)
			refs := eventRefs(v)
			if len(refs) == 0 {
				t.Fatal("the record names no events")
			}
			for _, r := range refs {
				if !strings.Contains(withEvents.stdout, "event: "+r+"\n") {
					t.Errorf("--events does not name %q", r)
				}
			}
			if got := strings.Count(withEvents.stdout, "event: "); got != len(refs) {
				t.Errorf("--events prints %d event lines, the record has %d refs", got, len(refs))
			}
			if strings.Contains(text.stdout, "event: ") {
				t.Error("events printed without --events")
			}

		})
	}
}

func TestChangesShowMarkers(t *testing.T) {
	// What an auditor scans for is said in words, not only in JSON.
	for name, want := range map[string][]string{
		"stale_approval":           {"STALE (given on an earlier head, not the final one)", "on 7c8d9e0f1a2b (final head)", "approved  alice (Alice Martin), the author  on 7c8d9e0f1a2b"},
		"unmatched_relinked_early": {"FLAG          UNMATCHED deployment", "Pull request: none", "UNMATCHED\n"},
		"direct_push":              {"FLAG          DIRECT PUSH to the default branch", "Pushes to the default branch (1)"},
		"squash_merge":             {"unit  failed  on 1b2c3d4e5f60 (change_commit, head)", "matched by artifact", "method squash"},
		"emergency_exception": {"DISMISSED (a later dismissal withdraws it)", "dismissed by grace (Grace Obi)",
			"changes_requested  grace (Grace Obi)  on a11ce0000000 (final head)  2025-03-20T01:28:00Z  SUPERSEDED (the reviewer's later approval or request for changes replaces it)", "REJECTIONS (1)", "RUNNING (not finished)", "IN PROGRESS (not finished)",
			"EXC-3  CM-4  granted  expires 2025-03-27T00:00:00Z", "emergency (jira \"Emergency Change\")", "Rejected -> Implement",
			"github.com/erin/billing:hotfix/double-invoicing -> main"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", "changes", name+".text.golden"))
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s: the text does not say %q", name, w)
			}
		}
	}
}

func TestChangesShowByCommit(t *testing.T) {
	s := changeState(t, scenarios+"/squash_merge/events.json", 0)
	server := changesAPI(t, s, nil)
	vars := map[string]string{"EVIDENCE_SERVER": server}
	id := "github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"
	byID := run(t, vars, "", "changes", "show", id)
	if byID.code != 0 {
		t.Fatalf("by id: %+v", byID)
	}
	// The merge commit, a head abbreviated, the repository as a URL: the
	// same record.
	for _, args := range [][]string{
		{"--repo", "github.com/acme/payments", "--commit", "c0ffee1234567890abcdef1234567890abcdef12"},
		{"--repo", "https://github.com/Acme/Payments.git", "--commit", "1B2C3D4"},
		{"--commit", "9f2c1e7a4b5d", "--repo", "git@github.com:acme/payments.git"},
	} {
		r := run(t, vars, "", append([]string{"changes", "show"}, args...)...)
		if r.code != 0 || r.stdout != byID.stdout {
			t.Errorf("%v: %d %s\nstdout:\n%s", args, r.code, r.stderr, r.stdout)
		}
	}
	// In CI, the run's repository and commit (GITHUB_REPOSITORY Acme/Payments,
	// GITHUB_SHA the merge commit).
	r := run(t, with(githubEnv, "EVIDENCE_SERVER", server), "", "changes", "show")
	if r.code != 0 || r.stdout != byID.stdout {
		t.Errorf("from CI: %+v", r)
	}
	// EVIDENCE_COMMIT wins over CI; -o json is the API's list.
	r = run(t, with(githubEnv, "EVIDENCE_SERVER", server, "EVIDENCE_COMMIT", "1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"), "", "changes", "show", "-o", "json")
	var list struct {
		Changes []correlate.Record `json:"changes"`
	}
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &list) != nil || len(list.Changes) != 1 || list.Changes[0].ID != id {
		t.Errorf("-o json from CI: %+v", r)
	}

	// Two changes that share a ticket: each is found by its own commit.
	s2 := changeState(t, scenarios+"/two_prs_one_ticket/events.json", 0)
	recs := s2.Records()
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	vars2 := map[string]string{"EVIDENCE_SERVER": changesAPI(t, s2, nil)}
	for _, rec := range recs {
		r := run(t, vars2, "", "changes", "show", "--repo", rec.Repository, "--commit", rec.Commit)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "Change "+rec.ID+"\n") {
			t.Errorf("%s: %+v", rec.ID, r)
		}
	}
}

func TestChangesShowSeveral(t *testing.T) {
	// Several records may hold a commit (a commit pushed directly and
	// then merged again, a cherry-pick): each is shown, after a count.
	s := changeState(t, scenarios+"/direct_push/events.json", 0)
	recs := s.Records()
	if len(recs) != 2 {
		t.Fatalf("%d records", len(recs))
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/changes" || r.URL.Query().Get("commit") != "1234567" || r.URL.Query().Get("repo") != "github.com/acme/ledger" {
			http.Error(w, `{"error":"unexpected request"}`, http.StatusBadRequest)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"changes": recs})
	}))
	defer srv.Close()
	r := run(t, map[string]string{"EVIDENCE_SERVER": srv.URL}, "", "changes", "show", "--repo", "github.com/acme/ledger", "--commit", "1234567")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "2 change records of github.com/acme/ledger hold commit 1234567\n\nChange "+recs[0].ID+"\n") ||
		!strings.Contains(r.stdout, "\n\nChange "+recs[1].ID+"\n") {
		t.Errorf("%+v", r)
	}
}

func TestChangesShowNotFound(t *testing.T) {
	s := changeState(t, scenarios+"/squash_merge/events.json", 0)
	vars := map[string]string{"EVIDENCE_SERVER": changesAPI(t, s, nil)}
	id := "github.com/acme/payments@0000000000000000000000000000000000000000"
	for _, args := range [][]string{{id}, {id, "-o", "json"}} {
		r := run(t, vars, "", append([]string{"changes", "show"}, args...)...)
		if r.code != cli.ExitFail || r.stdout != "" || r.stderr != "evidence: changes show: no change record with id "+id+"\n" {
			t.Errorf("%v: %+v", args, r)
		}
	}
	r := run(t, vars, "", "changes", "show", "--repo", "github.com/acme/payments", "--commit", "deadbeef")
	if r.code != cli.ExitFail || r.stdout != "" ||
		!strings.Contains(r.stderr, "no change record of github.com/acme/payments holds commit deadbeef") {
		t.Errorf("unknown commit: %+v", r)
	}
}

func TestChangesShowServerErrors(t *testing.T) {
	s := changeState(t, scenarios+"/squash_merge/events.json", 0)
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("producer %s ci\nauditor %s sox\n", auth.Hash("tok-producer"), auth.Hash("tok-auditor"))))
	if err != nil {
		t.Fatal(err)
	}
	server := changesAPI(t, s, tokens)
	id := "github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"
	for token, want := range map[string]string{
		"":             "missing bearer token: send Authorization: Bearer <token> (set EVIDENCE_TOKEN to a token with role auditor)",
		"tok-producer": "evidenced answered 403 Forbidden: token ci has role producer; this endpoint needs role auditor",
	} {
		r := run(t, map[string]string{"EVIDENCE_SERVER": server, "EVIDENCE_TOKEN": token}, "", "changes", "show", id)
		if r.code != cli.ExitFail || r.stderr != "evidence: changes show: "+want+"\n" {
			t.Errorf("token %q: %+v", token, r)
		}
	}
	if r := run(t, map[string]string{"EVIDENCE_TOKEN": "tok-auditor"}, "", "changes", "show", "--server", server+"/", id); r.code != 0 {
		t.Errorf("auditor: %+v", r)
	}

	// An evidenced that does not serve change records.
	old := httptest.NewServer(api.New(api.Config{}))
	defer old.Close()
	r := run(t, map[string]string{"EVIDENCE_SERVER": old.URL}, "", "changes", "show", id)
	if r.code != cli.ExitFail || !strings.Contains(r.stderr, "does not serve change records") {
		t.Errorf("old server: %+v", r)
	}

	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, nil, "", "changes", "show", "--server", "http://127.0.0.1:"+strconv.Itoa(port), id)
	if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "evidence: changes show: cannot reach evidenced at http://127.0.0.1:") {
		t.Errorf("unreachable: %+v", r)
	}
}

func TestChangesUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{nil, []string{"changes"}, "usage: evidence changes show ID"},
		{nil, []string{"changes", "list"}, `changes: unknown subcommand "list"`},
		{nil, []string{"changes", "show"}, "give a change ID, or --repo and --commit (outside CI they have no default)"},
		{nil, []string{"changes", "show", "--repo", "github.com/acme/payments"}, "give a change ID, or --commit"},
		{nil, []string{"changes", "show", "--commit", "c0ffee1"}, "give a change ID, or --repo"},
		{nil, []string{"changes", "show", "--repo", "payments", "--commit", "c0ffee1"}, `repository "payments" is not host/owner/name`},
		{nil, []string{"changes", "show", "--repo", "github.com/acme/payments", "--commit", "main"}, `commit "main" is not a commit SHA`},
		{nil, []string{"changes", "show", "--repo", "github.com/acme/payments", "--commit", "c0ffee"}, `commit "c0ffee" is not a commit SHA (7 to 64 hex digits)`},
		{nil, []string{"changes", "show", "-o", "yaml", "x@y"}, `-o: want text or json, got "yaml"`},
		{nil, []string{"changes", "show", "a@b", "c@d"}, `unexpected argument "c@d"`},
		{nil, []string{"changes", "show", "a@b", "--repo", "github.com/acme/payments"}, "give a change ID or --repo and --commit, not both"},
		{nil, []string{"changes", "show", ""}, "the change ID is empty"},
		{nil, []string{"changes", "show", "--nope"}, "flag provided but not defined: -nope"},
		{map[string]string{"GITHUB_ACTIONS": "true", "GITHUB_SHA": "c0ffee1234567890abcdef1234567890abcdef12"}, []string{"changes", "show"}, "give a change ID, or --repo"},
	} {
		r := run(t, tc.vars, "", tc.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) || r.stdout != "" {
			t.Errorf("%v: code %d stderr %q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	for _, args := range [][]string{{"changes", "-h"}, {"changes", "show", "-h"}} {
		if r := run(t, nil, "", args...); r.code != 0 || !strings.Contains(r.stderr, "usage: evidence changes show") {
			t.Errorf("%v: %+v", args, r)
		}
	}
	// "--" ends the flags: what follows is the id, even when it looks like a flag.
	server := changesAPI(t, correlate.NewState(), nil)
	if r := run(t, map[string]string{"EVIDENCE_SERVER": server}, "", "changes", "show", "--", "-o"); r.code != cli.ExitFail ||
		r.stderr != "evidence: changes show: no change record with id -o\n" {
		t.Errorf("-- -o: %+v", r)
	}
}
