package live_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/internal/live"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/evaluate"
	"github.com/evidencepipeline/evidence/producers/emitter"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// env is an in-process evidenced with access control on, ClickHouse, the
// correlation and evaluation stages: the whole path a verdict takes.
type env struct {
	d        *daemon.Daemon
	base     string
	auditor  string
	producer string
	client   *emitter.Client
}

func startEvidenced(t testing.TB) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{}
	e.auditor, _ = auth.NewToken()
	e.producer, _ = auth.NewToken()
	gate, _ := auth.NewToken()
	tokens := filepath.Join(dir, "tokens")
	lines := fmt.Sprintf("auditor %s test-auditor\nproducer %s test-producer\ngate %s test-gate\n", auth.Hash(e.auditor), auth.Hash(e.producer), auth.Hash(gate))
	if err := os.WriteFile(tokens, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	// The access stage is on (the default): its AC results for the
	// scenario's production repositories are counted apart (expectAccess);
	// judged every 5 s, so a repository becomes production soon after
	// its first production deployment.
	cfg, _, err := config.Parse("evidenced", []string{"--verdict-delay", "0s", "--access-interval", "5s", "--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--clickhouse-url", testenv.DatabaseURL(t), "--tokens-file", tokens, "--archive-flush-interval", "50ms"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	e.d, err = daemon.Start(context.Background(), cfg, nil, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.d.Shutdown(context.Background()) })
	e.base = "http://" + e.d.Addr()
	e.client = emitter.New(e.base, e.producer)
	return e
}

// scenario is the known one: nine changes, four deployed to production
// within the last 24 hours, five 2 to 6 days ago.
var scenario = []struct {
	kind demo.Kind
	ago  time.Duration
}{
	{demo.Compliant, 5 * time.Hour}, {demo.Compliant, 4 * time.Hour}, {demo.FailingTests, 3 * time.Hour}, {demo.UnmatchedDeployment, 2 * time.Hour},
	{demo.Compliant, 72 * time.Hour}, {demo.Compliant, 96 * time.Hour}, {demo.CriticalFinding, 120 * time.Hour},
	{demo.SelfApproved, 48 * time.Hour}, {demo.NoTicketApproval, 144 * time.Hour},
}

func (e *env) send(t *testing.T, sc demo.Scenario) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.client.Send(ctx, sc.Events...); err != nil {
		t.Fatalf("post %s change %s: %v", sc.Kind, sc.Change, err)
	}
}

func (e *env) get(t *testing.T, path string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", e.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+e.auditor)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil {
		_ = json.Unmarshal(b, v)
	}
	return resp.StatusCode
}

// violations are the controls each kind of the scenario fails now,
// worked out by hand from what the demo generator made non-compliant and
// why (not by the engine the daemon runs): the page's "open violations"
// must add up to them.
var violations = map[demo.Kind][]string{
	demo.Compliant: nil,
	// The unit suite failed on the deployed commit.
	demo.FailingTests: {"CM-4"},
	// A critical dependency finding on the deployed commit.
	demo.CriticalFinding: {"CM-5"},
	// The author approves their own pull request: no one else reviewed
	// it (CM-2), and author and reviewer are one person (CM-3).
	demo.SelfApproved: {"CM-2", "CM-3"},
	// The ticket was never approved, and its deadline (deployed 6 days
	// ago) has passed.
	demo.NoTicketApproval: {"CM-1"},
	// A production deployment of a commit no change record holds: it
	// has no ticket, review, tests, scans, provenance, protected merge or
	// change, so it fails every control.
	demo.UnmatchedDeployment: {"CM-1", "CM-2", "CM-3", "CM-4", "CM-5", "CM-6", "CM-7", "CM-8"},
}

// failsNow counts the controls the scenarios fail now, and the changes
// failing at least one, from the hand-worked violations.
func failsNow(t *testing.T, scs []demo.Scenario) (fails, changes int) {
	t.Helper()
	for _, sc := range scs {
		v, ok := violations[sc.Kind]
		if !ok {
			t.Fatalf("no hand-worked violations for kind %s", sc.Kind)
		}
		fails += len(v)
		if len(v) > 0 {
			changes++
		}
	}
	return fails, changes
}

