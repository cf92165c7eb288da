package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	natsclient "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/cli"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/internal/verify/verifytest"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

// chainFixture is a database holding a valid chain written with the
// archive's chain code, checkpoints signed every few rows, and the public
// key in a directory.
type chainFixture struct {
	url    string
	st     *store.Store
	key    *verify.SigningKey
	pubDir string
	w      verifytest.Written
}

func newChain(t *testing.T, c verifytest.Chain) *chainFixture {
	t.Helper()
	f := &chainFixture{url: testenv.DatabaseURL(t)}
	f.st = testenv.StoreAt(t, f.url)
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	f.key, f.pubDir = key, t.TempDir()
	if _, _, err := verify.WriteKeyPair(f.pubDir, key); err != nil {
		t.Fatal(err)
	}
	c.Key = key
	if f.w, err = verifytest.Write(context.Background(), f.st, c, true); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *chainFixture) verify(t *testing.T, args ...string) result {
	t.Helper()
	return run(t, nil, "", append([]string{"verify", "--clickhouse-url", f.url, "--public-key", f.pubDir}, args...)...)
}

// row is the fixture's row at stream_seq seq.
func (f *chainFixture) row(t *testing.T, seq uint64) verifytest.Ref {
	t.Helper()
	for _, r := range f.w.Rows {
		if r.Seq == seq {
			return r
		}
	}
	t.Fatalf("no row %d", seq)
	return verifytest.Ref{}
}

// mutate runs an ALTER TABLE mutation (of events or checkpoints) and waits
// until it is done.
func (f *chainFixture) mutate(t *testing.T, sql string) {
	t.Helper()
	ctx := context.Background()
	if err := f.st.Conn().Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := f.st.Conn().QueryRow(ctx, "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%d mutations running", n)
		}
		return nil
	})
}

