package chsink

import (
	"container/list"
	"sync"

	"github.com/evidencepipeline/evidence/internal/store"
)

// recent keeps the changes rows this sink wrote last, by change id, up to
// a total of max bytes of their records (least recently written forgotten
// first), so that Retire can write the tombstone of a record it wrote
// recently without reading the record back from changes FINAL.
//
// Why: a retirement follows the write of the record it retires by little
// (an unmatched deployment's record is retired when its change arrives,
// typically within the same burst), while reading the newest rows of a
// batch of ids spread over the whole table reads the record column of
// most of its granules: a cost that grows with history, and the one the
// correlation stage waited on most under load.
type recent struct {
	mu    sync.Mutex
	max   int64
	bytes int64
	order *list.List // of *store.ChangeRow, most recent at the front
	byID  map[string]*list.Element
}

func newRecent(max int64) *recent {
	return &recent{max: max, order: list.New(), byID: map[string]*list.Element{}}
}

func rowBytes(r *store.ChangeRow) int64 { return int64(len(r.Record) + len(r.ChangeID) + 256) }

// put keeps rows, each replacing the row kept for its id unless that one
// has a higher version: as ReplacingMergeTree(version) keeps the newest
// (a tombstone, whose version outranks its class, stays once written).
func (c *recent) put(rows []store.ChangeRow) {
	if c == nil || c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range rows {
		r := rows[i]
		if el, ok := c.byID[r.ChangeID]; ok {
			old := el.Value.(*store.ChangeRow)
			if old.Version > r.Version {
				r = *old
			}
			c.bytes -= rowBytes(old)
			c.order.Remove(el)
		}
		if rowBytes(&r) > c.max {
			delete(c.byID, r.ChangeID)
			continue
		}
		c.byID[r.ChangeID] = c.order.PushFront(&r)
		c.bytes += rowBytes(&r)
		for c.bytes > c.max {
			last := c.order.Back()
			lr := last.Value.(*store.ChangeRow)
			c.order.Remove(last)
			delete(c.byID, lr.ChangeID)
			c.bytes -= rowBytes(lr)
		}
	}
}

// get returns the row kept for id.
func (c *recent) get(id string) (store.ChangeRow, bool) {
	if c == nil {
		return store.ChangeRow{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.byID[id]
	if !ok {
		return store.ChangeRow{}, false
	}
	return *el.Value.(*store.ChangeRow), true
}
