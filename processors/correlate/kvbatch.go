package correlate

// Reading many entries in one request.
//
// Reading the entries of a batch one KV Get at a time costs a round trip
// to the server per key (a batch of 500 events reads over a thousand), and
// the server's work per request. JetStream's direct get answers a request
// for the last message of many subjects at once (multi_last, NATS 2.11):
// getMany asks for up to batchGet keys per request. Each request reads as
// of one stream sequence (the server holds writes off while it answers),
// so the entries of one request are a snapshot of the bucket. The
// requests of one call are not pinned to one sequence (up_to_seq): with
// history 1, a key written since would look absent rather than older. A
// key the server did not answer for in an answer cut short (its byte
// limit) is read alone, with Get; so is every key once the server refused
// a multi_last request (a NATS older than 2.11).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// batchGet is the most keys one request asks for (the server answers at
// most 1024 messages, and cuts an answer at its max pending bytes).
const batchGet = 256

// got is one entry read: its revision (0: absent) and its value.
type got struct {
	e   Entry
	rev uint64
	raw []byte
}

// multiGet is the state of the batched reads: off once the server refused
// one.
type multiGet struct {
	nc      *nats.Conn
	subject string // the direct get API subject of the bucket's stream
	prefix  string // of the bucket's subjects: "$KV.<bucket>."
	off     atomic.Bool
	reqs    atomic.Int64 // requests sent, for the benchmark
}

var errNoMultiGet = errors.New("the server does not answer multi_last direct gets")

// getMany reads the entries of keys, in their order. With trust, the
// cache's trusted entries answer for the bucket (see entryCache).
func (s *KVState) getMany(ctx context.Context, keys []Key, trust bool) ([]got, error) {
	out := make([]got, len(keys))
	alone := make([]bool, len(keys))
	gen := s.cache.readGen()
	ask := make([]bool, len(keys)) // not answered by the cache
	nask := 0
	for i, k := range keys {
		out[i] = got{e: Entry{Key: k, Facts: []Fact{}}}
		kk, err := KVKey(k)
		if err != nil {
			continue // not a KV key: no entry
		}
		if trust {
			if c, ok := s.cache.lookup(kk); ok {
				if c.rev != 0 {
					out[i] = got{e: Entry{Key: k, Facts: c.facts}, rev: c.rev, raw: c.raw}
				}
				continue
			}
		}
		ask[i] = true
		nask++
	}
	mg := s.multi
	if mg == nil || mg.nc == nil || mg.off.Load() || nask < 2 {
		return out, s.getAlone(ctx, keys, out, ask)
	}
	idx := make(map[string]int, nask) // subject -> index in keys
	var subjects []string
	for i, k := range keys {
		if !ask[i] {
			continue
		}
		kk, _ := KVKey(k)
		subj := mg.prefix + kk
		if _, dup := idx[subj]; dup {
			alone[i] = true
			continue
		}
		idx[subj] = i
		subjects = append(subjects, subj)
	}
	for len(subjects) > 0 {
		chunk := subjects[:min(len(subjects), batchGet)]
		subjects = subjects[len(chunk):]
		answered, cut, err := mg.get(ctx, chunk)
		if errors.Is(err, errNoMultiGet) {
			mg.off.Store(true)
			return out, s.getAlone(ctx, keys, out, ask)
		}
		if err != nil {
			return out, fmt.Errorf("correlate: read %d entries: %w", len(chunk), err)
		}
		for _, subj := range chunk {
			i := idx[subj]
			m, ok := answered[subj]
			if !ok {
				alone[i] = cut // else absent
				if !cut {
					s.cache.store(subj[len(mg.prefix):], 0, nil, nil, gen)
				}
				continue
			}
			if op := m.Header.Get("KV-Operation"); op == "DEL" || op == "PURGE" {
				s.cache.store(subj[len(mg.prefix):], 0, nil, nil, gen)
				continue // deleted: absent
			}
			rev, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
			if err != nil || rev == 0 {
				return out, fmt.Errorf("correlate: read entry %q: bad %s header %q", keys[i], jetstream.SequenceHeader, m.Header.Get(jetstream.SequenceHeader))
			}
			e, err := s.decode(keys[i], subj[len(mg.prefix):], rev, m.Data, gen)
			if err != nil {
				return out, err
			}
			out[i] = got{e: e, rev: rev, raw: m.Data}
		}
	}
	return out, s.getAlone(ctx, keys, out, alone)
}

