package live_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/internal/live"
)

// decided is the verdict each kind of the scenario gets at its production
// deployment, worked out by hand: the demo posts every event of a change
// at once, so the verdict (--verdict-delay 0s) is decided on all of it.
// A compliant change passes; the kinds failing a control now failed it
// then; the unapproved ticket's deadline is measured from the deployment
// (6 days ago) but was judged as of the deployment's arrival, before it
// was known to have passed: pending.
var decided = map[demo.Kind]string{
	demo.Compliant: "pass", demo.FailingTests: "fail", demo.CriticalFinding: "fail", demo.SelfApproved: "fail",
	demo.UnmatchedDeployment: "fail", demo.NoTicketApproval: "pending",
}

// failedAtDeployment is, where it differs from the controls a kind fails
// now (violations), what its deployment verdict failed. The unmatched
// deployment arrives before any deadline of the evidence that may follow
// a deployment has passed: its ticket approval (CM-1), the approver's
// separation (CM-3), the tests (CM-4) and scans (CM-5) are pending then;
// what had to exist before it, a review (CM-2), provenance (CM-6), a
// protected merge (CM-7) and a change (CM-8), fails at once.
// The self-approved change's own approval does not count as a review
// (CM-2's missing evidence: another reviewer may still approve, pending
// until its deadline, since passed), but author and approver being one
// person is a definite CM-3 violation at once (policies/lib.rego decide).
var failedAtDeployment = map[demo.Kind][]string{
	demo.UnmatchedDeployment: {"CM-2", "CM-6", "CM-7", "CM-8"},
	demo.SelfApproved:        {"CM-3"},
}

// deployedAt is the time of a scenario's production deployment, from its
// own events.
func deployedAt(t *testing.T, sc demo.Scenario) time.Time {
	t.Helper()
	for _, ev := range sc.Events {
		if strings.HasSuffix(ev.ID(), "-deploy-production-started") {
			return ev.Time()
		}
	}
	t.Fatalf("scenario %s has no production deployment", sc.Change)
	return time.Time{}
}

// expectTrend is the 30-day trend of the scenarios, computed here from
// the scenarios themselves (their deployment times and the hand-worked
// verdicts and violations), not by the page's queries: one entry per UTC
// day from 29 days ago to today.
func expectTrend(t *testing.T, scs []demo.Scenario, now time.Time) []live.TrendDay {
	t.Helper()
	today := now.UTC().Truncate(24 * time.Hour)
	days := make([]live.TrendDay, 30)
	for i := range days {
		days[i] = live.TrendDay{Day: today.AddDate(0, 0, i-29).Format(time.DateOnly), Share: -1}
	}
	fails := make([]map[string]int, 30)
	for _, sc := range scs {
		at := deployedAt(t, sc).UTC().Truncate(24 * time.Hour)
		i := 29 - int(today.Sub(at)/(24*time.Hour))
		if i < 0 || i >= 30 {
			continue
		}
		v, ok := decided[sc.Kind]
		if !ok {
			t.Fatalf("no hand-worked verdict for kind %s", sc.Kind)
		}
		d := &days[i]
		d.Deployments++
		switch v {
		case "pass":
			d.Passing++
		case "fail":
			d.Failing++
			if fails[i] == nil {
				fails[i] = map[string]int{}
			}
			failed := violations[sc.Kind]
			if f, ok := failedAtDeployment[sc.Kind]; ok {
				failed = f
			}
			for _, c := range failed {
				fails[i][c]++
			}
		case "pending":
			d.Pending++
		}
		d.Share = 100 * float64(d.Passing) / float64(d.Deployments)
	}
	for i, m := range fails {
		for c, n := range m {
			days[i].Failures = append(days[i].Failures, live.ControlCount{Control: c, Count: n})
		}
		slices.SortFunc(days[i].Failures, func(a, b live.ControlCount) int { return strings.Compare(a.Control, b.Control) })
	}
	return days
}

// dayAttrs is a day as the chart's data attributes carry it.
func dayAttrs(d live.TrendDay) string {
	share := ""
	if d.Share >= 0 {
		share = fmt.Sprintf("%.2f", d.Share)
	}
	var fs []string
	for _, f := range d.Failures {
		fs = append(fs, fmt.Sprintf("%s:%d", f.Control, f.Count))
	}
	return fmt.Sprintf("%s %d/%d/%d/%d %s [%s]", d.Day, d.Deployments, d.Passing, d.Failing, d.Pending, share, strings.Join(fs, " "))
}

