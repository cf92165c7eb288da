package verify_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/internal/verify/verifytest"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

// The verifier reads the stream the checkpointer writes.
func TestStreamNamesAreTheCheckpointers(t *testing.T) {
	if verify.CheckpointStream != checkpoint.Stream || verify.CheckpointSubject != checkpoint.Subject {
		t.Fatalf("verify reads %s/%s, the checkpointer publishes to %s/%s",
			verify.CheckpointStream, verify.CheckpointSubject, checkpoint.Stream, checkpoint.Subject)
	}
}

func TestParseCheckpoint(t *testing.T) {
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := verify.Checkpoint{Seq: 20, Count: 19, Head: strings.Repeat("ab", 32), CreatedNs: 1764100000123456789}
	c.Sign(key)
	body, _ := json.Marshal(c)
	got, err := verify.ParseCheckpoint(body)
	if err != nil || got != c {
		t.Fatalf("parse of %s: %+v, %v", body, got, err)
	}
	for _, tc := range []struct{ data, want string }{
		{`not json`, "not a checkpoint (JSON): invalid character"},
		{`{}`, "not a checkpoint: stream_seq, event_count, head_hash, created_ns, key_id, signature missing"},
		{`{"stream_seq":1,"event_count":1,"head_hash":"","created_ns":1,"key_id":""}`, "not a checkpoint: signature missing"},
		{`{"stream_seq":-1}`, "not a checkpoint (JSON): json: cannot unmarshal number -1"},
		{`{"stream_seq":1,"forged":true}`, `not a checkpoint (JSON): json: unknown field "forged"`},
		{string(body) + `{}`, "not a checkpoint (JSON): data after the object"},
	} {
		_, err := verify.ParseCheckpoint([]byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.data, err, tc.want)
		}
	}
}

// publish puts checkpoints on the stream as the checkpointer does (JSON of
// verify.Checkpoint), or raw bodies.
func publish(t *testing.T, js jetstream.JetStream, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if _, err := js.Publish(context.Background(), checkpoint.Subject, b); err != nil {
			t.Fatal(err)
		}
	}
}

