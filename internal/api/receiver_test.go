package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/api/apitest"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/emitter"
	"github.com/evidencepipeline/evidence/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const runType = "dev.evidencepipeline.pipelinerun.finished.v1"

func runData(commit string) string {
	return fmt.Sprintf(`{"repository":"github.com/acme/payments","commit":%q,"run_id":"42","outcome":"success"}`, commit)
}

func structured(id, data string) string {
	return fmt.Sprintf(`{"specversion":"1.0","id":%q,"source":"https://ci.example/acme","type":%q,"data":%s}`, id, runType, data)
}

type fixture struct {
	srv *httptest.Server
	js  *testenv.JetStream
}

func newFixture(t *testing.T, tokens *auth.Tokens, maxBody int64) *fixture {
	t.Helper()
	js := testenv.NATS(t)
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	s := api.New(api.Config{Publisher: bus.NewPublisher(js.JS), Catalog: cat, Tokens: tokens, MaxBodyBytes: maxBody})
	srv := apitest.NewServer(t, s)
	t.Cleanup(srv.Close)
	return &fixture{srv: srv, js: js}
}

func (f *fixture) post(t *testing.T, h http.Header, body string) (int, api.EventsResponse) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.srv.URL+"/v1/events", strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out api.EventsResponse
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("answer is not JSON: %s", b)
	}
	return resp.StatusCode, out
}