func wantTampered(t *testing.T, r result, msgs ...string) {
	t.Helper()
	if r.code != cli.ExitFail {
		t.Fatalf("exit %d, want 1 (tampered)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	first := strings.SplitN(r.stdout, "\n", 2)[0]
	if !strings.HasPrefix(first, "TAMPERED: ") {
		t.Fatalf("first line %q does not report the tampering:\n%s", first, r.stdout)
	}
	for _, m := range msgs {
		if !strings.Contains(r.stdout, m) {
			t.Errorf("output lacks %q:\n%s", m, r.stdout)
		}
	}
}

func wantIntact(t *testing.T, r result, msgs ...string) {
	t.Helper()
	if r.code != cli.ExitOK || !strings.HasSuffix(r.stdout, "intact\n") || strings.Contains(r.stdout, "TAMPERED") {
		t.Fatalf("exit %d, want 0 (intact)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, m := range msgs {
		if !strings.Contains(r.stdout, m) {
			t.Errorf("output lacks %q:\n%s", m, r.stdout)
		}
	}
}

func TestVerifyIntact(t *testing.T) {
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	wantIntact(t, f.verify(t), "started from: the first row of the chain", "events checked: 50 (stream_seq 1..50)",
		"checkpoints checked: 5 (keys: "+f.key.ID+")", "last signed head: stream_seq 50, 50 events, hash "+f.row(t, 50).Hash)

	// Dead-lettered events leave gaps in stream_seq that are not tampering.
	g := newChain(t, verifytest.Chain{Events: 50, Every: 10, Gaps: 7})
	wantIntact(t, g.verify(t), fmt.Sprintf("events checked: 50 (stream_seq 1..%d)", g.w.HeadSeq), "checkpoints checked: 5")
	if g.w.HeadSeq <= 50 {
		t.Fatalf("the chain with gaps ends at %d", g.w.HeadSeq)
	}
}

func TestVerifyAlteredRow(t *testing.T) {
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	f.mutate(t, `ALTER TABLE events UPDATE data = '{"outcome":"success","forged":true}' WHERE stream_seq = 17`)
	wantTampered(t, f.verify(t), "TAMPERED: row 17 (event ev-0000017) altered: its hash does not match its content\n",
		"last signed head: stream_seq 10,")

	// Any column takes part: the receive time of another row.
	f.mutate(t, `ALTER TABLE events UPDATE received_ns = received_ns + 1 WHERE stream_seq = 4`)
	wantTampered(t, f.verify(t), "TAMPERED: row 4 (event ev-0000004) altered: its hash does not match its content\n")

	// A row changed and its hash recomputed: the next row still names the
	// original.
	g := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	r := verifytest.Row(17, 17)
	r.PrevHash, r.Subject = g.row(t, 16).Hash, "approved-by-nobody"
	h, err := archive.RowHash(&r)
	if err != nil {
		t.Fatal(err)
	}
	g.mutate(t, fmt.Sprintf(`ALTER TABLE events UPDATE subject = '%s', hash = '%s' WHERE stream_seq = 17`, r.Subject, h))
	wantTampered(t, g.verify(t), "TAMPERED: row 17 (event ev-0000017) altered: its hash was recomputed after a change, but row 18's prev_hash still names the original\n")
}

func TestVerifyDeletedRow(t *testing.T) {
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	f.mutate(t, `ALTER TABLE events DELETE WHERE stream_seq = 23`)
	wantTampered(t, f.verify(t), "TAMPERED: row 23 missing between 22 and 24 ")

	f.mutate(t, `ALTER TABLE events DELETE WHERE stream_seq IN (5, 6, 7)`)
	wantTampered(t, f.verify(t), "TAMPERED: rows missing between 4 and 8: ")
}

// The last row is only missed against a checkpoint that signed it.
func TestVerifyDeletedLastRow(t *testing.T) {
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	f.mutate(t, `ALTER TABLE events DELETE WHERE stream_seq = 50`)
	wantTampered(t, f.verify(t), "TAMPERED: row 50 missing: checkpoint at seq 50 signed it as the chain's head (hash "+f.row(t, 50).Hash+", 50 events), but the chain ends at row 49")

	// After the last checkpoint, deleting the newest row leaves a valid
	// chain: verify says it cannot see that.
	g := newChain(t, verifytest.Chain{Events: 55, Every: 10})
	g.mutate(t, `ALTER TABLE events DELETE WHERE stream_seq = 55`)
	wantIntact(t, g.verify(t), "events checked: 54", "note: the last 4 rows checked (up to stream_seq 54) come after the last checkpoint",
		"deleting the newest of them, or adding rows after them, is not detectable until a checkpoint signs them")
}

func TestVerifyInsertedRow(t *testing.T) {
	ctx := context.Background()
	// A forged row that does not fit the chain, at an existing sequence.
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	forged := verifytest.Row(9999, 35)
	forged.EventID, forged.PrevHash, forged.Hash = "forged-1", f.row(t, 34).Hash, strings.Repeat("0", 64)
	if err := f.st.InsertEvents(ctx, []store.EventRow{forged}); err != nil {
		t.Fatal(err)
	}
	wantTampered(t, f.verify(t), "TAMPERED: row 35 (event forged-1) inserted: not in the chain, which goes from row 34 to row 35 without it; not in the chain signed by checkpoint at seq 40")

	// A forged row made to fit after row 19, in the gap a dead-lettered
	// event left (seq 20): its own hash is right, the next row names row 19.
	g := newChain(t, verifytest.Chain{Events: 50, Every: 10, Gaps: 10})
	fit := verifytest.Row(9999, 20)
	fit.EventID, fit.PrevHash = "forged-2", g.row(t, 19).Hash
	var err error
	if fit.Hash, err = archive.RowHash(&fit); err != nil {
		t.Fatal(err)
	}
	if err := g.st.InsertEvents(ctx, []store.EventRow{fit}); err != nil {
		t.Fatal(err)
	}
	wantTampered(t, g.verify(t), "TAMPERED: row 20 (event forged-2) inserted: not in the chain, which goes from row 19 to row 21 without it; not in the chain signed by checkpoint at seq ")
}

// Rows altered and the rest of the chain re-hashed to fit: only a
// checkpoint shows it.
func TestVerifyRewrittenChain(t *testing.T) {
	ctx := context.Background()
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	f.mutate(t, `ALTER TABLE events DELETE WHERE stream_seq >= 27`)
	prev := f.row(t, 26).Hash
	var rows []store.EventRow
	for k := 27; k <= 50; k++ {
		r := verifytest.Row(k, uint64(k))
		if k == 27 {
			r.Data = []byte(`{"outcome":"success","rewritten":true}`)
		}
		r.PrevHash = prev
		h, err := archive.RowHash(&r)
		if err != nil {
			t.Fatal(err)
		}
		r.Hash, prev = h, h
		rows = append(rows, r)
	}
	if err := f.st.InsertEvents(ctx, rows); err != nil {
		t.Fatal(err)
	}
	wantTampered(t, f.verify(t), "TAMPERED: rows 21..30 altered and re-hashed: row 30's hash is not the head hash signed by checkpoint at seq 30")
}

func TestVerifyBadCheckpoints(t *testing.T) {
	ctx := context.Background()
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	// A checkpoint altered after signing: its count.
	bad := f.w.Checkpoints[1]
	bad.Count++
	// One signed by a key the auditor was not given.
	other, _ := verify.GenerateKey()
	unknown := verify.Checkpoint{Seq: 25, Count: 25, Head: f.row(t, 25).Hash, CreatedNs: time.Now().UnixNano()}
	unknown.Sign(other)
	if err := verify.InsertCheckpoints(ctx, f.st.Conn(), []verify.Checkpoint{bad, unknown}); err != nil {
		t.Fatal(err)
	}
	r := f.verify(t)
	wantTampered(t, r, "TAMPERED: checkpoint at seq 20 (key "+f.key.ID+", made ", "signature does not verify with key "+f.key.ID+": the checkpoint was altered or forged",
		"TAMPERED: checkpoint at seq 25 (key "+other.ID+", made ", `unknown signing key "`+other.ID+`": give its public key with --public-key`,
		"checkpoints checked: 5")
	// Given the other key too (a rotation), only the altered one remains.
	otherDir := t.TempDir()
	if _, _, err := verify.WriteKeyPair(otherDir, other); err != nil {
		t.Fatal(err)
	}
	r = f.verify(t, "--public-key", filepath.Join(otherDir, verify.PublicKeyFile))
	wantTampered(t, r, "checkpoints checked: 6")
	if strings.Count(r.stdout, "TAMPERED") != 1 || !strings.Contains(r.stdout, "checkpoint at seq 20") {
		t.Fatalf("with both keys:\n%s", r.stdout)
	}
}

func TestVerifyRanges(t *testing.T) {
	f := newChain(t, verifytest.Chain{Events: 50, Every: 10})
	f.mutate(t, `ALTER TABLE events UPDATE subject = 'x' WHERE stream_seq = 15`)
	// The range starts from the checkpoint before it and runs to the one
	// after it: row 15 is not in it.
	wantIntact(t, f.verify(t, "--from-seq", "33", "--to-seq", "37"), "started from: checkpoint at seq 30 (30 events",
		"events checked: 10 (stream_seq 31..40)", "checkpoints checked: 1", "last signed head: stream_seq 40,")
	wantTampered(t, f.verify(t, "--from-seq", "12", "--to-seq", "13"), "TAMPERED: row 15 (event ev-0000015) altered")
	// Periods of archive time; a date as --to includes the day.
	wantTampered(t, f.verify(t, "--from", "2026-03-02", "--to", "2026-03-02"), "row 15 (event ev-0000015) altered")
	at := func(k int) string {
		return verifytest.Base.Add(time.Duration(k) * time.Millisecond).Format(time.RFC3339Nano)
	}
	wantIntact(t, f.verify(t, "--from", at(41), "--to", at(46)), "started from: checkpoint at seq 40", "events checked: 10 (stream_seq 41..50)")
	wantIntact(t, f.verify(t, "--from", "2026-03-03"), "events checked: 0")
}

func TestVerifyUsage(t *testing.T) {
	f := newChain(t, verifytest.Chain{Events: 3})
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"verify", "--clickhouse-url", f.url}, "--public-key is required"},
		{[]string{"verify", "--clickhouse-url", f.url, "--public-key", "/nonexistent.pub"}, "--public-key: stat /nonexistent.pub"},
		{[]string{"verify", "--clickhouse-url", f.url, "--public-key", f.pubDir, "--from", "yesterday"}, `--from: "yesterday" is neither RFC 3339`},
		{[]string{"verify", "--clickhouse-url", f.url, "--public-key", f.pubDir, "--from", "2026-01-02", "--from-seq", "3"}, "not both"},
		{[]string{"verify", "--clickhouse-url", "clickhouse://127.0.0.1:" + strconv.Itoa(port) + "/evidence", "--public-key", f.pubDir}, "--clickhouse-url clickhouse://127.0.0.1:"},
	} {
		r := run(t, nil, "", c.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args[3:], r.code, r.stderr, c.want)
		}
	}
	// A chain without checkpoints is intact but unsigned.
	wantIntact(t, f.verify(t), "checkpoints checked: 0", "last signed head: none in range", "note: the last 3 rows checked")
}

