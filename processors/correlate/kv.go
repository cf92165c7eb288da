package correlate

// The correlation state in a NATS JetStream key-value bucket.
//
// # Layout
//
// Bucket EVIDENCE_CORRELATION (file storage, history 1: only the latest
// revision of each entry is kept), one KV entry per correlation key
// holding its [Entry] as JSON: {"key": <the correlation key>, "facts":
// [<the facts filed under it, sorted by ID>]}. The entry names its key, so
// a value read back is checked against the key asked for, and every fact
// against its ID ([Fact.Verify]).
//
// The KV key is the correlation key's kind, then its parts, each encoded
// base64url without padding ("=" for an empty part), joined by '.' (KV keys
// allow [-/_=.a-zA-Z0-9] and '.' separates tokens that subscriptions can
// filter on):
//
//	commit:<repo>@<sha>             commit.<repo>.<sha>
//	change:<repo>#<number>          change.<repo>.<number>
//	run:<repo>#<run_id>             run.<repo>.<run_id>
//	deploy:<env>/<service>/<rest>   deploy.<env>.<service>.<rest>
//	deployment:<env>/<service>/...  deployment.<env>.<service>.<rest>
//	<kind>:<value>                  <kind>.<value>  (ticket, artifact, exception, env, service, repo)
//	anything else                   _.<the whole key>
//
// so the commits of a repository are commit.<repo>.* and the deployments
// of a service deploy.*.<service>.* (an environment containing '/' breaks
// that filter, not the encoding, which stays one-to-one). [KVKey] and
// [ParseKVKey] convert. A KV key longer than 1500 bytes is refused
// ([ErrKeyTooLong]): NATS carries the key in the subject of every request.
//
// A second bucket, EVIDENCE_CORRELATION_RECORDS, notes the records that
// may disappear (unmatched deployments', direct pushes') once written to
// the sink: key base64url(record id), value "" (live) or "retired" (see
// the stage).
//
// # Merging
//
// [KVState.Merge] files each fact in the entries of its keys: read, union
// ([Entry.Merge]), write with compare-and-set on the revision read
// (Update; Create when the key is absent). When another writer got there
// first the write fails, and the entry is read and merged again, up to
// MaxConflicts times with a short jittered backoff. Union is commutative
// and idempotent, so every interleaving of writers ends with every fact in
// every entry of its keys: no update is lost, and a fact merged twice (a
// redelivery, a replay) changes nothing. An entry that the union does not
// change is not written.
//
// # Hot keys
//
// A key many facts are filed under (a standard change ticket that every
// deployment names, a repository's exceptions) has one entry that grows
// with them, and every new fact rewrites it whole. Its size is bounded by
// MaxValueSize (default 1 MiB: NATS's default max_payload; never more than
// the server's). Merge checks the size before writing: a fact that would
// make an entry too large is written to none of its entries (it would
// otherwise be in some and not others) and is returned in a
// [*RefusedError] naming the key, the size and the limit; the stage
// dead-letters its event, to be replayed once the limit is raised. Only
// when a concurrent writer grows the same entry past the limit between
// the size check and the write can a refused fact remain in its other
// entries; it is refused all the same. Splitting hot entries is left for
// later.