// waitPosture polls the posture JSON until ok accepts it.
func (e *env) waitPosture(t *testing.T, what string, ok func(live.Posture) bool) live.Posture {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var p live.Posture
	for {
		p = live.Posture{}
		e.get(t, "/live/api/posture", &p)
		if p.Available && ok(p) {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("posture never showed %s: %+v", what, p)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "chromium (apt-get install -y chromium)", exec.ErrNotFound)
	return ""
}

func artifactsDir(t *testing.T) string {
	dir := os.Getenv("EVIDENCE_ARTIFACTS_DIR")
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "evidence-artifacts-"); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestBrowserLivePage opens the live page in headless Chromium (logging in
// with ?token=, which becomes a cookie), checks the posture of the known
// scenario, then posts a change with failing tests and requires its
// verdict on the open page, without a reload, within 2 seconds, and the
// open violations to grow by its failing controls. A screenshot is kept.
func TestBrowserLivePage(t *testing.T) {
	exe := chromium(t)
	e := startEvidenced(t)
	now := time.Now()
	var scs []demo.Scenario
	for i, s := range scenario {
		sc := demo.BuildKind(1, "browser", i, s.kind, now.Add(-s.ago), time.Minute)
		e.send(t, sc)
		scs = append(scs, sc)
	}
	p := e.waitPosture(t, "9 judged deployments", func(p live.Posture) bool { return len(p.Windows) == 2 && p.Windows[1].Deployments == 9 })
	wantFails, wantChanges := failsNow(t, scs)
	if wantFails != 13 || wantChanges != 5 {
		t.Fatalf("the scenario fails %d controls on %d changes, want 1+8+1+2+1 = 13 on 5", wantFails, wantChanges)
	}
	p = e.waitPosture(t, fmt.Sprintf("%d open violations", wantFails), func(p live.Posture) bool { return p.OpenViolations == wantFails && p.Unmatched == 1 })
	wantAccess := expectAccess(scs, time.Now())
	p = e.waitPosture(t, fmt.Sprintf("%d access findings", len(wantAccess)), func(p live.Posture) bool {
		return p.AccessFindings == len(wantAccess) && p.AccessPending == len(wantAccess)
	})
	t.Logf("access subjects, worked out: %q", wantAccess)
	checkAccess(t, p, wantAccess, wantFails)
	w24, w7 := p.Windows[0], p.Windows[1]
	if w24.Deployments != 4 || w24.Passing != 2 || w24.ShareText() != "50%" {
		t.Errorf("24 h: %+v, want 2 of 4 passing (50%%)", w24)
	}
	if w7.Deployments != 9 || w7.Passing != 4 || w7.Failing != 4 || w7.Pending != 1 || w7.ShareText() != "44%" {
		t.Errorf("7 d: %+v, want 4 of 9 passing (44%%), 4 failing, 1 pending", w7)
	}
	if p.FailingChanges != wantChanges || p.Unmatched != 1 {
		t.Errorf("failing changes %d, unmatched %d; want %d and 1", p.FailingChanges, p.Unmatched, wantChanges)
	}

	wantTrend := expectTrend(t, scs, time.Now())
	checkTrendJSON(t, e, wantTrend)

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("headless", true), chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1400, 1800))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// Generous: the whole browser session, on a loaded machine.
	ctx, cancelT := context.WithTimeout(ctx, 6*time.Minute)
	defer cancelT()

	text := func(sel string) string {
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(v)
	}
	poll := func(expr string, timeout time.Duration) error {
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(20*time.Millisecond)))
		return err
	}
	if err := chromedp.Do(ctx,
		chromedp.Navigate(e.base+"/?token="+e.auditor),
		chromedp.WaitVisible(chromedp.CSS(`#posture-body`)),
	); err != nil {
		t.Fatalf("open the live page: %v", err)
	}
	if err := poll(`document.getElementById("conn").dataset.state === "open"`, 10*time.Second); err != nil {
		t.Fatalf("the page's stream did not connect: %v (%s)", err, text("#conn"))
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	if strings.Contains(loc, "token=") || !strings.HasSuffix(loc, "/live/") {
		t.Errorf("after login the address is %s, want /live/ without the token", loc)
	}
	share24, share7 := text(`[data-window="24 h"] .share`), text(`[data-window="7 d"] .share`)
	violations, unmatched := text(`#open-violations`), text(`#unmatched`)
	if share24 != "50%" || share7 != "44%" || violations != fmt.Sprint(wantFails) || unmatched != "1" {
		t.Errorf("page shows 24 h %q, 7 d %q, open violations %q, unmatched %q; want 50%%, 44%%, %d, 1", share24, share7, violations, unmatched, wantFails)
	}
	if af, as, ap := text(`#access-findings`), text(`#access-subjects`), text(`#access-pending`); af != fmt.Sprint(len(wantAccess)) || as != af || ap != af {
		t.Errorf("page shows %q access findings on %q repository quarters, %q pending; want %d, %d, %d", af, as, ap, len(wantAccess), len(wantAccess), len(wantAccess))
	}

	// The chart's points, read from the page, are the independent ones.
	chart, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#trend-chart g.day")).map(function (g) {
  var d = g.dataset; return d.day + " " + d.deployments + "/" + d.passing + "/" + d.failing + "/" + d.pending + " " + d.share + " [" + d.failures + "]"; })`))
	if err != nil {
		t.Fatal(err)
	}
	var wantChart []string
	for _, d := range wantTrend {
		wantChart = append(wantChart, dayAttrs(d))
	}
	if !slices.Equal(chart, wantChart) {
		t.Errorf("the chart's days:\n%s\nwant:\n%s", strings.Join(chart, "\n"), strings.Join(wantChart, "\n"))
	}
	if legend := text("#trend-body .legend"); !strings.Contains(legend, "CM-4 failing") || !strings.Contains(legend, "share passing") {
		t.Errorf("the chart's legend %q does not label its colours", legend)
	}

	// A new violation, posted while the page is open.
	sc := demo.BuildKind(1, "browser", 100, demo.FailingTests, time.Now().Add(-time.Minute), time.Second)
	posted := time.Now()
	e.send(t, sc)
	sel := fmt.Sprintf(`#stream li.verdict.st-fail[data-change=%q]`, sc.Change)
	err = poll(fmt.Sprintf(`document.querySelector(%q) !== null`, sel), 2*time.Second)
	seen := time.Since(posted)
	if err != nil {
		t.Fatalf("the new violation did not appear on the open page within 2 s of its post (%v)", err)
	}
	t.Logf("new violation on the open page %v after its post", seen.Round(time.Millisecond))
	if reasons := text(sel + " .reasons"); !strings.Contains(reasons, "CM-4") {
		t.Errorf("the new verdict's reasons %q do not name CM-4", reasons)
	}
	newFails, _ := failsNow(t, []demo.Scenario{sc})
	want := fmt.Sprint(wantFails + newFails)
	if err := poll(fmt.Sprintf(`document.getElementById("open-violations").textContent.trim() === %q`, want), 10*time.Second); err != nil {
		t.Errorf("open violations on the page: %q, want %s without a reload", text("#open-violations"), want)
	}

	// The trend follows: today's point counts the new deployment, failing CM-4.
	today := wantTrend[29]
	today.Deployments++
	today.Failing++
	today.Share = 100 * float64(today.Passing) / float64(today.Deployments)
	cm4 := slices.IndexFunc(today.Failures, func(c live.ControlCount) bool { return c.Control == "CM-4" })
	today.Failures = slices.Clone(today.Failures)
	if cm4 < 0 {
		today.Failures = append(today.Failures, live.ControlCount{Control: "CM-4", Count: 1})
		slices.SortFunc(today.Failures, func(a, b live.ControlCount) int { return strings.Compare(a.Control, b.Control) })
	} else {
		today.Failures[cm4].Count++
	}
	if at := deployedAt(t, sc).UTC().Format(time.DateOnly); at == today.Day {
		if err := poll(fmt.Sprintf(`(function () { var d = document.querySelector('#trend-chart g.day[data-day="%s"]'); return d !== null && d.dataset.deployments === "%d" && d.dataset.failures === %q; })()`,
			today.Day, today.Deployments, strings.Trim(strings.SplitN(dayAttrs(today), "[", 2)[1], "]")), 10*time.Second); err != nil {
			t.Errorf("the trend's %s did not follow the new verdict without a reload (want %s)", today.Day, dayAttrs(today))
		}
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactsDir(t), "live-page.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)

	// The change trace, reached by the stream's link.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(sel+" a")),
		chromedp.WaitVisible(chromedp.CSS(`#controls`)),
	); err != nil {
		t.Fatalf("change trace: %v", err)
	}
	title, controls := text("#change-title"), text("#controls")
	// Back on the page, the latest changes list the new one with its status.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/live/changes?q="+url.QueryEscape(sc.Ticket))); err != nil {
		t.Fatal(err)
	}
	if row := text(fmt.Sprintf(`#changes tr[data-change=%q]`, sc.Change)); !strings.Contains(row, "fail") || !strings.Contains(row, "CM-4") || !strings.Contains(row, sc.Ticket) {
		t.Errorf("search for %s: row %q, want the change, failing CM-4", sc.Ticket, row)
	}
	if !strings.Contains(title, sc.Ticket) || !strings.Contains(controls, "CM-4") || !strings.Contains(controls, "fail") {
		t.Errorf("trace of %s: title %q, controls %q", sc.Change, title, controls)
	}

	checkBreakdowns(t, e, ctx, append(scs, sc))
	checkFits(t, e, ctx)

	lateEvidence(t, e, ctx, text, poll)
	checkAttention(t, e, ctx, scs[3], text, poll)
}

