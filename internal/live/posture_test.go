package live_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/live"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestPostureCountsNewestResults: the open violations and pending controls
// are the changes and controls whose newest control_results row is fail or
// pending, however the history got there, without retired records. Rows
// written straight to a real ClickHouse; worked by hand:
//
//	a CM-1: fail, then pass          → neither (fixed)
//	a CM-2: pass, then fail          → open violation
//	a CM-3: pending, then fail       → open violation
//	b CM-1: pending, then pass       → neither
//	b CM-2: pending                  → pending (deadline +2 h)
//	c CM-1: pass, then pending       → pending (deadline +1 h, sooner)
//	c CM-4: fail, pass, fail         → open violation
//	r CM-1: fail, its record retired → neither
//	d CM-1..CM-8: pass               → neither
//
// So 3 open violations on 2 changes (a, c), 2 pending controls, c's CM-1
// first (the sooner deadline); the newest violation is c CM-4.
func TestPostureCountsNewestResults(t *testing.T) {
	st := testenv.Store(t)
	js := testenv.NATS(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	t0 := now.Add(-3 * time.Hour)
	type res struct {
		change, control, status string
		at                      time.Duration // after t0
		deadline                time.Duration // after now; 0: none
	}
	rs := []res{
		{"a", "CM-1", "fail", 0, 0}, {"a", "CM-1", "pass", time.Minute, 0},
		{"a", "CM-2", "pass", 0, 0}, {"a", "CM-2", "fail", 2 * time.Minute, 0},
		{"a", "CM-3", "pending", 0, time.Hour}, {"a", "CM-3", "fail", 3 * time.Minute, 0},
		{"b", "CM-1", "pending", 0, time.Hour}, {"b", "CM-1", "pass", time.Minute, 0},
		{"b", "CM-2", "pending", time.Minute, 2 * time.Hour},
		{"c", "CM-1", "pass", 0, 0}, {"c", "CM-1", "pending", 4 * time.Minute, time.Hour},
		{"c", "CM-4", "fail", 0, 0}, {"c", "CM-4", "pass", time.Minute, 0}, {"c", "CM-4", "fail", 5 * time.Minute, 0},
		{"r", "CM-1", "fail", 6 * time.Minute, 0},
	}
	for c := 1; c <= 8; c++ {
		rs = append(rs, res{"d", "CM-" + string(rune('0'+c)), "pass", 0, 0})
	}
	var rows []store.ControlResultRow
	for _, r := range rs {
		row := store.ControlResultRow{ChangeID: "x.invalid/o/" + r.change + "@1", ControlID: r.control, ControlTitle: "t", Severity: "high",
			Status: r.status, Reasons: []string{r.status + " " + r.control}, Evidence: []string{}, Repository: "x.invalid/o/" + r.change,
			Environments: []string{"production"}, Services: []string{"s"}, Trigger: "update", EvaluatedNs: t0.Add(r.at).UnixNano()}
		if r.deadline > 0 {
			row.DeadlineNs = now.Add(r.deadline).UnixNano()
		}
		rows = append(rows, row)
	}
	// Shuffled: the newest row is found by its time, not its order.
	slices.Reverse(rows)
	if err := st.InsertControlResults(ctx, rows); err != nil {
		t.Fatal(err)
	}
	var chs []store.ChangeRow
	for i, c := range []string{"a", "b", "c", "d", "r"} {
		chs = append(chs, store.ChangeRow{ChangeID: "x.invalid/o/" + c + "@1", Repository: "x.invalid/o/" + c, Commit: "1", Record: "{}",
			TicketKeys: []string{}, Environments: []string{}, Services: []string{}, Version: uint64(1 + i), UpdatedAt: now})
	}
	retired := chs[4]
	retired.Version, retired.Retired = 100, true
	if err := st.InsertChanges(ctx, append(chs, retired)); err != nil {
		t.Fatal(err)
	}

	h, err := live.New(live.Config{Store: func() *store.Store { return st }, NATS: js.Conn})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, body := do(t, "GET", srv.URL+"/live/api/posture", nil)
	var p live.Posture
	if err := json.Unmarshal([]byte(body), &p); err != nil || resp.StatusCode != 200 || !p.Available {
		t.Fatalf("posture: %d %v %s", resp.StatusCode, err, body)
	}
	if p.OpenViolations != 3 || p.FailingChanges != 2 || p.PendingControls != 2 {
		t.Errorf("open violations %d on %d changes, pending %d; want 3 on 2, 2", p.OpenViolations, p.FailingChanges, p.PendingControls)
	}
	var got []string
	for _, v := range p.Violations {
		got = append(got, v.Change[len("x.invalid/o/"):len("x.invalid/o/")+1]+" "+v.Control+" "+v.Reasons[0])
	}
	if want := []string{"c CM-4 fail CM-4", "a CM-3 fail CM-3", "a CM-2 fail CM-2"}; !slices.Equal(got, want) {
		t.Errorf("violations %q, want %q (newest first)", got, want)
	}
	got = nil
	for _, v := range p.Pending {
		got = append(got, v.Change[len("x.invalid/o/"):len("x.invalid/o/")+1]+" "+v.Control+" "+v.Deadline.Sub(now).String())
	}
	if want := []string{"c CM-1 1h0m0s", "b CM-2 2h0m0s"}; !slices.Equal(got, want) {
		t.Errorf("pending %q, want %q (soonest deadline first)", got, want)
	}
}
