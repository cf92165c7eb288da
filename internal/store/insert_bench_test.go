package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// BenchmarkInsertEvents measures ClickHouse's intake of events rows (10k
// per INSERT) against the same bytes in a two-column table: the cost of
// the archive's schema alone, without JetStream or parsing.
func BenchmarkInsertEvents(b *testing.B) {
	st := testenv.Store(b)
	ctx := context.Background()
	if err := st.Conn().Exec(ctx, "CREATE TABLE bare (seq UInt64, data String) ENGINE = MergeTree() ORDER BY seq"); err != nil {
		b.Fatal(err)
	}
	const n = 10000
	rows := make([]store.EventRow, n)
	seqs, datas := make([]uint64, n), make([]string, n)
	now := time.Now().UnixNano()
	for i := range rows {
		rows[i] = store.EventRow{StreamSeq: uint64(i + 1), EventID: fmt.Sprintf("bench-%08d", i), Source: "https://ci.example/acme/payments",
			Type: "dev.evidencepipeline.pipelinerun.finished.v1", Subject: fmt.Sprintf("run/%d", i), EventTimeNs: now, ReceivedNs: now,
			DataContentType: "application/json", Extensions: "{}", Data: fmt.Appendf(nil, `{"repository":"github.com/acme/payments","commit":"%040x","notes":"%0800d"}`, i, i),
			PrevHash: fmt.Sprintf("%064x", i), Hash: fmt.Sprintf("%064x", i+1)}
		seqs[i], datas[i] = uint64(i+1), string(rows[i].Data)+rows[i].PrevHash+rows[i].Hash+rows[i].Source+rows[i].Type
	}
	b.Run("events", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if err := st.InsertEvents(ctx, rows); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("bare", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			bt, err := st.Conn().PrepareBatch(ctx, "INSERT INTO bare (seq, data)")
			if err != nil {
				b.Fatal(err)
			}
			_ = bt.Column(0).Append(seqs)
			_ = bt.Column(1).Append(datas)
			if err := bt.Send(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "rows/s")
	})
}