// lateEvidence posts, with the page open, a compliant change without its
// ticket approval, waits for its production deployment's verdict, then
// posts the approval: late evidence, shown on the page and in the stream.
//
// Worked by hand: with --verdict-delay 0s the verdict is decided on the
// evidence that had arrived by the deployment's own arrival. The ticket
// was not approved then, and the approval deadline (after the deployment)
// had not passed: the decided verdict is pending, on CM-1 alone (the
// change is otherwise compliant). The approval, dated before the
// deployment, arrives afterwards, with the deployment's finished event
// (held back so that it arrives after the cutoff for certain, not a
// microsecond after its started event): judged again as of the
// deployment, CM-1 passes; the finish changes nothing. So: one verdict
// with late evidence (the changes before were each posted whole, and
// what arrived after their cutoffs changes nothing), its control CM-1
// pending→pass, two events after the cutoff (the finish and the
// approval), and the verdict stays pending.
func lateEvidence(t *testing.T, e *env, ctx context.Context, text func(string) string, poll func(string, time.Duration) error) {
	sc := demo.BuildKind(1, "browser", 101, demo.Compliant, time.Now().Add(-2*time.Minute), time.Second)
	var late, rest []event.Event
	for _, ev := range sc.Events {
		if ev.Type() == "dev.evidencepipeline.ticket.approved.v1" || strings.HasSuffix(ev.ID(), "-deploy-production-finished") {
			late = append(late, ev)
		} else {
			rest = append(rest, ev)
		}
	}
	if len(late) != 2 {
		t.Fatalf("the compliant scenario has %d ticket approvals and production finishes, want 2", len(late))
	}
	var wantEvents []string
	for _, ev := range late {
		wantEvents = append(wantEvents, ev.Source()+" "+ev.ID())
	}
	slices.Sort(wantEvents)
	if err := chromedp.Do(ctx, chromedp.Navigate(e.base+"/live/"), chromedp.WaitVisible(chromedp.CSS(`#posture-body`))); err != nil {
		t.Fatal(err)
	}
	if err := poll(`document.getElementById("conn").dataset.state === "open"`, 10*time.Second); err != nil {
		t.Fatalf("the page's stream did not connect: %v", err)
	}
	if got := text("#late-verdicts"); got != "0" {
		t.Errorf("verdicts with late evidence before: %q, want 0", got)
	}
	before := e.waitPosture(t, "the posture", func(live.Posture) bool { return true }).Windows[0].Pending
	e.send(t, demo.Scenario{Kind: sc.Kind, Change: sc.Change, Events: rest})
	e.waitPosture(t, "the new deployment's pending verdict", func(p live.Posture) bool { return p.Windows[0].Pending == before+1 })
	e.send(t, demo.Scenario{Kind: sc.Kind, Change: sc.Change, Events: late})

	p := e.waitPosture(t, "one verdict with late evidence", func(p live.Posture) bool { return p.LateVerdicts > 0 })
	if p.LateVerdicts != 1 || len(p.Late) != 1 {
		t.Fatalf("late verdicts %d %+v, want 1", p.LateVerdicts, p.Late)
	}
	l := p.Late[0]
	if l.Change != sc.Change || l.Environment != "production" || l.Verdict != "pending" || l.Events != 2 ||
		strings.Join(l.Changes(), ",") != "CM-1 pending→pass" || l.NotedAt.IsZero() {
		t.Errorf("late verdict %+v, want %s production, decided pending, CM-1 pending→pass, 2 events", l, sc.Change)
	}
	if p.Windows[0].Pending != before+1 {
		t.Errorf("24 h pending %d, want %d: the decided verdict stands", p.Windows[0].Pending, before+1)
	}

	// On the open page, without a reload: the card, the panel, and the
	// note in the stream (from the verdict event of the SSE feed).
	if err := poll(`document.getElementById("late-verdicts").textContent.trim() === "1"`, 10*time.Second); err != nil {
		t.Errorf("verdicts with late evidence on the page: %q, want 1", text("#late-verdicts"))
	}
	row := fmt.Sprintf(`#late tr[data-change=%q]`, sc.Change)
	if err := poll(fmt.Sprintf(`document.querySelector(%q) !== null`, row), 10*time.Second); err != nil {
		t.Fatalf("no row for %s in the late evidence panel: %v", sc.Change, err)
	}
	if c, n, r := text(row+" .late-controls"), text(row+" .late-events"), text(row); c != "CM-1 pending→pass" || n != "2" || !strings.Contains(r, "pending") {
		t.Errorf("late evidence row: controls %q, events %q (%q); want CM-1 pending→pass, 2, decided pending", c, n, r)
	}
	streamNote := fmt.Sprintf(`#stream li.verdict[data-change=%q] .late`, sc.Change)
	if err := poll(fmt.Sprintf(`document.querySelector(%q) !== null`, streamNote), 10*time.Second); err != nil {
		t.Fatalf("no late evidence note in the stream: %v", err)
	}
	if c, n := text(streamNote+" .late-controls"), text(streamNote+" .late-events"); c != "CM-1 pending→pass" || n != "2" {
		t.Errorf("stream note: controls %q, events %q; want CM-1 pending→pass, 2", c, n)
	}

	// The SSE feed's companion event, replayed from the start.
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(sctx, "GET", e.base+"/live/events?after=0", nil)
	req.Header.Set("Authorization", "Bearer "+e.auditor)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sr := bufio.NewScanner(resp.Body)
	sr.Buffer(make([]byte, 1<<20), 1<<22)
	var note struct {
		Change string              `json:"change"`
		Late   []evaluate.LateNote `json:"late"`
	}
	for isLate := false; sr.Scan(); {
		line := sr.Text()
		if line == "event: late" {
			isLate = true
			continue
		}
		if isLate && strings.HasPrefix(line, "data: ") {
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &note); err != nil {
				t.Fatal(err)
			}
			break
		}
		isLate = isLate && line != ""
	}
	if note.Change != sc.Change || len(note.Late) != 1 || note.Late[0].Verdict != evaluate.Pending || len(note.Late[0].Controls) != 1 ||
		note.Late[0].Controls[0].Control != "CM-1" || note.Late[0].Controls[0].Decided != evaluate.Pending ||
		note.Late[0].Controls[0].Late != evaluate.Pass || !slices.Equal(note.Late[0].Events, wantEvents) {
		t.Errorf("SSE late event %+v, want %s: CM-1 pending -> pass, events %q", note, sc.Change, wantEvents)
	}

	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(artifactsDir(t), "live-page-late.png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}