import (
	"container/list"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The KV buckets of the correlation state.
const (
	// DefaultBucket holds the entries: the facts filed under each key.
	DefaultBucket = "EVIDENCE_CORRELATION"
	// DefaultRecordsBucket notes the unmatched-deployment and direct-push
	// records written to the sink, live or retired.
	DefaultRecordsBucket = "EVIDENCE_CORRELATION_RECORDS"
)

// KVOptions configures the bucket. Zero values take the defaults.
type KVOptions struct {
	// Bucket is the bucket's name (default EVIDENCE_CORRELATION).
	Bucket string
	// RecordsBucket notes the records written to the sink that may
	// disappear (default EVIDENCE_CORRELATION_RECORDS): the stage retires
	// an id that no longer derives a record only if it is noted live there.
	RecordsBucket string
	// Replicas is the number of replicas of the buckets (default 1).
	Replicas int
	// MaxValueSize is the largest entry in bytes (default 1 MiB). It is
	// lowered to the server's max payload, less room for headers.
	MaxValueSize int
	// MaxConflicts bounds the compare-and-set retries of one entry in one
	// Merge (default 100).
	MaxConflicts int
	// Parallel is how many KV requests one call keeps in flight (default
	// 16).
	Parallel int
	// CacheFacts bounds the cache of decoded entries, in facts (default
	// 200000; negative: no cache): an entry is decoded and its facts
	// verified once per revision while it stays in the cache, the least
	// recently used forgotten first.
	CacheFacts int
}

func (o *KVOptions) defaults() {
	if o.Bucket == "" {
		o.Bucket = DefaultBucket
	}
	if o.RecordsBucket == "" {
		o.RecordsBucket = DefaultRecordsBucket
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	if o.MaxValueSize <= 0 {
		o.MaxValueSize = 1 << 20
	}
	if o.MaxConflicts <= 0 {
		o.MaxConflicts = 100
	}
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.CacheFacts == 0 {
		o.CacheFacts = 200_000
	}
}

// KVState is the correlation state in a JetStream KV bucket: every fact
// filed in the entry of each of its keys. It is safe for concurrent use,
// and any number of KVStates (in any number of processes) may share a
// bucket.
type KVState struct {
	js      jetstream.JetStream
	kv      jetstream.KeyValue
	records jetstream.KeyValue
	stream  jetstream.Stream
	opts    KVOptions
	limit   int
	cache   *entryCache
	multi   *multiGet
	// recordsMulti reads the records bucket many keys at a time.
	recordsMulti *multiGet
}

// NewKVState creates the bucket, or binds to it and updates its
// configuration: safe to run at every start, by every replica.
func NewKVState(ctx context.Context, js jetstream.JetStream, opts KVOptions) (*KVState, error) {
	opts.defaults()
	limit := opts.MaxValueSize
	if nc := js.Conn(); nc != nil {
		if mp := int(nc.MaxPayload()); mp > 0 && limit > mp-4096 {
			limit = mp - 4096
		}
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       opts.Bucket,
		Description:  "evidenced correlation state: the facts filed under each correlation key",
		History:      1,
		Storage:      jetstream.FileStorage,
		Replicas:     opts.Replicas,
		MaxValueSize: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("correlate: create or update KV bucket %s: %w", opts.Bucket, err)
	}
	stream, err := js.Stream(ctx, "KV_"+opts.Bucket)
	if err != nil {
		return nil, fmt.Errorf("correlate: KV bucket %s: %w", opts.Bucket, err)
	}
	records, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      opts.RecordsBucket,
		Description: "evidenced correlation: the ids of the change records ever written to the sink",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    opts.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("correlate: create or update KV bucket %s: %w", opts.RecordsBucket, err)
	}
	return &KVState{js: js, kv: kv, records: records, stream: stream, opts: opts, limit: limit,
		cache:        newEntryCache(opts.CacheFacts),
		multi:        &multiGet{nc: js.Conn(), subject: "$JS.API.DIRECT.GET.KV_" + opts.Bucket, prefix: "$KV." + opts.Bucket + "."},
		recordsMulti: &multiGet{nc: js.Conn(), subject: "$JS.API.DIRECT.GET.KV_" + opts.RecordsBucket, prefix: "$KV." + opts.RecordsBucket + "."}}, nil
}

// recordKey is the records bucket's key of a record id.
func recordKey(id string) string { return encodePart(id) }

// The records bucket holds, under the id of each record that may
// disappear (an unmatched deployment's, a direct push's) and was written
// to the sink, "" while it is live and "retired" once it was retired.
var retiredMark = []byte("retired")

// markWritten notes the records that may disappear as live, before they
// are written to the sink.
func (s *KVState) markWritten(ctx context.Context, recs []Record) error {
	var ids []string
	for _, r := range recs {
		if r.Unmatched || r.DirectPush {
			ids = append(ids, r.ID)
		}
	}
	return s.mark(ctx, ids, nil)
}

// markRetired notes record ids as retired, after the sink retired them.
func (s *KVState) markRetired(ctx context.Context, ids []string) error {
	return s.mark(ctx, ids, retiredMark)
}

func (s *KVState) mark(ctx context.Context, ids []string, v []byte) error {
	if v == nil {
		v = []byte{}
	}
	// Every note at once; those that fail are noted again, one at a time.
	done, err := s.writeAll(ctx, s.recordsMulti.prefix, false, len(ids), func(i int) (string, []byte, uint64) {
		return recordKey(ids[i]), v, 0
	})
	if err != nil {
		return err
	}
	return s.parallel(ctx, len(ids), func(i int) error {
		if done[i] != 0 {
			return nil
		}
		if _, err := s.records.Put(ctx, recordKey(ids[i]), v); err != nil {
			return fmt.Errorf("correlate: note record %q: %w", ids[i], err)
		}
		return nil
	})
}

// live returns those of ids that were written to the sink and not retired
// since.
func (s *KVState) live(ctx context.Context, ids []string) ([]string, error) {
	found := make([]bool, len(ids))
	kks := make([]string, len(ids))
	for i, id := range ids {
		kks[i] = recordKey(id)
	}
	vals, alone, err := s.recordsMulti.values(ctx, kks)
	if err != nil {
		return nil, fmt.Errorf("correlate: look up %d records: %w", len(ids), err)
	}
	var which []int
	for i, kk := range kks {
		if v, ok := vals[kk]; ok {
			found[i] = len(v) == 0
		}
	}
	if len(alone) > 0 {
		a := map[string]bool{}
		for _, kk := range alone {
			a[kk] = true
		}
		for i, kk := range kks {
			if a[kk] {
				which = append(which, i)
			}
		}
	}
	err = s.parallel(ctx, len(which), func(j int) error {
		i := which[j]
		e, err := s.records.Get(ctx, kks[i])
		switch {
		case err == nil:
			found[i] = len(e.Value()) == 0
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return fmt.Errorf("correlate: look up record %q: %w", ids[i], err)
		}
		return nil
	})
	var out []string
	for i, ok := range found {
		if ok {
			out = append(out, ids[i])
		}
	}
	return out, err
}

// Bucket is the bucket's name.
func (s *KVState) Bucket() string { return s.opts.Bucket }

// MaxValueSize is the largest entry Merge writes, in bytes.
func (s *KVState) MaxValueSize() int { return s.limit }

// Errors of entries and keys.
var (
	// ErrEntryTooLarge: merging the fact would make an entry larger than
	// the bucket's MaxValueSize.
	ErrEntryTooLarge = errors.New("entry too large")
	// ErrKeyTooLong: the correlation key does not fit in a KV key.
	ErrKeyTooLong = errors.New("correlation key too long for a KV key")
)

// EntryError is why a fact could not be merged: one of its keys' entries.
type EntryError struct {
	Key   Key
	Size  int // the entry's size with the fact, when too large
	Limit int
	Err   error // ErrEntryTooLarge or ErrKeyTooLong
}

func (e *EntryError) Error() string {
	if errors.Is(e.Err, ErrEntryTooLarge) {
		return fmt.Sprintf("correlation key %q: %v: %d bytes with the fact, limit %d (the bucket's max value size; a hot key)", e.Key, e.Err, e.Size, e.Limit)
	}
	return fmt.Sprintf("correlation key %q: %v", e.Key, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// RefusedError is returned by Merge when some facts could not be merged;
// every other fact was.
type RefusedError struct {
	// Facts are the refused facts' errors, by fact ID.
	Facts map[string]*EntryError
}

func (e *RefusedError) Error() string {
	ids := sortedKeys(e.Facts)
	return fmt.Sprintf("correlate: %d facts refused; %s: %v", len(ids), ids[0], e.Facts[ids[0]])
}

// KVKey returns the KV key of a correlation key (see the layout above).
func KVKey(k Key) (string, error) {
	kind, value, ok := strings.Cut(string(k), ":")
	out := ""
	if ok && lowerWord(kind) {
		if parts, ok := splitParts(value, kvSeparators[kind]); ok {
			var b strings.Builder
			b.WriteString(kind)
			for _, p := range parts {
				b.WriteByte('.')
				b.WriteString(encodePart(p))
			}
			out = b.String()
		}
	}
	if out == "" {
		out = "_." + encodePart(string(k))
	}
	if len(out) > maxKVKey {
		return "", &EntryError{Key: k, Err: fmt.Errorf("%w (%d bytes encoded, limit %d)", ErrKeyTooLong, len(out), maxKVKey)}
	}
	return out, nil
}

// ParseKVKey returns the correlation key of a KV key.
func ParseKVKey(s string) (Key, error) {
	toks := strings.Split(s, ".")
	bad := fmt.Errorf("correlate: %q is not a correlation state key", s)
	if len(toks) < 2 {
		return "", bad
	}
	parts := make([]string, len(toks)-1)
	for i, t := range toks[1:] {
		p, err := decodePart(t)
		if err != nil {
			return "", bad
		}
		parts[i] = p
	}
	if toks[0] == "_" {
		if len(parts) != 1 {
			return "", bad
		}
		return Key(parts[0]), nil
	}
	seps := kvSeparators[toks[0]]
	if !lowerWord(toks[0]) || len(parts) != len(seps)+1 {
		return "", bad
	}
	var b strings.Builder
	b.WriteString(toks[0])
	b.WriteByte(':')
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(seps[i-1])
		}
		b.WriteString(p)
	}
	return Key(b.String()), nil
}

const maxKVKey = 1500

// kvSeparators are where the value of a key of each kind is split into
// KV key tokens: at the first of each, in order.
var kvSeparators = map[string][]byte{
	KeyCommit: {'@'}, KeyChange: {'#'}, KeyRun: {'#'},
	KeyDeploy: {'/', '/'}, KeyDeployment: {'/', '/'},
}

func splitParts(v string, seps []byte) ([]string, bool) {
	parts := make([]string, 0, len(seps)+1)
	for _, sep := range seps {
		i := strings.IndexByte(v, sep)
		if i < 0 {
			return nil, false
		}
		parts = append(parts, v[:i])
		v = v[i+1:]
	}
	return append(parts, v), true
}

func lowerWord(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}

func encodePart(p string) string {
	if p == "" {
		return "="
	}
	return base64.RawURLEncoding.EncodeToString([]byte(p))
}

func decodePart(t string) (string, error) {
	if t == "=" {
		return "", nil
	}
	if t == "" {
		return "", errors.New("empty token")
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err
}

// kvFilter is a KV key filter: the kind and its parts, "*" for any part.
func kvFilter(kind string, parts ...string) string {
	var b strings.Builder
	b.WriteString(kind)
	for _, p := range parts {
		b.WriteByte('.')
		if p == "*" || p == ">" {
			b.WriteString(p)
		} else {
			b.WriteString(encodePart(p))
		}
	}
	return b.String()
}

// Entry returns the entry of a key (empty when there is none).
func (s *KVState) Entry(ctx context.Context, key Key) (Entry, error) {
	e, _, _, err := s.get(ctx, key)
	return e, err
}

// Load reads the entries of keys into a new State.
func (s *KVState) Load(ctx context.Context, keys []Key) (*State, error) {
	es, err := s.entries(ctx, keys)
	if err != nil {
		return nil, err
	}
	st := NewState()
	for _, e := range es {
		st.Add(e.Facts...)
	}
	return st, nil
}

// entries reads the entries of keys, in their order.
func (s *KVState) entries(ctx context.Context, keys []Key) ([]Entry, error) {
	return s.entriesOf(ctx, keys, false)
}

// trustedEntries is entries, taking the cache's trusted entries for the
// bucket's (the stage's reads: see entryCache).
func (s *KVState) trustedEntries(ctx context.Context, keys []Key) ([]Entry, error) {
	return s.entriesOf(ctx, keys, true)
}

func (s *KVState) entriesOf(ctx context.Context, keys []Key, trust bool) ([]Entry, error) {
	gs, err := s.getMany(ctx, keys, trust)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, len(keys))
	for i, g := range gs {
		out[i] = g.e
	}
	return out, nil
}

// get reads one entry, its revision (0: absent) and its encoded size. A
// key that cannot be a KV key has no entry.
func (s *KVState) get(ctx context.Context, key Key) (Entry, uint64, int, error) {
	e, rev, raw, err := s.getRaw(ctx, key)
	return e, rev, len(raw), err
}

// getRaw is get, with the value read: nil when absent. It reads the
// bucket, never a trusted entry of the cache.
func (s *KVState) getRaw(ctx context.Context, key Key) (Entry, uint64, []byte, error) {
	empty := Entry{Key: key, Facts: []Fact{}}
	kk, err := KVKey(key)
	if err != nil {
		return empty, 0, nil, nil
	}
	gen := s.cache.readGen()
	kve, err := s.kv.Get(ctx, kk)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		s.cache.store(kk, 0, nil, nil, gen)
		return empty, 0, nil, nil
	}
	if err != nil {
		return empty, 0, nil, fmt.Errorf("correlate: read entry %q: %w", key, err)
	}
	rev, raw := kve.Revision(), kve.Value()
	e, err := s.decode(key, kk, rev, raw, gen)
	if err != nil {
		return empty, 0, nil, err
	}
	return e, rev, raw, nil
}

