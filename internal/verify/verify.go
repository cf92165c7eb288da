package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/evidencepipeline/evidence/internal/store"
)

// Options select what Verify checks.
type Options struct {
	// FromSeq and ToSeq bound the rows to check (ToSeq 0: up to the head).
	// Verify starts from the newest checkpoint before FromSeq (or the
	// first row of the chain) and goes on to the first checkpoint at or
	// after ToSeq, so that both ends are tied to a signed head.
	FromSeq, ToSeq uint64
	// Keys are the public keys checkpoints may be signed with.
	Keys PublicKeys
	// Progress, when set, is called every ProgressEvery rows.
	Progress func(Progress)
}

// ProgressEvery is how many rows pass between Progress calls.
const ProgressEvery = 100_000

// Progress is how far a verification got.
type Progress struct {
	Events  uint64 // rows checked so far
	Seq     uint64 // stream_seq of the last row checked
	LastSeq uint64 // the row it stops at (0: the head)
}

// Problem kinds.
const (
	Altered    = "altered"
	Missing    = "missing"
	Inserted   = "inserted"
	BadCheck   = "checkpoint" // a checkpoint whose signature does not verify or whose key is unknown
	Rewritten  = "rewritten"  // the chain is consistent in itself but not the one a checkpoint signed
	NoCheckRow = "missing-head"
)

// Problem is one finding.
type Problem struct {
	Kind string
	// Seq is the row at fault (for checkpoint problems, the checkpoint's
	// stream_seq); EventID its event id when the row exists.
	Seq     uint64
	EventID string
	// Message says what is wrong, naming the row.
	Message string
}

// Result is what Verify found.
type Result struct {
	// Anchor is the checkpoint the verification started from; nil: the
	// first row of the chain.
	Anchor *Checkpoint
	// FirstSeq and LastSeq are the first and last rows checked; Events how
	// many.
	FirstSeq, LastSeq, Events uint64
	// EndSeq is where the verification was to stop (0: the head): ToSeq, or
	// the first checkpoint at or after it.
	EndSeq uint64
	// Checkpoints is how many checkpoints matched the chain.
	Checkpoints int
	// LastSigned is the newest checkpoint that matched.
	LastSigned *Checkpoint
	// Unsigned is how many rows checked come after LastSigned (after the
	// anchor, or all of them, when no checkpoint matched): only checked
	// against each other.
	Unsigned uint64
	// Problems lists what is wrong: at most one row problem (the first),
	// which ends the verification, and every bad checkpoint seen before it.
	Problems []Problem
}

// OK reports whether nothing is wrong.
func (r *Result) OK() bool { return len(r.Problems) == 0 }

// errStop ends the scan after the first row problem.
var errStop = errors.New("stop")

// link is a row accepted into the chain.
type link struct {
	seq  uint64
	id   string
	hash string
	ok   bool // exists (false before the first row)
}

type verifier struct {
	opts   Options
	res    *Result
	hasher RowHasher
	count  uint64
	prev   link // last accepted row, or the anchor (id "")
	prev2  link // the one before it
	anchor bool // prev is the anchor checkpoint, not a row read
	// checkpoints yet to match, in stream_seq order, signature checked
	cps      <-chan Checkpoint
	cpsErr   <-chan error
	next     *Checkpoint // the next valid checkpoint to match, nil when none left
	lastSeen Checkpoint  // for dropping exact duplicates
	seenAny  bool
	matchSeq uint64 // stream_seq of the last matched checkpoint (or anchor)
	ctx      context.Context
	scanErr  error
}

