package daemon_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"mime"
	"net/http"
	"net/textproto"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/ce"
)

var ingestStrict = flag.Bool("ingest.strict", false, "fail, rather than skip, on inputs that show a known defect (see defects)")

// Fuzz inputs are (mode, header, body): mode%4 is 0 for structured mode
// (Content-Type set to application/cloudevents+json), 1 for batch mode,
// 2 for the header lines as given (binary mode, or whatever they say), 3
// for binary mode with the required attributes filled in where the lines
// lack them (so that mutations of the rest stay in binary mode); header
// is "Name: value" lines separated by "\n".
const (
	modeStructured byte = iota
	modeBatch
	modeHeaders
	modeBinary
	modes
)

// binaryDefaults are the attributes mode 3 adds when absent.
var binaryDefaults = [][2]string{{"Ce-Specversion", "1.0"}, {"Ce-Id", "fuzz"}, {"Ce-Source", "https://fuzz.example"}, {"Ce-Type", "com.example.fuzz"}}

// encodeHeader writes h as fuzz header lines, names sorted.
func encodeHeader(h http.Header) []byte {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	sort.Strings(names)
	var b bytes.Buffer
	for _, k := range names {
		for _, v := range h[k] {
			b.WriteString(k + ": " + v + "\n")
		}
	}
	return b.Bytes()
}

// hopByHop are headers the HTTP client writes itself, or that would make
// it wait (Expect): not taken from fuzz input.
var hopByHop = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true, "Te": true,
	"Trailer": true, "Upgrade": true, "Expect": true, "Keep-Alive": true, "Proxy-Connection": true,
}

// decodeHeader reads fuzz header lines as the server will see them:
// lines the HTTP client could not send (a name that is not a token, a
// control character in a value) are dropped, values are trimmed as the
// server trims them, names canonicalized.
func decodeHeader(b []byte) http.Header {
	h := http.Header{}
	for _, line := range bytes.Split(b, []byte("\n")) {
		i := bytes.IndexByte(line, ':')
		if i <= 0 {
			continue
		}
		name, value := string(line[:i]), strings.Trim(string(line[i+1:]), " \t")
		if !validHeaderName(name) || !validHeaderValue(value) {
			continue
		}
		name = textproto.CanonicalMIMEHeaderKey(name)
		if hopByHop[name] {
			continue
		}
		h.Add(name, value)
	}
	return h
}

func validHeaderName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return s != ""
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// doorReading is what the door's parsers (ce) make of a request, in the
// mode the receiver chooses: the events, each admitted (ce.Event.Admit),
// or why the request must be refused. The receiver also checks the
// catalog and the correlation stage, so it may refuse what this accepts;
// never the other way round.
func doorReading(h http.Header, body []byte) (string, []*ce.Event, error) {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	switch {
	case mt == api.MediaBatch:
		raws, err := ce.ParseBatch(body)
		if err != nil {
			return "batch", nil, err
		}
		var events []*ce.Event
		for i, raw := range raws {
			e, err := ce.ParseJSON(raw)
			if err == nil {
				err = e.Admit()
			}
			if err != nil {
				return "batch", nil, fmt.Errorf("entry %d: %w", i, err)
			}
			events = append(events, e)
		}
		return "batch", events, nil
	case mt == api.MediaStructured:
		e, err := ce.ParseJSON(body)
		if err == nil {
			err = e.Admit()
		}
		return "structured", []*ce.Event{e}, err
	case ce.IsBinary(h):
		e, err := ce.FromBinary(h, body)
		if err == nil {
			err = e.Admit()
		}
		return "binary", []*ce.Event{e}, err
	}
	return "", nil, errors.New("unsupported media type")
}

// storedForm is the canonical form the stages see of an event published
// as canonical: what ce.ParseStored reads back from the stream.
func storedForm(canonical []byte) ([]byte, error) {
	e, err := ce.ParseStored(canonical)
	if err != nil {
		return nil, err
	}
	return e.MarshalCanonical(), nil
}