// decode reads the value of key's entry (KV key kk) at revision rev,
// through the cache, where it is kept stamped with generation gen (that of
// the read).
func (s *KVState) decode(key Key, kk string, rev uint64, raw []byte, gen uint64) (Entry, error) {
	if facts, ok := s.cache.get(kk, rev); ok {
		s.cache.store(kk, rev, facts, raw, gen)
		return Entry{Key: key, Facts: facts}, nil
	}
	var e Entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return Entry{}, fmt.Errorf("correlate: entry %q (revision %d): %w", key, rev, err)
	}
	if e.Key != key {
		return Entry{}, fmt.Errorf("correlate: entry %q (revision %d) holds key %q", key, rev, e.Key)
	}
	for i := range e.Facts {
		if err := e.Facts[i].Verify(); err != nil {
			return Entry{}, fmt.Errorf("correlate: entry %q (revision %d): %w", key, rev, err)
		}
	}
	if e.Facts == nil {
		e.Facts = []Fact{}
	}
	if !slices.IsSortedFunc(e.Facts, func(a, b Fact) int { return strings.Compare(a.ID, b.ID) }) {
		e = Entry{Key: key}.Merge(e) // written by hand, or by another tool
	}
	s.cache.store(kk, rev, e.Facts, raw, gen)
	return e, nil
}