func TestKeysNew(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	r := run(t, nil, "", "keys", "new", "--out", dir)
	if r.code != 0 {
		t.Fatalf("keys new: %+v", r)
	}
	key, err := verify.LoadSigningKey(filepath.Join(dir, verify.PrivateKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.stdout, "key id:      "+key.ID+"\n") {
		t.Fatalf("printed %q, key id %s", r.stdout, key.ID)
	}
	if r := run(t, nil, "", "keys", "id", filepath.Join(dir, verify.PublicKeyFile)); r.code != 0 || r.stdout != key.ID+"\n" {
		t.Fatalf("keys id: %+v", r)
	}
	before, _ := os.ReadFile(filepath.Join(dir, verify.PrivateKeyFile))
	r = run(t, nil, "", "keys", "new", "--out", dir)
	if r.code != cli.ExitFail || !strings.Contains(r.stderr, "refusing to overwrite") {
		t.Fatalf("second keys new: %+v", r)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, verify.PrivateKeyFile)); string(after) != string(before) {
		t.Fatal("the key was overwritten")
	}
	if r := run(t, nil, "", "keys", "new"); r.code != cli.ExitUsage || !strings.Contains(r.stderr, "--out DIR is required") {
		t.Fatalf("without --out: %+v", r)
	}
}

