package archive_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/archive"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func events(from, n int) []*ce.Event {
	out := make([]*ce.Event, n)
	for i := range out {
		k := from + i
		out[i] = &ce.Event{
			ID: fmt.Sprintf("ev-%06d", k), Source: "test/archive", Type: "dev.example.thing.happened",
			Subject: fmt.Sprintf("s%d", k%7), Time: time.Date(2026, 11, 25, 10, 0, 0, k, time.UTC),
			Data: fmt.Appendf(nil, `{"n":%d,"payload":"%0100d"}`, k, k),
		}
		if k%5 == 0 {
			out[i].Extensions = map[string]json.RawMessage{"team": json.RawMessage(`"payments"`), "attempt": json.RawMessage("3")}
		}
	}
	return out
}

func publish(t *testing.T, js jetstream.JetStream, evs []*ce.Event) {
	t.Helper()
	res, err := bus.NewPublisher(js).Publish(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("publish %d: %v", i, r.Err)
		}
	}
}

func readAll(t *testing.T, st *store.Store) []store.EventRow { return testenv.ArchivedRows(t, st) }

func count(st *store.Store) (uint64, error) {
	var n uint64
	err := st.Conn().QueryRow(context.Background(), "SELECT count() FROM events").Scan(&n)
	return n, err
}

func waitCount(t *testing.T, st *store.Store, want uint64) {
	testenv.WaitForRows(t, st, want, 60*time.Second)
}

// checkArchive asserts the archive holds exactly want, in stream order
// 1..n, each row equal to its event, and an intact chain.
func checkArchive(t *testing.T, st *store.Store, want []*ce.Event) {
	t.Helper()
	rows := readAll(t, st)
	if len(rows) != len(want) {
		t.Fatalf("archive holds %d rows, want %d", len(rows), len(want))
	}
	for i, r := range rows {
		if r.StreamSeq != uint64(i+1) {
			t.Fatalf("row %d has stream_seq %d, want %d", i, r.StreamSeq, i+1)
		}
		e, err := archive.EventFromRow(&r)
		if err != nil {
			t.Fatal(err)
		}
		if got, exp := string(e.MarshalCanonical()), string(want[i].MarshalCanonical()); got != exp {
			t.Fatalf("row %d:\n got %s\nwant %s", i, got, exp)
		}
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, rows); i >= 0 {
		t.Fatalf("chain broken at row %d (seq %d): %s", i, rows[i].StreamSeq, why)
	}
}

func run(t *testing.T, a *archive.Archive) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("archive did not stop within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func TestArchivesInOrderWithChain(t *testing.T) {
	js := testenv.NATS(t)
	st := testenv.Store(t)
	evs := events(0, 2500)
	publish(t, js.JS, evs[:1000])
	a := archive.New(js.JS, st, archive.Config{BatchSize: 300, FlushInterval: 50 * time.Millisecond}, nil, nil, archive.Hooks{})
	stop := run(t, a)
	publish(t, js.JS, evs[1000:])
	// Re-publishing is de-duplicated by the stream and never archived twice.
	publish(t, js.JS, evs[100:200])
	waitCount(t, st, 2500)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, st, evs)
	checkLog(t, st)

	// A tampered row is found by the chain check at that row.
	rows := readAll(t, st)
	rows[1234].Data = []byte(`{"n":1234,"payload":"forged"}`)
	if i, _ := archive.VerifyChain(archive.GenesisHash, rows); i != 1234 {
		t.Fatalf("VerifyChain found the altered row at %d, want 1234", i)
	}
}

func TestCrashBetweenInsertAndAckIsExactlyOnce(t *testing.T) {
	js := testenv.NATS(t)
	st := testenv.Store(t)
	evs := events(0, 3000)
	publish(t, js.JS, evs)

	var batches atomic.Int32
	var inserted atomic.Int64 // rows of the batches inserted, the crashed one included
	crash := errors.New("simulated crash after insert, before ack")
	a := archive.New(js.JS, st, archive.Config{BatchSize: 500, FlushInterval: 50 * time.Millisecond}, nil, nil, archive.Hooks{
		AfterInsert: func(rows []store.EventRow) error {
			inserted.Add(int64(len(rows)))
			if batches.Add(1) == 3 {
				return crash
			}
			return nil
		},
	})
	if err := a.Run(context.Background()); !errors.Is(err, crash) {
		t.Fatalf("Run = %v, want the simulated crash", err)
	}
	n, err := count(st)
	if err != nil {
		t.Fatal(err)
	}
	// A loaded machine may flush a batch before it is full: count what
	// the three batches held, not 3 × 500.
	if want := inserted.Load(); int64(n) != want || want == 0 {
		t.Fatalf("after the crash ClickHouse holds %d rows, want %d (3 batches stored, the last unacknowledged)", n, want)
	}
	// A new archive (a restart) replays the unacknowledged batch, skips it,
	// and goes on.
	stop := run(t, archive.New(js.JS, st, archive.Config{BatchSize: 500, FlushInterval: 50 * time.Millisecond}, nil, nil, archive.Hooks{}))
	waitCount(t, st, 3000)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, st, evs)
	checkLog(t, st) // the crashed batch is in the tree once
}