// Merge files each fact in the entry of each of its keys, and returns the
// keys whose entries changed, sorted. Facts already there change nothing.
// Facts that would make an entry too large, or have a key that cannot be
// a KV key, are refused: they are written nowhere, every other fact is
// merged, and the error is a *RefusedError. Any other error (NATS
// unavailable, an unreadable entry) may leave some entries merged and
// others not: merging the same facts again completes it.
func (s *KVState) Merge(ctx context.Context, facts []Fact) ([]Key, error) {
	return s.merge(ctx, facts, false)
}

// mergeChecked is the stage's Merge: it takes the cache's trusted entries
// for the bucket's, then checks the bucket's last sequence. When another
// writer wrote since the entries it took were current, it merges again
// from the bucket itself. It returns the sequence checked after its
// writes, at which the stage starts deriving.
func (s *KVState) mergeChecked(ctx context.Context, facts []Fact) ([]Key, uint64, error) {
	gen := s.cache.trustedGen()
	changed, err := s.merge(ctx, facts, true)
	var re *RefusedError
	if err != nil && !errors.As(err, &re) {
		return changed, 0, err
	}
	seq, serr := s.lastSeq(ctx)
	if serr != nil {
		return changed, 0, serr
	}
	if gen != 0 && s.cache.trustedGen() != gen {
		// Another writer came between: what was taken from the cache
		// may have been behind. The cache trusts nothing now.
		var more []Key
		more, err = s.merge(ctx, facts, false)
		changed = append(changed, more...)
		slices.Sort(changed)
		changed = slices.Compact(changed)
		if err != nil && !errors.As(err, &re) {
			return changed, 0, err
		}
		if seq, serr = s.lastSeq(ctx); serr != nil {
			return changed, 0, serr
		}
	}
	return changed, seq, err
}