// Verify recomputes the chain from ClickHouse between opts.FromSeq and
// opts.ToSeq and checks it against the checkpoints. It returns an error
// only when it cannot read; what it finds is in Result.Problems.
func Verify(ctx context.Context, conn driver.Conn, opts Options) (*Result, error) {
	if opts.FromSeq == 0 {
		opts.FromSeq = 1
	}
	res := &Result{}
	v := &verifier{opts: opts, res: res, ctx: ctx}

	// Anchor: the newest checkpoint before the range.
	v.prev = link{ok: true} // genesis: seq 0, hash ""
	if opts.FromSeq > 1 {
		c, ok, err := oneCheckpoint(ctx, conn, "SELECT "+CheckpointColumns+" FROM checkpoints WHERE stream_seq < ? ORDER BY stream_seq DESC, created_ns DESC LIMIT 1", opts.FromSeq)
		if err != nil {
			return nil, err
		}
		if ok {
			if err := c.CheckSignature(opts.Keys); err != nil {
				v.checkpointProblem(c, err)
			} else {
				res.Anchor = &c
				v.prev = link{seq: c.Seq, hash: c.Head, ok: true}
				v.anchor, v.count, v.matchSeq = true, c.Count, c.Seq
			}
		}
	}
	// End: the first checkpoint at or after ToSeq.
	res.EndSeq = opts.ToSeq
	if opts.ToSeq > 0 {
		c, ok, err := oneCheckpoint(ctx, conn, "SELECT "+CheckpointColumns+" FROM checkpoints WHERE stream_seq >= ? ORDER BY stream_seq, created_ns LIMIT 1", opts.ToSeq)
		if err != nil {
			return nil, err
		}
		if ok {
			res.EndSeq = c.Seq
		}
	}

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cps, cpsErr := make(chan Checkpoint, 256), make(chan error, 1)
	go func() {
		defer close(cps)
		cpsErr <- ScanCheckpoints(sctx, conn, v.prev.seq+1, res.EndSeq, func(c Checkpoint) error {
			select {
			case cps <- c:
				return nil
			case <-sctx.Done():
				return sctx.Err()
			}
		})
	}()
	v.cps, v.cpsErr = cps, cpsErr
	v.advance()

	if err := v.scan(ctx, conn); err != nil {
		return nil, err
	}
	return res, nil
}

func (v *verifier) matchedCount() uint64 {
	switch {
	case v.res.LastSigned != nil:
		return v.res.LastSigned.Count
	case v.res.Anchor != nil:
		return v.res.Anchor.Count
	}
	return 0
}

// advance sets v.next to the next checkpoint whose signature verifies,
// recording the others as problems.
func (v *verifier) advance() {
	v.next = nil
	for c := range v.cps {
		if v.seenAny && c == v.lastSeen {
			continue // the same checkpoint stored twice (a retried insert)
		}
		v.lastSeen, v.seenAny = c, true
		if err := c.CheckSignature(v.opts.Keys); err != nil {
			v.checkpointProblem(c, err)
			continue
		}
		v.next = &c
		return
	}
	if err := <-v.cpsErr; err != nil {
		v.scanErr = err
	}
}

func (v *verifier) checkpointProblem(c Checkpoint, err error) {
	v.res.Problems = append(v.res.Problems, Problem{Kind: BadCheck, Seq: c.Seq,
		Message: fmt.Sprintf("checkpoint at seq %d (key %s, made %s): %v", c.Seq, c.KeyID, c.Created().Format("2006-01-02T15:04:05Z"), err)})
}

func (v *verifier) fail(kind string, seq uint64, id, format string, a ...any) error {
	v.res.Problems = append(v.res.Problems, Problem{Kind: kind, Seq: seq, EventID: id, Message: fmt.Sprintf(format, a...)})
	return errStop
}

func (v *verifier) selfConsistent(r *store.EventRow) bool {
	h, err := v.hasher.Hash(r)
	return err == nil && h == r.Hash
}

// signedBy says which checkpoint covers a row at seq: the next one to
// match at or after it.
func (v *verifier) signedBy(seq uint64) string {
	if v.next != nil && v.next.Seq >= seq {
		return fmt.Sprintf("; not in the chain signed by checkpoint at seq %d", v.next.Seq)
	}
	return ""
}

