// Package checkpoint is the stage that signs the archive's hash chain: every
// N events or T (when new events were archived) it makes a checkpoint of
// the chain's head (stream sequence, hash, number of rows, time, key id,
// ed25519 signature; format in internal/verify), stores it in ClickHouse
// checkpoints and publishes it to the JetStream stream EVIDENCE_CHECKPOINTS,
// which denies deletes and purges.
//
// It follows the archive through the archive's Committed hook, so a
// checkpoint only ever signs rows already stored. Counting by events puts
// checkpoints exactly every N rows of the chain (the rows at counts N, 2N,
// ...), whatever the batches; the interval signs the head of the last
// committed batch. After a restart it continues from ClickHouse: the count
// of rows before the first batch it sees, and the newest checkpoint.
//
// Writes never hold the archive up: checkpoints wait in a queue, retried
// until both ClickHouse and JetStream have them (JetStream de-duplicates a
// re-publish by message id). Stop makes a last checkpoint of an unsigned
// head and flushes the queue.
package checkpoint

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/store"
	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
)

const (
	// Stream keeps every checkpoint; deletes and purges are denied.
	Stream = "EVIDENCE_CHECKPOINTS"
	// Subject is where checkpoints are published (JSON, verify.Checkpoint).
	Subject = "evidence.checkpoints"
)

// EnsureStream creates the checkpoint stream or updates its configuration:
// file storage, kept forever, deletes and purges denied.
func EnsureStream(ctx context.Context, js jetstream.JetStream, replicas int) error {
	if replicas < 1 {
		replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        Stream,
		Description: "Signed checkpoints of the archive's hash chain (JSON); evidence verify checks the chain against them.",
		Subjects:    []string{Subject, LogSubject},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Replicas:    replicas,
		Duplicates:  time.Hour,
		DenyDelete:  true,
		DenyPurge:   true,
	})
	if err != nil {
		return fmt.Errorf("create or update stream %s: %w", Stream, err)
	}
	return nil
}