func (s *KVState) merge(ctx context.Context, facts []Fact, trust bool) ([]Key, error) {
	byKey := map[Key][]Fact{}
	refused := map[string]*EntryError{}
	kvKeys := map[Key]string{}
	for i := range facts {
		f := facts[i]
		if f.ID == "" {
			f.Keys = slices.Clone(f.Keys)
			f.seal()
		}
		for _, k := range f.Keys {
			if !filed(k, f.Kind) {
				continue
			}
			if _, ok := kvKeys[k]; !ok {
				kk, err := KVKey(k)
				if err != nil {
					refused[f.ID] = err.(*EntryError)
					continue
				}
				kvKeys[k] = kk
			}
			byKey[k] = append(byKey[k], f)
		}
	}
	keys := sortedKeys(byKey)
	type work struct {
		cur   Entry
		rev   uint64
		size  int      // of cur, encoded (0: absent)
		segs  [][]byte // cur's facts, encoded, when its value is of Merge's layout
		whole bool     // its value is not: encode next whole
		next  Entry    // cur with the facts
		data  []byte   // next, encoded
	}
	ws := make([]work, len(keys))
	gs, err := s.getMany(ctx, keys, trust)
	if err != nil {
		return nil, err
	}
	for i, g := range gs {
		ws[i].cur, ws[i].rev, ws[i].size = g.e, g.rev, len(g.raw)
		if g.rev != 0 {
			var ok bool
			ws[i].segs, ok = splitEntry(keys[i], g.raw, g.e.Facts)
			ws[i].whole = !ok
		}
	}
	enc := factEncoder{}
	// Admit the new facts of each entry in ID order while it stays within
	// the limit and refuse the rest; a fact refused anywhere is taken out
	// of every entry, which may make room in others, so repeat until
	// nothing more is refused.
	for again := true; again; {
		again = false
		for i, k := range keys {
			w := &ws[i]
			add := slices.DeleteFunc(slices.Clone(byKey[k]), func(f Fact) bool {
				return refused[f.ID] != nil || holds(w.cur, f)
			})
			w.next, w.data = w.cur, nil
			if len(add) == 0 {
				continue
			}
			size := w.size
			if w.rev == 0 {
				var err error
				if size, err = encodedSize(w.cur); err != nil {
					return nil, err
				}
			}
			var fits []Fact
			for _, f := range (Entry{Facts: add}).Merge(Entry{}).Facts {
				b, err := enc.encode(&f)
				if err != nil {
					return nil, err
				}
				if hasFact(w.cur, f.ID) {
					fits = append(fits, f) // an earlier arrival of a fact there: no bigger
					continue
				}
				if size+len(b)+1 > s.limit {
					refused[f.ID] = &EntryError{Key: k, Size: size + len(b) + 1, Limit: s.limit, Err: ErrEntryTooLarge}
					again = true
					continue
				}
				size += len(b) + 1
				fits = append(fits, f)
			}
			if len(fits) == 0 {
				continue
			}
			var err error
			if !w.whole {
				if w.next, w.data, err = mergeEncoded(w.cur, w.segs, fits, enc); err != nil {
					return nil, err
				}
				continue
			}
			w.next = w.cur.Merge(Entry{Key: k, Facts: fits})
			if w.data, err = json.Marshal(w.next); err != nil {
				return nil, fmt.Errorf("correlate: encode entry %q: %w", k, err)
			}
		}
	}
	var mu sync.Mutex
	var changed []Key
	// Every write at once; those that fail are written again below, one
	// at a time.
	written, err := s.writeAll(ctx, s.multi.prefix, true, len(keys), func(i int) (string, []byte, uint64) {
		return kvKeys[keys[i]], ws[i].data, ws[i].rev
	})
	if err != nil {
		return nil, err
	}
	for i, rev := range written {
		if rev != 0 {
			s.cache.wrote(kvKeys[keys[i]], rev, ws[i].next.Facts, ws[i].data)
			changed = append(changed, keys[i])
		}
	}
	err = s.parallel(ctx, len(keys), func(i int) error {
		k := keys[i]
		w := ws[i]
		if w.data == nil || written[i] != 0 {
			return nil
		}
		add := slices.DeleteFunc(slices.Clone(byKey[k]), func(f Fact) bool {
			mu.Lock()
			defer mu.Unlock()
			return refused[f.ID] != nil
		})
		for attempt := 1; ; attempt++ {
			rev, err := s.write(ctx, kvKeys[k], w.data, w.rev)
			if err == nil {
				s.cache.wrote(kvKeys[k], rev, w.next.Facts, w.data)
				mu.Lock()
				changed = append(changed, k)
				mu.Unlock()
				return nil
			}
			if !isConflict(err) {
				return fmt.Errorf("correlate: write entry %q: %w", k, err)
			}
			if attempt >= s.opts.MaxConflicts {
				return fmt.Errorf("correlate: write entry %q: %d compare-and-set conflicts in a row: %w", k, attempt, err)
			}
			sleep(ctx, time.Duration(1+rand.IntN(1<<min(attempt, 6)))*time.Millisecond)
			w.cur, w.rev, _, err = s.get(ctx, k)
			if err != nil {
				return err
			}
			w.next = w.cur.Merge(Entry{Key: k, Facts: add})
			if !slices.ContainsFunc(add, func(f Fact) bool { return !holds(w.cur, f) }) {
				return nil // another writer merged them
			}
			if w.data, err = json.Marshal(w.next); err != nil {
				return fmt.Errorf("correlate: encode entry %q: %w", k, err)
			}
			if len(w.data) > s.limit {
				mu.Lock()
				for _, f := range add {
					if !hasFact(w.cur, f.ID) {
						refused[f.ID] = &EntryError{Key: k, Size: len(w.data), Limit: s.limit, Err: ErrEntryTooLarge}
					}
				}
				mu.Unlock()
				return nil
			}
		}
	})
	slices.Sort(changed)
	if err != nil {
		return changed, err
	}
	if len(refused) > 0 {
		return changed, &RefusedError{Facts: refused}
	}
	return changed, nil
}

