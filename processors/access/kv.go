package access

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the KV bucket holding the access facts.
const Bucket = "EVIDENCE_ACCESS"

// maxCASTries bounds the compare-and-set retries of one Add.
const maxCASTries = 50

// KVStore keeps each subject's facts in one entry of a NATS KV bucket (key:
// the subject, base64url): a JSON array of facts sorted by ID. Add merges by
// compare-and-set (Update on the revision read, Create for a new entry), so
// concurrent writers never lose a fact, and a fact already stored writes
// nothing, so a replayed event changes nothing.
type KVStore struct {
	kv jetstream.KeyValue
}

// NewKVStore creates or opens the bucket.
func NewKVStore(ctx context.Context, js jetstream.JetStream) (*KVStore, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: Bucket, Storage: jetstream.FileStorage, History: 1})
	if err != nil {
		return nil, fmt.Errorf("access bucket %s: %w", Bucket, err)
	}
	return &KVStore{kv: kv}, nil
}

func entryKey(subject string) string { return base64.RawURLEncoding.EncodeToString([]byte(subject)) }

// Facts returns the facts filed under subject, sorted by ID.
func (s *KVStore) Facts(ctx context.Context, subject string) ([]Fact, error) {
	fs, _, err := s.read(ctx, subject)
	return fs, err
}

func (s *KVStore) read(ctx context.Context, subject string) ([]Fact, uint64, error) {
	e, err := s.kv.Get(ctx, entryKey(subject))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("read access facts of %s: %w", subject, err)
	}
	var fs []Fact
	if err := json.Unmarshal(e.Value(), &fs); err != nil {
		return nil, 0, fmt.Errorf("access facts of %s: %w", subject, err)
	}
	for _, f := range fs {
		if !f.Verify() {
			return nil, 0, fmt.Errorf("access facts of %s: fact %s does not match its content", subject, f.ID)
		}
	}
	return fs, e.Revision(), nil
}

// Add merges facts into their subjects' entries. It reports whether any
// entry changed.
func (s *KVStore) Add(ctx context.Context, facts ...Fact) (bool, error) {
	bySubject := map[string][]Fact{}
	for _, f := range facts {
		bySubject[f.Subject] = append(bySubject[f.Subject], f)
	}
	changed := false
	for _, subject := range sortedKeys(bySubject) {
		c, err := s.merge(ctx, subject, bySubject[subject])
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	return changed, nil
}

func (s *KVStore) merge(ctx context.Context, subject string, add []Fact) (bool, error) {
	for range maxCASTries {
		have, rev, err := s.read(ctx, subject)
		if err != nil {
			return false, err
		}
		merged := slices.Clone(have)
		for _, f := range add {
			if _, found := slices.BinarySearchFunc(merged, f.ID, func(x Fact, id string) int { return strings.Compare(x.ID, id) }); !found {
				merged = append(merged, f)
				slices.SortFunc(merged, func(a, b Fact) int { return strings.Compare(a.ID, b.ID) })
			}
		}
		if len(merged) == len(have) {
			return false, nil
		}
		b, err := json.Marshal(merged)
		if err != nil {
			return false, err
		}
		if rev == 0 {
			_, err = s.kv.Create(ctx, entryKey(subject), b)
		} else {
			_, err = s.kv.Update(ctx, entryKey(subject), b, rev)
		}
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) && !strings.Contains(err.Error(), "wrong last sequence") {
			return false, fmt.Errorf("write access facts of %s: %w", subject, err)
		}
	}
	return false, fmt.Errorf("write access facts of %s: still contended after %d compare-and-set tries", subject, maxCASTries)
}

// Record derives the access record of a repository (or organisation) from
// the bucket: its facts and those of the tickets they name.
func (s *KVStore) Record(ctx context.Context, subject string) (Record, error) {
	fs, err := s.Facts(ctx, subject)
	if err != nil {
		return Record{}, err
	}
	for _, k := range TicketsNamed(fs) {
		tf, err := s.Facts(ctx, "ticket:"+k)
		if err != nil {
			return Record{}, err
		}
		fs = append(fs, tf...)
	}
	return Derive(subject, fs), nil
}

func base64RawURL(key string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(key)
	return string(b), err
}
