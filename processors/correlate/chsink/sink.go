package chsink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// Sink writes change records to the changes and deployments tables. It is
// safe for concurrent use, and several replicas may write the same
// records. Its only state is a bounded memory of the rows it wrote last
// (KeepRecent), which spares Retire a read of changes.
type Sink struct {
	store  *store.Store
	log    *slog.Logger
	now    func() time.Time
	recent *recent
}

// DefaultRecentBytes is how much of the rows it wrote last a new Sink
// keeps (KeepRecent).
const DefaultRecentBytes = 32 << 20

// KeepRecent bounds the rows the sink keeps of what it wrote last to n
// bytes of records (0: none). Retire writes the tombstone of a record
// kept there from it, instead of from the newest row read from changes
// FINAL. With several replicas writing, that row may be an older version
// of the same class than another replica's newest: the tombstone then
// keeps that older content, and retires the record all the same (its
// version outranks every version of its class; a record another replica
// wrote in a higher class, a merge's, stays live, as it must).
func (s *Sink) KeepRecent(n int64) { s.recent = newRecent(n) }

// New returns a Sink writing through st. log may be nil.
func New(st *store.Store, log *slog.Logger) (*Sink, error) {
	if st == nil {
		return nil, errors.New("chsink: no store")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Sink{store: st, log: log, now: time.Now, recent: newRecent(DefaultRecentBytes)}, nil
}

// Put writes the current version of each record: one row in changes, and
// one per deployment in deployments, as one INSERT per table. It returns
// once ClickHouse has stored both; on error, retrying the same Put is
// safe. A record without an id refuses the whole Put.
func (s *Sink) Put(ctx context.Context, records []correlate.Record) error {
	return s.put(ctx, records, nil, nil)
}

// PutEncoded implements correlate.EncodedSink: Put, given each record's
// canonical JSON and its hash (as Record.Canonical and Record.Hash give
// them), which the rows hold, instead of encoding each record again.
func (s *Sink) PutEncoded(ctx context.Context, records []correlate.Record, canonical [][]byte, hashes []string) error {
	if len(canonical) != len(records) || len(hashes) != len(records) {
		return fmt.Errorf("chsink: %d records with %d encodings and %d hashes", len(records), len(canonical), len(hashes))
	}
	return s.put(ctx, records, canonical, hashes)
}

func (s *Sink) put(ctx context.Context, records []correlate.Record, canonical [][]byte, hashes []string) error {
	if len(records) == 0 {
		return nil
	}
	now := s.now()
	changes := make([]store.ChangeRow, 0, len(records))
	var deps []store.DeploymentRow
	for i, r := range records {
		var c store.ChangeRow
		var ds []store.DeploymentRow
		var err error
		if canonical != nil {
			c, ds, err = rows(r, canonical[i], hashes[i], now)
		} else {
			c, ds, err = Rows(r, now)
		}
		if err != nil {
			return fmt.Errorf("chsink: record %d: %w", i, err)
		}
		changes = append(changes, c)
		deps = append(deps, ds...)
	}
	if err := s.store.InsertChanges(ctx, changes); err != nil {
		return fmt.Errorf("chsink: %w", err)
	}
	s.recent.put(changes)
	if err := s.store.InsertDeployments(ctx, deps); err != nil {
		return fmt.Errorf("chsink: %w", err)
	}
	return nil
}

// Retire marks the records ids as no longer derived (an unmatched
// deployment since linked to its change, a direct push since found to be a
// pull request's merge): the newest row of each is written again with
// retired = 1 and the version [Tombstone] of its class, so it keeps its
// last content, is left out of counts, and outranks any late write of an
// older version. An id never written gets a row with only its id. An id
// already retired is left as it is. A merged pull request's record is
// never retired (the correlator never loses one): Retire logs such an id
// and leaves it. It returns once the rows are stored; retrying is safe.
func (s *Sink) Retire(ctx context.Context, ids []string) error {
	ids = slices.DeleteFunc(slices.Clone(ids), func(id string) bool { return id == "" })
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return nil
	}
	byID := make(map[string]store.ChangeRow, len(ids))
	var ask []string
	for _, id := range ids {
		if r, ok := s.recent.get(id); ok {
			byID[id] = r
		} else {
			ask = append(ask, id)
		}
	}
	latest, err := s.store.LatestChanges(ctx, ask)
	if err != nil {
		return fmt.Errorf("chsink: retire: %w", err)
	}
	for _, r := range latest {
		byID[r.ChangeID] = r
	}
	now := s.now().UTC().Truncate(time.Second)
	var rows []store.ChangeRow
	for _, id := range ids {
		row, ok := byID[id]
		class := classOfID(id)
		if ok {
			if row.Retired {
				continue
			}
			class = ClassOfVersion(row.Version)
		} else {
			row = store.ChangeRow{ChangeID: id, Unmatched: class == ClassUnmatched}
		}
		if class >= ClassMerge {
			s.log.Warn("not retiring a merged pull request's change record", "change_id", id)
			continue
		}
		row.Retired, row.Version, row.UpdatedAt = true, Tombstone(class), now
		rows = append(rows, row)
	}
	if err := s.store.InsertChanges(ctx, rows); err != nil {
		return fmt.Errorf("chsink: retire: %w", err)
	}
	s.recent.put(rows)
	return nil
}

var (
	_ correlate.Sink        = (*Sink)(nil)
	_ correlate.EncodedSink = (*Sink)(nil)
)