// evidenced signs its archive with the key it made at first start; evidence
// verify checks the result with the public key beside it.
func TestVerifyEvidencedArchive(t *testing.T) {
	ctx := context.Background()
	chURL := testenv.DatabaseURL(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	st, shutdown := archiveNotes(t, chURL, dataDir, "test/verify", 25)
	testenv.Eventually(t, 30*time.Second, func() error {
		var n uint64
		if err := st.Conn().QueryRow(ctx, "SELECT count() FROM checkpoints").Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d checkpoints, want 2 (at 10 and 20)", n)
		}
		return nil
	})
	shutdown()
	f := &chainFixture{url: chURL, st: st, pubDir: filepath.Join(dataDir, verify.PublicKeyFile)}
	wantIntact(t, f.verify(t), "events checked: 25 (stream_seq 1..25)", "checkpoints checked: 3", "last signed head: stream_seq 25, 25 events")
	f.mutate(t, `ALTER TABLE events UPDATE source = 'forged' WHERE stream_seq = 12`)
	wantTampered(t, f.verify(t), "TAMPERED: row 12 (event e-12) altered: its hash does not match its content")
}

// A signing key others can read stops evidenced at start, naming the flag.
func TestEvidencedRefusesAnExposedKey(t *testing.T) {
	dir := t.TempDir()
	if r := run(t, nil, "", "keys", "new", "--out", dir); r.code != 0 {
		t.Fatalf("keys new: %+v", r)
	}
	path := filepath.Join(dir, verify.PrivateKeyFile)
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Parse("evidenced", []string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "d"),
		"--clickhouse-url", testenv.DatabaseURL(t), "--signing-key", path}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	d, err := daemon.Start(context.Background(), cfg, nil, daemon.Options{})
	if err == nil {
		_ = d.Shutdown(context.Background())
		t.Fatal("evidenced started with a world-readable signing key")
	}
	if want := "--signing-key (EVIDENCE_SIGNING_KEY): " + path + " has mode 0644"; !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q lacks %q", err, want)
	}
	// A missing file is refused by the configuration, naming the flag.
	_, _, err = config.Parse("evidenced", []string{"--signing-key", filepath.Join(dir, "nope.key")}, func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "--signing-key (EVIDENCE_SIGNING_KEY): stat ") {
		t.Fatalf("missing key: %v", err)
	}
}

