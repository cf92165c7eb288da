package correlate

import (
	"container/list"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
)

// writtenCache remembers, for the records this stage put last, the
// SHA-256 of the canonical JSON of the version it put, up to max records
// (the least recently put forgotten first). A record derived again with
// the same sum is not put again: facts are only ever added, so a record
// that derives to the same content saw no new evidence since, and no
// replica can have put a newer version of it meanwhile (see Replicas in
// stage.go). A record retired by this stage is forgotten.
type writtenCache struct {
	mu  sync.Mutex
	m   map[string]*list.Element // of *writtenRecord
	lru list.List                // most recently put first
	max int
}

type writtenRecord struct {
	id  string
	sum [sha256.Size]byte
}

func newWrittenCache(max int) *writtenCache {
	return &writtenCache{m: map[string]*list.Element{}, max: max}
}

// same reports whether the version with this sum is the one put last.
func (c *writtenCache) same(id string, sum [sha256.Size]byte) bool {
	if c.max <= 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[id]
	if !ok || el.Value.(*writtenRecord).sum != sum {
		return false
	}
	c.lru.MoveToFront(el)
	return true
}

func (c *writtenCache) put(id string, sum [sha256.Size]byte) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.m[id]; ok {
		el.Value.(*writtenRecord).sum = sum
		c.lru.MoveToFront(el)
		return
	}
	c.m[id] = c.lru.PushFront(&writtenRecord{id: id, sum: sum})
	for len(c.m) > c.max {
		el := c.lru.Back()
		c.lru.Remove(el)
		delete(c.m, el.Value.(*writtenRecord).id)
	}
}

func (c *writtenCache) forget(ids []string) {
	if c.max <= 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if el, ok := c.m[id]; ok {
			c.lru.Remove(el)
			delete(c.m, id)
		}
	}
}

func (c *writtenCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// encodedRecord is a record with its canonical JSON (Record.Canonical)
// and the hex SHA-256 of it (Record.Hash), encoded once.
type encodedRecord struct {
	rec   Record
	canon []byte
	sum   [sha256.Size]byte
	hash  string
}

func encodeRecord(r Record) (encodedRecord, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return encodedRecord{}, fmt.Errorf("correlate: encode record %s: %w", r.ID, err)
	}
	sum := sha256.Sum256(b)
	return encodedRecord{rec: r, canon: b, sum: sum, hash: hex.EncodeToString(sum[:])}, nil
}