// checkTrendJSON compares the 30-day trend the API serves with want.
func checkTrendJSON(t *testing.T, e *env, want []live.TrendDay) {
	t.Helper()
	var tr live.Trend
	if code := e.get(t, "/live/api/trend?range=30d", &tr); code != 200 || !tr.Available {
		t.Fatalf("trend: %d %+v", code, tr)
	}
	if len(tr.Days) != len(want) {
		t.Fatalf("trend has %d days, want %d", len(tr.Days), len(want))
	}
	for i := range want {
		if got, w := dayAttrs(tr.Days[i]), dayAttrs(want[i]); got != w {
			t.Errorf("trend day %d: %s, want %s", i, got, w)
		}
	}
	if code := e.get(t, "/live/api/trend?range=week", nil); code != 400 {
		t.Errorf("an unknown range: %d, want 400", code)
	}
	var q live.Trend
	e.get(t, "/live/api/trend?range=quarter", &q)
	if first, _ := time.Parse(time.DateOnly, q.From); first.Day() != 1 || (first.Month()-1)%3 != 0 || q.To != want[29].Day {
		t.Errorf("the quarter's trend runs %s to %s, want the first day of a quarter to %s", q.From, q.To, want[29].Day)
	}
}

// rowsOf is the change ids the open list shows.
func rowsOf(t *testing.T, ctx context.Context) []string {
	t.Helper()
	ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#changes tbody tr")).map(function (r) { return r.dataset.change; })`))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

// checkBreakdowns follows a control's and a service's breakdown row from
// the page to the filtered list and compares the list with the changes of
// scs the row stands for: those failing the control now (the hand-worked
// violations), and those of the service (the scenarios' own service).
func checkBreakdowns(t *testing.T, e *env, ctx context.Context, scs []demo.Scenario) {
	t.Helper()
	for _, c := range []struct{ table, name string }{{"by-control", "CM-4"}, {"by-service", scs[0].Service}} {
		var want []string
		for _, sc := range scs {
			if c.table == "by-control" && slices.Contains(violations[sc.Kind], c.name) || c.table == "by-service" && sc.Service == c.name {
				want = append(want, sc.Change)
			}
		}
		slices.Sort(want)
		link := fmt.Sprintf(`#%s tr[data-name=%q] a`, c.table, c.name)
		if err := chromedp.Do(ctx,
			chromedp.Navigate(e.base+"/live/"),
			chromedp.WaitVisible(chromedp.CSS(link)),
			chromedp.Click(chromedp.CSS(link)),
			chromedp.WaitVisible(chromedp.CSS(`#changes-title`)),
		); err != nil {
			t.Fatalf("follow the %s row %s: %v", c.table, c.name, err)
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		u, _ := url.Parse(loc)
		key := map[string]string{"by-control": "control", "by-service": "service"}[c.table]
		if u.Path != "/live/changes" || u.Query().Get(key) != c.name {
			t.Errorf("the %s row %s links to %s, want /live/changes?%s=%s", c.table, c.name, loc, key, c.name)
		}
		if got := rowsOf(t, ctx); !slices.Equal(got, want) {
			t.Errorf("the %s row %s lists %q, want %q", c.table, c.name, got, want)
		}
		// The export is the same list.
		href, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("csv").getAttribute("href")`))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", e.base+href, nil)
		req.Header.Set("Authorization", "Bearer "+e.auditor)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(resp.Body).ReadAll()
		resp.Body.Close()
		if err != nil || len(recs) == 0 || recs[0][0] != "change" {
			t.Fatalf("CSV of %s: %v %q", href, err, recs)
		}
		var ids []string
		for _, r := range recs[1:] {
			ids = append(ids, r[0])
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Errorf("the CSV export %s lists %q, want %q", href, ids, want)
		}
	}
}

// checkFits opens the page at each width and requires no horizontal
// scroll: the document's scroll width within its client width. A
// screenshot of each is kept.
func checkFits(t *testing.T, e *env, ctx context.Context) {
	t.Helper()
	for _, w := range []int64{1024, 1400} {
		if err := chromedp.Do(ctx,
			chromedp.EmulateViewport(w, 900),
			chromedp.Navigate(e.base+"/live/"),
			chromedp.WaitVisible(chromedp.CSS(`#posture-body`)),
		); err != nil {
			t.Fatal(err)
		}
		dims, err := chromedp.Run(ctx, chromedp.Evaluate[[]int](`[document.documentElement.scrollWidth, document.documentElement.clientWidth]`))
		if err != nil {
			t.Fatal(err)
		}
		if dims[0] > dims[1] {
			t.Errorf("at %d px the page is %d px wide in a %d px window: it scrolls sideways", w, dims[0], dims[1])
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(artifactsDir(t), fmt.Sprintf("live-page-%d.png", w))
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("at %d px: scroll width %d, client width %d; screenshot %s", w, dims[0], dims[1], path)
	}
}