// The auditor verifies as the read-only auditor user.
func TestVerifyAsAuditor(t *testing.T) {
	f := newChain(t, verifytest.Chain{Events: 30, Every: 10})
	auditor := testenv.AuditorURL(t, f.st.Database())
	r := run(t, map[string]string{"EVIDENCE_CLICKHOUSE_URL": auditor}, "", "verify", "--public-key", f.pubDir)
	wantIntact(t, r, "events checked: 30 (stream_seq 1..30)", "checkpoints checked: 3")
	f.mutate(t, `ALTER TABLE events DELETE WHERE stream_seq = 12`)
	r = run(t, map[string]string{"EVIDENCE_CLICKHOUSE_URL": auditor}, "", "verify", "--public-key", f.pubDir)
	wantTampered(t, r, "TAMPERED: row 12 missing between 11 and 13")
}

// streamArchive is what a real evidenced, publishing to an external NATS,
// archived and signed: 20 events, checkpoints at 10 and 20 in ClickHouse
// and in the stream EVIDENCE_CHECKPOINTS.
type streamArchive struct {
	natsURL string
	pubPath string
	keyID   string
	rows    []store.EventRow
	cps     []verify.Checkpoint // distinct, in order
	stored  []verify.Checkpoint // the table's rows (a checkpoint may be stored twice: a retried insert)
}

