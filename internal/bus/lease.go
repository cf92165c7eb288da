package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ArchiveLeaseBucket holds the archive's lease: with several replicas
// started with --archive, the one holding it writes the chain and signs
// its checkpoints; the others stand by and take over when it stops (at
// once) or dies (within the lease's time to live).
const ArchiveLeaseBucket = "EVIDENCE_ARCHIVE_LEASE"

// ErrLeaseLost is returned by Held.Valid when the lease is lost or may be
// about to expire: a write must not start.
var ErrLeaseLost = errors.New("lease lost or about to expire")

// Lease is an exclusive, expiring hold on one key of a key-value bucket
// whose time to live is the lease's. The holder renews it every TTL/4.
type Lease struct {
	// Bucket and Key name the lease.
	Bucket, Key string
	// TTL: a holder that has not renewed for this long loses the lease to
	// a standby (default 10s).
	TTL time.Duration
	// Holder names this replica in the lease (default host:pid:random).
	Holder string
	// Standby, when set, is called each time this replica finds the lease
	// held by another (tests wait on it instead of sleeping).
	Standby func(holder string)
	// Acquired, when set, is called when this replica takes the lease.
	Acquired func()
}

// Held is a lease being held, for fencing writes.
type Held struct {
	mu     sync.Mutex
	sentAt time.Time // when the newest successful renewal (or the create) was sent
	lost   bool
	ttl    time.Duration
	holder string
}

// Valid returns until when a write may land under the lease, or
// ErrLeaseLost. The bucket forgets the lease at the earliest TTL after the
// last renewal was sent; a write is only allowed to start, and must end
// (its context's deadline), within the first half of that, so a holder
// that was paused, cut off or slow cannot write once a standby may have
// taken over. Time is measured on this process's monotonic clock; no clock
// is compared between machines.
func (h *Held) Valid() (time.Time, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	until := h.sentAt.Add(h.ttl / 2)
	if h.lost || !time.Now().Before(until) {
		return time.Time{}, fmt.Errorf("%w (holder %s)", ErrLeaseLost, h.holder)
	}
	return until, nil
}

func (h *Held) renewed(sent time.Time) {
	h.mu.Lock()
	h.sentAt = sent
	h.mu.Unlock()
}

func (h *Held) lose() {
	h.mu.Lock()
	h.lost = true
	h.mu.Unlock()
}

// RunLeased runs fn while this replica holds the lease, until ctx ends: it
// waits for the lease, runs fn with a context that ends when the lease is
// lost, and waits again. fn returning ends the hold and gives the lease up
// (its error is returned, unless the lease was lost). When ctx ends the
// lease is given up, so that a standby takes over at once.
func RunLeased(ctx context.Context, js jetstream.JetStream, l Lease, log *slog.Logger, fn func(ctx context.Context, held *Held) error) error {
	if l.TTL <= 0 {
		l.TTL = 10 * time.Second
	}
	if l.Holder == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		l.Holder = fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lease", l.Bucket+"/"+l.Key, "holder", l.Holder)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: l.Bucket, Description: "which replica holds " + l.Key,
		Storage: jetstream.FileStorage, History: 1, TTL: l.TTL,
	})
	if err != nil {
		return fmt.Errorf("lease bucket %s: %w", l.Bucket, err)
	}
	poll := min(l.TTL/4, time.Second)
	waiting := false
	for {
		sent := time.Now()
		rev, err := kv.Create(ctx, l.Key, []byte(l.Holder))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				// The bus is away: stand by and try again.
				log.Warn("lease: cannot reach the bucket; retrying", "err", err)
			} else {
				holder := ""
				if e, err := kv.Get(ctx, l.Key); err == nil {
					holder = string(e.Value())
				}
				if !waiting {
					log.Info("lease: held by another replica; standing by", "by", holder, "ttl", l.TTL)
					waiting = true
				}
				if l.Standby != nil {
					l.Standby(holder)
				}
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(poll):
			}
			continue
		}
		waiting = false
		held := &Held{sentAt: sent, ttl: l.TTL, holder: l.Holder}
		log.Info("lease: taken")
		if l.Acquired != nil {
			l.Acquired()
		}
		hctx, cancel := context.WithCancel(ctx)
		renewing := make(chan struct{})
		go func() {
			defer close(renewing)
			t := time.NewTicker(l.TTL / 4)
			defer t.Stop()
			for {
				select {
				case <-hctx.Done():
					return
				case <-t.C:
				}
				sent := time.Now()
				uctx, ucancel := context.WithTimeout(hctx, l.TTL/4)
				r, err := kv.Update(uctx, l.Key, []byte(l.Holder), rev)
				ucancel()
				if err != nil {
					if hctx.Err() == nil {
						held.lose()
						log.Warn("lease: renewal failed; giving the lease up", "err", err)
						cancel()
					}
					return
				}
				rev = r
				held.renewed(sent)
			}
		}()
		err = fn(hctx, held)
		lost := hctx.Err() != nil && ctx.Err() == nil
		cancel()
		<-renewing
		held.lose()
		if !lost {
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = kv.Delete(dctx, l.Key, jetstream.LastRevision(rev))
			dcancel()
			log.Info("lease: given up")
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
