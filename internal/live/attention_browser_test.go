package live_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/internal/live"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// pendingDeadline is the demo's CM-1 deadline, as docs/live.md and
// docs/controls.md give it: an hour after the first production deployment.
const pendingDeadline = time.Hour

// checkAttention posts, with the page open, a change whose ticket is never
// approved (deployed 20 minutes ago: CM-1 pending, its deadline an hour
// after the deployment) and one whose critical finding is waived by an
// exception (begun 9 days ago, its exception expiring 14 days after that:
// in 5 days), and requires the attention lists, as JSON and on the page
// without a reload, to show them with the deadlines and expiries read
// from the scenarios' own events and the times left counted from those
// (not from the page's queries), beside the scenario's one unmatched
// production deployment.
func checkAttention(t *testing.T, e *env, ctx context.Context, unmatched demo.Scenario, text func(string) string, poll func(string, time.Duration) error) {
	now := time.Now()
	pend := demo.BuildKind(1, "browser", 102, demo.NoTicketApproval, now.Add(-20*time.Minute), time.Second)
	exc := demo.BuildKind(1, "browser", 103, demo.ExceptionGranted, now.Add(-9*24*time.Hour), time.Second)
	wantDeadline := deployedAt(t, pend).Add(pendingDeadline)
	var excID string
	var wantExpires time.Time
	for _, ev := range exc.Events {
		if ev.Type() == "dev.evidencepipeline.exception.granted.v1" {
			var d struct {
				ID        string    `json:"id"`
				ExpiresAt time.Time `json:"expires_at"`
			}
			if err := json.Unmarshal(ev.Data(), &d); err != nil {
				t.Fatal(err)
			}
			excID, wantExpires = d.ID, d.ExpiresAt
		}
	}
	if excID == "" || wantExpires.Sub(now) < 4*24*time.Hour || wantExpires.Sub(now) > 6*24*time.Hour {
		t.Fatalf("the exception scenario's exception %q expires %v, want one in about 5 days", excID, wantExpires)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/live/"), chromedp.WaitVisible(chromedp.CSS(`#posture-body`))); err != nil {
		t.Fatal(err)
	}
	if err := poll(`document.getElementById("conn").dataset.state === "open"`, 10*time.Second); err != nil {
		t.Fatalf("the page's stream did not connect: %v", err)
	}
	e.send(t, pend)
	e.send(t, exc)

	// The JSON, polled until both are there.
	var a live.Attention
	var before, after time.Time
	testenv.Eventually(t, 90*time.Second, func() error {
		a = live.Attention{}
		before = time.Now()
		e.get(t, "/live/api/attention", &a)
		after = time.Now()
		if !a.Available {
			return fmt.Errorf("attention unavailable: %s", a.Error)
		}
		if pendingRow(a, pend.Change) == nil || len(a.Expiring) == 0 {
			return fmt.Errorf("attention %+v has not both the pending CM-1 of %s and exception %s yet", a, pend.Change, excID)
		}
		return nil
	})
	p := pendingRow(a, pend.Change)
	if !p.Deadline.Equal(wantDeadline) || p.NoDeadline {
		t.Errorf("pending CM-1 of %s: deadline %v, want the deployment's + 1 h: %v", pend.Change, p.Deadline, wantDeadline)
	}
	// The time left, counted when the answer was made: between the
	// deadline less the time after and before the request (whole seconds).
	lo, hi := int64(wantDeadline.Sub(after)/time.Second)-1, int64(wantDeadline.Sub(before)/time.Second)+1
	if p.LeftSeconds < lo || p.LeftSeconds > hi {
		t.Errorf("pending CM-1 of %s: %d s left, want %d..%d (deadline %v)", pend.Change, p.LeftSeconds, lo, hi, wantDeadline)
	}
	if len(a.Expiring) != 1 {
		t.Fatalf("expiring exceptions %+v, want only %s", a.Expiring, excID)
	}
	x := a.Expiring[0]
	lo, hi = int64(wantExpires.Sub(after)/time.Second)-1, int64(wantExpires.Sub(before)/time.Second)+1
	if x.ID != excID || x.Control != "CM-5" || !x.ExpiresAt.Equal(wantExpires) || x.LeftSeconds < lo || x.LeftSeconds > hi ||
		len(x.Changes) != 1 || x.Changes[0] != exc.Change {
		t.Errorf("expiring %+v, want %s on CM-5 of %s, expiring %v, %d..%d s left", x, excID, exc.Change, wantExpires, lo, hi)
	}
	if a.UnmatchedTotal != 1 || len(a.Unmatched) != 1 || a.Unmatched[0].Change != unmatched.Change || a.Unmatched[0].Environment != "production" {
		t.Errorf("unmatched %d %+v, want the scenario's %s in production", a.UnmatchedTotal, a.Unmatched, unmatched.Change)
	}

	// On the open page, without a reload.
	prow := fmt.Sprintf(`#attention-pending tr[data-change=%q][data-control="CM-1"]`, pend.Change)
	xrow := fmt.Sprintf(`#attention-expiring tr[data-exception=%q]`, excID)
	urow := fmt.Sprintf(`#attention-unmatched tr[data-change=%q]`, unmatched.Change)
	for _, sel := range []string{prow, xrow, urow} {
		if err := poll(fmt.Sprintf(`document.querySelector(%q) !== null`, sel), 30*time.Second); err != nil {
			t.Fatalf("no %s on the open page: %v", sel, err)
		}
	}
	attr := func(sel, name string) string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).getAttribute(%q)`, sel, name)))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	asof, err := time.Parse(time.RFC3339, attr("#attention", "data-asof"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sel, at string
		want    time.Time
	}{{prow, "data-deadline", wantDeadline}, {xrow, "data-expires", wantExpires}} {
		got, err := time.Parse(time.RFC3339Nano, attr(c.sel, c.at))
		left, lerr := strconv.ParseInt(attr(c.sel, "data-left"), 10, 64)
		// as-of is shown to the second: the left is within a second of it.
		want := int64(c.want.Sub(asof) / time.Second)
		if err != nil || lerr != nil || !got.Equal(c.want) || left < want-1 || left > want+1 {
			t.Errorf("%s: %s %v, left %d s (%v %v); want %v and %d s left as of %v", c.sel, c.at, got, left, err, lerr, c.want, want, asof)
		}
	}
	if l := text(xrow + " .left"); !strings.HasPrefix(l, "4d ") && !strings.HasPrefix(l, "5d ") {
		t.Errorf("exception %s: time left %q, want about 5 days", excID, l)
	}
	if l := text(prow + " .left"); !strings.HasSuffix(l, "m") || strings.Contains(l, "overdue") {
		t.Errorf("pending CM-1: time left %q, want about 40 minutes", l)
	}
}

func pendingRow(a live.Attention, change string) *live.PendingControl {
	for i, p := range a.Pending {
		if p.Change == change && p.Control == "CM-1" {
			return &a.Pending[i]
		}
	}
	return nil
}

// expectAccess is the access subjects the scenarios make, worked out from
// docs/access.md, not by the access stage: every repository deployed to
// production (all of the scenarios', the unmatched deployment's included,
// lower-cased) is judged for the quarter holding now (no access evidence:
// its record begins now); with no protection rule and no access review
// known, AC-1 fails and AC-4 is pending (its deadline is 720 h after the
// quarter's end); AC-2 and AC-3 pass (no push bypassed a rule, no grant).
// (A run across the turn of a quarter would see a second quarter judged.)
func expectAccess(scs []demo.Scenario, now time.Time) []string {
	now = now.UTC()
	quarter := fmt.Sprintf("%d-Q%d", now.Year(), (int(now.Month())-1)/3+1)
	var out []string
	for _, sc := range scs {
		s := "access:" + strings.ToLower(sc.Repository) + "@" + quarter
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// checkAccess: the access findings are counted apart from the changes'
// open violations, as expectAccess says.
func checkAccess(t *testing.T, p live.Posture, want []string, changeFails int) {
	t.Helper()
	if p.OpenViolations != changeFails || p.AccessFindings != len(want) || p.AccessSubjects != len(want) || p.AccessPending != len(want) {
		t.Errorf("open violations %d, access findings %d on %d subjects, %d pending; want %d, and %d on %d, %d",
			p.OpenViolations, p.AccessFindings, p.AccessSubjects, p.AccessPending, changeFails, len(want), len(want), len(want))
	}
	var fails, pend []string
	for _, s := range p.Access {
		switch {
		case s.Control == "AC-1" && s.Status == "fail":
			fails = append(fails, s.Change)
		case s.Control == "AC-4" && s.Status == "pending" && s.Deadline.After(time.Now()):
			pend = append(pend, s.Change)
		default:
			t.Errorf("access finding %s %s %s, want only AC-1 failing and AC-4 pending", s.Change, s.Control, s.Status)
		}
	}
	slices.Sort(fails)
	slices.Sort(pend)
	if !slices.Equal(fails, want) || !slices.Equal(pend, want) {
		t.Errorf("AC-1 failing on %q, AC-4 pending on %q; want both on %q", fails, pend, want)
	}
	for _, v := range append(p.Violations, p.Pending...) {
		if strings.HasPrefix(v.Change, "access:") {
			t.Errorf("the changes' lists hold the access result %s %s", v.Change, v.Control)
		}
	}
}