func newStreamArchive(t *testing.T) *streamArchive {
	t.Helper()
	ctx := context.Background()
	n := testenv.NATS(t)
	chURL := testenv.DatabaseURL(t)
	dataDir := filepath.Join(t.TempDir(), "d")
	st, shutdown := archiveNotes(t, chURL, dataDir, "test/verify-stream", 20, "--nats-url", n.URL)
	shutdown()
	a := &streamArchive{natsURL: n.URL, pubPath: filepath.Join(dataDir, verify.PublicKeyFile), rows: testenv.ArchivedRows(t, st)}
	if err := verify.ScanCheckpoints(ctx, st.Conn(), 1, 0, func(c verify.Checkpoint) error {
		a.stored = append(a.stored, c)
		if n := len(a.cps); n == 0 || a.cps[n-1] != c {
			a.cps = append(a.cps, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(a.rows) != 20 || a.rows[19].StreamSeq != 20 || len(a.cps) != 2 || a.cps[0].Seq != 10 || a.cps[1].Seq != 20 {
		t.Fatalf("evidenced archived %d rows and checkpoints %+v; want rows 1..20, checkpoints at 10 and 20", len(a.rows), a.cps)
	}
	a.keyID = a.cps[0].KeyID
	// The stream holds the same two, and the transparency log's two
	// checkpoint notes (subject evidence.checkpoints.log).
	info, err := n.JS.Stream(ctx, verify.CheckpointStream)
	if err != nil || info.CachedInfo().State.Msgs != 4 {
		t.Fatalf("stream %s after evidenced: %v", verify.CheckpointStream, err)
	}
	return a
}

// copy is a fresh database holding the archive's rows and checkpoints, to
// tamper with; the stream stays as evidenced left it.
func (a *streamArchive) copy(t *testing.T) *chainFixture {
	t.Helper()
	f := &chainFixture{url: testenv.DatabaseURL(t), pubDir: a.pubPath}
	f.st = testenv.StoreAt(t, f.url)
	if err := f.st.InsertEvents(context.Background(), a.rows); err != nil {
		t.Fatal(err)
	}
	if err := verify.InsertCheckpoints(context.Background(), f.st.Conn(), a.stored); err != nil {
		t.Fatal(err)
	}
	return f
}

func (a *streamArchive) made(i int) string {
	return fmt.Sprintf("checkpoint at row %d (key %s, made %s)", a.cps[i].Seq, a.keyID, a.cps[i].Created().Format("2006-01-02T15:04:05Z"))
}

// evidence verify --nats-url compares the checkpoints of ClickHouse with
// the stream evidenced published them to, and checks the chain against
// the stream's.
func TestVerifyAgainstStream(t *testing.T) {
	a := newStreamArchive(t)
	nats := []string{"--nats-url", a.natsURL}
	compared := "checkpoints from: stream EVIDENCE_CHECKPOINTS at " + a.natsURL + ", compared with ClickHouse for stream_seq 1..head: "

	t.Run("intact", func(t *testing.T) {
		f := a.copy(t)
		wantIntact(t, f.verify(t, nats...), "events checked: 20 (stream_seq 1..20)", "checkpoints checked: 2 (keys: "+a.keyID+")",
			compared+"2 in the stream, 2 in ClickHouse, 2 identical\n", "last signed head: stream_seq 20, 20 events")
		// The URL from the environment; a range compares the checkpoints
		// around it.
		r := run(t, map[string]string{"EVIDENCE_NATS_URL": a.natsURL}, "", "verify", "--clickhouse-url", f.url, "--public-key", a.pubPath, "--from-seq", "12", "--to-seq", "15")
		wantIntact(t, r, "started from: checkpoint at seq 10", "events checked: 10 (stream_seq 11..20)",
			"compared with ClickHouse for stream_seq 10..20: 2 in the stream, 2 in ClickHouse, 2 identical")
		// Without --nats-url the output says where the checkpoints came from.
		r = f.verify(t)
		wantIntact(t, r, "checkpoints checked: 2", "checkpoints from: ClickHouse only, not compared with the stream EVIDENCE_CHECKPOINTS (give --nats-url")
		if strings.Count(r.stdout+r.stderr, "ClickHouse only") != 1 {
			t.Fatalf("said more than once:\n%s%s", r.stdout, r.stderr)
		}
	})

	t.Run("checkpoint deleted", func(t *testing.T) {
		f := a.copy(t)
		f.mutate(t, "ALTER TABLE checkpoints DELETE WHERE stream_seq = 10")
		// ClickHouse alone does not miss it: the chain is intact.
		wantIntact(t, f.verify(t), "checkpoints checked: 1")
		r := f.verify(t, nats...)
		wantTampered(t, r, "TAMPERED: "+a.made(0)+" is in EVIDENCE_CHECKPOINTS but not in ClickHouse: deleted from the checkpoints table\n",
			compared+"2 in the stream, 1 in ClickHouse, 1 identical\n", "checkpoints checked: 2")
		if strings.Count(r.stdout, "TAMPERED") != 1 {
			t.Fatalf("more than the deletion reported:\n%s", r.stdout)
		}
	})

	// The attack the stream is for: the checkpoint covering rows 11..20
	// deleted from ClickHouse and the rows rewritten with fresh, consistent
	// hashes.
	t.Run("checkpoints deleted and rows rewritten", func(t *testing.T) {
		f := a.copy(t)
		f.mutate(t, "ALTER TABLE checkpoints DELETE WHERE stream_seq >= 11")
		f.mutate(t, "ALTER TABLE events DELETE WHERE stream_seq >= 11")
		prev := a.rows[9].Hash
		var forged []store.EventRow
		for _, r := range a.rows[10:] {
			if r.StreamSeq == 11 {
				r.Data = []byte(`{"n":11,"approved":true}`)
			}
			r.PrevHash = prev
			h, err := verify.RowHash(&r)
			if err != nil {
				t.Fatal(err)
			}
			r.Hash, prev = h, h
			forged = append(forged, r)
		}
		if err := f.st.InsertEvents(context.Background(), forged); err != nil {
			t.Fatal(err)
		}
		// The limit of ClickHouse alone: a valid chain, its end unsigned.
		wantIntact(t, f.verify(t), "events checked: 20 (stream_seq 1..20)", "checkpoints checked: 1",
			"note: the last 10 rows checked (up to stream_seq 20) come after the last checkpoint", "checkpoints from: ClickHouse only")
		wantTampered(t, f.verify(t, nats...),
			"TAMPERED: "+a.made(1)+" is in EVIDENCE_CHECKPOINTS but not in ClickHouse: deleted from the checkpoints table\n",
			"TAMPERED: rows 11..20 altered and re-hashed: row 20's hash is not the head hash signed by checkpoint at seq 20",
			compared+"2 in the stream, 1 in ClickHouse, 1 identical\n", "last signed head: stream_seq 10,")
	})

	t.Run("checkpoint altered", func(t *testing.T) {
		f := a.copy(t)
		other := a.rows[18].Hash
		f.mutate(t, "ALTER TABLE checkpoints UPDATE head_hash = '"+other+"' WHERE stream_seq = 20")
		wantTampered(t, f.verify(t, nats...),
			"TAMPERED: "+a.made(1)+" differs between EVIDENCE_CHECKPOINTS and ClickHouse (head_hash "+a.cps[1].Head+" in the stream, "+other+" in ClickHouse): altered in ClickHouse\n",
			compared+"2 in the stream, 2 in ClickHouse, 1 identical\n", "checkpoints checked: 2")
	})

	t.Run("no stream", func(t *testing.T) {
		f := a.copy(t)
		port, err := chlocal.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		nothing := "nats://auditor:s3cret@127.0.0.1:" + strconv.Itoa(port)
		empty := testenv.NATS(t) // a NATS without the checkpoint stream
		creds := filepath.Join(t.TempDir(), "nope.creds")
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"--nats-url", nothing}, "verify: --nats-url nats://auditor:xxxxx@127.0.0.1:" + strconv.Itoa(port) + ": "},
			{[]string{"--nats-url", empty.URL}, "verify: --nats-url " + empty.URL + ": stream EVIDENCE_CHECKPOINTS not found: is this the NATS server evidenced publishes its checkpoints to?"},
			{[]string{"--nats-url", a.natsURL, "--nats-creds", creds}, "verify: --nats-creds: stat " + creds},
			{[]string{"--nats-creds", creds}, "--nats-creds is for --nats-url, which is not given"},
		} {
			r := f.verify(t, c.args...)
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) || strings.Contains(r.stderr, "s3cret") || r.stdout != "" {
				t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, r.code, r.stdout, r.stderr, c.want)
			}
		}
	})

	// A NATS user that may not pull from the stream: exit 2 at once (not
	// after the read's idle timeout), naming the subject refused.
	t.Run("permissions", func(t *testing.T) {
		f := a.copy(t)
		srv, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Users: []*natsserver.User{{Username: "admin", Password: "a"}, {Username: "auditor", Password: "b", Permissions: &natsserver.Permissions{
				Publish:   &natsserver.SubjectPermission{Allow: []string{"$JS.API.STREAM.INFO.EVIDENCE_CHECKPOINTS", "$JS.API.CONSUMER.CREATE.EVIDENCE_CHECKPOINTS.>"}},
				Subscribe: &natsserver.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}}}})
		if err != nil {
			t.Fatal(err)
		}
		go srv.Start()
		t.Cleanup(srv.Shutdown)
		if !srv.ReadyForConnections(30 * time.Second) {
			t.Fatal("nats not ready")
		}
		nc, err := natsclient.Connect("nats://admin:a@" + srv.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		if err := checkpoint.EnsureStream(context.Background(), js, 1); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(a.cps[0])
		if _, err := js.Publish(context.Background(), checkpoint.Subject, body); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := f.verify(t, "--nats-url", "nats://auditor:b@"+srv.Addr().String())
		want := `Permissions Violation for Publish to "$JS.API.CONSUMER.MSG.NEXT.EVIDENCE_CHECKPOINTS.`
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, "verify: --nats-url nats://auditor:xxxxx@") || !strings.Contains(r.stderr, want) ||
			!strings.Contains(r.stderr, "the user needs the read-only permissions in docs/tamper-evidence.md") {
			t.Fatalf("exit %d, stderr %q; want 2 and %q", r.code, r.stderr, want)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("the refusal took %s", d)
		}
	})
}