// isB1 reports whether the only difference between an event and the form
// the stages read of it is defect B1: binary-mode JSON data with
// whitespace around the value, or null, that the stream copy carries and
// the stages' parse drops.
func isB1(mode string, e *ce.Event, stored []byte) bool {
	if mode != "binary" || !e.IsJSONData() {
		return false
	}
	c := *e
	c.Data = bytes.Trim(e.Data, " \t\r\n")
	if string(c.Data) == "null" {
		c.Data = nil
	}
	return !bytes.Equal(c.Data, e.Data) && bytes.Equal(c.MarshalCanonical(), stored)
}

// ingest posts one fuzz input and checks what the answer promises: an
// answer within answerTimeout, never a 5xx; a refusal stores nothing;
// an acceptance is what the door's parsers accept, and every event
// accepted is archived exactly (its row rebuilds the canonical form that
// was published), chained to the row before it, not dead-lettered; and
// evidenced stays ready.
func (o *archiveOracle) ingest(t *testing.T, mode byte, header, body []byte) {
	start := time.Now()
	status := 0
	defer func() {
		o.trace("ingest mode=%d status=%d took=%s len=%d", mode%modes, status, time.Since(start), len(body))
	}()
	h := decodeHeader(header)
	switch mode % modes {
	case modeStructured:
		h.Set("Content-Type", api.MediaStructured)
	case modeBatch:
		h.Set("Content-Type", api.MediaBatch)
	case modeBinary:
		for _, kv := range binaryDefaults {
			if len(h[kv[0]]) == 0 {
				h.Set(kv[0], kv[1])
			}
		}
	}
	before := o.lastSeq(t)
	code, answer, err := o.send("/v1/events", h, body)
	status = code
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if code >= 500 {
		t.Fatalf("answered %d: %s", code, clip(answer))
	}
	how, events, perr := doorReading(h, body)
	if code != 202 {
		if after := o.lastSeq(t); after != before {
			t.Fatalf("refused (%d: %s), yet the event stream went from seq %d to %d", code, clip(answer), before, after)
		}
		o.ready(t)
		if code == 400 && how == "batch" && lenientArray(body) {
			// docs/api.md: a 400 lists each problem; "(batch)" is for a
			// body that is not an array.
			var resp api.EventsResponse
			decodeAnswer(t, answer, &resp)
			if len(resp.Errors) == 0 {
				knownDefect(t, "B2", fmt.Sprintf("a JSON array answered %s", clip(answer)))
			}
		}
		return
	}
	if perr != nil {
		t.Fatalf("accepted (%s), but the door's parsers refuse it: %v", clip(answer), perr)
	}
	var resp api.EventsResponse
	decodeAnswer(t, answer, &resp)
	if len(resp.Events) != len(events) || resp.Accepted != len(events) {
		t.Fatalf("%s: %d events sent, answer %s", how, len(events), clip(answer))
	}
	o.accepted++
	var b1 []string
	var seqs []uint64
	for i, e := range events {
		r := resp.Events[i]
		if r.ID != e.ID || r.Source != e.Source {
			t.Fatalf("event %d answered as %q from %q, sent %q from %q", i, r.ID, r.Source, e.ID, e.Source)
		}
		canon := e.MarshalCanonical()
		stored, err := storedForm(canon)
		if err != nil {
			t.Fatalf("event %d: the stages cannot read what was published: %v\n%q", i, err, canon)
		}
		if !bytes.Equal(stored, canon) {
			if !isB1(how, e, stored) {
				t.Fatalf("event %d: the stages read\n%q\nof what was published as\n%q", i, stored, canon)
			}
			b1 = append(b1, fmt.Sprintf("data %q published as sent, archived as %q", clipRaw(e.Data), clipRaw(dataOf(stored))))
		}
		o.expect(t, r.Seq, stored, r.Duplicate)
		seqs = append(seqs, r.Seq)
	}
	o.settle(t) // archived or dead-lettered, each event of the stream
	for _, seq := range seqs {
		o.checkRow(t, seq)
	}
	o.ready(t)
	if o.accepted%100 == 0 {
		o.verifyAll(t)
	}
	if len(b1) > 0 {
		knownDefect(t, "B1", strings.Join(b1, "; "))
	}
}

// lenientArray reports whether b is a JSON array as encoding/json reads
// JSON (a member twice, invalid UTF-8 and lone surrogates allowed).
func lenientArray(b []byte) bool {
	t := bytes.TrimLeft(b, " \t\r\n")
	return len(t) > 0 && t[0] == '[' && json.Valid(b)
}

