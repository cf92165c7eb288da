package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	stageRepo   = "github.com/acme/payments"
	stageChange = "github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"
)

// stageFacts are the facts of the gate's compliant change
// (internal/cli/testdata/gate), deployed to production at 2025-03-04
// 07:02 by the pipeline, split into the ticket approval and the rest.
func stageFacts(t testing.TB) (base, approval []correlate.Fact) {
	base, approval, deploy := stageEvidence(t)
	return append(base, deploy...), approval
}

// stageEvidence is stageFacts with the deployment's facts apart.
func stageEvidence(t testing.TB) (base, approval, deploy []correlate.Fact) {
	t.Helper()
	b, a, d := stageEvents(t)
	return correlatetest.Facts(t, b...), correlatetest.Facts(t, a...), correlatetest.Facts(t, d...)
}

// stageEvents are the events of stageEvidence: the ticket approval, the
// deployment and the rest.
func stageEvents(t testing.TB) (base, approval, deploy []*ce.Event) {
	t.Helper()
	events := correlatetest.Events(t, "../../internal/cli/testdata/gate/compliant.events.json", 0)
	deployEvent := `{"specversion":"1.0","id":"deploy-118","source":"/ci/github-actions/acme/payments","type":"dev.evidencepipeline.deployment.started.v1",
		"time":"2025-03-04T07:02:00Z","datacontenttype":"application/json","data":{"deployment_id":"payments-production-118","environment":"production",
		"service":"payments","digest":"sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899","repository":"github.com/acme/payments","commit":"c0ffee1234567890abcdef1234567890abcdef12","run_id":"9876543299",
		"system":"github-actions","deployer":{"login":"github-actions[bot]","type":"service"},"ticket_keys":["PAY-123"],"started_at":"2025-03-04T07:02:00Z"}}`
	deploy1, err := ce.ParseJSON([]byte(deployEvent))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range append(events, deploy1) {
		switch e.Type {
		case "dev.evidencepipeline.ticket.approved.v1":
			approval = append(approval, e)
		case "dev.evidencepipeline.deployment.started.v1":
			deploy = append(deploy, e)
		default:
			base = append(base, e)
		}
	}
	return base, approval, deploy
}