// archiveNotes runs evidenced (checkpoints every 10 events, no
// correlation, extra flags added) on the database chURL, posts n events
// of source, and waits until they are archived. shutdown stops evidenced
// gracefully (signing the head); the test's end does if it was not called.
func archiveNotes(t *testing.T, chURL, dataDir, source string, n int, extra ...string) (st *store.Store, shutdown func()) {
	t.Helper()
	ctx := context.Background()
	args := append([]string{"--http-addr", "127.0.0.1:0", "--data-dir", dataDir, "--clickhouse-url", chURL,
		"--checkpoint-every", "10", "--checkpoint-interval", "1h", "--correlate=false"}, extra...)
	cfg, _, err := config.Parse("evidenced", args, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	// Rows are visible in ClickHouse before their batch is committed (its
	// log tiles written, acknowledged, handed to the checkpointer): wait
	// for the commit, not for the rows, before a test stops evidenced.
	var committed atomic.Int64
	d, err := daemon.Start(ctx, cfg, nil, daemon.Options{ArchiveHooks: archive.Hooks{
		Committed: func(rows []store.EventRow) { committed.Add(int64(len(rows))) }}})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	shutdown = func() {
		if stopped {
			return
		}
		stopped = true
		if err := d.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if !stopped {
			stopped = true
			_ = d.Shutdown(ctx)
		}
	})
	var batch []map[string]any
	for i := 1; i <= n; i++ {
		batch = append(batch, map[string]any{"specversion": "1.0", "id": fmt.Sprintf("e-%d", i), "source": source,
			"type": "com.example.note", "data": map[string]any{"n": i}})
	}
	body, _ := json.Marshal(batch)
	resp, err := http.Post("http://"+d.Addr()+"/v1/events", "application/cloudevents-batch+json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("post: %d", resp.StatusCode)
	}
	st = testenv.StoreAt(t, chURL)
	testenv.WaitForRows(t, st, uint64(n), 60*time.Second)
	testenv.Eventually(t, 60*time.Second, func() error {
		if c := committed.Load(); c < int64(n) {
			return fmt.Errorf("%d of %d rows committed by the archive", c, n)
		}
		return nil
	})
	return st, shutdown
}
