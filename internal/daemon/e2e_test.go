package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/archive"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// startDaemon runs evidenced in-process on a free port with an embedded
// NATS in dataDir and the given ClickHouse database.
func startDaemon(t testing.TB, dataDir, chURL string, args ...string) *daemon.Daemon {
	t.Helper()
	all := append([]string{"--http-addr", "127.0.0.1:0", "--data-dir", dataDir, "--clickhouse-url", chURL,
		"--archive-flush-interval", "50ms"}, args...)
	cfg, _, err := config.Parse("evidenced", all, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), cfg, nil, daemon.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown(context.Background()) })
	return d
}

// sent is one event as posted, and what the test expects of it.
type sent struct {
	id, mode string
	body     string
	header   http.Header
	// fault is the field a 400 must name; empty for a valid event.
	fault string
}

const runType = "dev.evidencepipeline.pipelinerun.finished.v1"

func validData(i int) string {
	return fmt.Sprintf(`{"repository":"github.com/acme/svc%d","commit":"%040x","run_id":"%d","run_url":"https://ci.example/runs/%d","outcome":"success"}`, i%5, i, i, i)
}

// makeEvents builds n events; every 20th is invalid in one of several ways
// (5%), and each names the attribute or path a 400 must give.
func makeEvents(n int) []sent {
	faults := []struct {
		field string
		json  func(id string) string
	}{
		{"source", func(id string) string { return fmt.Sprintf(`{"specversion":"1.0","id":%q,"type":"t"}`, id) }},
		{"specversion", func(id string) string {
			return fmt.Sprintf(`{"specversion":"0.3","id":%q,"source":"s","type":"t"}`, id)
		}},
		{"data/outcome", func(id string) string {
			return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"https://ci.example","type":%q,"data":{"repository":"github.com/acme/x","commit":"abcdef1","run_id":"1"}}`, id, runType)
		}},
		{"time", func(id string) string {
			return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"s","type":"t","time":"25/11/2026"}`, id)
		}},
		{"data/commit", func(id string) string {
			return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"https://ci.example","type":%q,"data":{"repository":"github.com/acme/x","commit":"HEAD","run_id":"1","outcome":"success"}}`, id, runType)
		}},
	}
	out := make([]sent, n)
	for i := range out {
		id := fmt.Sprintf("e2e-%04d", i)
		s := sent{id: id}
		switch {
		case i%20 == 19:
			f := faults[(i/20)%len(faults)]
			s.fault, s.body = f.field, f.json(id)
		case i%2 == 0:
			s.body = fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"https://ci.example","type":%q,"subject":"run/%d","time":"2026-11-25T10:%02d:%02dZ","data":%s}`,
				id, runType, i, (i/60)%60, i%60, validData(i))
		default:
			s.body = fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"https://vcs.example/acme","type":"com.example.note","team":"payments","data":{"n":%d,"text":"note %d"}}`, id, i, i)
		}
		out[i] = s
	}
	return out
}

// asBinary converts a structured JSON event into binary-mode headers and
// body.
func asBinary(t *testing.T, s string) (http.Header, string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	body := ""
	for k, v := range m {
		if k == "data" {
			body = string(v)
			continue
		}
		var str string
		if json.Unmarshal(v, &str) != nil {
			str = string(v)
		}
		h.Set("Ce-"+k, str)
	}
	return h, body
}

func post(t *testing.T, base string, h http.Header, body string) (int, api.EventsResponse) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/v1/events", strings.NewReader(body))
	req.Header = h
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r api.EventsResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("answer is not JSON (%d): %s", resp.StatusCode, b)
	}
	return resp.StatusCode, r
}

// TestEndToEnd posts 1,000 events in all three modes, 10% of them posted
// again and 5% invalid, and checks that exactly the valid, distinct events
// are archived in ClickHouse, in stream order, with an intact hash chain.
func TestEndToEnd(t *testing.T) {
	chURL := testenv.DatabaseURL(t)
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), chURL)
	base := "http://" + d.Addr()
	evs := makeEvents(1000)
	rng := rand.New(rand.NewPCG(1, 2))

	seqOf := map[string]uint64{} // id -> stream sequence, from the answers
	accept := func(r api.EventsResponse) {
		for _, e := range r.Events {
			if prev, ok := seqOf[e.ID]; ok && prev != e.Seq {
				t.Fatalf("event %s answered seq %d, earlier %d", e.ID, e.Seq, prev)
			}
			seqOf[e.ID] = e.Seq
		}
	}
	var valid []sent
	for i := 0; i < len(evs); {
		mode := []string{"binary", "structured", "batch"}[i%3]
		if evs[i].fault != "" {
			// Invalid events alone, each in the mode its turn gives (an
			// invalid entry refuses its whole batch: tested apart).
			ev := evs[i]
			h := http.Header{"Content-Type": {api.MediaStructured}}
			body := ev.body
			switch mode {
			case "binary":
				h, body = asBinary(t, ev.body)
			case "batch":
				h.Set("Content-Type", api.MediaBatch)
				body = "[" + body + "]"
			}
			code, r := post(t, base, h, body)
			if code != 400 {
				t.Fatalf("invalid event %s (%s): status %d, want 400", ev.id, mode, code)
			}
			if len(r.Errors) == 0 || r.Errors[0].Field != ev.fault && r.Errors[0].Field != "ce-"+ev.fault {
				t.Fatalf("invalid event %s (%s): problems %+v, want one naming %s", ev.id, mode, r.Errors, ev.fault)
			}
			i++
			continue
		}
		switch mode {
		case "binary":
			h, body := asBinary(t, evs[i].body)
			code, r := post(t, base, h, body)
			if code != 202 {
				t.Fatalf("binary %s: %d %+v", evs[i].id, code, r)
			}
			accept(r)
			valid = append(valid, evs[i])
			i++
		case "structured":
			code, r := post(t, base, http.Header{"Content-Type": {api.MediaStructured}}, evs[i].body)
			if code != 202 {
				t.Fatalf("structured %s: %d %+v", evs[i].id, code, r)
			}
			accept(r)
			valid = append(valid, evs[i])
			i++
		case "batch":
			var parts []string
			for n := 0; n < 1+rng.IntN(40) && i < len(evs) && evs[i].fault == ""; n++ {
				parts = append(parts, evs[i].body)
				valid = append(valid, evs[i])
				i++
			}
			code, r := post(t, base, http.Header{"Content-Type": {api.MediaBatch}}, "["+strings.Join(parts, ",")+"]")
			if code != 202 || r.Stored != len(parts) {
				t.Fatalf("batch: %d %+v", code, r)
			}
			accept(r)
		}
	}
	if len(valid) != 950 {
		t.Fatalf("posted %d valid events, want 950", len(valid))
	}
	// 10%: re-post 100 valid events, in all modes; each answers as a
	// duplicate with its first sequence.
	for k, idx := range rng.Perm(len(valid))[:100] {
		ev := valid[idx]
		var code int
		var r api.EventsResponse
		switch k % 3 {
		case 0:
			h, body := asBinary(t, ev.body)
			code, r = post(t, base, h, body)
		case 1:
			code, r = post(t, base, http.Header{"Content-Type": {api.MediaStructured}}, ev.body)
		case 2:
			code, r = post(t, base, http.Header{"Content-Type": {api.MediaBatch}}, "["+ev.body+"]")
		}
		if code != 202 || r.Duplicates != 1 || r.Stored != 0 || r.Events[0].Seq != seqOf[ev.id] {
			t.Fatalf("re-post of %s: %d %+v (first seq %d)", ev.id, code, r, seqOf[ev.id])
		}
	}

	st := testenv.StoreAt(t, chURL)
	testenv.WaitForRows(t, st, 950, 60*time.Second)
	rows := testenv.ArchivedRows(t, st)
	seen := map[string]bool{}
	for i, r := range rows {
		if r.StreamSeq != uint64(i+1) {
			t.Fatalf("row %d: stream_seq %d, want %d (stream order, no gaps)", i, r.StreamSeq, i+1)
		}
		if seen[r.EventID] {
			t.Fatalf("event %s archived twice", r.EventID)
		}
		seen[r.EventID] = true
		if seqOf[r.EventID] != r.StreamSeq {
			t.Fatalf("event %s archived at seq %d, but its post was answered with seq %d", r.EventID, r.StreamSeq, seqOf[r.EventID])
		}
	}
	for _, ev := range valid {
		if !seen[ev.id] {
			t.Fatalf("valid event %s is not archived", ev.id)
		}
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, rows); i >= 0 {
		t.Fatalf("hash chain broken at row %d: %s", i, why)
	}
}