// runStage runs a stage over reader, writing to st, until the returned
// stop is called.
func runStage(t *testing.T, js jetstream.JetStream, eng *Engine, reader correlate.Reader, st *store.Store, cfg StageConfig) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s, err := NewStage(ctx, js, eng, reader, StoreWriter{Get: func() *store.Store { return st }}, cfg, nil, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time   { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time)  { c.mu.Lock(); c.t = t; c.mu.Unlock() }
func at(s string) time.Time       { t, _ := time.Parse(time.RFC3339, s); return t }
func (v Verdict) summary() string { return fmt.Sprintf("%s %s %v", v.Change, v.Status, v.Changed) }

type resultRow struct {
	Control, Status, Trigger string
	Deadline                 int64
	Evaluated                int64
}

func resultRows(t *testing.T, st *store.Store) []resultRow {
	t.Helper()
	rows, err := st.Conn().Query(context.Background(), `SELECT control_id, status, trigger, deadline_ns, evaluated_at_ns
		FROM control_results WHERE change_id = ? ORDER BY control_id, evaluated_at_ns`, stageChange)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []resultRow
	for rows.Next() {
		var r resultRow
		if err := rows.Scan(&r.Control, &r.Status, &r.Trigger, &r.Deadline, &r.Evaluated); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// changeRows counts the control_results rows of one change record.
func changeRows(t *testing.T, st *store.Store, change string) uint64 {
	t.Helper()
	var n uint64
	if err := st.Conn().QueryRow(context.Background(), `SELECT count() FROM control_results WHERE change_id = ?`, change).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func history(rows []resultRow, control string) []string {
	var out []string
	for _, r := range rows {
		if r.Control == control {
			out = append(out, r.Status+"/"+r.Trigger)
		}
	}
	return out
}

// TestStage follows a change through the evaluation stage: deployed to
// production without its ticket approval (CM-1 pending, the deployment's
// verdict pending), judged again unchanged (no new rows), its deadline
// passing across a restart of the stage (CM-1 fails, trigger deadline),
// then the approval arriving (CM-1 passes). The deployment's verdict,
// decided at the first evaluation, never changes.
func TestStage(t *testing.T) {
	ctx := context.Background()
	js, st, kv := stageEnv(t)
	base, approval := stageFacts(t)
	if _, err := kv.Merge(ctx, base); err != nil {
		t.Fatal(err)
	}
	eng := engine(t)
	clk := &clock{t: at("2025-03-04T07:05:00Z")}
	var mu sync.Mutex
	var published []Verdict
	start := func() (stop func()) {
		return runStage(t, js.JS, eng, correlate.KVReader{KV: kv}, st,
			StageConfig{Now: clk.Now, Publish: func(v Verdict) { mu.Lock(); published = append(published, v); mu.Unlock() }})
	}
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	enqueue := func() {
		t.Helper()
		if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
			t.Fatal(err)
		}
	}
	// queued is the queue entry's task, if any.
	queued := func() (task, bool) {
		e, err := queue.Get(ctx, queueKey(stageChange))
		if err != nil {
			return task{}, false
		}
		var tk task
		_ = json.Unmarshal(e.Value(), &tk)
		return tk, true
	}

	stop := start()
	enqueue()
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := len(resultRows(t, st)); n != 8 {
			return fmt.Errorf("%d control results, want 8", n)
		}
		if tk, ok := queued(); !ok || tk.Trigger != TriggerDeadline {
			return fmt.Errorf("queue entry %+v (present %v), want the CM-1 deadline", tk, ok)
		}
		return nil
	})
	rows := resultRows(t, st)
	for _, r := range rows {
		want := "pass"
		if r.Control == "CM-1" {
			want = "pending"
		}
		if r.Status != want || r.Trigger != TriggerUpdate {
			t.Errorf("%s: %s/%s, want %s/update", r.Control, r.Status, r.Trigger, want)
		}
	}
	deadline := at("2025-03-04T08:02:00Z")
	if tk, _ := queued(); !tk.Due.Equal(deadline) {
		t.Errorf("re-evaluation due %s, want the CM-1 deadline %s", tk.Due, deadline)
	}
	verdicts := func() []store.DeploymentVerdictRow {
		r, err := st.Conn().Query(ctx, `SELECT environment, service, deployment_key, change_id, verdict, failing, pending, deployed_at_ns, deployer
			FROM deployment_verdicts FINAL ORDER BY deployment_key`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var out []store.DeploymentVerdictRow
		for r.Next() {
			var v store.DeploymentVerdictRow
			if err := r.Scan(&v.Environment, &v.Service, &v.DeploymentKey, &v.ChangeID, &v.Verdict, &v.Failing, &v.Pending, &v.DeployedNs, &v.Deployer); err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	wantVerdict := func() {
		t.Helper()
		vs := verdicts()
		if len(vs) != 1 {
			t.Fatalf("deployment verdicts: %+v, want one", vs)
		}
		v := vs[0]
		if v.Environment != "production" || v.DeploymentKey != "id:payments-production-118" || v.ChangeID != stageChange ||
			v.Verdict != "pending" || !slices.Equal(v.Pending, []string{"CM-1"}) || len(v.Failing) != 0 ||
			v.DeployedNs != at("2025-03-04T07:02:00Z").UnixNano() || v.Deployer != "github-actions[bot]" {
			t.Errorf("deployment verdict %+v, want pending on CM-1 as of 07:02 for %s", v, stageChange)
		}
	}
	wantVerdict()
	mu.Lock()
	if len(published) != 1 || published[0].Status != Pending || len(published[0].Changed) != 8 || len(published[0].Deployments) != 1 {
		var got []string
		for _, v := range published {
			got = append(got, v.summary())
		}
		t.Errorf("published %q; want one, pending, 8 changed, 1 deployment decided", got)
	}
	mu.Unlock()

	// Judged again with nothing new: no row, nothing announced.
	enqueue()
	testenv.Eventually(t, 30*time.Second, func() error {
		if tk, ok := queued(); !ok || tk.Trigger != TriggerDeadline {
			return fmt.Errorf("queue entry %+v (present %v), want the deadline back", tk, ok)
		}
		return nil
	})
	if n := len(resultRows(t, st)); n != 8 {
		t.Errorf("%d control results after an unchanged evaluation, want still 8", n)
	}
	stop()

	// The deadline passes while the stage is down; at restart it is due.
	clk.Set(at("2025-03-04T08:03:00Z"))
	stop = start()
	testenv.Eventually(t, 30*time.Second, func() error {
		if h := history(resultRows(t, st), "CM-1"); !slices.Equal(h, []string{"pending/update", "fail/deadline"}) {
			return fmt.Errorf("CM-1 history %v", h)
		}
		if _, ok := queued(); ok {
			return fmt.Errorf("queue entry still present")
		}
		return nil
	})

	// The approval arrives late: CM-1 passes, the deployment's verdict stays.
	if _, err := kv.Merge(ctx, approval); err != nil {
		t.Fatal(err)
	}
	enqueue()
	testenv.Eventually(t, 30*time.Second, func() error {
		if h := history(resultRows(t, st), "CM-1"); !slices.Equal(h, []string{"pending/update", "fail/deadline", "pass/update"}) {
			return fmt.Errorf("CM-1 history %v", h)
		}
		return nil
	})
	stop()
	// CM-3 names the ticket approver once there is one: a new row, still
	// a pass. The others did not change.
	for _, c := range []string{"CM-2", "CM-4", "CM-5", "CM-6", "CM-7", "CM-8"} {
		if h := history(resultRows(t, st), c); !slices.Equal(h, []string{"pass/update"}) {
			t.Errorf("%s history %v, want one pass", c, h)
		}
	}
	if h := history(resultRows(t, st), "CM-3"); !slices.Equal(h, []string{"pass/update", "pass/update"}) {
		t.Errorf("CM-3 history %v, want two passes (the approver is named in the second)", h)
	}
	wantVerdict()
	mu.Lock()
	defer mu.Unlock()
	var got []string
	for _, v := range published {
		got = append(got, v.summary())
	}
	want := []string{
		stageChange + " pending [CM-1 CM-2 CM-3 CM-4 CM-5 CM-6 CM-7 CM-8]",
		stageChange + " fail [CM-1]",
		stageChange + " pass [CM-1 CM-3]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("published:\n%q\nwant\n%q", got, want)
	}
}

// TestStageNewBundle: evidenced started with another policy bundle judges
// every record it judged before again, without new evidence: each
// control's verdict is written under the new bundle (trigger bundle), the
// new control included; the deployment's verdict stays as decided.
func TestStageNewBundle(t *testing.T) {
	ctx := context.Background()
	js, st, kv := stageEnv(t)
	base, approval := stageFacts(t)
	if _, err := kv.Merge(ctx, append(base, approval...)); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: at("2025-03-04T07:05:00Z")}
	run := func(eng *Engine) (stop func(), started <-chan struct{}) {
		ch := make(chan struct{})
		return runStage(t, js.JS, eng, correlate.KVReader{KV: kv}, st, StageConfig{Now: clk.Now, Started: func() { close(ch) }}), ch
	}
	byTrigger := func() map[string]int {
		out := map[string]int{}
		for _, r := range resultRows(t, st) {
			out[r.Trigger+"/"+r.Status]++
		}
		return out
	}
	builtin := engine(t)
	stop, _ := run(builtin)
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if got := byTrigger(); got["update/pass"] != 8 || len(got) != 1 {
			return fmt.Errorf("results %v, want 8 update/pass", got)
		}
		return nil
	})
	stop()
	// The same bundle again: nothing is judged again. A sentinel record
	// enqueued once the restarted stage watches the queue is written no
	// earlier than anything the restart queued for judging again: once
	// its results are in, so would be any re-judged ones.
	sentinelFacts, sentinel := genChanges(t, 0, 1)
	if _, err := kv.Merge(ctx, sentinelFacts); err != nil {
		t.Fatal(err)
	}
	stop, started := run(builtin)
	select {
	case <-started:
	case <-time.After(30 * time.Second):
		t.Fatal("the restarted stage did not start watching the queue")
	}
	if err := Enqueue(ctx, queue, sentinel, clk.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if n := changeRows(t, st, sentinel[0]); n == 0 {
			return fmt.Errorf("no results yet for the sentinel %s", sentinel[0])
		}
		return nil
	})
	stop()
	if got := byTrigger(); len(got) != 1 || got["update/pass"] != 8 {
		t.Fatalf("a restart with the same bundle wrote %v", got)
	}

	custom, err := LoadDir(ctx, "../../examples/policies")
	if err != nil {
		t.Fatal(err)
	}
	stop, _ = run(custom)
	defer stop()
	testenv.Eventually(t, 30*time.Second, func() error {
		got := byTrigger()
		if got["bundle/pass"]+got["bundle/fail"]+got["bundle/pending"] != 9 || got["update/pass"] != 8 {
			return fmt.Errorf("results %v, want 9 more (trigger bundle) after 8 update/pass", got)
		}
		return nil
	})
	rows, err := st.Conn().Query(ctx, `SELECT DISTINCT bundle_hash FROM control_results WHERE trigger = 'bundle'`)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for rows.Next() {
		var h string
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, h)
	}
	rows.Close()
	if !slices.Equal(hashes, []string{custom.BundleHash()}) {
		t.Errorf("re-judged under bundles %v, want the new one %s", hashes, custom.BundleHash())
	}
	if h := history(resultRows(t, st), "EX-1"); len(h) != 1 || !strings.HasSuffix(h[0], "/bundle") {
		t.Errorf("EX-1 history %v, want one result with trigger bundle", h)
	}
	var verdicts uint64
	if err := st.Conn().QueryRow(ctx, `SELECT count() FROM deployment_verdicts WHERE change_id = ?`, stageChange).Scan(&verdicts); err != nil {
		t.Fatal(err)
	}
	if verdicts != 1 {
		t.Errorf("%d deployment verdict rows, want the one decided at first", verdicts)
	}
}

