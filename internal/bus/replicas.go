package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Replication is what the operator asks of every stream and key-value
// bucket evidenced creates (--stream-replicas, --kv-replicas).
type Replication struct {
	// Streams is the least number of replicas of the streams (0 means 1).
	Streams int
	// KV is the least number of replicas of the key-value buckets (0
	// means 1).
	KV int
}

// NeverWeaken returns js with its stream and bucket creation made safe to
// run at every start against streams and buckets an operator may have
// tuned: a stream or bucket that does not exist is created with at least
// the replicas asked; one that exists keeps whatever of it is stronger
// than what the caller asks (more replicas, longer retention, larger
// limits (a limit the caller does not set stays as it is), a larger
// duplicate window, delete and purge denied, discard of
// new messages rather than old, its subjects) and takes from the caller
// only what raises it. A stream whose retention or storage is weaker than
// asked (not limits, memory instead of file) is refused with an error
// naming it: evidenced does not silently run on it, and JetStream cannot
// change either in place.
//
// Every stage takes the JetStream context from the daemon, so every
// stream and bucket the daemon creates, whichever package declares it,
// goes through these rules.
func NeverWeaken(js jetstream.JetStream, r Replication) jetstream.JetStream {
	r.Streams, r.KV = max(r.Streams, 1), max(r.KV, 1)
	return &strongJS{JetStream: js, r: r}
}

type strongJS struct {
	jetstream.JetStream
	r Replication
}

func (s *strongJS) CreateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return s.CreateOrUpdateStream(ctx, cfg)
}

func (s *strongJS) UpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	return s.CreateOrUpdateStream(ctx, cfg)
}

func (s *strongJS) CreateOrUpdateStream(ctx context.Context, cfg jetstream.StreamConfig) (jetstream.Stream, error) {
	cfg.Replicas = max(cfg.Replicas, s.r.Streams)
	asked := cfg.Replicas
	existing, err := s.JetStream.Stream(ctx, cfg.Name)
	switch {
	case err == nil:
		old := existing.CachedInfo().Config
		if cfg, err = StrongerStream(old, cfg); err != nil {
			return nil, err
		}
	case errors.Is(err, jetstream.ErrStreamNotFound):
	default:
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	st, err := s.JetStream.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, s.replicaErr("stream "+cfg.Name, "--stream-replicas", asked, err)
	}
	return st, nil
}

func (s *strongJS) CreateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return s.CreateOrUpdateKeyValue(ctx, cfg)
}

func (s *strongJS) UpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	return s.CreateOrUpdateKeyValue(ctx, cfg)
}

func (s *strongJS) CreateOrUpdateKeyValue(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	cfg.Replicas = max(cfg.Replicas, s.r.KV)
	asked := cfg.Replicas
	kv, err := s.JetStream.KeyValue(ctx, cfg.Bucket)
	switch {
	case err == nil:
		status, err := kv.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
		if bs, ok := status.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo() != nil {
			cfg = strongerBucket(bs.StreamInfo().Config, cfg)
		}
	case errors.Is(err, jetstream.ErrBucketNotFound):
	default:
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	kv, err = s.JetStream.CreateOrUpdateKeyValue(ctx, cfg)
	if err != nil {
		return nil, s.replicaErr("key-value bucket "+cfg.Bucket, "--kv-replicas", asked, err)
	}
	return kv, nil
}

// replicaErr explains a refusal of replicas the servers cannot hold.
func (s *strongJS) replicaErr(what, flag string, replicas int, err error) error {
	var apiErr *jetstream.APIError
	if replicas > 1 && errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10074, // replicas > 1 not supported in non-clustered mode
			10023, // insufficient resources
			10005: // no suitable peers for placement
			where := "the NATS server"
			if nc := s.Conn(); nc != nil && nc.ConnectedClusterName() == "" {
				where = "the NATS server is a single server, not a cluster, and holds 1 replica; it"
			}
			return fmt.Errorf("%s: %d replicas asked (%s %d), but %s cannot place them (%w); lower %s or add NATS cluster nodes",
				what, replicas, flag, replicas, where, err, flag)
		}
	}
	return fmt.Errorf("create or update %s: %w", what, err)
}