func (f *fixture) streamCount(t *testing.T) uint64 {
	t.Helper()
	s, err := f.js.JS.Stream(context.Background(), bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func ct(v string) http.Header { return http.Header{"Content-Type": {v}} }

func TestReceiverModes(t *testing.T) {
	f := newFixture(t, nil, 0)

	code, r := f.post(t, ct("application/cloudevents+json; charset=utf-8"), structured("s-1", runData("aaaaaaa1")))
	if code != 202 || r.Stored != 1 || r.Events[0].Seq != 1 {
		t.Fatalf("structured: %d %+v", code, r)
	}

	bin := http.Header{
		"Content-Type": {"application/json"}, "Ce-Specversion": {"1.0"}, "Ce-Id": {"b-1"},
		"Ce-Source": {"https://ci.example/acme"}, "Ce-Type": {runType}, "Ce-Subject": {"run%2F42"},
		"Ce-Time": {"2026-11-25T10:00:00+01:00"}, "Ce-Team": {"payments"},
	}
	code, r = f.post(t, bin, runData("bbbbbbb1"))
	if code != 202 || r.Stored != 1 || r.Events[0].Seq != 2 {
		t.Fatalf("binary: %d %+v", code, r)
	}
	// The stored message is the canonical form, with the binary-mode
	// attributes decoded.
	s, _ := f.js.JS.Stream(context.Background(), bus.EventStream)
	m, err := s.GetMsg(context.Background(), 2)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"specversion":"1.0","id":"b-1","source":"https://ci.example/acme","type":"` + runType +
		`","subject":"run/42","time":"2026-11-25T09:00:00Z","datacontenttype":"application/json","team":"payments","data":` + runData("bbbbbbb1") + `}`
	if string(m.Data) != want {
		t.Fatalf("stored message:\n got %s\nwant %s", m.Data, want)
	}

	batch := "[" + structured("c-1", runData("ccccccc1")) + "," + structured("c-2", runData("ccccccc2")) + "," + structured("s-1", runData("aaaaaaa1")) + "]"
	code, r = f.post(t, ct("application/cloudevents-batch+json"), batch)
	if code != 202 || r.Accepted != 3 || r.Stored != 2 || r.Duplicates != 1 || !r.Events[2].Duplicate || r.Events[2].Seq != 1 {
		t.Fatalf("batch: %d %+v", code, r)
	}
	if n := f.streamCount(t); n != 4 {
		t.Fatalf("stream holds %d events, want 4", n)
	}
}

func TestReceiverRefusals(t *testing.T) {
	f := newFixture(t, nil, 4096)
	for _, tc := range []struct {
		name   string
		h      http.Header
		body   string
		code   int
		field  string
		errHas string
	}{
		{name: "no specversion", h: ct(api.MediaStructured), body: `{"id":"x","source":"s","type":"t"}`, code: 400, field: "specversion"},
		{name: "old specversion", h: ct(api.MediaStructured), body: `{"specversion":"0.3","id":"x","source":"s","type":"t"}`, code: 400, field: "specversion"},
		{name: "no source", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":"x","type":"t"}`, code: 400, field: "source"},
		{name: "empty id", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":"","source":"s","type":"t"}`, code: 400, field: "id"},
		{name: "id not a string", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":7,"source":"s","type":"t"}`, code: 400, field: "id"},
		{name: "bad time", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":"x","source":"s","type":"t","time":"yesterday"}`, code: 400, field: "time"},
		{name: "bad extension name", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":"x","source":"s","type":"t","Team-Name":"a"}`, code: 400, field: "Team-Name"},
		{name: "object extension", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":"x","source":"s","type":"t","team":{"a":1}}`, code: 400, field: "team"},
		{name: "relative dataschema", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":"x","source":"s","type":"t","dataschema":"/x"}`, code: 400, field: "dataschema"},
		{name: "not JSON", h: ct(api.MediaStructured), body: `{"specversion":`, code: 400, field: "(event)"},
		{name: "catalog data wrong", h: ct(api.MediaStructured), body: structured("x", `{"repository":"github.com/acme/payments","commit":"NOPE","run_id":"1","outcome":"success"}`), code: 400, field: "data/commit"},
		{name: "catalog data missing field", h: ct(api.MediaStructured), body: structured("x", `{"repository":"github.com/acme/payments","commit":"abcdef1","run_id":"1"}`), code: 400, field: "data/outcome"},
		{name: "catalog without data", h: ct(api.MediaStructured), body: `{"specversion":"1.0","id":"x","source":"s","type":"` + runType + `"}`, code: 400, field: "data"},
		{name: "binary missing id", h: http.Header{"Ce-Specversion": {"1.0"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, body: "", code: 400, field: "ce-id"},
		{name: "binary bad JSON body", h: http.Header{"Content-Type": {"application/json"}, "Ce-Specversion": {"1.0"}, "Ce-Id": {"i"}, "Ce-Source": {"s"}, "Ce-Type": {"t"}}, body: "{", code: 400, field: "data"},
		{name: "unsupported media type", h: ct("text/plain"), body: "hello", code: 415, errHas: "unsupported content type"},
		{name: "batch not an array", h: ct(api.MediaBatch), body: `{"a":1}`, code: 400, errHas: "not a JSON array"},
		{name: "too large", h: ct(api.MediaStructured), body: structured("x", `"`+strings.Repeat("a", 5000)+`"`), code: 413, errHas: "over the limit of 4096 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, r := f.post(t, tc.h, tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d (%+v)", code, tc.code, r)
			}
			if tc.field != "" && (len(r.Errors) == 0 || r.Errors[0].Field != tc.field) {
				t.Fatalf("problems %+v, want the first naming %q", r.Errors, tc.field)
			}
			if tc.errHas != "" && !strings.Contains(r.Detail, tc.errHas) {
				t.Fatalf("error %q, want it to contain %q", r.Detail, tc.errHas)
			}
		})
	}
	if n := f.streamCount(t); n != 0 {
		t.Fatalf("refused posts stored %d events", n)
	}
}

func TestInvalidBatchStoresNothing(t *testing.T) {
	f := newFixture(t, nil, 0)
	var entries []string
	for i := 0; i < 10; i++ {
		entries = append(entries, structured(fmt.Sprintf("e-%d", i), runData(fmt.Sprintf("abcdef%d", i))))
	}
	entries[3] = `{"specversion":"1.0","id":"e-3","type":"t"}`
	entries[7] = structured("e-7", `{"repository":"github.com/acme/payments","commit":"abcdef7","run_id":"1","outcome":"maybe"}`)
	code, r := f.post(t, ct(api.MediaBatch), "["+strings.Join(entries, ",")+"]")
	if code != 400 {
		t.Fatalf("status %d", code)
	}
	if len(r.Errors) != 2 || r.Errors[0].Index != 3 || r.Errors[0].ID != "e-3" || r.Errors[0].Field != "source" ||
		r.Errors[1].Index != 7 || r.Errors[1].Field != "data/outcome" {
		t.Fatalf("invalid = %+v", r.Errors)
	}
	if !strings.Contains(r.Detail, "2 of 10 events are invalid; nothing was stored") {
		t.Fatalf("error = %q", r.Detail)
	}
	if n := f.streamCount(t); n != 0 {
		t.Fatalf("an invalid batch stored %d events", n)
	}
}

func TestAccessControl(t *testing.T) {
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("# test tokens\nproducer %s ci\ngate %s deployer\nadmin %s ops\n",
		auth.Hash("tok-producer"), auth.Hash("tok-gate"), auth.Hash("tok-admin"))))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, tokens, 0)
	body := structured("a-1", runData("abcdef1"))
	for _, tc := range []struct {
		auth   string
		code   int
		errHas string
	}{
		{"", 401, "missing bearer token"},
		{"Basic Zm9vOmJhcg==", 401, "missing bearer token"},
		{"Bearer nope", 401, "unknown token"},
		{"Bearer tok-gate", 403, "token deployer has role gate; this endpoint needs role producer"},
		{"Bearer tok-producer", 202, ""},
		{"bearer tok-admin", 202, ""},
	} {
		h := ct(api.MediaStructured)
		if tc.auth != "" {
			h.Set("Authorization", tc.auth)
		}
		code, r := f.post(t, h, body)
		if code != tc.code || !strings.Contains(r.Detail, tc.errHas) {
			t.Errorf("Authorization %q: %d %q, want %d %q", tc.auth, code, r.Detail, tc.code, tc.errHas)
		}
	}
	// Health and metrics stay open.
	for _, p := range []string{"/healthz", "/metrics"} {
		resp, err := http.Get(f.srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
}

func TestTokensFileErrors(t *testing.T) {
	for in, want := range map[string]string{
		"producer abc ci\n":                 "not a SHA-256 hex digest",
		"root " + auth.Hash("x") + " ci\n":  `unknown role "root"`,
		"producer " + auth.Hash("x") + "\n": "want ROLE SHA256-HEX NAME",
		"# nothing\n":                       "no tokens",
		"gate " + auth.Hash("x") + " a\nadmin " + auth.Hash("x") + " b\n": "already given to a",
	} {
		_, err := auth.Parse(bytes.NewBufferString(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", in, err, want)
		}
	}
}

// TestPartialStoreIsReported makes JetStream refuse some events of a batch
// (a stream limit with discard-new) and checks that the 503 answer says
// exactly which events were stored.
func TestPartialStoreIsReported(t *testing.T) {
	f := newFixture(t, nil, 0)
	ctx := context.Background()
	s, err := f.js.JS.Stream(ctx, bus.EventStream)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.MaxMsgs, cfg.Discard = 5, jetstream.DiscardNew
	if _, err := f.js.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var entries []string
	for i := 0; i < 8; i++ {
		entries = append(entries, structured(fmt.Sprintf("p-%d", i), runData(fmt.Sprintf("abcdef%d", i))))
	}
	code, r := f.post(t, ct(api.MediaBatch), "["+strings.Join(entries, ",")+"]")
	if code != 503 || r.Stored != 5 || r.Accepted != 5 || len(r.Events) != 8 {
		t.Fatalf("status %d, %+v", code, r)
	}
	for i, e := range r.Events {
		stored := e.Seq != 0 && e.Error == ""
		if stored != (i < 5) {
			t.Fatalf("event %d: %+v; want the first five stored and the rest refused", i, e)
		}
	}
	if !strings.Contains(r.Detail, "3 of 8 events were not stored") {
		t.Fatalf("error = %q", r.Detail)
	}
}

func TestMetricsCountTheReceiver(t *testing.T) {
	js := testenv.NATS(t)
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := api.New(api.Config{Publisher: bus.NewPublisher(js.JS), Catalog: cat, Gatherer: reg, Metrics: metrics.New(reg)})
	srv := apitest.NewServer(t, s)
	defer srv.Close()
	f := &fixture{srv: srv, js: js}
	f.post(t, ct(api.MediaBatch), "["+structured("m-1", runData("abcdef1"))+","+structured("m-2", runData("abcdef2"))+"]")
	f.post(t, ct(api.MediaStructured), `{"specversion":"1.0"}`)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`evidence_stage_received_total{stage="receiver"} 3`,
		`evidence_stage_written_total{stage="receiver"} 2`,
		`evidence_stage_failed_total{reason="invalid",stage="receiver"} 1`,
		`evidence_stage_latency_seconds_count{stage="receiver"} 2`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestCDEvents posts real CDEvents v0.5.1 conformance examples as they are,
// and a broken one, which is refused naming the path.
func TestCDEvents(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "corpus", "cdevents", "spec-v0.5.1", "conformance")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		if testenv.InCI() {
			t.Fatalf("CDEvents corpus missing in CI: %s", dir)
		}
		t.Skipf("CDEvents corpus not found at %s", dir)
	}
	f := newFixture(t, nil, 0)
	for i, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Context struct {
				Type string `json:"type"`
			} `json:"context"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf(`{"specversion":"1.0","id":"cde-%d","source":"/event/source/123","type":%q,"data":%s}`, i, head.Context.Type, data)
		if code, r := f.post(t, ct(api.MediaStructured), body); code != 202 {
			t.Errorf("%s: %d %+v", filepath.Base(file), code, r)
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "service_deployed.json"))
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(data), `"artifactId"`, `"artifactID"`, 1)
	code, r := f.post(t, ct(api.MediaStructured), `{"specversion":"1.0","id":"cde-bad","source":"s","type":"dev.cdevents.service.deployed.0.3.0","data":`+broken+`}`)
	if code != 400 || len(r.Errors) == 0 {
		t.Fatalf("broken service.deployed: %d %+v", code, r)
	}
	paths := []string{}
	for _, p := range r.Errors {
		paths = append(paths, p.Field)
	}
	if !slices.Contains(paths, "data/subject/content/artifactId") {
		t.Fatalf("problems %v do not name data/subject/content/artifactId", paths)
	}
}

// TestEmitterReadsProblems: the producers' client (producers/emitter), told
// no by the real receiver, reports the problem's detail and each refused
// event's field, as evidence emit prints them.
func TestEmitterReadsProblems(t *testing.T) {
	f := newFixture(t, nil, 0)
	c := emitter.New(f.srv.URL, "")
	batch := `[` + structured("ok-1", runData("c0ffee1")) + `,{"specversion":"1.0","id":"bad-1","type":"` + runType + `","data":` + runData("c0ffee1") + `}]`
	_, err := c.Post(context.Background(), api.MediaBatch, []byte(batch))
	var ref *emitter.RefusedError
	if !errors.As(err, &ref) || ref.Status != 400 {
		t.Fatalf("err %v, want a refusal", err)
	}
	// Hand-worked: entry 1 has no source; nothing was stored.
	if ref.Message != "1 of 2 events are invalid; nothing was stored" || len(ref.Problems) != 1 ||
		!strings.HasPrefix(ref.Problems[0], "event 1 (bad-1): source: ") {
		t.Fatalf("message %q, problems %q", ref.Message, ref.Problems)
	}
}