// TestStageVerdictDelay: the pipeline's deployment event arrives before
// the merge it deploys (the webhook is late). Judged at once, the
// deployment would match no change and fail CM-8 for ever; with the
// verdict delay it is judged on the evidence that arrived in the stream
// by the deployment's arrival (07:02:10) plus the delay (2 min), and
// decided once the correlation's watermark is past that (07:04:10), still
// as of the deployment: under the pull request's record, passing. The
// wait is in the queue entry (its watermark), so it holds across a
// restart of the stage, and the clock plays no part: it stays at 07:02:30.
func TestStageVerdictDelay(t *testing.T) {
	ctx := context.Background()
	js, st, kv := stageEnv(t)
	base, approval, deploy := stageEvidence(t)
	if _, err := kv.Merge(ctx, arrived(deploy, at("2025-03-04T07:02:10Z"))); err != nil {
		t.Fatal(err)
	}
	reader := correlate.KVReader{KV: kv}
	recs, err := reader.ChangesOf(ctx, stageRepo, "c0ffee1234567890abcdef1234567890abcdef12")
	if err != nil || len(recs) != 1 || !recs[0].Unmatched {
		t.Fatalf("the deployment alone: %d records (%v), want one unmatched", len(recs), err)
	}
	unmatched := recs[0].ID
	clk := &clock{t: at("2025-03-04T07:02:30Z")}
	wm := &fakeWatermark{t: at("2025-03-04T07:02:30Z")}
	run := func() (stop func()) {
		return runStage(t, js.JS, engine(t), reader, st, StageConfig{Now: clk.Now, VerdictDelay: 2 * time.Minute, Watermark: wm})
	}
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	waits := func(id string) time.Time {
		tk, _ := queuedTask(t, queue, id)
		return tk.Watermark
	}
	stop := run()
	if err := Enqueue(ctx, queue, []string{unmatched}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	cutoff := at("2025-03-04T07:04:10Z") // the deployment's arrival, 07:02:10, and the delay
	testenv.Eventually(t, 30*time.Second, func() error {
		if w := waits(unmatched); !w.Equal(cutoff) {
			return fmt.Errorf("unmatched record waits for the watermark past %s, want %s", w, cutoff)
		}
		return nil
	})
	if v := verdictSummaries(t, st); len(v) != 0 {
		t.Fatalf("verdicts before the delay passed: %v", v)
	}
	// The merge and the rest arrive at 07:03; the correlation stage would
	// queue the pull request's record.
	if _, err := kv.Merge(ctx, arrived(append(base, approval...), at("2025-03-04T07:03:00Z"))); err != nil {
		t.Fatal(err)
	}
	wm.Set(at("2025-03-04T07:03:30Z"))
	if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		if w := waits(stageChange); !w.Equal(cutoff) {
			return fmt.Errorf("change waits for the watermark past %s, want %s", w, cutoff)
		}
		return nil
	})
	stop()
	wm.Set(at("2025-03-04T07:04:11Z"))
	stop = run()
	defer stop()
	testenv.Eventually(t, 30*time.Second, func() error {
		if v := verdictSummaries(t, st); !slices.Equal(v, []string{stageChange + " pass pending[] failing[]"}) {
			return fmt.Errorf("verdicts %v, want the pull request's, pass", v)
		}
		return nil
	})
}