func TestInvalidMessageIsDeadLettered(t *testing.T) {
	js := testenv.NATS(t)
	st := testenv.Store(t)
	evs := events(0, 10)
	publish(t, js.JS, evs[:5])
	// A producer that publishes to NATS directly, bypassing the receiver.
	if _, err := js.JS.PublishMsg(context.Background(), &nats.Msg{Subject: "evidence.events.raw", Data: []byte(`{"specversion":"1.0","id":"x"}`)}); err != nil {
		t.Fatal(err)
	}
	publish(t, js.JS, evs[5:])
	stop := run(t, archive.New(js.JS, st, archive.Config{BatchSize: 100, FlushInterval: 20 * time.Millisecond}, nil, nil, archive.Hooks{}))
	waitCount(t, st, 10)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, st)
	if rows[4].StreamSeq != 5 || rows[5].StreamSeq != 7 {
		t.Fatalf("seqs around the invalid message: %d, %d; want 5, 7", rows[4].StreamSeq, rows[5].StreamSeq)
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, rows); i >= 0 {
		t.Fatalf("chain broken at %d: %s", i, why)
	}
	dlq, err := js.JS.Stream(context.Background(), bus.DLQStream)
	if err != nil {
		t.Fatal(err)
	}
	m, err := dlq.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatalf("dead-letter stream: %v", err)
	}
	if got := m.Header.Get(bus.HeaderDLQReason); got != "not a valid CloudEvent: source: required attribute is missing" {
		t.Fatalf("dead-letter reason = %q", got)
	}
	if got := m.Header.Get(bus.HeaderDLQOriginalSeq); got != "6" {
		t.Fatalf("dead-letter original seq = %q, want 6", got)
	}
}

func TestClickHouseOutage(t *testing.T) {
	js := testenv.NATS(t)
	ch := testenv.OwnClickHouse(t)
	st := testenv.StoreAt(t, ch.URL("evidence"))
	evs := events(0, 2000)
	publish(t, js.JS, evs[:500])
	stop := run(t, archive.New(js.JS, st, archive.Config{BatchSize: 200, FlushInterval: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}, nil, nil, archive.Hooks{}))
	waitCount(t, st, 500)

	if err := ch.Kill(); err != nil {
		t.Fatal(err)
	}
	// Publishing goes on while ClickHouse is down.
	publish(t, js.JS, evs[500:1500])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ch.Start(ctx); err != nil {
		t.Fatal(err)
	}
	publish(t, js.JS, evs[1500:])
	waitCount(t, st, 2000)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	checkArchive(t, st, evs)
}

// TestStopWithWriterBusyLeavesNoGap: the archive is stopped while its
// writer is busy storing one batch, the next is queued and the reader
// holds a third and more messages buffered. Whatever it stores before it
// returns must be a prefix of the stream (stream_seq 1..n without a gap):
// the next run resumes after the highest sequence stored, so a batch
// dropped before a later one was stored would be lost for good. The next
// run then archives the rest, exactly once.
func TestStopWithWriterBusyLeavesNoGap(t *testing.T) {
	js := testenv.NATS(t)
	st := testenv.Store(t)
	evs := events(0, 1500)
	publish(t, js.JS, evs)
	blocked, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	hooks := archive.Hooks{AfterInsert: func([]store.EventRow) error {
		if calls.Add(1) == 2 {
			close(blocked)
			<-release
		}
		return nil
	}}
	a := archive.New(js.JS, st, archive.Config{BatchSize: 100, FlushInterval: time.Second}, nil, nil, hooks)
	stop := run(t, a)
	select {
	case <-blocked:
	case <-time.After(30 * time.Second):
		t.Fatal("the writer never reached its second batch")
	}
	// The reader fills the queue and a batch in hand meanwhile.
	time.Sleep(300 * time.Millisecond)
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	time.Sleep(300 * time.Millisecond)
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	rows := readAll(t, st)
	if len(rows) < 200 {
		t.Fatalf("%d rows stored, want at least the two batches the writer took", len(rows))
	}
	for i, r := range rows {
		if r.StreamSeq != uint64(i+1) {
			t.Fatalf("after the stop, row %d has stream_seq %d: a gap that the next run would never fill (%d rows stored)", i, r.StreamSeq, len(rows))
		}
	}
	t.Logf("%d rows stored before the stop", len(rows))

	b := archive.New(js.JS, st, archive.Config{BatchSize: 100, FlushInterval: 20 * time.Millisecond}, nil, nil, archive.Hooks{})
	run(t, b)
	waitCount(t, st, uint64(len(evs)))
	checkArchive(t, st, evs)
}
