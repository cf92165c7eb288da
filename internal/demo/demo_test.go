package demo_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// TestKindsPerBlock: every block of 32 changes has each violation kind
// once, whatever the seed, and the same seed gives the same order.
func TestKindsPerBlock(t *testing.T) {
	for _, seed := range []uint64{1, 2, 99} {
		for block := range 3 {
			count := map[demo.Kind]int{}
			for i := range 32 {
				count[demo.KindAt(seed, block*32+i)]++
			}
			for _, k := range demo.Kinds {
				if count[k] != 1 {
					t.Errorf("seed %d block %d: kind %s appears %d times, want 1", seed, block, k, count[k])
				}
			}
			if count[demo.Compliant] != 32-len(demo.Kinds) {
				t.Errorf("seed %d block %d: %d compliant changes, want %d", seed, block, count[demo.Compliant], 32-len(demo.Kinds))
			}
		}
	}
	var a, b []demo.Kind
	for i := range 40 {
		a, b = append(a, demo.KindAt(7, i)), append(b, demo.KindAt(7, i))
	}
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("the same seed gave two orders")
	}
	if fmt.Sprint(a) == fmt.Sprint(func() (o []demo.Kind) {
		for i := range 40 {
			o = append(o, demo.KindAt(8, i))
		}
		return
	}()) {
		t.Error("seeds 7 and 8 gave the same order")
	}
}

// TestScenariosAreMarkedDemo: every event's source and every repository
// say demo.evidence.invalid, and event ids are unique per source.
func TestScenariosAreMarkedDemo(t *testing.T) {
	seen := map[string]bool{}
	for n := range 32 {
		sc := demo.Build(1, "r1", n, time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), time.Minute)
		if !strings.HasPrefix(sc.Repository, "demo.evidence.invalid/") {
			t.Errorf("change %d: repository %q is not marked demo", n, sc.Repository)
		}
		for _, e := range sc.Events {
			if !strings.HasPrefix(e.Source(), demo.Source+"/") {
				t.Errorf("change %d: event %s has source %q", n, e.ID(), e.Source())
			}
			k := e.Source() + " " + e.ID()
			if seen[k] {
				t.Errorf("change %d: event %s sent twice", n, k)
			}
			seen[k] = true
		}
	}
	x := demo.Build(1, "r1", 3, time.Unix(0, 0), time.Second)
	y := demo.Build(1, "r2", 3, time.Unix(0, 0), time.Second)
	if x.Change == y.Change || x.PR == y.PR {
		t.Errorf("two runs share change %s / PR %d", x.Change, x.PR)
	}
}