// Config tunes the checkpointer. Zero values take the defaults.
type Config struct {
	// Every is the number of events between checkpoints (default 10000).
	Every uint64
	// Interval is the longest an archived event waits to be signed
	// (default 1m).
	Interval time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

func (c *Config) defaults() {
	if c.Every == 0 {
		c.Every = 10000
	}
	if c.Interval <= 0 {
		c.Interval = time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Checkpointer signs the chain as the archive commits it.
type Checkpointer struct {
	js  jetstream.JetStream
	st  *store.Store
	key *verify.SigningKey
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	ready    bool   // the state below was read from ClickHouse
	headSeq  uint64 // the chain's head as committed
	headHash string
	count    uint64 // rows in the chain up to the head
	last     verify.Checkpoint
	hasLast  bool
	queue    []verify.Checkpoint // made, not yet stored and published
	wake     chan struct{}
	failures int
	// logSigner signs the transparency log's checkpoints (log.go);
	// chainDone: queue[0]'s chain checkpoint is written, its log
	// checkpoint is not yet.
	logSigner *itlog.Signer
	chainDone bool
}

// New returns a checkpointer signing with key, storing into st and
// publishing to js. log may be nil.
func New(js jetstream.JetStream, st *store.Store, key *verify.SigningKey, cfg Config, log *slog.Logger) *Checkpointer {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ls, err := itlog.NewSigner(Origin(key), key.Private)
	if err != nil {
		panic(err) // a key id is hex: the origin is always valid
	}
	log = log.With("stage", "checkpoint")
	log.Info("transparency log checkpoints signed: auditors check them with the log key (evidence verify inclusion|consistency --log-key)", "origin", ls.Origin(), "log_key", ls.VerifierKey())
	return &Checkpointer{js: js, st: st, key: key, cfg: cfg, log: log, wake: make(chan struct{}, 1), logSigner: ls}
}

// LogVerifierKey is the note verifier key of the log's checkpoints: what
// auditors give evidence verify (and any C2SP note reader) to check them.
func (c *Checkpointer) LogVerifierKey() string { return c.logSigner.VerifierKey() }

// Committed is the archive's Committed hook: rows were stored and
// acknowledged, in chain order. It never blocks on ClickHouse for long: at
// most one query, the first time.
func (c *Checkpointer) Committed(rows []store.EventRow) {
	if len(rows) == 0 {
		return
	}
	if !c.isReady() {
		c.initBefore(rows[0].StreamSeq)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		return // ClickHouse did not answer; the next batch retries
	}
	made := false
	for i := range rows {
		r := &rows[i]
		if r.StreamSeq <= c.headSeq {
			continue // already counted by an initialisation that saw it
		}
		c.headSeq, c.headHash = r.StreamSeq, r.Hash
		c.count++
		if c.count-c.lastCount() >= c.cfg.Every {
			c.sign()
			made = true
		}
	}
	if made {
		c.signal()
	}
}

func (c *Checkpointer) isReady() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

func (c *Checkpointer) lastCount() uint64 {
	if c.hasLast {
		return c.last.Count
	}
	return 0
}

func (c *Checkpointer) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// sign signs the current head and queues it; c.mu is held.
func (c *Checkpointer) sign() {
	cp := verify.Checkpoint{Seq: c.headSeq, Count: c.count, Head: c.headHash, CreatedNs: c.cfg.Now().UnixNano()}
	cp.Sign(c.key)
	c.queue = append(c.queue, cp)
	c.last, c.hasLast = cp, true
	c.log.Debug("checkpoint", "seq", cp.Seq, "count", cp.Count, "head", cp.Head)
}

// initBefore reads the state from ClickHouse when the first batch seen
// starts at seq: the rows before it are the chain so far.
func (c *Checkpointer) initBefore(seq uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n uint64
	var head uint64
	var hash string
	err := c.st.Conn().QueryRow(ctx, "SELECT count(), max(stream_seq), argMax(hash, stream_seq) FROM events WHERE stream_seq < ?", seq).Scan(&n, &head, &hash)
	if err == nil {
		err = c.apply(ctx, head, hash, n)
	}
	if err != nil {
		c.log.Warn("checkpoint: cannot read the chain's state from ClickHouse; retrying with the next batch", "err", err)
	}
}

// initHead reads the state from ClickHouse: the chain's head and count.
func (c *Checkpointer) initHead(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var n, head uint64
	var hash string
	err := c.st.Conn().QueryRow(ctx, "SELECT count(), max(stream_seq), argMax(hash, stream_seq) FROM events").Scan(&n, &head, &hash)
	if err != nil {
		return err
	}
	return c.apply(ctx, head, hash, n)
}

// apply sets the state read from ClickHouse unless another initialisation
// got there first.
func (c *Checkpointer) apply(ctx context.Context, head uint64, hash string, n uint64) error {
	last, hasLast, err := verify.LastCheckpoint(ctx, c.st.Conn())
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ready {
		return nil
	}
	c.headSeq, c.headHash, c.count = head, hash, n
	c.last, c.hasLast = last, hasLast
	c.ready = true
	c.log.Info("checkpoint: following the chain", "head_seq", head, "events", n, "last_checkpoint_seq", last.Seq, "key_id", c.key.ID)
	return nil
}

// Run makes interval checkpoints and stores and publishes the queue until
// ctx ends; then call Stop.
func (c *Checkpointer) Run(ctx context.Context) {
	tick := min(max(c.cfg.Interval/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
		c.tick(ctx)
		c.flush(ctx)
	}
}

// tick makes a checkpoint when the interval has passed and the head is not
// signed.
func (c *Checkpointer) tick(ctx context.Context) {
	if !c.isReady() {
		if err := c.initHead(ctx); err != nil {
			return // ClickHouse unavailable: the archive waits too
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.headSeq == 0 || (c.hasLast && c.last.Seq >= c.headSeq) {
		return
	}
	if c.hasLast && c.cfg.Now().Sub(c.last.Created()) < c.cfg.Interval {
		return
	}
	c.sign()
}

// Stop signs the head if it is not signed and flushes the queue, giving up
// when ctx ends. Call it after the archive has stopped.
func (c *Checkpointer) Stop(ctx context.Context) error {
	c.mu.Lock()
	if c.ready && c.headSeq > 0 && (!c.hasLast || c.last.Seq < c.headSeq) {
		c.sign()
	}
	c.mu.Unlock()
	for {
		if c.flush(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			c.mu.Lock()
			n := len(c.queue)
			c.mu.Unlock()
			return fmt.Errorf("checkpoint: %d checkpoints not stored at stop (the chain stays verifiable; the next run signs its head): %w", n, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// flush stores and publishes the queued checkpoints, in order; it reports
// whether the queue is empty.
func (c *Checkpointer) flush(ctx context.Context) bool {
	for {
		c.mu.Lock()
		if len(c.queue) == 0 {
			c.mu.Unlock()
			return true
		}
		cp := c.queue[0]
		c.mu.Unlock()
		if err := c.write(ctx, cp); err != nil {
			c.failures++
			if c.failures == 1 || c.failures%20 == 0 {
				c.log.Warn("checkpoint: store or publish failed; retrying", "seq", cp.Seq, "attempts", c.failures, "err", err)
			}
			return false
		}
		c.failures = 0
		c.chainDone = false
		c.mu.Lock()
		c.queue = c.queue[1:]
		c.mu.Unlock()
	}
}

// write publishes cp to the stream, then stores it in ClickHouse. The
// publish is de-duplicated by message id, so a retry after a failed insert
// does not publish it twice.
func (c *Checkpointer) write(ctx context.Context, cp verify.Checkpoint) error {
	if !c.chainDone {
		if err := c.writeChain(ctx, cp); err != nil {
			return err
		}
		c.chainDone = true
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.writeLog(pctx, cp)
}

// writeChain writes the chain's checkpoint (the JSON format of
// internal/verify).
func (c *Checkpointer) writeChain(ctx context.Context, cp verify.Checkpoint) error {
	body, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	msg := nats.NewMsg(Subject)
	msg.Data = body
	msg.Header.Set(jetstream.MsgIDHeader, "checkpoint-"+strconv.FormatUint(cp.Seq, 10)+"-"+cp.KeyID+"-"+strconv.FormatInt(cp.CreatedNs, 10))
	msg.Header.Set("Content-Type", "application/json")
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.js.PublishMsg(pctx, msg); err != nil {
		return fmt.Errorf("publish to %s: %w", Stream, err)
	}
	return verify.InsertCheckpoints(pctx, c.st.Conn(), []verify.Checkpoint{cp})
}

// Hook returns an archive Committed hook that feeds the checkpointer, then
// calls next (when not nil).
func (c *Checkpointer) Hook(next func([]store.EventRow)) func([]store.EventRow) {
	return func(rows []store.EventRow) {
		c.Committed(rows)
		if next != nil {
			next(rows)
		}
	}
}

// LoadKey loads evidenced's signing key: the file of --signing-key when
// given; else dataDir/evidence-signing.key, generated (with its public key
// beside it) at first start. Errors name the flag.
func LoadKey(flagPath, dataDir string, log *slog.Logger) (*verify.SigningKey, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if flagPath != "" {
		key, err := verify.LoadSigningKey(flagPath)
		if err != nil {
			return nil, fmt.Errorf("--signing-key (EVIDENCE_SIGNING_KEY): %w", err)
		}
		log.Info("checkpoints signed", "signing_key", flagPath, "key_id", key.ID)
		return key, nil
	}
	path := filepath.Join(dataDir, verify.PrivateKeyFile)
	key, created, err := verify.LoadOrCreateSigningKey(path)
	if err != nil {
		return nil, fmt.Errorf("--signing-key (EVIDENCE_SIGNING_KEY) not given, so the key is %s: %w", path, err)
	}
	pub := filepath.Join(dataDir, verify.PublicKeyFile)
	if created {
		log.Warn("generated a signing key for checkpoints: give its public key to auditors out of band (evidence verify --public-key)", "signing_key", path, "public_key", pub, "key_id", key.ID)
	} else {
		log.Info("checkpoints signed", "signing_key", path, "public_key", pub, "key_id", key.ID)
	}
	return key, nil
}
