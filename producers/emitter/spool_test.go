package emitter_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/producers/emitter"
)

// fakeEvidenced answers each event id as told: "ok", "dup", "refuse" or
// "down", and records the ids it was sent, in order.
type fakeEvidenced struct {
	mu     sync.Mutex
	answer map[string]string
	got    []string
}

func (f *fakeEvidenced) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var e event.Event
	if err := json.Unmarshal(body, &e); err != nil {
		http.Error(w, `{"error":"bad body"}`, http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.got = append(f.got, e.ID())
	a := f.answer[e.ID()]
	f.mu.Unlock()
	switch a {
	case "down":
		http.Error(w, `{"error":"stream unavailable"}`, http.StatusServiceUnavailable)
	case "refuse":
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"the event is invalid","invalid":[{"index":0,"id":"`+e.ID()+`","field":"data/outcome","message":"required property is missing"}]}`)
	default:
		w.WriteHeader(http.StatusAccepted)
		dup := a == "dup"
		b, _ := json.Marshal(map[string]any{"accepted": 1, "stored": map[bool]int{true: 0, false: 1}[dup], "duplicates": map[bool]int{true: 1, false: 0}[dup],
			"events": []map[string]any{{"index": 0, "id": e.ID(), "source": e.Source(), "seq": 1, "duplicate": dup}}})
		w.Write(b)
	}
}

func (f *fakeEvidenced) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.got...)
}

func names(t *testing.T, paths []string) []string {
	t.Helper()
	out := make([]string, len(paths))
	for i, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var evs []event.Event
		if err := json.Unmarshal(b, &evs); err != nil || len(evs) != 1 {
			t.Fatalf("%s: %v (%d events)", p, err, len(evs))
		}
		out[i] = evs[0].ID()
	}
	return out
}

func TestSpoolPutWritesOneFilePerSend(t *testing.T) {
	sp := emitter.Spool{Dir: filepath.Join(t.TempDir(), "spool")}
	if _, err := sp.Put(); !errors.Is(err, emitter.ErrNoEvents) {
		t.Fatalf("Put without events: %v", err)
	}
	var paths []string
	for _, id := range []string{"c", "a/../../x", "b"} {
		p, err := sp.Put(ev(id))
		if err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		if filepath.Dir(p) != sp.Dir {
			t.Fatalf("spool file %s outside the spool", p)
		}
		st, err := os.Stat(p)
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("spool file %s: %v, mode %v", p, err, st.Mode())
		}
	}
	p, err := sp.Put(ev("d"), ev("e"))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := sp.Pending()
	if err != nil || len(pending) != 4 || pending[3] != p {
		t.Fatalf("pending %v, %v", pending, err)
	}
	if got := names(t, pending[:3]); strings.Join(got, " ") != "c a/../../x b" {
		t.Fatalf("spool order %v, want the order of Put", got)
	}
	entries, _ := os.ReadDir(sp.Dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
	if st, _ := os.Stat(sp.Dir); st.Mode().Perm() != 0o700 {
		t.Errorf("spool directory mode %v", st.Mode().Perm())
	}
}

func TestSpoolFlush(t *testing.T) {
	fake := &fakeEvidenced{answer: map[string]string{"dup": "dup", "bad": "refuse", "later": "down"}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	c := emitter.New(srv.URL, "")
	c.Attempts, c.MinBackoff = 1, time.Millisecond

	dir := t.TempDir()
	var told []string
	sp := emitter.Spool{Dir: dir, OnFlush: func(f emitter.FlushedFile) { told = append(told, f.State+":"+strings.SplitN(f.Name, "-", 2)[1]) }}
	for _, id := range []string{"one", "dup", "bad", "two", "later", "three"} {
		if _, err := sp.Put(ev(id)); err != nil {
			t.Fatal(err)
		}
	}
	// An unreadable file is not sent and not lost: it goes to refused/.
	if err := os.WriteFile(filepath.Join(dir, "20000101T000000.000000000Z-garbage.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}

	sent, failed, err := sp.Flush(context.Background(), c)
	if !errors.Is(err, emitter.ErrUnavailable) {
		t.Fatalf("flush stopped with %v, want ErrUnavailable", err)
	}
	// Sent in order, stopping at the first unavailable send.
	if got := strings.Join(fake.sent(), " "); got != "one dup bad two later" {
		t.Fatalf("sent %q", got)
	}
	if sent != 3 || failed != 2 {
		t.Fatalf("sent %d failed %d, want 3 and 2 (garbage and bad)", sent, failed)
	}
	want := "refused:garbage.json sent:one.json sent:dup.json refused:bad.json sent:two.json kept:later.json"
	if got := strings.Join(told, " "); got != want {
		t.Fatalf("OnFlush told %q, want %q", got, want)
	}
	pending, _ := sp.Pending()
	if got := strings.Join(names(t, pending), " "); got != "later three" {
		t.Fatalf("kept %q, want later and three in order", got)
	}
	refused, _ := sp.Refused()
	if len(refused) != 2 {
		t.Fatalf("refused %v", refused)
	}
	for _, p := range refused {
		reason, err := os.ReadFile(p + ".reason")
		if err != nil {
			t.Fatalf("no reason beside %s: %v", p, err)
		}
		switch {
		case strings.HasSuffix(p, "-bad.json"):
			if !strings.Contains(string(reason), "refused by evidenced (400 Bad Request)") {
				t.Errorf("reason %q", reason)
			}
			if got := names(t, []string{p}); got[0] != "bad" {
				t.Errorf("refused file holds %v", got)
			}
		case strings.HasSuffix(p, "-garbage.json"):
			if !strings.Contains(string(reason), "unreadable spool file") {
				t.Errorf("reason %q", reason)
			}
		default:
			t.Errorf("unexpected refused file %s", p)
		}
	}

	// evidenced is back: the rest goes, in order, and the spool is empty.
	fake.mu.Lock()
	delete(fake.answer, "later")
	fake.mu.Unlock()
	sent, failed, err = sp.Flush(context.Background(), c)
	if err != nil || sent != 2 || failed != 0 {
		t.Fatalf("second flush: sent %d failed %d err %v", sent, failed, err)
	}
	if got := strings.Join(fake.sent(), " "); got != "one dup bad two later later three" {
		t.Fatalf("sent %q", got)
	}
	if pending, _ := sp.Pending(); len(pending) != 0 {
		t.Fatalf("left %v", pending)
	}
	// An empty or missing spool flushes nothing.
	if s, f, err := (emitter.Spool{Dir: filepath.Join(dir, "none")}).Flush(context.Background(), c); s != 0 || f != 0 || err != nil {
		t.Fatalf("missing spool: %d %d %v", s, f, err)
	}
}

func TestSpoolFlushStopsWhenCancelled(t *testing.T) {
	fake := &fakeEvidenced{}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	sp := emitter.Spool{Dir: t.TempDir()}
	if _, err := sp.Put(ev("a")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := sp.Flush(ctx, emitter.New(srv.URL, "")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v", err)
	}
	if p, _ := sp.Pending(); len(p) != 1 || len(fake.sent()) != 0 {
		t.Fatalf("pending %v, sent %v", p, fake.sent())
	}
}
