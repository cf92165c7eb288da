package daemon_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

// rule is one input of the door's rules (docs/api.md, "Input rules"):
// how it is posted, and either the field a 400 must name, or, for an
// accepted input, the canonical event the archive must hold.
type rule struct {
	name   string
	header http.Header
	body   string
	// fault is the field the first problem must name; "" when accepted.
	fault string
	// status overrides 400 for a refusal (413).
	status int
}

const changeOpened = "dev.evidencepipeline.change.opened.v1"

func structured(body string) (http.Header, string) {
	return http.Header{"Content-Type": {api.MediaStructured}}, body
}

// ev is an event of id, its bytes as they are (not quoted by Go: a raw
// 0xFF stays one byte), with extra members.
func ev(id, extra string) string {
	return `{"specversion":"1.0","id":"` + id + `","source":"https://ci.example/rules","type":"com.example.rule"` + extra + `}`
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

func openedData(number, repo string) string {
	return fmt.Sprintf(`{"repository":%q,"change":{"number":%s},"title":"t","target_branch":"main","head_commit":"%040x","author":{"login":"dev"},"opened_at":"2026-11-25T10:00:00Z"}`, repo, number, 7)
}

func binaryHeader(id string, kv ...string) http.Header {
	h := http.Header{"Content-Type": {"application/json"}, "Ce-Specversion": {"1.0"}, "Ce-Id": {id},
		"Ce-Source": {"https://ci.example/rules"}, "Ce-Type": {"com.example.rule"}}
	for i := 0; i+1 < len(kv); i += 2 {
		h[kv[i]] = append(h[kv[i]], kv[i+1])
	}
	return h
}

func rules() []rule {
	var rs []rule
	add := func(name string, h http.Header, body, fault string) {
		rs = append(rs, rule{name: name, header: h, body: body, fault: fault})
	}
	s := func(name, body, fault string) {
		h, b := structured(body)
		add(name, h, b, fault)
	}
	long := func(n int) string { return strings.Repeat("x", n) }

	// Bounds on what becomes a NATS subject, a header or a key.
	s("type of 1 MiB", fmt.Sprintf(`{"specversion":"1.0","id":"t1","source":"s","type":%q}`, long(1<<20)), "type")
	s("type of 4,112 bytes", fmt.Sprintf(`{"specversion":"1.0","id":"t2","source":"s","type":%q}`, long(4112)), "type")
	s("type of 256 bytes", fmt.Sprintf(`{"specversion":"1.0","id":"t3","source":"s","type":%q}`, long(256)), "")
	add("binary type of 5,000 bytes", func() http.Header {
		h := binaryHeader("t4")
		h.Set("Ce-Type", long(5000))
		return h
	}(), `{}`, "ce-type")
	add("batch with a type of 4,112 bytes", http.Header{"Content-Type": {api.MediaBatch}},
		"["+ev("t5", "")+","+fmt.Sprintf(`{"specversion":"1.0","id":"t6","source":"s","type":%q}`, long(4112))+"]", "type")
	s("id of 1,025 bytes", ev(long(1025), ""), "id")
	s("source of 2,049 bytes", fmt.Sprintf(`{"specversion":"1.0","id":"s1","source":"https://x/%s","type":"t"}`, long(2040)), "source")
	s("subject of 2,049 bytes", ev("s2", fmt.Sprintf(`,"subject":%q`, long(2049))), "subject")

	// Nesting: refused at the door, never dead-lettered later.
	add("binary body nested 512 deep", binaryHeader("n1"), nested(512), "data")
	s("data nested 257 deep", ev("n2", `,"data":`+nested(257)), "data")
	s("data nested 256 deep", ev("n3", `,"data":`+nested(256)), "")

	// Numbers and lengths a later stage would refuse.
	s("1e999 in a catalog integer", fmt.Sprintf(`{"specversion":"1.0","id":"c1","source":"https://vcs.example","type":%q,"data":%s}`, changeOpened, openedData("1e999", "github.com/acme/x")), "data/change/number")
	s("1e300 in a catalog integer", fmt.Sprintf(`{"specversion":"1.0","id":"c2","source":"https://vcs.example","type":%q,"data":%s}`, changeOpened, openedData("1e300", "github.com/acme/x")), "data/change/number")
	s("1e3 in a catalog integer", fmt.Sprintf(`{"specversion":"1.0","id":"c3","source":"https://vcs.example","type":%q,"data":%s}`, changeOpened, openedData("1e3", "github.com/acme/x")), "data/change/number") // the correlation stage reads integers written as such
	s("5,000-character repository", fmt.Sprintf(`{"specversion":"1.0","id":"c4","source":"https://vcs.example","type":%q,"data":%s}`, changeOpened, openedData("7", "github.com/acme/"+strings.Repeat("r", 5000))), "data/repository")
	s("5,000-character run id", fmt.Sprintf(`{"specversion":"1.0","id":"c5","source":"https://ci.example","type":%q,"data":{"repository":"github.com/acme/x","commit":"%040x","run_id":%q,"outcome":"success"}}`, runType, 5, long(5000)), "data/run_id")
	s("a valid catalog event", fmt.Sprintf(`{"specversion":"1.0","id":"c6","source":"https://vcs.example","type":%q,"data":%s}`, changeOpened, openedData("7", "github.com/acme/x")), "")

	// Unicode: invalid UTF-8 is refused, never rewritten.
	s("0xFF in id", ev("u1\xff", ""), "id")
	s("latin-1 é in id", ev("caf\xe9", ""), "id")
	s("0xFF in a data string", ev("u2", ",\"data\":{\"msg\":\"a\xffb\"}"), "data/msg")
	s("unpaired surrogate in id", `{"specversion":"1.0","id":"u3\ud800","source":"s","type":"t"}`, "id")
	s("unpaired surrogate in data", ev("u4", `,"data":["ok","\udc00"]`), "data/1")
	s("a surrogate pair and UTF-8", `{"specversion":"1.0","id":"u5\ud83d\ude00-é-直","source":"s","type":"t","data":{"é":"\u00e9 直"}}`, "")
	add("latin-1 byte in ce-id", binaryHeader("caf\xe9"), `{}`, "ce-id")
	add("latin-1 byte in a ce- extension", binaryHeader("u6", "Ce-Team", "caf\xe9"), `{}`, "ce-team")
	add("%FF in a ce- header", binaryHeader("u7", "Ce-Team", "caf%FF"), `{}`, "ce-team")
	add("percent-encoded UTF-8 in a ce- header", binaryHeader("u8", "Ce-Team", "caf%C3%A9"), `{}`, "")
	add("0xFF in a binary JSON body", binaryHeader("u9"), "{\"a\":\"\xff\"}", "data/a")
	add("a binary JSON body with a final newline", binaryHeader("b1"), "{\"a\":1}\n", "")
	add("a binary JSON body of null", binaryHeader("b2"), " null ", "")

	// Duplicate member names.
	s("id twice", `{"specversion":"1.0","id":"a","id":"b","source":"s","type":"t"}`, "id")
	s("data twice", ev("d1", `,"data":{"a":1},"data":{"a":2}`), "data")
	s("a nested name twice", ev("d2", `,"data":{"x":{"k":1,"k":2}}`), "data/x/k")
	s("the same name by an escape", ev("d3", `,"data":{"k":1,"\u006b":2}`), "data/k")
	add("a member named twice in the 2nd entry of a batch", http.Header{"Content-Type": {api.MediaBatch}},
		"["+ev("d6", "")+","+`{"specversion":"1.0","id":"d7","source":"s","type":"t","data":{"k":1,"k":2}}`+"]", "data/k")
	add("invalid UTF-8 in the 1st entry of a batch", http.Header{"Content-Type": {api.MediaBatch}},
		"["+ev("d8\xff", "")+","+ev("d9", "")+"]", "id")
	add("ce-id sent twice", func() http.Header {
		h := binaryHeader("d4")
		h["Ce-Id"] = []string{"d4", "d5"}
		return h
	}(), `{}`, "ce-id")

	// Times: only what the archive holds exactly.
	for i, tm := range []string{"9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2300-01-01T00:00:00Z", "1600-01-01T00:00:00Z",
		"1970-01-01T00:00:00Z", "2106-01-01T00:00:00Z", "2026-01-01T00:00:00.1234567891Z", "2026-01-01T00:00:00,5Z", "2026-01-01t00:00:00z"} {
		s("time "+tm, ev(fmt.Sprintf("tm%d", i), fmt.Sprintf(`,"time":%q`, tm)), "time")
	}
	add("binary time 1970-01-01T00:00:00Z", binaryHeader("tmb", "Ce-Time", "1970-01-01T00:00:00Z"), `{}`, "ce-time")
	for i, tm := range []string{"1970-01-01T00:00:01Z", "2105-12-31T23:59:59.999999999Z", "2026-06-01T12:00:00.5+02:00", "2026-06-01T12:00:00.000000001Z"} {
		s("time "+tm, ev(fmt.Sprintf("tmok%d", i), fmt.Sprintf(`,"time":%q`, tm)), "")
	}

	// Extension names: what CloudEvents allows, within a bound.
	s("extension name of 21 characters", ev("x1", `,"knativearrivaltimes":"v"`), "")
	s("extension name of 64 characters", ev("x2", fmt.Sprintf(`,%q:1`, strings.Repeat("e", 64))), "")
	s("extension name of 65 characters", ev("x3", fmt.Sprintf(`,%q:1`, strings.Repeat("e", 65))), strings.Repeat("e", 65))
	s("extension value of 4,097 bytes", ev("x4", fmt.Sprintf(`,"big":%q`, long(4095))), "big")
	return rs
}

// TestIngestRules posts every case of the door's rules through a real
// evidenced, in the mode each names: refusals are 400s naming the field;
// every accepted event is archived exactly as sent (its canonical form
// rebuilt from the ClickHouse row equals the one of what was posted),
// nothing is dead-lettered by the archive or the correlation stage, the
// NATS connection survives a 1 MiB type, and evidence verify finds the
// store intact.
func TestIngestRules(t *testing.T) {
	chURL := testenv.DatabaseURL(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, dataDir, chURL)
	base := "http://" + d.Addr()
	ctx := context.Background()

	var accepted []*ce.Event
	for _, r := range rules() {
		code, resp := post(t, base, r.header, r.body)
		if r.fault != "" {
			want := 400
			if r.status != 0 {
				want = r.status
			}
			if code != want {
				t.Errorf("%s: status %d (%+v), want %d naming %s", r.name, code, resp, want, r.fault)
				continue
			}
			if len(resp.Errors) == 0 || resp.Errors[0].Field != r.fault {
				t.Errorf("%s: problems %+v, want the first naming %q", r.name, resp.Errors, r.fault)
			} else if raw := strings.Contains(r.name, "0xFF") || strings.Contains(r.name, "latin-1"); raw && !strings.Contains(resp.Errors[0].Detail, "UTF-8") {
				t.Errorf("%s: %q, want it to say the bytes are not UTF-8", r.name, resp.Errors[0].Detail)
			}
			continue
		}
		if code != 202 || resp.Stored != 1 {
			t.Errorf("%s: status %d %+v, want 202 and stored", r.name, code, resp)
			continue
		}
		// What was sent, as the door reads it: the reference the archived
		// row must equal.
		var e *ce.Event
		var err error
		if ce.IsBinary(r.header) {
			e, err = ce.FromBinary(r.header, []byte(r.body))
		} else {
			e, err = ce.ParseJSON([]byte(r.body))
		}
		if err != nil {
			t.Fatalf("%s: accepted, but the test cannot parse what it sent: %v", r.name, err)
		}
		accepted = append(accepted, e)
	}

	// After a 1 MiB type (and every other refusal) ingestion goes on.
	code, resp := post(t, base, http.Header{"Content-Type": {api.MediaStructured}}, ev("after", `,"data":{"ok":true}`))
	if code != 202 || resp.Stored != 1 {
		t.Fatalf("a normal event after the refusals: %d %+v", code, resp)
	}
	after, _ := ce.ParseJSON([]byte(ev("after", `,"data":{"ok":true}`)))
	accepted = append(accepted, after)
	if rc, err := http.Get(base + "/readyz"); err != nil || rc.StatusCode != 200 {
		t.Fatalf("/readyz after the refusals: %v %v", rc, err)
	}

	st := testenv.StoreAt(t, chURL)
	testenv.WaitForRows(t, st, uint64(len(accepted)), 60*time.Second)
	rows := testenv.ArchivedRows(t, st)
	if len(rows) != len(accepted) {
		t.Fatalf("%d rows archived, %d events accepted", len(rows), len(accepted))
	}
	byID := map[string]store.EventRow{}
	for _, r := range rows {
		byID[r.EventID] = r
	}
	for _, e := range accepted {
		r, ok := byID[e.ID]
		if !ok {
			t.Errorf("accepted event %q is not archived", e.ID)
			continue
		}
		got, err := verify.EventFromRow(&r)
		if err != nil {
			t.Fatalf("row of %q: %v", e.ID, err)
		}
		if g, w := got.MarshalCanonical(), e.MarshalCanonical(); !bytes.Equal(g, w) {
			t.Errorf("event %q archived as\n%s\nbut was sent as\n%s", e.ID, g, w)
		}
		if !e.Time.IsZero() {
			// The DateTime column auditors query, beside the nanoseconds.
			var secs uint32
			if err := st.Conn().QueryRow(ctx, "SELECT toUnixTimestamp(event_time) FROM events WHERE event_id = ?", e.ID).Scan(&secs); err != nil {
				t.Fatal(err)
			}
			if int64(secs) != e.Time.Unix() || r.EventTimeNs != e.Time.UnixNano() {
				t.Errorf("event %q: event_time %d s (%d ns), sent %s", e.ID, secs, r.EventTimeNs, e.Time.Format(time.RFC3339Nano))
			}
		}
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, rows); i >= 0 {
		t.Fatalf("hash chain broken at row %d: %s", i, why)
	}
	verifyIntact(t, d, st, dataDir)
	noDeadLetters(t, d.JetStream())
}

// verifyIntact runs what evidence verify runs, with the daemon's key,
// once the last event is under a checkpoint.
func verifyIntact(t testing.TB, d *daemon.Daemon, st *store.Store, dataDir string) {
	t.Helper()
	key, err := checkpoint.LoadKey("", dataDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	keys := verify.PublicKeys{verify.KeyID(key.Public()): key.Public()}
	res, err := verify.Verify(context.Background(), st.Conn(), verify.Options{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() {
		t.Fatalf("verify on an untouched store: %+v", res.Problems)
	}
	if res.Events == 0 {
		t.Fatal("verify checked no rows")
	}
}

// noDeadLetters waits until the correlation stage has read the whole
// stream and checks that neither it nor the archive dead-lettered
// anything.
func noDeadLetters(t testing.TB, js jetstream.JetStream) {
	t.Helper()
	ctx := context.Background()
	testenv.Eventually(t, 30*time.Second, func() error {
		c, err := js.Consumer(ctx, bus.EventStream, "correlate")
		if err != nil {
			return err
		}
		info, err := c.Info(ctx)
		if err != nil {
			return err
		}
		if info.NumPending > 0 || info.NumAckPending > 0 {
			return fmt.Errorf("correlation: %d pending, %d unacknowledged", info.NumPending, info.NumAckPending)
		}
		return nil
	})
	s, err := js.Stream(ctx, bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 0 {
		m, _ := s.GetMsg(ctx, info.State.FirstSeq)
		why := ""
		if m != nil {
			why = m.Header.Get(bus.HeaderDLQStage) + ": " + m.Header.Get(bus.HeaderDLQReason)
		}
		t.Fatalf("%d dead letters after the door accepted only what the stages can process; first: %s", info.State.Msgs, why)
	}
}

// TestNATSClosedStops: when the server closes evidenced's NATS connection
// for good (here, the protocol line of a 5 KiB subject that the door
// would have refused), /readyz says so and evidenced stops with the
// reason, so that its supervisor starts it again, instead of answering
// 503 to every post while it reports itself healthy.
func TestNATSClosedStops(t *testing.T) {
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), testenv.DatabaseURL(t))
	nc := d.JetStream().Conn()
	_ = nc.Publish(strings.Repeat("x", 5000), nil)
	_ = nc.Flush()
	select {
	case err := <-d.Served():
		if err == nil || !strings.Contains(err.Error(), "NATS connection was closed") {
			t.Fatalf("Served: %v, want the closed NATS connection", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("evidenced did not report its closed NATS connection within 10s")
	}
	resp, err := http.Get("http://" + d.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a closed NATS connection: %d, want 503", resp.StatusCode)
	}
}

// TestWebhookRules: a signed delivery whose payload breaks the door's
// rules is refused with a 400 that says why (not 202 and a dead letter
// later, not a 500), and one within them is archived and correlated
// without a dead letter, the store intact.
func TestWebhookRules(t *testing.T) {
	body := corpus(t, "github/octokit-webhooks/pull_request_review/submitted.payload.json")
	chURL := testenv.DatabaseURL(t)
	dataDir := filepath.Join(t.TempDir(), "data")
	d := startDaemon(t, dataDir, chURL, "--github-secret", "s3cret")
	url := "http://" + d.Addr() + "/webhooks/github"
	with := func(member string) []byte { // body with one more top-level member
		i := bytes.IndexByte(body, '{')
		return append(append(append([]byte{}, body[:i+1]...), member+","...), body[i+1:]...)
	}
	send := func(b []byte, delivery string) (int, string) {
		m := hmac.New(sha256.New, []byte("s3cret"))
		m.Write(b)
		req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "pull_request_review")
		req.Header.Set("X-GitHub-Delivery", delivery)
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	for i, c := range []struct {
		name string
		body []byte
		code int
		says string
	}{
		{"a value nested 300 deep", with(`"deep":` + nested(300)), 400, "data: nested deeper than 256 levels"},
		{"a value nested 510 deep", with(`"deep":` + nested(510)), 400, "data: nested deeper than"},
		{"a value nested 600 deep", with(`"deep":` + nested(600)), 400, "data: nested deeper than"},
		{"a submitted_at the archive cannot hold", bytes.Replace(body, []byte(`"submitted_at": "2019-`), []byte(`"submitted_at": "1960-`), 1), 400, "outside the times the archive holds"},
		{"invalid UTF-8", with("\"note\":\"caf\xe9\""), 400, "invalid UTF-8"},
		{"a member named twice", with(`"action":"submitted"`), 400, "appears twice"},
		{"a value nested 250 deep", with(`"deep":` + nested(250)), 202, ""},
	} {
		code, answer := send(c.body, fmt.Sprintf("d6e7a2a0-0000-4000-8000-%012d", i))
		if code != c.code || !strings.Contains(answer, c.says) {
			t.Errorf("%s: %d %s, want %d saying %q", c.name, code, answer, c.code, c.says)
		}
	}
	st := testenv.StoreAt(t, chURL)
	testenv.WaitForRows(t, st, 2, 60*time.Second) // the review and the raw delivery
	rows := testenv.ArchivedRows(t, st)
	if len(rows) != 2 {
		t.Fatalf("%d rows archived, want the 2 events of the one accepted delivery", len(rows))
	}
	verifyIntact(t, d, st, dataDir)
	noDeadLetters(t, d.JetStream())
}
