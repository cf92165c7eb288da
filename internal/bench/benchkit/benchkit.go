// Package benchkit holds what the benchmarks of internal/bench share: the
// bare NATS -> ClickHouse baseline (drain), HTTP batch posting, ClickHouse
// housekeeping between rounds, and small statistics.
package benchkit

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/store"
)

// PostBatch posts a JSON array of CloudEvents in batch mode to url and
// returns the stream sequences the receiver answered with.
func PostBatch(c *http.Client, url string, b []byte) ([]uint64, error) {
	resp, err := c.Post(url, "application/cloudevents-batch+json", bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return nil, fmt.Errorf("%s: %.500s", resp.Status, raw)
	}
	return ParseSeqs(raw), nil
}

// ParseSeqs pulls the "seq" values out of the answer without a full JSON
// decode (the bench's own CPU competes with the system under test).
func ParseSeqs(raw []byte) []uint64 {
	var out []uint64
	key := []byte(`"seq":`)
	for {
		i := bytes.Index(raw, key)
		if i < 0 {
			return out
		}
		raw = raw[i+len(key):]
		var n uint64
		for len(raw) > 0 && raw[0] >= '0' && raw[0] <= '9' {
			n = n*10 + uint64(raw[0]-'0')
			raw = raw[1:]
		}
		out = append(out, n)
	}
}

// Median of xs (0 for none).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Percentile is the p-th percentile (0 < p <= 100) of ds by the nearest
// rank: the smallest value at or above p percent of them (0 for none).
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(float64(len(s))*p/100+0.999999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// WaitMerges waits until ClickHouse has no merge running (at most a
// minute), so that one measurement does not pay for the previous one's
// background work.
func WaitMerges(ctx context.Context, ch *chlocal.Server) error {
	st, err := store.Open(ctx, ch.URL("default"), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		var n uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM system.merges").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return nil
}

// DropDatabases drops the named databases if they exist.
func DropDatabases(ctx context.Context, ch *chlocal.Server, names ...string) error {
	st, err := store.Open(ctx, ch.URL("default"), nil)
	if err != nil {
		return err
	}
	defer st.Close()
	for _, n := range names {
		if err := st.Conn().Exec(ctx, "DROP DATABASE IF EXISTS "+n); err != nil {
			return err
		}
	}
	return nil
}

// DrainBare is the baseline: a new durable consumer named consumer
// fetches total messages of the event stream, inserts each raw message
// into a two-column table of database db, batch rows at a time, and acks.
// Nothing else. It returns the drain rate in events/s.
func DrainBare(ctx context.Context, js jetstream.JetStream, ch *chlocal.Server, db, consumer string, total uint64, batch int) (float64, error) {
	st, err := store.Open(ctx, ch.URL(db), nil)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	if err := st.Conn().Exec(ctx, "CREATE TABLE IF NOT EXISTS bare (seq UInt64, data String) ENGINE = MergeTree() ORDER BY seq"); err != nil {
		return 0, err
	}
	s, err := js.Stream(ctx, bus.EventStream)
	if err != nil {
		return 0, err
	}
	cons, err := s.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: consumer, AckPolicy: jetstream.AckAllPolicy, MaxAckPending: -1})
	if err != nil {
		return 0, err
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * batch))
	if err != nil {
		return 0, err
	}
	defer it.Stop()
	start := time.Now()
	var done uint64
	seqs, datas := make([]uint64, 0, batch), make([]string, 0, batch)
	var last jetstream.Msg
	for done < total {
		msg, err := it.Next()
		if err != nil {
			return 0, err
		}
		md, _ := msg.Metadata()
		seqs, datas, last = append(seqs, md.Sequence.Stream), append(datas, string(msg.Data())), msg
		if len(seqs) == batch || done+uint64(len(seqs)) == total {
			b, err := st.Conn().PrepareBatch(ctx, "INSERT INTO bare (seq, data)")
			if err != nil {
				return 0, err
			}
			if err := b.Column(0).Append(seqs); err != nil {
				return 0, err
			}
			if err := b.Column(1).Append(datas); err != nil {
				return 0, err
			}
			if err := b.Send(); err != nil {
				return 0, err
			}
			_ = last.Ack()
			done += uint64(len(seqs))
			seqs, datas = seqs[:0], datas[:0]
		}
	}
	return float64(total) / time.Since(start).Seconds(), nil
}
