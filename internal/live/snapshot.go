package live

import (
	"context"
	"sync"
	"time"
)

// The posture summary reads the whole history (the newest result of every
// change and control that ever failed or was pending, every production
// deployment of the last 7 days, the late evidence): seconds at 100,000
// deployments on a loaded machine. So it is read by one computation at a
// time, in the background, and the pages serve the newest one, on these
// terms:
//
//   - never behind the stream: a request is answered from a summary read
//     after the newest verdict the page has received when it asks (the
//     page re-reads the summary after each verdict of its stream);
//   - ended at most postureFresh ago: an older one is still served, up
//     to postureStale after it ended, while a new one is read in the
//     background (so a ClickHouse that went down shows as such within
//     seconds: its reading fails at once);
//   - otherwise the request waits for the next one, up to its query
//     timeout, and then gets the newest there is.
//
// A verdict received while someone looked at the page in the last
// postureWatch starts a new reading, so it is ready when the page asks.
const (
	postureFresh = 5 * time.Second
	postureStale = 2 * time.Minute
	postureWatch = 5 * time.Minute
)

// postureCache holds the newest posture summary read.
type postureCache struct {
	mu      sync.Mutex
	cur     *postureSnap
	running bool
	again   bool
	done    chan struct{} // closed when the running reading ends
	asked   time.Time     // the last request
}

type postureSnap struct {
	p     Posture
	seq   uint64    // the newest verdict received when the reading began
	ended time.Time // when it ended (its AsOf is when it began)
}

// kickLocked starts a reading, or asks the running one to be followed by another;
// it returns a channel closed when the running (or started) reading ends.
// The caller holds mu.
func (h *Handler) kickLocked() <-chan struct{} {
	c := &h.pc
	if c.done == nil {
		c.done = make(chan struct{})
	}
	if c.running {
		c.again = true
	} else {
		c.running = true
		go h.readPostures()
	}
	return c.done
}

func (h *Handler) readPostures() {
	c := &h.pc
	for {
		seq, start := h.broker.last(), time.Now()
		ctx, cancel := context.WithTimeout(h.bg, h.cfg.ReadTimeout)
		p := h.readPostureNow(ctx)
		cancel()
		c.mu.Lock()
		c.cur = &postureSnap{p: p, seq: seq, ended: time.Now()}
		h.log.Debug("live: posture read", "took", time.Since(start), "available", p.Available)
		close(c.done)
		c.done = make(chan struct{})
		if c.again {
			c.again = false
			c.mu.Unlock()
			continue
		}
		c.running = false
		c.mu.Unlock()
		return
	}
}

// posture is the summary on the terms above.
func (h *Handler) posture(ctx context.Context) Posture {
	if h.cfg.Store() == nil {
		return h.readPostureNow(ctx)
	}
	want := h.broker.last()
	c := &h.pc
	for {
		c.mu.Lock()
		c.asked = time.Now()
		s := c.cur
		if s != nil && s.seq >= want && time.Since(s.ended) < postureFresh {
			c.mu.Unlock()
			return s.p
		}
		done := h.kickLocked()
		if s != nil && s.seq >= want && time.Since(s.ended) < postureStale {
			c.mu.Unlock()
			return s.p
		}
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			c.mu.Lock()
			defer c.mu.Unlock()
			if c.cur != nil {
				return c.cur.p
			}
			return Posture{AsOf: h.cfg.Now().UTC(), Error: "the posture summary is still being read: " + ctx.Err().Error()}
		}
	}
}

// verdictReceived starts a new reading when someone looks at the page.
func (h *Handler) verdictReceived() {
	c := &h.pc
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.asked.IsZero() && time.Since(c.asked) < postureWatch {
		h.kickLocked()
	}
}