// TestStageDeploymentJudgedOnItsArtifact: the compliant change was first
// deployed to production (06:00) with an image its pull request's
// pipeline built from the final head, not the merged commit, then (07:02)
// with the merge commit's image, and (07:06) with that image again. Each
// deployment's verdict is judged on what it deployed: the first fails
// CM-6, the second passes, the earlier deployment of another image not
// held against it, and the redeploy is judged like the second.
func TestStageDeploymentJudgedOnItsArtifact(t *testing.T) {
	ctx := context.Background()
	js, st, kv := stageEnv(t)
	base, approval := stageFacts(t)
	const head, headImage = "9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b4", "sha256:9f2c1e7a4b5d6c8e0f1a2b3c4d5e6f708192a3b49f2c1e7a4b5d6c8e0f1a2b3c"
	var early []correlate.Fact
	for _, raw := range []string{
		`{"specversion":"1.0","id":"9876500002-run","source":"/ci/github-actions/acme/payments","type":"dev.evidencepipeline.pipelinerun.finished.v1",
		"time":"2025-03-03T14:12:00Z","datacontenttype":"application/json","data":{"repository":"github.com/acme/payments","commit":"` + head + `",
		"branch":"feature/PAY-123-capture-retry","run_id":"9876500002","run_attempt":1,"system":"github-actions","trigger":"pull_request",
		"started_at":"2025-03-03T14:03:00Z","outcome":"success","finished_at":"2025-03-03T14:12:00Z"}}`,
		`{"specversion":"1.0","id":"9876500002-image","source":"/ci/github-actions/acme/payments","type":"dev.evidencepipeline.artifact.built.v1",
		"time":"2025-03-03T14:11:00Z","datacontenttype":"application/json","data":{"digest":"` + headImage + `","name":"ghcr.io/acme/payments",
		"repository":"github.com/acme/payments","commit":"` + head + `","run_id":"9876500002","system":"github-actions",
		"builder":{"login":"github-actions[bot]","type":"service"},"built_at":"2025-03-03T14:11:00Z"}}`,
		`{"specversion":"1.0","id":"deploy-117","source":"/ci/github-actions/acme/payments","type":"dev.evidencepipeline.deployment.started.v1",
		"time":"2025-03-04T06:00:00Z","datacontenttype":"application/json","data":{"deployment_id":"payments-production-117","environment":"production",
		"service":"payments","digest":"` + headImage + `","repository":"github.com/acme/payments","commit":"c0ffee1234567890abcdef1234567890abcdef12",
		"run_id":"9876543298","system":"github-actions","deployer":{"login":"github-actions[bot]","type":"service"},"started_at":"2025-03-04T06:00:00Z"}}`,
		// The merge commit's image deployed again by another run.
		`{"specversion":"1.0","id":"deploy-119","source":"/ci/github-actions/acme/payments","type":"dev.evidencepipeline.deployment.started.v1",
		"time":"2025-03-04T07:06:00Z","datacontenttype":"application/json","data":{"deployment_id":"payments-production-119","environment":"production",
		"service":"payments","digest":"sha256:4a5b6c7d8e9f00112233445566778899aabbccddeeff00112233445566778899","repository":"github.com/acme/payments",
		"commit":"c0ffee1234567890abcdef1234567890abcdef12","run_id":"9876543300","system":"github-actions",
		"deployer":{"login":"github-actions[bot]","type":"service"},"started_at":"2025-03-04T07:06:00Z"}}`,
	} {
		e, err := ce.ParseJSON([]byte(raw))
		if err != nil {
			t.Fatal(err)
		}
		early = append(early, correlatetest.Facts(t, e)...)
	}
	if _, err := kv.Merge(ctx, slices.Concat(base, approval, early)); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: at("2025-03-04T07:10:00Z")}
	stop := runStage(t, js.JS, engine(t), correlate.KVReader{KV: kv}, st, StageConfig{Now: clk.Now})
	defer stop()
	queue, err := OpenQueue(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	if err := Enqueue(ctx, queue, []string{stageChange}, clk.Now()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"id:payments-production-117 " + stageChange + " fail [CM-6]",
		"id:payments-production-118 " + stageChange + " pass []",
		"id:payments-production-119 " + stageChange + " pass []",
	}
	var got []string
	testenv.Eventually(t, 30*time.Second, func() error {
		r, err := st.Conn().Query(ctx, `SELECT deployment_key, change_id, verdict, failing FROM deployment_verdicts FINAL ORDER BY deployment_key`)
		if err != nil {
			return err
		}
		defer r.Close()
		got = got[:0]
		for r.Next() {
			var k, c, v string
			var failing []string
			if err := r.Scan(&k, &c, &v, &failing); err != nil {
				return err
			}
			got = append(got, fmt.Sprintf("%s %s %s %v", k, c, v, failing))
		}
		if len(got) < len(want) {
			return fmt.Errorf("verdicts %q", got)
		}
		return nil
	})
	if !slices.Equal(got, want) {
		t.Errorf("deployment verdicts %q, want %q", got, want)
	}
}

// stageEnv is what a stage test runs on: an embedded JetStream, a
// ClickHouse store and the correlation bucket in that JetStream.
func stageEnv(t *testing.T) (*testenv.JetStream, *store.Store, *correlate.KVState) {
	t.Helper()
	js := testenv.NATS(t)
	st := testenv.Store(t)
	kv, err := correlate.NewKVState(context.Background(), js.JS, correlate.KVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return js, st, kv
}
