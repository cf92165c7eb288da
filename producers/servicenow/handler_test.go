package servicenow_test

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
	post := func(h http.Handler, signature string, body []byte) (int, webhook.Response) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/webhooks/servicenow", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if signature != "" {
			req.Header.Set("X-Evidence-Signature", signature)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var r webhook.Response
		if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
			t.Fatalf("response %q: %v", rec.Body.String(), err)
		}
		return rec.Code, r
	}
	body := fixture(t, "approved.json")
	h := webhook.NewHandler(newProvider(), "s3cret", bus.NewPublisher(env.JS), 0, nil, nil)

	code, r := post(h, signBase64("s3cret", body), body)
	if code != http.StatusAccepted || r.Accepted != 4 || r.Duplicates != 0 {
		t.Fatalf("signed post: %d %+v, want 202 with 4 events accepted", code, r)
	}
	want := []string{"dev.evidencepipeline.ticket.transitioned.v1", "dev.evidencepipeline.ticket.approved.v1", "dev.evidencepipeline.ticket.approved.v1", typeRaw}
	if strings.Join(r.Events, ",") != strings.Join(want, ",") {
		t.Errorf("events %v, want %v", r.Events, want)
	}
	if n := streamCount(); n != 4 {
		t.Fatalf("stream holds %d events, want 4", n)
	}

	code, r = post(h, signBase64("s3cret", body), body)
	if code != http.StatusAccepted || r.Duplicates != r.Accepted || r.Accepted != 4 {
		t.Errorf("replay: %d %+v, want every event a duplicate", code, r)
	}
	if n := streamCount(); n != 4 {
		t.Errorf("after the replay the stream holds %d events, want 4", n)
	}

	code, r = post(h, signBase64("guess", body), body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Error, "X-Evidence-Signature") {
		t.Errorf("bad signature: %d %+v, want 401 naming the header", code, r)
	}
	code, r = post(h, "", body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Error, "neither") {
		t.Errorf("no signature: %d %+v, want 401 saying it is missing", code, r)
	}

	unconfigured := webhook.NewHandler(newProvider(), "", bus.NewPublisher(env.JS), 0, nil, nil)
	code, r = post(unconfigured, signBase64("s3cret", body), body)
	if code != http.StatusUnauthorized || !strings.Contains(r.Error, "EVIDENCE_SERVICENOW_SECRET") {
		t.Errorf("no secret configured: %d %+v, want 401 naming EVIDENCE_SERVICENOW_SECRET", code, r)
	}
	if n := streamCount(); n != 4 {
		t.Errorf("refused deliveries stored events: the stream holds %d, want 4", n)
	}
}
