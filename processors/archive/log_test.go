package archive_test

import (
	"context"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/processors/archive"
)

// checkLog checks that the transparency log covers every archived row, in
// stream order: its stored size is the row count and its root, computed
// from the ClickHouse tiles, is the root of a fresh tree over the rows'
// hashes.
func checkLog(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	rows := readAll(t, st)
	want := tlog.NewBuilder()
	for i := range rows {
		h, err := tlog.LeafHash(rows[i].Hash)
		if err != nil {
			t.Fatal(err)
		}
		want.Append(h)
	}
	tiles := tlog.NewTiles(st.Conn())
	size, lastSeq, err := tiles.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if size != int64(len(rows)) || lastSeq != rows[len(rows)-1].StreamSeq {
		t.Fatalf("log: %d leaves up to seq %d; archive: %d rows up to seq %d", size, lastSeq, len(rows), rows[len(rows)-1].StreamSeq)
	}
	wr, _ := want.Root()
	got, err := tiles.RootAt(ctx, size)
	if err != nil || got != wr {
		t.Fatalf("log root %v (%v), want %v", got, err, wr)
	}
}

// TestUpgradeBuildsLogOverExistingRows archives rows, drops the log's
// tiles (an archive written before the log existed), and restarts: the
// archive builds the tree over the old rows before it appends new ones.
func TestUpgradeBuildsLogOverExistingRows(t *testing.T) {
	js := testenv.NATS(t)
	st := testenv.Store(t)
	cfg := archive.Config{BatchSize: 400, FlushInterval: 20 * time.Millisecond}
	evs := events(0, 1500)
	publish(t, js.JS, evs[:1000])
	stop := run(t, archive.New(js.JS, st, cfg, nil, nil, archive.Hooks{}))
	waitCount(t, st, 1000)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn().Exec(context.Background(), "TRUNCATE TABLE log_tiles"); err != nil {
		t.Fatal(err)
	}
	publish(t, js.JS, evs[1000:])
	stop = run(t, archive.New(js.JS, st, cfg, nil, nil, archive.Hooks{}))
	waitCount(t, st, 1500)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, st, evs)
	checkLog(t, st)
}