// dataOf is the data member of a canonical event ("" for none).
func dataOf(canonical []byte) []byte {
	e, err := ce.ParseStored(canonical)
	if err != nil || e.Data == nil {
		return nil
	}
	return e.Data
}

// ingestSeeds are the fuzz seeds: every case of the door's rules (but
// the 1 MiB type, posted by TestIngestRules: a 1 MiB seed would make
// every mutation slow), and valid events in all three modes.
func ingestSeeds() [][3][]byte {
	var out [][3][]byte
	add := func(mode byte, h http.Header, body string) {
		out = append(out, [3][]byte{{mode}, encodeHeader(h), []byte(body)})
	}
	for _, r := range rules() {
		if len(r.body) > 64<<10 {
			continue
		}
		h := r.header.Clone()
		mode := modeHeaders
		switch h.Get("Content-Type") {
		case api.MediaStructured:
			mode = modeStructured
			h.Del("Content-Type")
		case api.MediaBatch:
			mode = modeBatch
			h.Del("Content-Type")
		}
		add(mode, h, r.body)
	}
	full := `{"specversion":"1.0","id":"seed-full","source":"https://ci.example/seed","type":"com.example.seed","subject":"a/b",` +
		`"time":"2026-06-01T12:00:00.123456789+02:00","datacontenttype":"application/json","dataschema":"https://schema.example/s",` +
		`"team":"payments","count":7,"flag":true,"data":{"s":"\u00e9\ud83d\ude00<>&","n":[-0,1e-7,12345678901234567890,1.0],"b":[true,false,null]}}`
	b64 := `{"specversion":"1.0","id":"seed-b64","source":"https://ci.example/seed","type":"com.example.seed","datacontenttype":"application/octet-stream","data_base64":"AAECAwT/"}`
	catalog := fmt.Sprintf(`{"specversion":"1.0","id":"seed-run","source":"https://ci.example","type":%q,"time":"2026-11-25T10:00:00Z","data":%s}`, runType, validData(1))
	for _, body := range []string{ev("seed-min", ""), full, b64, catalog} {
		add(modeStructured, http.Header{}, body)
		add(modeBatch, http.Header{}, "["+body+"]")
	}
	add(modeBatch, http.Header{}, "["+ev("seed-b1", "")+","+ev("seed-b2", `,"data":"x"`)+","+ev("seed-b3", `,"data":[1,{"k":null}]`)+"]")
	add(modeHeaders, binaryHeader("seed-bin", "Ce-Subject", "caf%C3%A9%20%22x%22", "Ce-Time", "2105-12-31T23:59:59.999999999Z",
		"Ce-Team", "%E7%9B%B4%25"), `{"a":[1,"\u00e9"]}`)
	h := binaryHeader("seed-bin-text", "Ce-Dataschema", "https://schema.example/t")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	add(modeHeaders, h, "plain text, not JSON: \xff\x00")
	h = binaryHeader("seed-bin-empty")
	h.Del("Content-Type")
	add(modeHeaders, h, "")
	add(modeBinary, http.Header{"Content-Type": {"application/json"}}, `{"k":[1,2.5,"x"]}`)
	add(modeBinary, http.Header{"Ce-Subject": {"s%20t"}, "Ce-Team": {"a"}}, `"text"`)
	add(modeBinary, http.Header{"Content-Type": {"application/octet-stream"}, "Ce-Time": {"1970-01-01T00:00:01Z"}}, "\x00\x01")
	return out
}

// FuzzIngest posts requests to one evidenced (started once for the fuzz
// process) and checks, per request, what the door promises (see ingest);
// every 100 accepted requests, and at the end, the whole archive is
// checked as evidence verify checks it. Seeds: the door's rule cases
// and valid events in every mode (ingestSeeds), and testdata/fuzz.
func FuzzIngest(f *testing.F) {
	for _, s := range ingestSeeds() {
		f.Add(s[0][0], s[1], s[2])
	}
	o := newArchiveOracle(f)
	f.Cleanup(func() {
		o.verifyAll(f)
		o.ready(f)
	})
	f.Fuzz(func(t *testing.T, mode byte, header, body []byte) {
		o.ingest(t, mode, header, body)
	})
}
