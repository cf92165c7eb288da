package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/schemas"
)

// discard acknowledges every event at once: the benchmark measures the
// receiver's own work (parsing, validation, canonical encoding, answer);
// the end-to-end figure with JetStream is internal/bench/ingest.
type discard struct{ seq uint64 }

func (d *discard) Publish(ctx context.Context, evs []*ce.Event) ([]bus.Published, error) {
	out := make([]bus.Published, len(evs))
	for i, e := range evs {
		_ = bus.Message(e)
		d.seq++
		out[i].Seq = d.seq
	}
	return out, nil
}

func BenchmarkReceiverBatch1000(b *testing.B) { benchReceiver(b, nil) }

// BenchmarkReceiverBatch1000Admit adds what evidenced adds: the
// correlation stage's admission check (extraction and keys) per event.
func BenchmarkReceiverBatch1000Admit(b *testing.B) {
	x := correlate.Extractor{}
	benchReceiver(b, func(e *ce.Event) error { return x.Admit(e, 1<<20) })
}

func benchReceiver(b *testing.B, admit func(*ce.Event) error) {
	cat, err := schemas.Load()
	if err != nil {
		b.Fatal(err)
	}
	s := api.New(api.Config{Publisher: &discard{}, Catalog: cat, MaxBodyBytes: 64 << 20, Admit: admit})
	var body bytes.Buffer
	body.WriteByte('[')
	for i := 0; i < 1000; i++ {
		if i > 0 {
			body.WriteByte(',')
		}
		fmt.Fprintf(&body, `{"specversion":"1.0","id":"bench-%08d","source":"https://ci.example/acme/payments","type":"dev.evidencepipeline.pipelinerun.finished.v1","subject":"run/%d","time":"2026-11-25T10:00:00Z","data":{"repository":"github.com/acme/payments","commit":"%040x","run_id":"%d","run_url":"https://ci.example/acme/payments/runs/%d","pipeline":"build-and-deploy","system":"github-actions","outcome":"success","started_at":"2026-11-25T09:58:00Z","finished_at":"2026-11-25T10:00:00Z","notes":"%0600d"}}`, i, i, i, i, i, i)
	}
	body.WriteByte(']')
	raw := body.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := httptest.NewRequest("POST", "/v1/events", bytes.NewReader(raw))
		req.Host = "127.0.0.1" // open mode answers loopback names only
		req.Header.Set("Content-Type", api.MediaBatch)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "events/s")
}