// TestDemoThroughEvidenced runs the demo against an in-process evidenced
// with access control on (the demo's producer token only in memory): a
// history of 32 changes whose deadlines have passed and two live changes.
// Every event must be accepted (Run stops at the first refusal), and each
// change record, read back through GET /v1/changes/{id}, must be judged by
// the controls as its kind is meant to be (demo.Expected).
func TestDemoThroughEvidenced(t *testing.T) {
	dir := t.TempDir()
	auditor, _ := auth.NewToken()
	tokens := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokens, []byte("auditor "+auth.Hash(auditor)+" test-auditor\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Parse("evidenced", []string{"--verdict-delay", "0s", "--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--clickhouse-url", testenv.DatabaseURL(t), "--tokens-file", tokens, "--demo"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		scenarios []demo.Scenario
		done      = make(chan struct{})
	)
	d, err := daemon.Start(context.Background(), cfg, nil, daemon.Options{Demo: &demo.Config{
		Run: "test", Backfill: 32, Limit: 2, Pace: 5 * time.Millisecond,
		Sent: func(sc demo.Scenario) {
			mu.Lock()
			defer mu.Unlock()
			scenarios = append(scenarios, sc)
			if len(scenarios) == 34 {
				close(done)
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	base := "http://" + d.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("the demo sent %d changes in 2 minutes, want 34 (a refused event stops it: see the log)", len(scenarios))
	}
	// The demo posted with a producer token of its own: the auditor token
	// of the file cannot post.
	if code := postAs(t, base, auditor); code != http.StatusForbidden {
		t.Errorf("post with the auditor token: %d, want 403", code)
	}

	engine, err := evaluate.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	seen := map[demo.Kind]bool{}
	for _, sc := range scenarios[:32] { // the history: every deadline has passed
		rec := waitRecord(t, base, auditor, sc)
		results, err := engine.Evaluate(ctx, rec, now, evaluate.DefaultParams())
		if err != nil {
			t.Fatal(err)
		}
		status := map[string]evaluate.Status{}
		for _, r := range results {
			status[r.Control.ID] = r.Status
		}
		want := demo.Expected[sc.Kind]
		seen[sc.Kind] = true
		switch sc.Kind {
		case demo.Compliant, demo.EmergencyRetroactive:
			for id, s := range status {
				if s != evaluate.Pass {
					t.Errorf("%s change %s: %s is %s, want every control to pass (%v)", sc.Kind, sc.Change, id, s, reasons(results, id))
				}
			}
		case demo.ExceptionGranted:
			for id, s := range status {
				if id == want.Control && s != evaluate.Waived || id != want.Control && s != evaluate.Pass {
					t.Errorf("%s change %s: %s is %s (%v)", sc.Kind, sc.Change, id, s, reasons(results, id))
				}
			}
		default:
			if string(status[want.Control]) != want.Status {
				t.Errorf("%s change %s: %s is %s, want %s (%v)", sc.Kind, sc.Change, want.Control, status[want.Control], want.Status, reasons(results, want.Control))
			}
		}
	}
	// The evaluation stage of the daemon wrote the same verdicts to
	// ClickHouse control_results (the newest row per change and control).
	for _, sc := range scenarios[:32] {
		want := demo.Expected[sc.Kind]
		control, status := want.Control, want.Status
		if control == "" {
			control = "CM-1"
		}
		var got string
		deadline := time.Now().Add(60 * time.Second)
		for got != status && time.Now().Before(deadline) {
			st := d.Store()
			if st != nil {
				row := st.Conn().QueryRow(ctx, "SELECT argMax(status, evaluated_at_ns) FROM control_results WHERE change_id = ? AND control_id = ?", sc.Change, control)
				_ = row.Scan(&got)
			}
			if got != status {
				time.Sleep(100 * time.Millisecond)
			}
		}
		if got != status {
			t.Errorf("%s change %s: control_results %s is %q, want %s", sc.Kind, sc.Change, control, got, status)
		}
	}
	for _, k := range append(demo.Kinds, demo.Compliant) {
		if !seen[k] {
			t.Errorf("kind %s never sent in the history", k)
		}
	}
	// The live changes reached the live state too.
	for _, sc := range scenarios[32:] {
		waitRecord(t, base, auditor, sc)
	}
}

func reasons(rs []evaluate.Result, control string) []string {
	for _, r := range rs {
		if r.Control.ID == control {
			return r.Reasons
		}
	}
	return nil
}

// waitRecord reads a scenario's change record through the API, waiting for
// the correlation stage to have taken all its events in.
func waitRecord(t *testing.T, base, token string, sc demo.Scenario) correlate.Record {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequest("GET", base+"/v1/changes/"+url.PathEscape(sc.Change), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var rec correlate.Record
		if resp.StatusCode == 200 && json.Unmarshal(b, &rec) == nil && complete(rec, sc) {
			return rec
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s change %s: not complete in the live state: %d %s", sc.Kind, sc.Change, resp.StatusCode, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// complete: every event of the scenario is behind the record.
func complete(rec correlate.Record, sc demo.Scenario) bool {
	raw, _ := json.Marshal(rec)
	for _, e := range sc.Events {
		if !strings.Contains(string(raw), e.ID()) {
			return false
		}
	}
	return true
}

func postAs(t *testing.T, base, token string) int {
	body := `{"specversion":"1.0","id":"x","source":"https://demo.evidence.invalid/t","type":"com.example.note","data":{}}`
	req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestWithToken: the demo's token is added to the file's, as a producer,
// and a broken file is refused naming its line.
func TestWithToken(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tokens")
	admin, _ := auth.NewToken()
	os.WriteFile(path, []byte("# team\nadmin "+auth.Hash(admin)+" ops\n"), 0o600)
	ts, tok, err := demo.WithToken(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tok  string
		want auth.Role
	}{{admin, auth.Admin}, {tok, auth.Producer}} {
		id, err := ts.Authenticate(&http.Request{Header: http.Header{"Authorization": {"Bearer " + c.tok}}})
		if err != nil || id.Role != c.want {
			t.Errorf("token of role %s: %+v %v", c.want, id, err)
		}
	}
	os.WriteFile(path, []byte("admin nothex ops\n"), 0o600)
	if _, _, err := demo.WithToken(path); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Errorf("broken tokens file: %v, want an error naming line 1", err)
	}
}
