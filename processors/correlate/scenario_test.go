package correlate

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/scenarios")

// scenario is one folder of testdata/scenarios: events.json (CloudEvents in
// the JSON format, in the order they arrive) in, record.golden.json (every
// record derived from them) out. With a checkpoint, the records derived
// from the first events only are checkpoint.golden.json: what the
// correlator shows before the rest of the evidence arrives.
type scenario struct {
	name       string
	checkpoint int
	check      func(t *testing.T, final, early []Record)
}

var scenarios = []scenario{
	{name: "squash_merge", check: func(t *testing.T, rs, _ []Record) {
		r := only(t, rs)
		if r.PullRequest.Method != "squash" || r.Commit != "c0ffee1234567890abcdef1234567890abcdef12" {
			t.Errorf("record %s, method %q", r.ID, r.PullRequest.Method)
		}
		// The failed test on the first head is kept, with its commit.
		var failedOn []string
		for _, tr := range r.Tests {
			if tr.Outcome == "failed" {
				failedOn = append(failedOn, tr.Commit)
			}
		}
		if !slices.Equal(failedOn, []string{"1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e"}) {
			t.Errorf("failed tests on %v", failedOn)
		}
		if len(r.Deployments) != 1 || !slices.Equal(r.Deployments[0].MatchedBy, []string{"artifact"}) {
			t.Errorf("deployments %+v", r.Deployments)
		}
	}},
	{name: "stale_approval", check: func(t *testing.T, rs, _ []Record) {
		r := only(t, rs)
		stale := map[string]bool{}
		for _, rv := range r.PullRequest.Reviews {
			stale[rv.Reviewer.Login+" "+rv.Decision] = rv.Stale
		}
		want := map[string]bool{"bob approved": true, "alice approved": false, "dave commented": false}
		if !mapsEqual(stale, want) {
			t.Errorf("stale = %v, want %v", stale, want)
		}
	}},
	{name: "ticket_in_branch", check: func(t *testing.T, rs, _ []Record) {
		r := only(t, rs)
		if len(r.Tickets) != 1 || r.Tickets[0].Key != "PAY-130" || !slices.Equal(r.Tickets[0].FoundIn, []string{"branch"}) ||
			len(r.Tickets[0].Approvals) != 1 {
			t.Errorf("tickets %+v", r.Tickets)
		}
	}},
	{name: "two_prs_one_ticket", check: func(t *testing.T, rs, _ []Record) {
		if len(rs) != 2 {
			t.Fatalf("%d records, want 2", len(rs))
		}
		for _, r := range rs {
			if len(r.Tickets) != 1 || r.Tickets[0].Key != "CHG0031234" || len(r.Tickets[0].Approvals) != 1 {
				t.Errorf("%s: tickets %+v", r.ID, r.Tickets)
			}
		}
	}},
	{name: "deploy_before_build", checkpoint: 5, check: func(t *testing.T, rs, early []Record) {
		if len(early) != 2 || !early[1].Unmatched {
			t.Fatalf("before the build: %d records, want the change and an unmatched deployment", len(early))
		}
		r := only(t, rs)
		if len(r.Deployments) != 1 || r.Deployments[0].Outcome != "success" {
			t.Errorf("deployments %+v", r.Deployments)
		}
	}},
	{name: "two_environments", check: func(t *testing.T, rs, _ []Record) {
		r := only(t, rs)
		var envs []string
		for _, d := range r.Deployments {
			envs = append(envs, d.Environment)
		}
		if !slices.Equal(envs, []string{"staging", "production"}) {
			t.Errorf("deployed to %v", envs)
		}
	}},
	{name: "direct_push", check: func(t *testing.T, rs, _ []Record) {
		if len(rs) != 2 {
			t.Fatalf("%d records, want the direct push and pull request #90", len(rs))
		}
		var direct *Record
		for i := range rs {
			if rs[i].DirectPush {
				direct = &rs[i]
			} else if rs[i].PullRequest == nil || rs[i].PullRequest.Number != 90 {
				t.Errorf("%s: not pull request #90", rs[i].ID)
			}
		}
		if direct == nil || direct.PullRequest != nil || direct.ID != "github.com/acme/ledger@d1ec7a11ce5e5f60718293a4b5c6d7e8f90a1b2c" ||
			len(direct.Deployments) != 1 || len(direct.Tickets) != 1 {
			t.Errorf("direct push record %+v", direct)
		}
	}},
	{name: "unmatched_relinked", checkpoint: 1, check: func(t *testing.T, rs, early []Record) {
		e := only(t, early)
		if e.ID != "unmatched:production/payments/github.com/acme/payments@72c0ffee00112233445566778899aabbccddee72" || !e.Unmatched {
			t.Errorf("before the merge: %s", e.ID)
		}
		r := only(t, rs)
		if r.Unmatched || len(r.Deployments) != 1 || !slices.Equal(r.Deployments[0].MatchedBy, []string{"commit"}) {
			t.Errorf("after the merge: %+v", r)
		}
	}},
}

func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := filepath.Join("testdata", "scenarios", sc.name)
			events := readEvents(t, filepath.Join(dir, "events.json"))
			final := stateOf(t, events).Records()
			golden(t, filepath.Join(dir, "record.golden.json"), final)
			var early []Record
			if sc.checkpoint > 0 {
				early = stateOf(t, events[:sc.checkpoint]).Records()
				golden(t, filepath.Join(dir, "checkpoint.golden.json"), early)
			}
			// Arrival order does not matter: reversed, and each event twice.
			rev := slices.Clone(events)
			slices.Reverse(rev)
			rev = append(rev, events...)
			if !bytes.Equal(encodeRecords(t, stateOf(t, rev).Records()), encodeRecords(t, final)) {
				t.Error("the events in reverse order, each twice, give other records")
			}
			sc.check(t, final, early)
		})
	}
}

func readEvents(t *testing.T, path string) []*ce.Event {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	raws, err := ce.ParseBatch(b)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var out []*ce.Event
	for i, raw := range raws {
		e, err := ce.ParseJSON(raw)
		if err != nil {
			t.Fatalf("%s: event %d: %v", path, i, err)
		}
		out = append(out, e)
	}
	return out
}

func golden(t *testing.T, path string, rs []Record) {
	t.Helper()
	got, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestScenarios -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run TestScenarios -update rewrites it); got:\n%s", path, got)
	}
}

func only(t *testing.T, rs []Record) Record {
	t.Helper()
	if len(rs) != 1 {
		ids := make([]string, len(rs))
		for i, r := range rs {
			ids[i] = r.ID
		}
		t.Fatalf("%d records %v, want 1", len(rs), ids)
	}
	return rs[0]
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