// StrongerStream is the configuration to apply to an existing stream
// (old) that a caller wants configured as want: want, with every
// protection old has beyond it kept. It refuses what cannot be kept or
// raised in place.
func StrongerStream(old, want jetstream.StreamConfig) (jetstream.StreamConfig, error) {
	if old.Retention != want.Retention && old.Retention != jetstream.LimitsPolicy {
		return want, fmt.Errorf("stream %s has retention %s, but evidenced needs %s (messages removed once consumed would not be evidence); JetStream cannot change it in place: copy the stream to a new one with %s retention, or restore it",
			want.Name, old.Retention, want.Retention, want.Retention)
	}
	want.Retention = old.Retention
	if old.Storage != want.Storage {
		if old.Storage == jetstream.MemoryStorage {
			return want, fmt.Errorf("stream %s is stored in memory, but evidenced needs file storage (a restart would lose it); JetStream cannot change it in place: copy the stream to a file-stored one",
				want.Name)
		}
		want.Storage = old.Storage
	}
	want.Replicas = max(want.Replicas, old.Replicas)
	want.MaxAge = longer(old.MaxAge, want.MaxAge)
	want.MaxBytes = larger(old.MaxBytes, want.MaxBytes)
	want.MaxMsgs = larger(old.MaxMsgs, want.MaxMsgs)
	want.MaxMsgsPerSubject = larger(old.MaxMsgsPerSubject, want.MaxMsgsPerSubject)
	want.MaxMsgSize = larger(old.MaxMsgSize, want.MaxMsgSize)
	want.MaxConsumers = larger(old.MaxConsumers, want.MaxConsumers)
	want.Duplicates = max(old.Duplicates, want.Duplicates)
	want.DenyDelete = want.DenyDelete || old.DenyDelete
	want.DenyPurge = want.DenyPurge || old.DenyPurge
	if old.Discard == jetstream.DiscardNew {
		want.Discard = jetstream.DiscardNew // refuse new rather than drop old
	}
	want.Sealed = want.Sealed || old.Sealed
	for _, s := range old.Subjects {
		if !slices.Contains(want.Subjects, s) {
			want.Subjects = append(want.Subjects, s)
		}
	}
	if want.Placement == nil {
		want.Placement = old.Placement
	}
	if want.Mirror == nil {
		want.Mirror = old.Mirror
	}
	if len(want.Sources) == 0 {
		want.Sources = old.Sources
	}
	want.AllowDirect = want.AllowDirect || old.AllowDirect
	want.AllowRollup = want.AllowRollup || old.AllowRollup
	return want, nil
}

// strongerBucket raises a bucket's configuration to what its stream (old)
// already has: replicas, history, size limits. Its TTL stays the caller's:
// it is the meaning of the bucket's entries (how long a lease or a marker
// lasts), not a protection.
func strongerBucket(old jetstream.StreamConfig, want jetstream.KeyValueConfig) jetstream.KeyValueConfig {
	want.Replicas = max(want.Replicas, old.Replicas)
	if h := old.MaxMsgsPerSubject; h > int64(want.History) && h <= 64 {
		want.History = uint8(h)
	}
	want.MaxBytes = larger(old.MaxBytes, want.MaxBytes)
	want.MaxValueSize = larger(old.MaxMsgSize, want.MaxValueSize)
	if want.Placement == nil {
		want.Placement = old.Placement
	}
	return want
}

// longer of two ages, where 0 is forever.
func longer(a, b time.Duration) time.Duration {
	if a <= 0 || b <= 0 {
		return 0
	}
	return max(a, b)
}

// larger of two limits, where 0 or below is unlimited: an existing limit
// (a) is kept when the caller sets none (b), raised when the caller asks
// more, and an unlimited one stays unlimited.
func larger[T int | int32 | int64](a, b T) T {
	switch {
	case b <= 0:
		return a
	case a <= 0:
		return a
	}
	return max(a, b)
}

var _ jetstream.JetStream = (*strongJS)(nil)
