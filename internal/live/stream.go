package live

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// item is one verdict as received, numbered in arrival order (the SSE id).
type item struct {
	Seq      uint64
	Received time.Time
	Verdict  evaluate.Verdict
	Raw      []byte
}

// broker keeps the latest verdicts (a ring, replayed to a client that
// reconnects with Last-Event-ID) and fans new ones out to the open streams.
// A client too slow to keep up is dropped; its browser reconnects and
// catches up from the ring.
type broker struct {
	mu      sync.Mutex
	seq     uint64
	ring    []item
	size    int
	clients map[chan item]struct{}
}

func newBroker(size int) *broker {
	return &broker{size: size, clients: map[chan item]struct{}{}}
}

func (b *broker) publish(v evaluate.Verdict, raw []byte, at time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	it := item{Seq: b.seq, Received: at, Verdict: v, Raw: raw}
	b.ring = append(b.ring, it)
	if len(b.ring) > b.size {
		b.ring = b.ring[len(b.ring)-b.size:]
	}
	for c := range b.clients {
		select {
		case c <- it:
		default:
			delete(b.clients, c)
			close(c)
		}
	}
}

// subscribe returns the items after seq still in the ring and a channel of
// the new ones.
func (b *broker) subscribe(after uint64) ([]item, chan item) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var backlog []item
	for _, it := range b.ring {
		if it.Seq > after {
			backlog = append(backlog, it)
		}
	}
	c := make(chan item, 64)
	b.clients[c] = struct{}{}
	return backlog, c
}

func (b *broker) unsubscribe(c chan item) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.clients[c]; ok {
		delete(b.clients, c)
		close(c)
	}
}

// recent is the newest n items, newest first.
func (b *broker) recent(n int) []item {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]item, 0, n)
	for i := len(b.ring) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, b.ring[i])
	}
	return out
}

func (b *broker) last() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.seq
}

// receive takes one message of the verdicts subject.
func (h *Handler) receive(m *nats.Msg) {
	var v evaluate.Verdict
	if err := json.Unmarshal(m.Data, &v); err != nil || v.Change == "" {
		h.log.Warn("live: ignored a message that is not a verdict", "subject", m.Subject, "err", err, "bytes", len(m.Data))
		return
	}
	raw := make([]byte, len(m.Data))
	copy(raw, m.Data)
	h.broker.publish(v, raw, h.cfg.Now())
	h.verdictReceived()
}

// events is the verdict stream (text/event-stream): each verdict as
//
//	id: <seq>
//	event: verdict
//	data: <the evaluate.Verdict JSON, as published>
//
// and, when the evaluation noted late evidence beside decided verdicts
// (which stand), a companion event right after it:
//
//	event: late
//	data: {"change": ..., "late": [<evaluate.LateNote>, ...]}
//
// a ": heartbeat" comment every Heartbeat, and a "retry" hint. A client
// that reconnects with Last-Event-ID (or ?after=) first gets the verdicts
// it missed that are still kept.
func (h *Handler) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	after := uint64(0)
	hasAfter := false
	for _, v := range []string{r.Header.Get("Last-Event-ID"), r.URL.Query().Get("after")} {
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			after, hasAfter = n, true
			break
		}
	}
	if !hasAfter {
		after = h.broker.last() // a new client: only what happens from now
	}
	backlog, c := h.broker.subscribe(after)
	defer h.broker.unsubscribe(c)

	w.Header().Set("Content-Type", "text/event-stream") // Cache-Control: no-store, as every page
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if _, err := fmt.Fprintf(w, "retry: 2000\n: evidence live verdicts\n\n"); err != nil {
		return
	}
	for _, it := range backlog {
		if writeItem(w, it) != nil {
			return
		}
	}
	fl.Flush()
	tick := time.NewTicker(h.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-h.closed:
			return
		case it, ok := <-c:
			if !ok {
				return // too slow: dropped; the browser reconnects
			}
			if writeItem(w, it) != nil {
				return
			}
			fl.Flush()
		case <-tick.C:
			if _, err := fmt.Fprintf(w, ": heartbeat %s\n\n", h.cfg.Now().UTC().Format(time.RFC3339)); err != nil {
				return
			}
			fl.Flush()
		}
	}
}

func writeItem(w http.ResponseWriter, it item) error {
	if _, err := fmt.Fprintf(w, "id: %d\nevent: verdict\ndata: %s\n\n", it.Seq, compact(it.Raw)); err != nil {
		return err
	}
	if len(it.Verdict.Late) == 0 {
		return nil
	}
	b, err := json.Marshal(struct {
		Change string              `json:"change"`
		Late   []evaluate.LateNote `json:"late"`
	}{it.Verdict.Change, it.Verdict.Late})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: late\ndata: %s\n\n", b)
	return err
}

// compact keeps the data on one line (a JSON value re-encoded without
// newlines), as the SSE format needs.
func compact(raw []byte) []byte {
	for _, c := range raw {
		if c == '\n' || c == '\r' {
			b, err := json.Marshal(json.RawMessage(raw))
			if err != nil {
				return []byte("{}")
			}
			return b
		}
	}
	return raw
}