// row checks r, the row after the last accepted one; next is the row
// after r (nil at the end).
func (v *verifier) row(r, next *store.EventRow) error {
	p := v.prev
	if r.PrevHash == p.hash && v.selfConsistent(r) {
		return v.accept(r)
	}
	// The chain goes from the last accepted row straight to the next one:
	// r is not part of it.
	if next != nil && next.PrevHash == p.hash && next.StreamSeq >= r.StreamSeq && v.selfConsistent(next) {
		return v.fail(Inserted, r.StreamSeq, r.EventID, "row %d (event %s) inserted: not in the chain, which goes from row %d to row %d without it%s",
			r.StreamSeq, r.EventID, p.seq, next.StreamSeq, v.signedBy(r.StreamSeq))
	}
	// r follows the row before the last accepted one: that one was
	// inserted (with a prev_hash and hash made to fit).
	if v.prev2.ok && !v.anchor && r.PrevHash == v.prev2.hash && v.selfConsistent(r) {
		return v.fail(Inserted, p.seq, p.id, "row %d (event %s) inserted: not in the chain, which goes from row %d to row %d without it%s",
			p.seq, p.id, v.prev2.seq, r.StreamSeq, v.signedBy(p.seq))
	}
	if !v.selfConsistent(r) {
		return v.fail(Altered, r.StreamSeq, r.EventID, "row %d (event %s) altered: its hash does not match its content", r.StreamSeq, r.EventID)
	}
	// r is consistent in itself but does not follow the row before it.
	if r.StreamSeq > p.seq+1 {
		if r.StreamSeq == p.seq+2 {
			return v.fail(Missing, p.seq+1, "", "row %d missing between %d and %d (row %d's prev_hash names a row that is not in the table)",
				p.seq+1, p.seq, r.StreamSeq, r.StreamSeq)
		}
		return v.fail(Missing, p.seq+1, "", "rows missing between %d and %d: row %d's prev_hash names a row that is not in the table (some of stream_seq %d..%d were deleted)",
			p.seq, r.StreamSeq, r.StreamSeq, p.seq+1, r.StreamSeq-1)
	}
	if v.anchor {
		return v.fail(Altered, r.StreamSeq, r.EventID, "row %d (event %s) altered: its prev_hash is not the head hash signed by checkpoint at seq %d",
			r.StreamSeq, r.EventID, p.seq)
	}
	return v.fail(Altered, p.seq, p.id, "row %d (event %s) altered: its hash was recomputed after a change, but row %d's prev_hash still names the original",
		p.seq, p.id, r.StreamSeq)
}

func (v *verifier) accept(r *store.EventRow) error {
	v.count++
	res := v.res
	if res.Events == 0 {
		res.FirstSeq = r.StreamSeq
	}
	res.Events++
	res.LastSeq = r.StreamSeq
	v.prev2, v.prev, v.anchor = v.prev, link{seq: r.StreamSeq, id: r.EventID, hash: r.Hash, ok: true}, false
	for v.next != nil && v.next.Seq <= r.StreamSeq {
		c := v.next
		if c.Seq < r.StreamSeq {
			return v.fail(NoCheckRow, c.Seq, "", "row %d missing: checkpoint at seq %d signed it as the chain's head (hash %s), but the chain goes on from row %d to row %d",
				c.Seq, c.Seq, c.Head, v.prev2.seq, r.StreamSeq)
		}
		if r.Hash != c.Head {
			return v.fail(Rewritten, v.matchSeq+1, "", "rows %d..%d altered and re-hashed: row %d's hash is not the head hash signed by checkpoint at seq %d; the rows agree with each other, so the chain was rewritten after row %d",
				v.matchSeq+1, c.Seq, c.Seq, c.Seq, v.matchSeq)
		}
		if v.count != c.Count {
			return v.fail(Rewritten, v.matchSeq+1, "", "rows deleted or inserted between %d and %d and the chain re-hashed: it holds %d rows up to row %d, checkpoint at seq %d signed %d",
				v.matchSeq, c.Seq, v.count, c.Seq, c.Seq, c.Count)
		}
		res.Checkpoints++
		res.LastSigned, v.matchSeq = c, c.Seq
		v.advance()
	}
	if v.opts.Progress != nil && res.Events%ProgressEvery == 0 {
		v.opts.Progress(Progress{Events: res.Events, Seq: r.StreamSeq, LastSeq: res.EndSeq})
	}
	if err := v.ctx.Err(); err != nil {
		return err
	}
	return nil
}

// end checks the checkpoints beyond the last row: their head rows were
// deleted.
func (v *verifier) end() {
	if v.next != nil {
		c := v.next
		_ = v.fail(NoCheckRow, c.Seq, "", "row %d missing: checkpoint at seq %d signed it as the chain's head (hash %s, %d events), but the chain ends at row %d",
			c.Seq, c.Seq, c.Head, c.Count, v.prev.seq)
	}
}
