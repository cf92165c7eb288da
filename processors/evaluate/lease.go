package evaluate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// LeaseBucket holds the evaluation stage's lease: with several replicas of
// evidenced, one evaluates at a time (two would append the same results)
// and another takes over within the lease's time to live when it stops.
const LeaseBucket = "EVIDENCE_EVAL_LEASE"

const leaseKey = "evaluate"

// Lease configures RunLeased.
type Lease struct {
	// TTL: a holder that has not renewed for this long loses the lease
	// (default 15s); it renews every TTL/3.
	TTL time.Duration
	// Holder names this replica in the lease (default host:pid:random).
	Holder string
	// Standby, when set, is called each time this replica finds the lease
	// held by another and stands by (tests wait on it instead of sleeping).
	Standby func()
}

// RunLeased runs fn while this replica holds the lease, until ctx ends:
// it waits for the lease, runs fn with a context that ends when the lease
// is lost, and waits again. fn returning ends the hold (its error is
// returned, unless the lease was lost).
func RunLeased(ctx context.Context, js jetstream.JetStream, l Lease, log *slog.Logger, fn func(ctx context.Context) error) error {
	if l.TTL <= 0 {
		l.TTL = 15 * time.Second
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
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: LeaseBucket, Description: "which replica runs the evaluation stage",
		Storage: jetstream.FileStorage, History: 1, TTL: l.TTL,
	})
	if err != nil {
		return fmt.Errorf("evaluate: lease bucket: %w", err)
	}
	every := l.TTL / 3
	waiting := false
	for {
		rev, err := kv.Create(ctx, leaseKey, []byte(l.Holder))
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if !errors.Is(err, jetstream.ErrKeyExists) {
				return fmt.Errorf("evaluate: lease: %w", err)
			}
			if !waiting {
				holder := ""
				if e, err := kv.Get(ctx, leaseKey); err == nil {
					holder = string(e.Value())
				}
				log.Info("evaluate: another replica holds the evaluation lease; standing by", "holder", holder, "ttl", l.TTL)
				waiting = true
			}
			if l.Standby != nil {
				l.Standby()
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(every):
			}
			continue
		}
		waiting = false
		log.Info("evaluate: holding the evaluation lease", "holder", l.Holder)
		hctx, cancel := context.WithCancel(ctx)
		lost := make(chan struct{})
		go func() {
			defer close(lost)
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-hctx.Done():
					return
				case <-t.C:
				}
				r, err := kv.Update(hctx, leaseKey, []byte(l.Holder), rev)
				if err != nil {
					if hctx.Err() == nil {
						log.Warn("evaluate: lost the evaluation lease; stopping", "err", err)
						cancel()
					}
					return
				}
				rev = r
			}
		}()
		err = fn(hctx)
		lostLease := hctx.Err() != nil && ctx.Err() == nil
		cancel()
		<-lost
		if ctx.Err() != nil {
			// Let another replica take over at once.
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
			_ = kv.Delete(dctx, leaseKey, jetstream.LastRevision(rev))
			dcancel()
			return nil
		}
		if !lostLease {
			dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
			_ = kv.Delete(dctx, leaseKey, jetstream.LastRevision(rev))
			dcancel()
			return err
		}
	}
}
