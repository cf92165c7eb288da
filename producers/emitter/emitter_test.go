package emitter_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/producers/emitter"
)

func ev(id string) event.Event {
	e := event.New()
	e.SetID(id)
	e.SetSource("https://ci.example")
	e.SetType("com.example.test")
	_ = e.SetData("application/json", map[string]int{"n": 1})
	return e
}

func TestRetriesUntilAccepted(t *testing.T) {
	var calls atomic.Int32
	var gotCT, gotAuth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		gotCT, gotAuth = r.Header.Get("Content-Type"), r.Header.Get("Authorization")
		switch n {
		case 1:
			http.Error(w, `{"error":"stream unavailable"}`, http.StatusServiceUnavailable)
		case 2:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			body, _ := io.ReadAll(r.Body)
			if !strings.HasPrefix(string(body), "[") {
				t.Errorf("two events were not sent as a batch: %s", body)
			}
			w.WriteHeader(http.StatusAccepted)
			io.WriteString(w, `{"accepted":2,"stored":2,"events":[{"index":0,"id":"a","seq":1},{"index":1,"id":"b","seq":2}]}`)
		}
	}))
	defer srv.Close()
	c := emitter.New(srv.URL, "tok")
	c.MinBackoff = time.Millisecond
	var retries []int
	c.OnRetry = func(n int, err error, wait time.Duration) { retries = append(retries, n) }
	res, err := c.Send(context.Background(), ev("a"), ev("b"))
	if err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 3 || len(retries) != 2 || res.Stored != 2 || res.Events[1].Seq != 2 {
		t.Fatalf("calls %d, retries %v, result %+v", calls.Load(), retries, res)
	}
	if gotCT != "application/cloudevents-batch+json" || gotAuth != "Bearer tok" {
		t.Fatalf("content type %q, authorization %q", gotCT, gotAuth)
	}
}

func TestRefusalIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"the event is invalid (2 problems)","invalid":[{"index":0,"id":"a","field":"data/x","message":"bad"},{"index":0,"id":"a","field":"data/y","message":"worse"}]}`)
	}))
	defer srv.Close()
	c := emitter.New(srv.URL, "")
	_, err := c.Send(context.Background(), ev("a"))
	var ref *emitter.RefusedError
	if !errors.As(err, &ref) || ref.Status != 400 || len(ref.Problems) != 2 || calls.Load() != 1 {
		t.Fatalf("err %v, calls %d", err, calls.Load())
	}
	if !strings.Contains(err.Error(), "event 0 (a): data/y: worse") {
		t.Fatalf("message does not list the problems: %v", err)
	}
}

func TestGivesUp(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Error(w, "down", http.StatusBadGateway)
	}))
	defer srv.Close()
	c := emitter.New(srv.URL, "")
	c.Attempts, c.MinBackoff = 3, time.Millisecond
	_, err := c.Send(context.Background(), ev("a"))
	if !errors.Is(err, emitter.ErrUnavailable) || calls.Load() != 3 || !strings.Contains(err.Error(), "gave up after 3 attempts: 502 Bad Gateway") {
		t.Fatalf("err %v, calls %d", err, calls.Load())
	}
}
