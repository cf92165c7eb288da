package gitlab_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/producers/webhook"
)

func TestHandler(t *testing.T) {
	env := testenv.NATS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	streamCount := func() uint64 {
		t.Helper()
		s, err := env.JS.Stream(ctx, bus.EventStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	post := func(h http.Handler, token string, body []byte) (int, webhook.Response) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/webhooks/gitlab", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Gitlab-Event", "Merge Request Hook")
		req.Header.Set("X-Gitlab-Event-UUID", "7f3c2a10-1b2c-4d5e-8f90-0a1b2c3d4e5f")
		if token != "" {
			req.Header.Set("X-Gitlab-Token", token)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var r webhook.Response
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatalf("response %q: %v", rec.Body.String(), err)
		}
		return rec.Code, r
	}
	body := fixture(t, "mr_merge.json")
	h := webhook.NewHandler(newProvider(), "s3cret", bus.NewPublisher(env.JS), 0, nil, nil)

	code, r := post(h, "s3cret", body)
	if code != http.StatusAccepted || r.Accepted != 2 || r.Duplicates != 0 {
		t.Fatalf("signed post: %d %+v, want 202 with 2 events accepted", code, r)
	}
	if want := []string{"dev.evidencepipeline.change.merged.v1", typeRaw}; strings.Join(r.Events, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", r.Events, want)
	}
	if n := streamCount(); n != 2 {
		t.Fatalf("stream holds %d events, want 2", n)
	}

	code, r = post(h, "s3cret", body)
	if code != http.StatusAccepted || r.Duplicates != r.Accepted || r.Accepted != 2 {
		t.Errorf("replay: %d %+v, want every event a duplicate", code, r)
	}
	if n := streamCount(); n != 2 {
		t.Errorf("after the replay the stream holds %d events, want 2", n)
	}

	code, r = post(h, "guess", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Error, "X-Gitlab-Token") {
		t.Errorf("bad token: %d %+v, want 401 naming the header", code, r)
	}
	code, r = post(h, "", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Error, "missing") {
		t.Errorf("no token: %d %+v, want 401 saying it is missing", code, r)
	}

	unconfigured := webhook.NewHandler(newProvider(), "", bus.NewPublisher(env.JS), 0, nil, nil)
	code, r = post(unconfigured, "s3cret", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Error, "EVIDENCE_GITLAB_TOKEN") {
		t.Errorf("no secret configured: %d %+v, want 401 naming EVIDENCE_GITLAB_TOKEN", code, r)
	}
	if n := streamCount(); n != 2 {
		t.Errorf("refused deliveries stored events: the stream holds %d, want 2", n)
	}
}
