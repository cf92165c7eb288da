package verify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/store"
)

// The JetStream copy of the checkpoints (processors/checkpoint publishes
// there; a test checks the names agree). The stream denies deletes and
// purges, so it is the reference when the ClickHouse table was tampered
// with.
const (
	CheckpointStream  = "EVIDENCE_CHECKPOINTS"
	CheckpointSubject = "evidence.checkpoints"
)

// streamIdle is how long ReadStream waits for the next message before it
// gives up (the stream said more were pending).
const streamIdle = 30 * time.Second

// StreamCheckpoint is one message of EVIDENCE_CHECKPOINTS.
type StreamCheckpoint struct {
	// MsgSeq is the message's sequence in EVIDENCE_CHECKPOINTS.
	MsgSeq uint64
	// Checkpoint is the message parsed; valid only when Err is nil.
	Checkpoint Checkpoint
	// Err says why the message is not a checkpoint.
	Err error
}

// StreamCheckpoints is every message of EVIDENCE_CHECKPOINTS, in stream
// order (one per checkpoint: one per 10,000 events by default, so they are
// held in memory).
type StreamCheckpoints struct {
	Msgs []StreamCheckpoint
	// ReadAt is when reading began: a checkpoint made before it must be in
	// Msgs (evidenced publishes a checkpoint before storing it in
	// ClickHouse).
	ReadAt time.Time
}

// ErrNoCheckpointStream means the NATS server has no EVIDENCE_CHECKPOINTS.
var ErrNoCheckpointStream = errors.New("stream " + CheckpointStream + " not found")