func bodies(t *testing.T, cps ...verify.Checkpoint) [][]byte {
	t.Helper()
	var out [][]byte
	for _, c := range cps {
		b, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestReadStream(t *testing.T) {
	ctx := context.Background()
	n := testenv.NATS(t)
	if _, err := verify.ReadStream(ctx, n.JS); !errors.Is(err, verify.ErrNoCheckpointStream) {
		t.Fatalf("no stream: %v", err)
	}
	if err := checkpoint.EnsureStream(ctx, n.JS, 1); err != nil {
		t.Fatal(err)
	}
	sc, err := verify.ReadStream(ctx, n.JS)
	if err != nil || len(sc.Msgs) != 0 {
		t.Fatalf("empty stream: %+v, %v", sc, err)
	}
	key, _ := verify.GenerateKey()
	var cps []verify.Checkpoint
	for i := uint64(1); i <= 700; i++ { // more than one pull batch
		c := verify.Checkpoint{Seq: i * 10, Count: i * 10, Head: strings.Repeat("0", 63) + "1", CreatedNs: int64(i)}
		c.Sign(key)
		cps = append(cps, c)
	}
	publish(t, n.JS, bodies(t, cps[:350]...)...)
	publish(t, n.JS, []byte(`{"stream_seq":"x"}`))
	publish(t, n.JS, bodies(t, cps[350:]...)...)
	sc, err = verify.ReadStream(ctx, n.JS)
	if err != nil {
		t.Fatal(err)
	}
	if len(sc.Msgs) != 701 {
		t.Fatalf("read %d messages, want 701", len(sc.Msgs))
	}
	for i, m := range sc.Msgs {
		if m.MsgSeq != uint64(i+1) {
			t.Fatalf("message %d has sequence %d", i, m.MsgSeq)
		}
		switch {
		case i == 350:
			if m.Err == nil || !strings.Contains(m.Err.Error(), "not a checkpoint (JSON)") {
				t.Fatalf("the bad message: %+v", m)
			}
		case i < 350 && (m.Err != nil || m.Checkpoint != cps[i]), i > 350 && (m.Err != nil || m.Checkpoint != cps[i-1]):
			t.Fatalf("message %d: %+v", i+1, m)
		}
	}
}

func TestVerifyWithStream(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	key, _ := verify.GenerateKey()
	keys := verify.PublicKeys{key.ID: key.Public()}
	w, err := verifytest.Write(ctx, st, verifytest.Chain{Events: 50, Every: 10, Key: key}, true)
	if err != nil {
		t.Fatal(err)
	}
	n := testenv.NATS(t)
	if err := checkpoint.EnsureStream(ctx, n.JS, 1); err != nil {
		t.Fatal(err)
	}
	// The stream has the checkpoints up to 40 (and 30 twice: a re-publish
	// after the de-duplication window).
	publish(t, n.JS, bodies(t, w.Checkpoints[0], w.Checkpoints[1], w.Checkpoints[2], w.Checkpoints[2], w.Checkpoints[3])...)
	check := func(opts verify.Options) (*verify.Result, *verify.StreamComparison) {
		t.Helper()
		sc, err := verify.ReadStream(ctx, n.JS)
		if err != nil {
			t.Fatal(err)
		}
		opts.Keys = keys
		res, cmp, err := verify.VerifyWithStream(ctx, st.Conn(), opts, sc)
		if err != nil {
			t.Fatal(err)
		}
		return res, cmp
	}
	// The table's checkpoint at 50 was made after the stream was read
	// (verifytest dates it 2026-03-02, before now, so make it now): with
	// no upper bound it is not compared.
	late := verify.Checkpoint{Seq: 50, Count: 50, Head: w.HeadHash, CreatedNs: time.Now().UnixNano()}
	late.Sign(key)
	if err := st.Conn().Exec(ctx, "ALTER TABLE checkpoints DELETE WHERE stream_seq = 50"); err != nil {
		t.Fatal(err)
	}
	waitMutations(t, st.Conn())
	if err := verify.InsertCheckpoints(ctx, st.Conn(), []verify.Checkpoint{late, w.Checkpoints[1]}); err != nil { // and 20 twice: a retried insert
		t.Fatal(err)
	}
	res, cmp := check(verify.Options{})
	if !res.OK() || res.Checkpoints != 4 || res.LastSigned.Seq != 40 || res.Unsigned != 10 || res.Events != 50 {
		t.Fatalf("intact: %+v", res)
	}
	if *cmp != (verify.StreamComparison{FromSeq: 1, Stream: 4, Table: 4, Identical: 4, Later: 1}) {
		t.Fatalf("comparison: %+v", cmp)
	}

	// A range: from the stream's checkpoint before it to the one after.
	res, cmp = check(verify.Options{FromSeq: 23, ToSeq: 27})
	if !res.OK() || res.Anchor == nil || res.Anchor.Seq != 20 || res.EndSeq != 30 || res.Events != 10 {
		t.Fatalf("range: %+v", res)
	}
	if *cmp != (verify.StreamComparison{FromSeq: 20, ToSeq: 30, Stream: 2, Table: 2, Identical: 2}) {
		t.Fatalf("range comparison: %+v", cmp)
	}

	// The checkpoint at 50 dated before the stream was read must be in it.
	old := verify.Checkpoint{Seq: 50, Count: 50, Head: w.HeadHash, CreatedNs: time.Now().Add(-time.Hour).UnixNano()}
	old.Sign(key)
	if err := verify.InsertCheckpoints(ctx, st.Conn(), []verify.Checkpoint{old}); err != nil {
		t.Fatal(err)
	}
	res, cmp = check(verify.Options{})
	if len(res.Problems) != 1 || res.Problems[0].Kind != verify.BadCheck || res.Problems[0].Seq != 50 ||
		!strings.Contains(res.Problems[0].Message, "checkpoint at row 50 (key "+key.ID+", made ") ||
		!strings.Contains(res.Problems[0].Message, ") is in ClickHouse but not in EVIDENCE_CHECKPOINTS: ") {
		t.Fatalf("a table-only checkpoint: %+v", res.Problems)
	}
	if cmp.Later != 1 || cmp.Table != 5 || cmp.Identical != 4 {
		t.Fatalf("comparison: %+v", cmp)
	}

	// A forged message on the stream, and one that is not a checkpoint.
	forged := w.Checkpoints[4]
	forged.Count = 49
	publish(t, n.JS, bodies(t, forged)...)
	publish(t, n.JS, []byte("hello"))
	res, _ = check(verify.Options{FromSeq: 45})
	var msgs []string
	for _, p := range res.Problems {
		msgs = append(msgs, p.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, want := range []string{
		"EVIDENCE_CHECKPOINTS message 7: not a checkpoint (JSON): invalid character",
		"checkpoint at row 50 (key " + key.ID + ", made ",
		") in EVIDENCE_CHECKPOINTS (message 6): signature does not verify with key " + key.ID,
	} {
		if !strings.Contains(all, want) {
			t.Errorf("problems lack %q:\n%s", want, all)
		}
	}
}

func waitMutations(t *testing.T, conn driver.Conn) {
	t.Helper()
	testenv.Eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d mutations running", n)
		}
		return nil
	})
}

// The NATS permissions docs/tamper-evidence.md gives the auditor's user
// are enough to read the stream, and do not let it publish a checkpoint,
// delete the stream or purge it.
func TestReadStreamAsAuditor(t *testing.T) {
	ctx := context.Background()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: filepath.Join(t.TempDir(), "js"), NoSigs: true, NoLog: true,
		Users: []*server.User{
			{Username: "evidenced", Password: "s3cret-e"},
			{Username: "auditor", Password: "s3cret-a", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{
					"$JS.API.STREAM.INFO.EVIDENCE_CHECKPOINTS",
					"$JS.API.CONSUMER.CREATE.EVIDENCE_CHECKPOINTS.>",
					"$JS.API.CONSUMER.MSG.NEXT.EVIDENCE_CHECKPOINTS.>",
				}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		}}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(s.Shutdown)
	if !s.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats not ready")
	}
	addr := s.Addr().String()
	connect := func(user string) jetstream.JetStream {
		t.Helper()
		nc, err := nats.Connect("nats://"+user+"@"+addr, nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return js
	}
	ev := connect("evidenced:s3cret-e")
	if err := checkpoint.EnsureStream(ctx, ev, 1); err != nil {
		t.Fatal(err)
	}
	key, _ := verify.GenerateKey()
	c := verify.Checkpoint{Seq: 10, Count: 10, Head: strings.Repeat("c", 64), CreatedNs: 1}
	c.Sign(key)
	publish(t, ev, bodies(t, c, c)...)

	au := connect("auditor:s3cret-a")
	sc, err := verify.ReadStream(ctx, au)
	if err != nil {
		t.Fatalf("the auditor cannot read the stream: %v", err)
	}
	if len(sc.Msgs) != 2 || sc.Msgs[1].Checkpoint != c {
		t.Fatalf("the auditor read %+v", sc.Msgs)
	}
	tctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := au.Publish(tctx, checkpoint.Subject, []byte("{}")); err == nil {
		t.Error("the auditor published a checkpoint")
	}
	if err := au.DeleteStream(tctx, checkpoint.Stream); err == nil {
		t.Error("the auditor deleted the stream")
	}
	if info, err := ev.Stream(ctx, checkpoint.Stream); err != nil || info.CachedInfo().State.Msgs != 2 {
		t.Fatalf("after the auditor's attempts: %v", err)
	}
	// Wrong password: the connection is refused.
	if _, err := nats.Connect("nats://auditor:wrong@" + addr); err == nil {
		t.Error("a wrong password connected")
	}
}

// BenchmarkReadStream reads a stream of 10,000 checkpoints (100 million
// events at the default --checkpoint-every) from an embedded NATS over
// loopback.
func BenchmarkReadStream(b *testing.B) {
	ctx := context.Background()
	n := testenv.NATS(b)
	if err := checkpoint.EnsureStream(ctx, n.JS, 1); err != nil {
		b.Fatal(err)
	}
	key, _ := verify.GenerateKey()
	const msgs = 10_000
	for i := uint64(1); i <= msgs; i++ {
		c := verify.Checkpoint{Seq: i * 10_000, Count: i * 10_000, Head: strings.Repeat("ab", 32), CreatedNs: int64(i)}
		c.Sign(key)
		body, _ := json.Marshal(c)
		if _, err := n.JS.PublishAsync(checkpoint.Subject, body); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-n.JS.PublishAsyncComplete():
	case <-time.After(time.Minute):
		b.Fatal("publish did not complete")
	}
	b.ResetTimer()
	for b.Loop() {
		sc, err := verify.ReadStream(ctx, n.JS)
		if err != nil || len(sc.Msgs) != msgs {
			b.Fatalf("read %v, %v", sc, err)
		}
	}
	b.ReportMetric(float64(msgs)*float64(b.N)/b.Elapsed().Seconds(), "checkpoints/s")
}