// hasFact reports whether the entry (sorted by ID) holds the fact.
func hasFact(e Entry, id string) bool {
	_, ok := slices.BinarySearchFunc(e.Facts, id, func(f Fact, id string) int { return strings.Compare(f.ID, id) })
	return ok
}

// holds reports whether the entry holds the fact, arrived no later than
// f: merging f changes nothing.
func holds(e Entry, f Fact) bool {
	i, ok := slices.BinarySearchFunc(e.Facts, f.ID, func(g Fact, id string) int { return strings.Compare(g.ID, id) })
	return ok && earlierArrival(&e.Facts[i], &f) <= 0
}

// encodedSize is the size of the entry's JSON.
func encodedSize(e Entry) (int, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return 0, fmt.Errorf("correlate: encode entry %q: %w", e.Key, err)
	}
	return len(b), nil
}

// write creates (rev 0) or updates the entry if its revision is still rev.
func (s *KVState) write(ctx context.Context, kk string, data []byte, rev uint64) (uint64, error) {
	if rev == 0 {
		return s.kv.Create(ctx, kk, data)
	}
	return s.kv.Update(ctx, kk, data, rev)
}

// writeAll writes values 0..n-1 (KV key under prefix, value, revision
// read; no value: none to write), with compare-and-set on that revision
// when cas, every write in flight at once (asynchronous JetStream
// publishes, as KeyValue.Update and Put send them), and returns the
// revision of each written, 0 for those not written: no value, a conflict,
// or any other failure (the caller writes those again, alone). Its error
// is ctx's.
func (s *KVState) writeAll(ctx context.Context, prefix string, cas bool, n int, entry func(i int) (string, []byte, uint64)) ([]uint64, error) {
	revs := make([]uint64, n)
	if s.js == nil {
		return revs, nil
	}
	const window = 1000 // below the publisher's limit of writes in flight
	for lo := 0; lo < n; lo += window {
		hi := min(n, lo+window)
		futures := make([]jetstream.PubAckFuture, hi-lo)
		for i := lo; i < hi; i++ {
			kk, data, rev := entry(i)
			if data == nil {
				continue
			}
			m := &nats.Msg{Subject: prefix + kk, Header: nats.Header{}, Data: data}
			var opts []jetstream.PublishOpt
			if cas {
				opts = append(opts, jetstream.WithExpectLastSequencePerSubject(rev))
			}
			f, err := s.js.PublishMsgAsync(m, opts...)
			if err != nil {
				continue // written alone
			}
			futures[i-lo] = f
		}
		timeout := time.NewTimer(30 * time.Second) // an ack lost: written alone
		for j, f := range futures {
			if f == nil {
				continue
			}
			select {
			case ack := <-f.Ok():
				revs[lo+j] = ack.Sequence
			case <-f.Err():
			case <-timeout.C:
				timeout.Reset(0)
			case <-ctx.Done():
				timeout.Stop()
				return revs, ctx.Err()
			}
		}
		timeout.Stop()
	}
	return revs, nil
}

// isConflict reports a compare-and-set conflict: the key was created, or
// updated, since it was read.
func isConflict(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// lastSeq is the bucket's last revision: it moves on every write. The
// cache checks its trusted entries against it (see entryCache).
func (s *KVState) lastSeq(ctx context.Context) (uint64, error) {
	info, err := s.stream.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("correlate: KV bucket %s: %w", s.opts.Bucket, err)
	}
	s.cache.verify(info.State.LastSeq)
	return info.State.LastSeq, nil
}

