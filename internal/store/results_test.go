package store_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// The verdict in force is the newest control_results row per change and
// control; deployment_verdicts folds a verdict written twice.
func TestControlResultsAndVerdicts(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	rows := []store.ControlResultRow{
		{ChangeID: "r@1", ControlID: "CM-1", ControlTitle: "Approved ticket", Severity: "high", Status: "pending",
			Reasons: []string{"no approval yet"}, DeadlineNs: t0 + int64(time.Hour), Repository: "r", Environments: []string{"production"},
			RecordHash: "h1", BundleHash: "b", Trigger: "update", EvaluatedNs: t0},
		{ChangeID: "r@1", ControlID: "CM-1", ControlTitle: "Approved ticket", Severity: "high", Status: "pass",
			Evidence: []string{"jira 1"}, Repository: "r", RecordHash: "h2", BundleHash: "b", Trigger: "update", EvaluatedNs: t0 + 1},
		{ChangeID: "r@1", ControlID: "CM-2", ControlTitle: "Review", Severity: "high", Status: "fail",
			Reasons: []string{"self-approved"}, Repository: "r", RecordHash: "h1", BundleHash: "b", Trigger: "update", EvaluatedNs: t0},
	}
	if err := st.InsertControlResults(ctx, rows); err != nil {
		t.Fatal(err)
	}
	type latest struct {
		Change, Control, Status string
		Deadline                int64
	}
	var got []latest
	r, err := st.Conn().Query(ctx, `SELECT change_id, control_id, argMax(status, evaluated_at_ns), argMax(deadline_ns, evaluated_at_ns)
		FROM control_results GROUP BY change_id, control_id ORDER BY change_id, control_id`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var l latest
		if err := r.Scan(&l.Change, &l.Control, &l.Status, &l.Deadline); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	r.Close()
	want := []latest{{"r@1", "CM-1", "pass", 0}, {"r@1", "CM-2", "fail", 0}}
	if !slices.Equal(got, want) {
		t.Errorf("verdicts in force = %v, want %v", got, want)
	}

	v := store.DeploymentVerdictRow{Environment: "production", Service: "payments", DeploymentKey: "id:7", ChangeID: "r@1",
		Repository: "r", DeployedNs: t0, Verdict: "fail", Failing: []string{"CM-2"}, Results: "[]", RecordHash: "h1", BundleHash: "b",
		DecidedAt: time.Unix(0, t0)}
	for range 2 {
		if err := st.InsertDeploymentVerdicts(ctx, []store.DeploymentVerdictRow{v}); err != nil {
			t.Fatal(err)
		}
	}
	var n uint64
	var verdict string
	var failing []string
	if err := st.Conn().QueryRow(ctx, `SELECT count(), any(verdict), any(failing) FROM deployment_verdicts FINAL`).Scan(&n, &verdict, &failing); err != nil {
		t.Fatal(err)
	}
	if n != 1 || verdict != "fail" || !slices.Equal(failing, []string{"CM-2"}) {
		t.Errorf("deployment_verdicts FINAL: %d rows, verdict %q failing %v; want 1 row, fail, [CM-2]", n, verdict, failing)
	}
}

// deployments_with_verdict shows the newest version of each deployment
// beside its verdict; a deployment without one has an empty verdict.
func TestDeploymentsWithVerdict(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	dep := store.DeploymentRow{Environment: "production", Service: "payments", DeploymentKey: "id:7", ChangeID: "unmatched:production/payments/x",
		Unmatched: true, StartedNs: t0, Version: 1, Deployment: "{}"}
	linked := dep
	linked.ChangeID, linked.Unmatched, linked.Version = "r@1", false, 2<<62
	staging := dep
	staging.Environment, staging.DeploymentKey = "staging", "id:6"
	if err := st.InsertDeployments(ctx, []store.DeploymentRow{linked, staging}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertDeployments(ctx, []store.DeploymentRow{dep}); err != nil { // an older version, written late
		t.Fatal(err)
	}
	v := store.DeploymentVerdictRow{Environment: "production", Service: "payments", DeploymentKey: "id:7", ChangeID: "unmatched:production/payments/x",
		DeployedNs: t0, Verdict: "fail", Failing: []string{"CM-8"}, Results: "[]", DecidedAt: time.Unix(0, t0)}
	if err := st.InsertDeploymentVerdicts(ctx, []store.DeploymentVerdictRow{v}); err != nil {
		t.Fatal(err)
	}
	rows, err := st.Conn().Query(ctx, `SELECT environment, change_id, verdict, failing, verdict_change_id FROM deployments_with_verdict ORDER BY environment`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var env, change, verdict, vchange string
		var failing []string
		if err := rows.Scan(&env, &change, &verdict, &failing, &vchange); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %q %v %q", env, change, verdict, failing, vchange))
	}
	want := []string{
		`production r@1 "fail" [CM-8] "unmatched:production/payments/x"`,
		`staging unmatched:production/payments/x "" [] ""`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("deployments_with_verdict:\n%q\nwant\n%q", got, want)
	}
}