// ReadStream reads every message of EVIDENCE_CHECKPOINTS with an ordered
// consumer (ephemeral, no acknowledgements: the auditor's NATS user needs
// no write permission), from the first message until caught up (the last
// message read has nothing pending). It returns an error only when it
// cannot read; messages that are not checkpoints are returned with Err set.
func ReadStream(ctx context.Context, js jetstream.JetStream) (*StreamCheckpoints, error) {
	s, err := js.Stream(ctx, CheckpointStream)
	if err != nil {
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			return nil, fmt.Errorf("%w: is this the NATS server evidenced publishes its checkpoints to?", ErrNoCheckpointStream)
		}
		return nil, fmt.Errorf("read stream %s: %w", CheckpointStream, err)
	}
	out := &StreamCheckpoints{ReadAt: time.Now()}
	info := s.CachedInfo()
	if info.State.Msgs == 0 {
		return out, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{MaxResetAttempts: 3, FilterSubjects: []string{CheckpointSubject}})
	if err != nil {
		return nil, fmt.Errorf("read stream %s: create a consumer: %w", CheckpointStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", CheckpointStream, err)
	}
	defer it.Stop()
	for {
		mctx, cancel := context.WithTimeout(ctx, streamIdle)
		msg, err := it.Next(jetstream.NextContext(mctx))
		cancel()
		if err != nil {
			switch {
			case ctx.Err() != nil:
				err = context.Cause(ctx) // the caller's reason (a permissions violation, say)
			case errors.Is(err, context.DeadlineExceeded):
				err = fmt.Errorf("no message for %s after %d of about %d", streamIdle, len(out.Msgs), info.State.Msgs)
			}
			return nil, fmt.Errorf("read stream %s: %w", CheckpointStream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, fmt.Errorf("read stream %s: %w", CheckpointStream, err)
		}
		m := StreamCheckpoint{MsgSeq: md.Sequence.Stream}
		m.Checkpoint, m.Err = ParseCheckpoint(msg.Data())
		out.Msgs = append(out.Msgs, m)
		if md.NumPending == 0 {
			return out, nil
		}
	}
}

// ParseCheckpoint reads a checkpoint as published to EVIDENCE_CHECKPOINTS:
// a JSON object with exactly the fields of Checkpoint, all present.
func ParseCheckpoint(data []byte) (Checkpoint, error) {
	var raw struct {
		Seq       *uint64 `json:"stream_seq"`
		Count     *uint64 `json:"event_count"`
		Head      *string `json:"head_hash"`
		CreatedNs *int64  `json:"created_ns"`
		KeyID     *string `json:"key_id"`
		Signature *string `json:"signature"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return Checkpoint{}, fmt.Errorf("not a checkpoint (JSON): %w", err)
	}
	if dec.More() {
		return Checkpoint{}, errors.New("not a checkpoint (JSON): data after the object")
	}
	var missing []string
	for _, f := range []struct {
		name string
		ok   bool
	}{{"stream_seq", raw.Seq != nil}, {"event_count", raw.Count != nil}, {"head_hash", raw.Head != nil},
		{"created_ns", raw.CreatedNs != nil}, {"key_id", raw.KeyID != nil}, {"signature", raw.Signature != nil}} {
		if !f.ok {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Checkpoint{}, fmt.Errorf("not a checkpoint: %s missing", strings.Join(missing, ", "))
	}
	return Checkpoint{Seq: *raw.Seq, Count: *raw.Count, Head: *raw.Head, CreatedNs: *raw.CreatedNs, KeyID: *raw.KeyID, Signature: *raw.Signature}, nil
}

// StreamComparison is what comparing the stream with the table found.
type StreamComparison struct {
	// FromSeq and ToSeq are the stream_seq range compared (ToSeq 0: no
	// upper bound): from the anchor (or 1) to the end checkpoint.
	FromSeq, ToSeq uint64
	// Stream and Table are how many distinct checkpoints each holds in the
	// range; Identical how many are in both, equal in every field.
	Stream, Table, Identical int
	// Unreadable is how many messages of the stream are not checkpoints.
	Unreadable int
	// Later is how many checkpoints of the table were made after the
	// stream was read (with no upper bound only): not compared.
	Later int
}

// VerifyWithStream is Verify with the checkpoints of EVIDENCE_CHECKPOINTS
// as the reference: it first compares the checkpoints table with the
// stream in the verified range (a checkpoint deleted from the table,
// altered there, or in the table only; stream messages that are not
// checkpoints or whose signature does not verify), then recomputes the
// chain and checks it against the stream's checkpoints, so a stretch of
// rows rewritten after its checkpoints were deleted from ClickHouse is
// still caught. Every finding is a Problem (comparison ones of kind
// BadCheck, listed first). It streams the rows as Verify does.
func VerifyWithStream(ctx context.Context, conn driver.Conn, opts Options, sc *StreamCheckpoints) (*Result, *StreamComparison, error) {
	if opts.FromSeq == 0 {
		opts.FromSeq = 1
	}
	res := &Result{}
	cmp := &StreamComparison{}
	v := &verifier{opts: opts, res: res, ctx: ctx}

	// The stream's checkpoints: parsed, signature checked, deduplicated,
	// in stream_seq order.
	var valid, bad []StreamCheckpoint
	for _, m := range sc.Msgs {
		if m.Err != nil {
			cmp.Unreadable++
			res.Problems = append(res.Problems, Problem{Kind: BadCheck,
				Message: fmt.Sprintf("%s message %d: %v", CheckpointStream, m.MsgSeq, m.Err)})
			continue
		}
		if m.Err = m.Checkpoint.CheckSignature(opts.Keys); m.Err != nil {
			bad = append(bad, m)
			continue
		}
		valid = append(valid, m)
	}
	sortCheckpoints(valid)
	cps := make([]Checkpoint, 0, len(valid))
	for _, m := range valid {
		if n := len(cps); n == 0 || cps[n-1] != m.Checkpoint {
			cps = append(cps, m.Checkpoint)
		}
	}

	// Anchor: the newest before the range; end: the first at or after its
	// end.
	v.prev = link{ok: true}
	if opts.FromSeq > 1 {
		if i := lastBefore(cps, opts.FromSeq); i >= 0 {
			c := cps[i]
			res.Anchor = &c
			v.prev = link{seq: c.Seq, hash: c.Head, ok: true}
			v.anchor, v.count, v.matchSeq = true, c.Count, c.Seq
		}
	}
	res.EndSeq = opts.ToSeq
	if opts.ToSeq > 0 {
		if i, _ := slices.BinarySearchFunc(cps, opts.ToSeq, func(c Checkpoint, seq uint64) int { return cmpSeq(c.Seq, seq) }); i < len(cps) {
			res.EndSeq = cps[i].Seq
		}
	}
	cmp.FromSeq, cmp.ToSeq = max(v.prev.seq, 1), res.EndSeq
	inRange := func(seq uint64) bool { return seq >= cmp.FromSeq && (cmp.ToSeq == 0 || seq <= cmp.ToSeq) }

	for _, m := range bad {
		if inRange(m.Checkpoint.Seq) {
			c := m.Checkpoint
			res.Problems = append(res.Problems, Problem{Kind: BadCheck, Seq: c.Seq,
				Message: fmt.Sprintf("checkpoint at row %d (key %s, made %s) in %s (message %d): %v", c.Seq, c.KeyID, madeAt(&c), CheckpointStream, m.MsgSeq, m.Err)})
		}
	}
	var fromStream []Checkpoint
	for _, c := range cps {
		if inRange(c.Seq) {
			fromStream = append(fromStream, c)
		}
	}
	var fromTable []Checkpoint
	if err := ScanCheckpoints(ctx, conn, cmp.FromSeq, cmp.ToSeq, func(c Checkpoint) error {
		fromTable = append(fromTable, c)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	// With no upper bound, a checkpoint evidenced made while the stream was
	// being read is in the table and not in what was read: a validly signed
	// one newer than both the stream's newest and the start of the read
	// (less a minute for clocks) is left out of the comparison.
	if cmp.ToSeq == 0 {
		newest := uint64(0)
		if len(cps) > 0 {
			newest = cps[len(cps)-1].Seq
		}
		since := sc.ReadAt.Add(-time.Minute).UnixNano()
		fromTable = slices.DeleteFunc(fromTable, func(c Checkpoint) bool {
			later := c.Seq > newest && c.CreatedNs >= since && c.CheckSignature(opts.Keys) == nil
			if later {
				cmp.Later++
			}
			return later
		})
	}
	res.Problems = append(res.Problems, compareCheckpoints(fromStream, fromTable, opts.Keys, cmp)...)

	// The chain against the stream's checkpoints after the anchor.
	ch := make(chan Checkpoint, len(cps))
	for _, c := range cps {
		if c.Seq > v.prev.seq && (res.EndSeq == 0 || c.Seq <= res.EndSeq) {
			ch <- c
		}
	}
	close(ch)
	chErr := make(chan error, 1)
	chErr <- nil
	v.cps, v.cpsErr = ch, chErr
	v.advance()
	if err := v.scan(ctx, conn); err != nil {
		return nil, nil, err
	}
	return res, cmp, nil
}

// scan reads the rows after v.prev up to v.res.EndSeq and checks them,
// as Verify does.
func (v *verifier) scan(ctx context.Context, conn driver.Conn) error {
	var cur, nxt store.EventRow
	have := false
	err := ScanEvents(ctx, conn, v.prev.seq+1, v.res.EndSeq, func(r *store.EventRow) error {
		if !have {
			cur, have = *r, true
			return nil
		}
		nxt = *r
		if err := v.row(&cur, &nxt); err != nil {
			return err
		}
		cur = nxt
		return nil
	})
	if err == nil && have {
		err = v.row(&cur, nil)
	}
	if err == nil {
		v.end()
	}
	if v.scanErr != nil && !errors.Is(v.scanErr, context.Canceled) {
		return v.scanErr
	}
	if err != nil && !errors.Is(err, errStop) {
		return err
	}
	v.res.Unsigned = v.count - v.matchedCount()
	return nil
}

// compareCheckpoints pairs the stream's checkpoints with the table's, both
// deduplicated and in stream_seq order: identical ones match; at one
// stream_seq, what is left on both sides pairs up as altered; the rest is
// in one of them only.
func compareCheckpoints(stream, table []Checkpoint, keys PublicKeys, cmp *StreamComparison) []Problem {
	var out []Problem
	i, j := 0, 0
	for i < len(stream) || j < len(table) {
		seq := uint64(0)
		switch {
		case i == len(stream):
			seq = table[j].Seq
		case j == len(table):
			seq = stream[i].Seq
		default:
			seq = min(stream[i].Seq, table[j].Seq)
		}
		var s, t []Checkpoint
		for ; i < len(stream) && stream[i].Seq == seq; i++ {
			if !slices.Contains(s, stream[i]) {
				s = append(s, stream[i])
			}
		}
		for ; j < len(table) && table[j].Seq == seq; j++ {
			if !slices.Contains(t, table[j]) {
				t = append(t, table[j]) // the same row stored twice (a retried insert) counts once
			}
		}
		cmp.Stream += len(s)
		cmp.Table += len(t)
		// Identical ones first.
		var restS []Checkpoint
		for _, c := range s {
			if k := slices.Index(t, c); k >= 0 {
				cmp.Identical++
				t = slices.Delete(t, k, k+1)
				continue
			}
			restS = append(restS, c)
		}
		for k, c := range restS {
			if k < len(t) {
				out = append(out, Problem{Kind: BadCheck, Seq: seq, Message: fmt.Sprintf(
					"checkpoint at row %d (key %s, made %s) differs between %s and ClickHouse (%s): altered in ClickHouse",
					seq, c.KeyID, madeAt(&c), CheckpointStream, checkpointDiff(&c, &t[k]))})
				continue
			}
			out = append(out, Problem{Kind: BadCheck, Seq: seq, Message: fmt.Sprintf(
				"checkpoint at row %d (key %s, made %s) is in %s but not in ClickHouse: deleted from the checkpoints table",
				seq, c.KeyID, madeAt(&c), CheckpointStream)})
		}
		for k := len(restS); k < len(t); k++ {
			c := t[k]
			msg := fmt.Sprintf("checkpoint at row %d (key %s, made %s) is in ClickHouse but not in %s", seq, c.KeyID, madeAt(&c), CheckpointStream)
			if err := c.CheckSignature(keys); err != nil {
				msg += fmt.Sprintf(", and %v", err)
			} else {
				msg += ": evidenced publishes every checkpoint before it stores it, so the stream is not the one this archive publishes to, or the signing key signed it outside evidenced"
			}
			out = append(out, Problem{Kind: BadCheck, Seq: seq, Message: msg})
		}
	}
	return out
}

// checkpointDiff names the fields in which a (the stream's) and b (the
// table's) differ.
func checkpointDiff(a, b *Checkpoint) string {
	var d []string
	add := func(name string, x, y any) {
		if x != y {
			d = append(d, fmt.Sprintf("%s %v in the stream, %v in ClickHouse", name, x, y))
		}
	}
	add("event_count", a.Count, b.Count)
	add("head_hash", a.Head, b.Head)
	add("created_ns", a.CreatedNs, b.CreatedNs)
	add("key_id", a.KeyID, b.KeyID)
	add("signature", a.Signature, b.Signature)
	return strings.Join(d, "; ")
}

func madeAt(c *Checkpoint) string { return c.Created().Format("2006-01-02T15:04:05Z") }

// sortCheckpoints orders as ScanCheckpoints reads the table: stream_seq,
// created_ns, signature.
func sortCheckpoints(ms []StreamCheckpoint) {
	slices.SortStableFunc(ms, func(a, b StreamCheckpoint) int {
		x, y := &a.Checkpoint, &b.Checkpoint
		if c := cmpSeq(x.Seq, y.Seq); c != 0 {
			return c
		}
		if x.CreatedNs != y.CreatedNs {
			if x.CreatedNs < y.CreatedNs {
				return -1
			}
			return 1
		}
		return strings.Compare(x.Signature, y.Signature)
	})
}

func cmpSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// lastBefore is the index of the last checkpoint with Seq < seq, -1 when
// none.
func lastBefore(cps []Checkpoint, seq uint64) int {
	i, _ := slices.BinarySearchFunc(cps, seq, func(c Checkpoint, s uint64) int { return cmpSeq(c.Seq, s) })
	return i - 1
}
