package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/cli"
	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

// replayReport is the part of evidence policy replay's JSON read here.
type replayReport struct {
	Changes, Differing int
	Verdicts           int
	VerdictsDiffering  int    `json:"verdicts_differing"`
	VerdictDelay       string `json:"verdict_delay"`
	VerdictDiffs       []struct {
		Change, Recorded, Replayed string
		DeploymentKey              string `json:"deployment_key"`
		RecordMatches              bool   `json:"record_matches"`
		Note                       string
		Controls                   []struct{ Control, Recorded, Replayed string }
	} `json:"verdict_diffs"`
}

// TestPolicyReplayAgreesWithBackfill posts a 30-day-old history at full
// speed to a real evidenced (--verdict-delay 0s: only what arrived with a
// deployment counts for its verdict), waits for every production
// deployment's verdict, then replays the period with the same bundle:
// every verdict is replayed as the evaluation stage decided it (the record
// as of the deployment's arrival, rebuilt from the archive), and none
// differs from deployment_verdicts. Teeth: replayed with another verdict
// delay, with another bundle, and after a verdict row is tampered with,
// exactly the hand-worked deployments differ.
func TestPolicyReplayAgreesWithBackfill(t *testing.T) {
	ctx := context.Background()
	chURL := testenv.DatabaseURL(t)
	d := evidenced.Start(t, chURL, "--verdict-delay", "0s", "--archive-flush-interval", "50ms")
	client := emitter.New("http://"+d.Addr(), "")

	// The history: three compliant changes and one of each violation
	// kind, an hour apart, 30 days ago; each change's events a minute
	// apart, posted at once, one change after the other.
	start := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Hour)
	kinds := append([]demo.Kind{demo.Compliant, demo.Compliant, demo.Compliant}, demo.Kinds...)
	byKind := map[demo.Kind][]demo.Scenario{}
	for i, k := range kinds {
		sc := demo.BuildKind(7, "replay", i, k, start.Add(time.Duration(i)*time.Hour), time.Minute)
		if _, err := client.Send(ctx, sc.Events...); err != nil {
			t.Fatalf("post %s: %v", k, err)
		}
		byKind[k] = append(byKind[k], sc)
	}
	st := testenv.StoreAt(t, chURL)
	count := func(q string) uint64 {
		var n uint64
		if err := st.Conn().QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// Each change has one production deployment: one verdict each; and
	// the archive has every event.
	events := 0
	for _, scs := range byKind {
		for _, sc := range scs {
			events += len(sc.Events)
		}
	}
	testenv.Eventually(t, 90*time.Second, func() error {
		if n := count("SELECT count() FROM deployment_verdicts FINAL"); n != uint64(len(kinds)) {
			return fmt.Errorf("%d deployment verdicts, want %d", n, len(kinds))
		}
		if n := count("SELECT count() FROM events"); n != uint64(events) {
			return fmt.Errorf("%d archived events, want %d", n, events)
		}
		// The change records in ClickHouse are the final ones: each holds
		// every event of its change.
		for _, scs := range byKind {
			for _, sc := range scs {
				var rec string
				if err := st.Conn().QueryRow(ctx, "SELECT record FROM changes FINAL WHERE change_id = ?", sc.Change).Scan(&rec); err != nil {
					return fmt.Errorf("change %s: %v", sc.Change, err)
				}
				for _, e := range sc.Events {
					if !strings.Contains(rec, e.ID()) {
						return fmt.Errorf("change %s has no event %s yet", sc.Change, e.ID())
					}
				}
			}
		}
		return nil
	})

	empty := t.TempDir()
	vars := map[string]string{"EVIDENCE_CLICKHOUSE_URL": chURL}
	from, to := start.Add(-time.Hour).Format(time.RFC3339), start.Add(time.Duration(len(kinds)+1)*time.Hour).Format(time.RFC3339)
	replay := func(policies, delay string) (replayReport, result) {
		t.Helper()
		r := run(t, vars, "", "policy", "replay", "--policies", policies, "--from", from, "--to", to, "--verdict-delay", delay, "--format", "json")
		var rep replayReport
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("replay json: %v\n%s\n%s", err, r.stdout, r.stderr)
		}
		return rep, r
	}

	// The same bundle and delay: every verdict agrees.
	rep, r := replay(empty, "0s")
	if rep.Verdicts != len(kinds) || rep.VerdictsDiffering != 0 || rep.Differing != 0 || r.code != cli.ExitOK {
		t.Fatalf("replay of the backfill with the recorded bundle: %d verdicts, %d differ, %d changes differ, exit %d; want %d, 0, 0, 0\n%s",
			rep.Verdicts, rep.VerdictsDiffering, rep.Differing, r.code, len(kinds), r.stdout)
	}
	text := run(t, vars, "", "policy", "replay", "--policies", empty, "--from", from, "--to", to, "--verdict-delay", "0s")
	if want := fmt.Sprintf("%d deployment verdicts replayed (verdict delay 0s), 0 would differ\n", len(kinds)); !strings.Contains(text.stdout, want) {
		t.Errorf("replay text: want %q in\n%s", want, text.stdout)
	}

	// Another delay: worked by hand, an hour lets in what arrived after
	// the deployments (their finish, changing nothing, and the two
	// approvals given after the deployment): the normal change approved
	// after it goes from pending to fail (approved too late), the
	// emergency change approved within its window from pending to pass.
	diffs := func(rep replayReport) []string {
		var out []string
		for _, d := range rep.VerdictDiffs {
			var cs []string
			for _, c := range d.Controls {
				cs = append(cs, c.Control+" "+c.Recorded+"->"+c.Replayed)
			}
			out = append(out, fmt.Sprintf("%s %s->%s %s", d.Change, d.Recorded, d.Replayed, strings.Join(cs, ",")))
		}
		slices.Sort(out)
		return out
	}
	rep, r = replay(empty, "1h")
	want := []string{
		byKind[demo.ApprovedAfterDeploy][0].Change + " pending->fail CM-1 pending->fail",
		byKind[demo.EmergencyRetroactive][0].Change + " pending->pass CM-1 pending->pass",
	}
	slices.Sort(want)
	if got := diffs(rep); !slices.Equal(got, want) || r.code != cli.ExitFail {
		t.Errorf("replay with a 1h delay: %q (exit %d), want %q (exit 1)", got, r.code, want)
	}

	// Another bundle: a custom control requiring two approving reviews
	// fails every change (one review each) and was never recorded.
	rep, _ = replay("../replay/testdata/v2", "0s")
	if rep.Verdicts != len(kinds) || rep.VerdictsDiffering != len(kinds) {
		t.Errorf("replay with another bundle: %d of %d verdicts differ, want all", rep.VerdictsDiffering, rep.Verdicts)
	}

	// A tampered row: the compliant first change's verdict rewritten as a
	// fail of CM-4 (a later row replaces it under FINAL).
	target := byKind[demo.Compliant][0].Change
	rows, err := st.DeploymentVerdictsOf(ctx, target)
	if err != nil || len(rows) != 1 {
		t.Fatalf("verdicts of %s: %v %d", target, err, len(rows))
	}
	row := rows[0]
	var results []map[string]any
	if err := json.Unmarshal([]byte(row.Results), &results); err != nil {
		t.Fatal(err)
	}
	for _, res := range results {
		if res["control"] == "CM-4" {
			res["status"] = "fail"
		}
	}
	b, _ := json.Marshal(results)
	row.Results, row.Verdict, row.Failing = string(b), "fail", []string{"CM-4"}
	if err := st.InsertDeploymentVerdicts(ctx, []store.DeploymentVerdictRow{row}); err != nil {
		t.Fatal(err)
	}
	rep, r = replay(empty, "0s")
	if got, want := diffs(rep), []string{target + " fail->pass CM-4 fail->pass"}; !slices.Equal(got, want) || r.code != cli.ExitFail {
		t.Errorf("replay after tampering: %q (exit %d), want %q (exit 1)", got, r.code, want)
	}

	// A verdict whose change has no record in changes (as right after a
	// backfill, before the correlation stage has written it) is not
	// replayed on a guess: it differs, and the note says why.
	ghost := row
	ghost.ChangeID, ghost.DeploymentKey = "github.com/acme/ghost@"+strings.Repeat("0", 40), "id:ghost-1"
	if err := st.InsertDeploymentVerdicts(ctx, []store.DeploymentVerdictRow{ghost}); err != nil {
		t.Fatal(err)
	}
	rep, _ = replay(empty, "0s")
	var note string
	for _, d := range rep.VerdictDiffs {
		if d.Change == ghost.ChangeID {
			note = d.Note
		}
	}
	if rep.Verdicts != len(kinds)+1 || !strings.Contains(note, "changes holds no current record of this change") {
		t.Errorf("replay of a verdict without a record: %d verdicts, note %q; want %d and the note", rep.Verdicts, note, len(kinds)+1)
	}
}