// getAlone reads the keys marked alone one Get at a time.
func (s *KVState) getAlone(ctx context.Context, keys []Key, out []got, alone []bool) error {
	var which []int
	for i, a := range alone {
		if a {
			which = append(which, i)
		}
	}
	return s.parallel(ctx, len(which), func(j int) error {
		i := which[j]
		e, rev, raw, err := s.getRaw(ctx, keys[i])
		out[i] = got{e: e, rev: rev, raw: raw}
		return err
	})
}

// get sends one multi_last request for subjects and returns the messages
// answered by subject, and whether the answer was cut short (some
// subjects not answered may exist).
func (mg *multiGet) get(ctx context.Context, subjects []string) (map[string]*nats.Msg, bool, error) {
	mg.reqs.Add(1)
	req, err := json.Marshal(multiLastRequest{MultiLast: subjects})
	if err != nil {
		return nil, false, err
	}
	inbox := mg.nc.NewRespInbox()
	// A channel of its own, sized for every answer (one message per
	// subject and the end of the batch): SubscribeSync would allocate its
	// default 64 Ki slots (512 KiB) per request, a third of everything
	// evidenced allocated under load.
	ch := make(chan *nats.Msg, len(subjects)+2)
	sub, err := mg.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, false, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := mg.nc.PublishRequest(mg.subject, inbox, req); err != nil {
		return nil, false, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
	}
	out := make(map[string]*nats.Msg, len(subjects))
	for {
		var m *nats.Msg
		select {
		case m = <-ch:
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
		switch status := m.Header.Get("Status"); status {
		case "":
			out[m.Header.Get(jetstream.SubjectHeader)] = m
		case "204": // end of batch
			pending := m.Header.Get("Nats-Num-Pending")
			return out, pending != "" && pending != "0", nil
		case "404":
			if m.Header.Get("Description") == "No Results" && len(out) == 0 {
				return out, false, nil // none of the subjects has a message
			}
			return nil, false, fmt.Errorf("direct get: status 404 %s", m.Header.Get("Description"))
		case "503":
			return nil, false, errNoMultiGet
		default:
			if status == "408" || status == "400" {
				return nil, false, fmt.Errorf("%w: %s %s", errNoMultiGet, status, m.Header.Get("Description"))
			}
			return nil, false, fmt.Errorf("direct get: status %s %s", status, m.Header.Get("Description"))
		}
	}
}

// multiLastRequest is JetStream's direct get request for the last message
// of each of many subjects.
type multiLastRequest struct {
	MultiLast []string `json:"multi_last"`
}

// values reads the values of KV keys kks many per request: by key, those
// that exist (not deleted), and the keys to read alone (the answer was cut
// short, or the server cannot answer many at once).
func (mg *multiGet) values(ctx context.Context, kks []string) (map[string][]byte, []string, error) {
	if mg == nil || mg.nc == nil || mg.off.Load() {
		return nil, kks, nil
	}
	out := map[string][]byte{}
	var alone []string
	for len(kks) > 0 {
		chunk := kks[:min(len(kks), batchGet)]
		kks = kks[len(chunk):]
		subjects := make([]string, len(chunk))
		for i, kk := range chunk {
			subjects[i] = mg.prefix + kk
		}
		answered, cut, err := mg.get(ctx, subjects)
		if errors.Is(err, errNoMultiGet) {
			mg.off.Store(true)
			return out, append(alone, append(chunk, kks...)...), nil
		}
		if err != nil {
			return nil, nil, err
		}
		for i, subj := range subjects {
			m, ok := answered[subj]
			switch {
			case !ok && cut:
				alone = append(alone, chunk[i])
			case !ok:
			case m.Header.Get("KV-Operation") == "DEL" || m.Header.Get("KV-Operation") == "PURGE":
			default:
				out[chunk[i]] = m.Data
			}
		}
	}
	return out, alone, nil
}
