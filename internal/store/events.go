package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// EventRow is one row of the events table: an archived CloudEvent with its
// stream sequence and its place in the hash chain.
type EventRow struct {
	StreamSeq       uint64
	EventID         string
	Source          string
	Type            string
	Subject         string
	EventTimeNs     int64 // 0 when the event had no time
	ReceivedNs      int64 // when JetStream stored it
	DataContentType string
	DataSchema      string
	Extensions      string // JSON object, sorted keys
	Data            []byte
	DataBase64      bool
	PrevHash        string
	Hash            string
}

// EventColumns are the columns of events in the order InsertEvents writes.
const EventColumns = "stream_seq, event_id, source, type, subject, event_time, event_time_ns, " +
	"received_at, received_ns, datacontenttype, dataschema, extensions, data, data_base64, prev_hash, hash"

func secs(ns int64) time.Time { return time.Unix(ns/1e9, 0).UTC() }

// InsertEvents writes rows to events as one INSERT (one block: atomic per
// partition on MergeTree, so callers keep a batch within one month).
func (s *Store) InsertEvents(ctx context.Context, rows []EventRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO events ("+EventColumns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into events: %w", err)
	}
	defer b.Close()
	n := len(rows)
	var (
		seq                    = make([]uint64, n)
		id, src, typ, sub      = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		et, ra                 = make([]time.Time, n), make([]time.Time, n)
		etn, rn                = make([]int64, n), make([]int64, n)
		dct, dsc, ext, ph, hsh = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		data                   = make([][]byte, n)
		b64                    = make([]uint8, n)
	)
	for i, r := range rows {
		seq[i], id[i], src[i], typ[i], sub[i] = r.StreamSeq, r.EventID, r.Source, r.Type, r.Subject
		et[i], etn[i], ra[i], rn[i] = secs(r.EventTimeNs), r.EventTimeNs, secs(r.ReceivedNs), r.ReceivedNs
		dct[i], dsc[i], ext[i], data[i] = r.DataContentType, r.DataSchema, r.Extensions, r.Data
		if r.DataBase64 {
			b64[i] = 1
		}
		ph[i], hsh[i] = r.PrevHash, r.Hash
	}
	cols := []any{seq, id, src, typ, sub, et, etn, ra, rn, dct, dsc, ext, data, b64, ph, hsh}
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("insert into events: column %d: %w", i, err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into events: %w", n, err)
	}
	return nil
}

// ErrEmpty means the events table has no rows.
var ErrEmpty = errors.New("events table is empty")

// LastEvent is the stream sequence and hash of the newest archived row, or
// ErrEmpty. On a cluster it reads this node's replica, events_local, once
// it holds every part the other replicas logged (SYSTEM SYNC REPLICA): a
// lagging replica read through the Distributed table could give an older
// head, and the archive resuming after it would store rows twice. The
// tables the archive reads next at its start (the log's tiles and
// checkpoints, the chain's checkpoints) are synced first too, so the
// transparency log and the signer resume from every row stored.
func (s *Store) LastEvent(ctx context.Context) (seq uint64, hash string, err error) {
	table := "events"
	if s.cluster != "" {
		table = "events" + LocalSuffix
		for _, t := range []string{"log_tiles", "log_checkpoints", "checkpoints", "events"} {
			if err := s.syncReplica(ctx, t+LocalSuffix); err != nil {
				return 0, "", fmt.Errorf("read last archived event: %w", err)
			}
		}
	}
	rows, err := s.conn.Query(ctx, "SELECT stream_seq, hash FROM "+table+" ORDER BY stream_seq DESC LIMIT 1")
	if err != nil {
		return 0, "", fmt.Errorf("read last archived event: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, "", err
		}
		return 0, "", ErrEmpty
	}
	if err := rows.Scan(&seq, &hash); err != nil {
		return 0, "", err
	}
	return seq, hash, nil
}

// ScanEvents calls fn for each row with from <= stream_seq <= to (to = 0:
// no upper bound), in stream order. It streams: memory does not grow with
// the number of rows.
func (s *Store) ScanEvents(ctx context.Context, from, to uint64, fn func(*EventRow) error) error {
	q := "SELECT " + EventColumns + " FROM events WHERE stream_seq >= ?"
	args := []any{from}
	if to > 0 {
		q += " AND stream_seq <= ?"
		args = append(args, to)
	}
	q += " ORDER BY stream_seq"
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("scan events: %w", err)
	}
	defer rows.Close()
	var r EventRow
	for rows.Next() {
		var et, ra time.Time
		var data string
		var b64 uint8
		if err := rows.Scan(&r.StreamSeq, &r.EventID, &r.Source, &r.Type, &r.Subject, &et, &r.EventTimeNs,
			&ra, &r.ReceivedNs, &r.DataContentType, &r.DataSchema, &r.Extensions, &data, &b64, &r.PrevHash, &r.Hash); err != nil {
			return fmt.Errorf("scan events: %w", err)
		}
		r.Data, r.DataBase64 = []byte(data), b64 == 1
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}