// listKeys returns the keys matching a KV key filter.
func (s *KVState) listKeys(ctx context.Context, filter string) ([]Key, error) {
	kl, err := s.kv.ListKeysFiltered(ctx, filter)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("correlate: list KV keys %s: %w", filter, err)
	}
	defer func() { _ = kl.Stop() }()
	var out []Key
	for kk := range kl.Keys() {
		if k, err := ParseKVKey(kk); err == nil {
			out = append(out, k)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// lazy returns a lazily loaded view of the bucket.
func (s *KVState) lazy() *lazy { return newLazy(s.entries) }

// stageLazy is lazy, taking the cache's trusted entries for the bucket's.
func (s *KVState) stageLazy() *lazy { return newLazy(s.trustedEntries) }

// attrKeys lists the keys whose facts stand for the records an exception
// filed under an attribute key may cover: the deployments to an
// environment or service; for a repository, its commits and every
// deployment.
func (s *KVState) attrKeys(ctx context.Context, attrs []Key) ([]Key, error) {
	var out []Key
	for _, a := range attrs {
		var filters []string
		switch a.Kind() {
		case KeyEnv:
			filters = []string{kvFilter(KeyDeploy, a.Value(), ">")}
		case KeyService:
			filters = []string{kvFilter(KeyDeploy, "*", a.Value(), "*")}
		case KeyRepo:
			filters = []string{kvFilter(KeyCommit, a.Value(), "*"), kvFilter(KeyDeploy, ">")}
		}
		for _, f := range filters {
			ks, err := s.listKeys(ctx, f)
			if err != nil {
				return nil, err
			}
			out = append(out, ks...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// affected returns the records the facts may have changed, loading what
// the walk reads into l (see [State.Affected]).
func (s *KVState) affected(ctx context.Context, l *lazy, facts []Fact) ([]string, error) {
	r, err := l.affected(ctx, facts)
	if err != nil || len(r.attrs) == 0 {
		return r.ids, err
	}
	keys, err := s.attrKeys(ctx, r.attrs)
	if err != nil {
		return nil, err
	}
	if _, err := l.ensure(ctx, keys); err != nil {
		return nil, err
	}
	var more []Fact
	for _, k := range keys {
		for _, a := range r.attrs {
			for _, f := range l.st.lookup(k, kinds...) {
				if attrHolds(a, f) {
					more = append(more, *f)
				}
			}
		}
	}
	r2, err := l.affected(ctx, more)
	if err != nil {
		return nil, err
	}
	ids := append(slices.Clone(r.ids), r2.ids...)
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// parallel runs fn(0..n-1) with up to opts.Parallel calls at a time and
// returns the first error.
func (s *KVState) parallel(ctx context.Context, n int, fn func(i int) error) error {
	if n == 0 {
		return nil
	}
	if n == 1 {
		return fn(0)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ferr error
		next int
	)
	for range min(n, s.opts.Parallel) {
		wg.Go(func() {
			for {
				mu.Lock()
				if ferr != nil || next >= n {
					mu.Unlock()
					return
				}
				i := next
				next++
				mu.Unlock()
				if err := fn(i); err != nil {
					mu.Lock()
					if ferr == nil {
						ferr = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if ferr == nil {
		ferr = ctx.Err()
	}
	return ferr
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// entryCache keeps decoded, verified entries by KV key and revision, the
// least recently used forgotten first once it holds more than max facts
// (an entry known absent counts as one).
//
// # Trusted entries
//
// Besides decoding each revision once, the cache can answer for the
// bucket without a read, when it knows that nothing but this KVState's
// own writes moved the bucket since it read its entries. The bucket is a
// stream: every write, delete or purge, by anyone, takes the next stream
// sequence. So the cache keeps a base sequence and a generation: entries
// read (a read starts after the base) or written (at a sequence after the
// base) in the generation are stamped with it, and each write's sequence
// is noted. At a check ([entryCache.verify], given the bucket's last
// sequence) the sequences between the base and the last that are not
// this KVState's writes are counted: none, and every entry of the
// generation is the bucket's as of the last sequence (the cache is
// trusted, that sequence becomes the base); some, and the generation ends
// (a new one begins, based there, and nothing is trusted until the next
// check finds only this KVState's writes since). Only the stage, which
// checks before and after it reads, asks trusted entries
// ([KVState.getMany] with trust); every other reader reads the bucket.
type entryCache struct {
	mu    sync.Mutex
	m     map[string]*list.Element // of *cachedEntry
	lru   list.List                // most recently used first
	facts int
	max   int

	gen     uint64   // the generation entries are stamped with now (from 1)
	base    uint64   // the bucket's sequence the generation counts from
	trusted bool     // entries of gen are the bucket's as of base
	acked   []uint64 // sequences of this KVState's writes after base
	lost    bool     // writes went unnoted (too many): the next check fails
}

type cachedEntry struct {
	kk    string
	rev   uint64 // 0: the key is absent
	facts []Fact
	raw   []byte // the value read or written, when known
	gen   uint64 // the generation it was read or written in
}

// maxAcked bounds the writes noted between two checks.
const maxAcked = 1 << 16

func newEntryCache(max int) *entryCache {
	return &entryCache{m: map[string]*list.Element{}, max: max, gen: 1}
}

func weight(rev uint64, facts []Fact) int {
	if rev == 0 {
		return 1
	}
	return len(facts)
}

func (c *entryCache) get(kk string, rev uint64) ([]Fact, bool) {
	if c.max < 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.m[kk]
	if !ok || el.Value.(*cachedEntry).rev != rev || rev == 0 {
		return nil, false
	}
	c.lru.MoveToFront(el)
	return el.Value.(*cachedEntry).facts, true
}

// put keeps a revision of an entry, outside any generation.
func (c *entryCache) put(kk string, rev uint64, facts []Fact) { c.store(kk, rev, facts, nil, 0) }

// readGen is the generation to stamp a read starting now with.
func (c *entryCache) readGen() uint64 {
	if c.max < 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// store keeps the revision rev of an entry (0: absent) with its value when
// known, stamped with generation gen (0: none) unless the cache holds a
// newer revision. The same revision is stamped again.
func (c *entryCache) store(kk string, rev uint64, facts []Fact, raw []byte, gen uint64) {
	if c.max < 0 || weight(rev, facts) > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.storeLocked(kk, rev, facts, raw, gen)
}

func (c *entryCache) storeLocked(kk string, rev uint64, facts []Fact, raw []byte, gen uint64) {
	if el, ok := c.m[kk]; ok {
		e := el.Value.(*cachedEntry)
		switch {
		case e.rev > rev:
			return
		case e.rev == rev:
			e.gen = max(e.gen, gen)
			if e.raw == nil {
				e.raw = raw
			}
		default:
			c.facts += weight(rev, facts) - weight(e.rev, e.facts)
			e.rev, e.facts, e.raw, e.gen = rev, facts, raw, gen
		}
		c.lru.MoveToFront(el)
	} else {
		c.m[kk] = c.lru.PushFront(&cachedEntry{kk: kk, rev: rev, facts: facts, raw: raw, gen: gen})
		c.facts += weight(rev, facts)
	}
	for c.facts > c.max {
		el := c.lru.Back()
		e := el.Value.(*cachedEntry)
		c.lru.Remove(el)
		delete(c.m, e.kk)
		c.facts -= weight(e.rev, e.facts)
	}
}

// wrote keeps what this KVState wrote (acknowledged at sequence rev) and
// notes the write for the next check.
func (c *entryCache) wrote(kk string, rev uint64, facts []Fact, raw []byte) {
	if c.max < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if rev <= c.base {
		// Acknowledged before the generation's base (a check ran since it
		// was sent): what came between is unknown.
		c.storeLocked(kk, rev, facts, raw, 0)
		return
	}
	if len(c.acked) >= maxAcked {
		c.lost = true
		c.acked = c.acked[:0]
	}
	if !c.lost {
		c.acked = append(c.acked, rev)
	}
	if weight(rev, facts) <= c.max {
		c.storeLocked(kk, rev, facts, raw, c.gen)
	}
}

// lookup returns the entry of kk when it is trusted: the bucket's as of
// the last check.
func (c *entryCache) lookup(kk string) (cachedEntry, bool) {
	if c.max < 0 {
		return cachedEntry{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted {
		return cachedEntry{}, false
	}
	el, ok := c.m[kk]
	if !ok || el.Value.(*cachedEntry).gen != c.gen {
		return cachedEntry{}, false
	}
	c.lru.MoveToFront(el)
	return *el.Value.(*cachedEntry), true
}

// trustedGen is the generation trusted now, 0 when none is.
func (c *entryCache) trustedGen() uint64 {
	if c.max < 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.trusted {
		return 0
	}
	return c.gen
}

// verify checks the bucket's last sequence seq against the writes noted:
// it reports whether the entries of the generation are the bucket's as of
// seq (nothing but this KVState's writes came since the base), and starts
// a new generation, based at seq, when they are not.
func (c *entryCache) verify(seq uint64) bool {
	if c.max < 0 {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ours := uint64(0)
	kept := c.acked[:0]
	for _, s := range c.acked {
		switch {
		case s <= seq:
			ours++
		default:
			kept = append(kept, s)
		}
	}
	c.acked = kept
	if !c.lost && seq >= c.base && seq-c.base == ours {
		c.trusted, c.base = true, seq
		return true
	}
	c.gen++
	c.trusted, c.base, c.lost = false, seq, false
	return false
}

// len is how many entries and facts the cache holds.
func (c *entryCache) len() (entries, facts int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m), c.facts
}

// KVReader is a Reader over the KV bucket: the live state, as the stage
// merged it. A record read while events touching it are being merged may
// hold some of them and not yet others.
type KVReader struct{ KV *KVState }

// Change implements Reader: it loads the record's root entry, then the
// keys its derivation reads, until it reads nothing new, and derives it.
func (r KVReader) Change(ctx context.Context, id string) (Record, bool, error) {
	return r.KV.lazy().record(ctx, id)
}

// ChangesOf implements Reader: the records holding the commit are found
// from its entry (the merges and pushes naming it, its deployments and
// those of the artifacts built from it). An abbreviated commit lists the
// repository's commits to find those it abbreviates; an empty one lists
// every commit of the repository and every deployment (a scan: the API
// should list from ClickHouse).
func (r KVReader) ChangesOf(ctx context.Context, repo, commit string) ([]Record, error) {
	commit = strings.ToLower(commit)
	l := r.KV.lazy()
	var ids []string
	switch {
	case commit == "":
		keys, err := r.KV.attrKeys(ctx, []Key{RepoKey(repo)})
		if err != nil {
			return nil, err
		}
		if _, err := l.ensure(ctx, keys); err != nil {
			return nil, err
		}
		var facts []Fact
		for _, k := range keys {
			for _, f := range l.st.lookup(k, kinds...) {
				if attrHolds(RepoKey(repo), f) {
					facts = append(facts, *f)
				}
			}
		}
		res, err := l.affected(ctx, facts)
		if err != nil {
			return nil, err
		}
		ids = res.ids
	case len(commit) < 7:
		return nil, nil
	default:
		shas := []string{commit}
		if len(commit) != 40 && len(commit) != 64 {
			keys, err := r.KV.listKeys(ctx, kvFilter(KeyCommit, repo, "*"))
			if err != nil {
				return nil, err
			}
			shas = shas[:0]
			for _, k := range keys {
				if _, sha, ok := commitOf(k); ok && strings.HasPrefix(sha, commit) {
					shas = append(shas, sha)
				}
			}
		}
		for _, sha := range shas {
			h, err := l.holding(ctx, repo, sha)
			if err != nil {
				return nil, err
			}
			ids = append(ids, h...)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
	}
	recs, _, err := l.records(ctx, ids)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, rec := range recs {
		if rec.Repository == repo && (commit == "" || rec.HasCommit(commit)) {
			out = append(out, rec)
		}
	}
	return out, nil
}

var _ Reader = KVReader{}
