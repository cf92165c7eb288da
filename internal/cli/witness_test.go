package cli_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	flog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/internal/verify/verifytest"
)

// switchableLog is the operator's log as the HTTP API serves it: the
// ClickHouse database it reads can be swapped, which is how the test's
// operator replaces its history by a rewritten one.
type switchableLog struct{ conn atomic.Pointer[driver.Conn] }

func (s *switchableLog) Conn() driver.Conn { return *s.conn.Load() }
func (s *switchableLog) Latest(ctx context.Context) ([]byte, bool, error) {
	return tlog.LatestCheckpoint(ctx, s.Conn())
}

// operatorLog is a database holding rows chained by the archive's code,
// their tree built by tlog.Open from the rows (as the archive's catch-up
// does), and checkpoints signed with the operator's key.
type operatorLog struct {
	url    string
	st     *store.Store
	signer *tlog.Signer
}

func newOperatorLog(t *testing.T, key *verify.SigningKey, c verifytest.Chain) *operatorLog {
	t.Helper()
	url := testenv.DatabaseURL(t)
	st := testenv.StoreAt(t, url)
	if _, err := verifytest.Write(context.Background(), st, c, false); err != nil {
		t.Fatal(err)
	}
	if _, err := tlog.Open(context.Background(), st.Conn()); err != nil {
		t.Fatal(err)
	}
	s, err := tlog.NewSigner(tlog.OriginFor(key.ID), key.Private)
	if err != nil {
		t.Fatal(err)
	}
	return &operatorLog{url: url, st: st, signer: s}
}

// sign signs and stores the checkpoint of the first n leaves.
func (o *operatorLog) sign(t *testing.T, n int64) []byte {
	t.Helper()
	ctx := context.Background()
	root, err := tlog.NewTiles(o.st.Conn()).RootAt(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := o.signer.Sign(sumtlog.Tree{N: n, Hash: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := tlog.StoreCheckpoint(ctx, o.st.Conn(), tlog.StoredCheckpoint{Size: n, Root: root, LastSeq: uint64(n), Note: msg, CreatedNs: int64(n)}); err != nil {
		t.Fatal(err)
	}
	return msg
}

type witnessFixture struct {
	srv    *httptest.Server
	log    *switchableLog
	vars   map[string]string
	logKey string
	dir    string
	wvkey  string // the witness's verifier key
}

func newWitnessFixture(t *testing.T, first *operatorLog) *witnessFixture {
	t.Helper()
	tokens, err := auth.Parse(strings.NewReader(fmt.Sprintf("auditor %s internal-audit\n", auth.Hash("tok-audit"))))
	if err != nil {
		t.Fatal(err)
	}
	f := &witnessFixture{log: &switchableLog{}, dir: t.TempDir(), logKey: first.signer.VerifierKey()}
	f.serve(first)
	f.srv = httptest.NewServer(api.New(api.Config{Tokens: tokens, TLog: f.log}))
	t.Cleanup(f.srv.Close)
	f.vars = map[string]string{"EVIDENCE_SERVER": f.srv.URL, "EVIDENCE_TOKEN": "tok-audit"}
	r := run(t, nil, "", "witness", "keygen", "--out", filepath.Join(f.dir, "keys"), "--name", "internal-audit.example.com/witness")
	if r.code != 0 {
		t.Fatalf("keygen: %d %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(filepath.Join(f.dir, "keys", "witness.vkey"))
	if err != nil {
		t.Fatal(err)
	}
	f.wvkey = strings.TrimSpace(string(b))
	return f
}

func (f *witnessFixture) serve(o *operatorLog) {
	c := o.st.Conn()
	f.log.conn.Store(&c)
}

func (f *witnessFixture) witness(t *testing.T) result {
	t.Helper()
	return run(t, f.vars, "", "witness", "--log-key", f.logKey, "--key", filepath.Join(f.dir, "keys", "witness.key"), "--state", f.state())
}

func (f *witnessFixture) state() string { return filepath.Join(f.dir, "state.note") }

func (f *witnessFixture) get(t *testing.T, path string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer tok-audit")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %s", path, resp.Status, b)
	}
	return b
}

func (f *witnessFixture) post(t *testing.T, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/log/cosignature", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer tok-audit")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (f *witnessFixture) file(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestWitnessCatchesARewrittenHistory: a witness cosigns the operator's
// checkpoints while they extend each other; the operator then rewrites
// the history from row 7 on and re-signs it with its own key. The
// witness refuses the new checkpoint, and an auditor holding the
// checkpoint cosigned before the rewrite catches it, while a reader
// without it is caught only by requiring the witness's cosignature.
func TestWitnessCatchesARewrittenHistory(t *testing.T) {
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	honest := newOperatorLog(t, key, verifytest.Chain{Events: 30})
	honest.sign(t, 10)
	f := newWitnessFixture(t, honest)

	r := f.witness(t)
	if r.code != 0 || !strings.Contains(r.stdout, "cosigned: "+tlog.OriginFor(key.ID)+", 10 leaves") {
		t.Fatalf("first run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// Nothing new: cosigned again, same size.
	if r := f.witness(t); r.code != 0 || !strings.Contains(r.stdout, "no new leaves") {
		t.Fatalf("second run: %d %s %s", r.code, r.stdout, r.stderr)
	}
	honest.sign(t, 20)
	if r := f.witness(t); r.code != 0 || !strings.Contains(r.stdout, "20 leaves") || !strings.Contains(r.stdout, "extends the 10 leaves") {
		t.Fatalf("run at 20: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// The served checkpoint carries the log's signature and the witness's.
	served := f.get(t, "/v1/log/checkpoint")
	if _, sigs, err := tlog.SplitNote(served); err != nil || len(sigs) != 2 {
		t.Fatalf("served checkpoint has %d signatures (%v):\n%s", len(sigs), err, served)
	}
	// An independent reader: transparency-dev/formats parses the
	// checkpoint and checks both signatures with its own verifiers.
	lv, err := note.NewVerifier(f.logKey)
	if err != nil {
		t.Fatal(err)
	}
	wv, err := fnote.NewVerifierForCosignatureV1(f.wvkey)
	if err != nil {
		t.Fatal(err)
	}
	cp, _, n, err := flog.ParseCheckpoint(served, tlog.OriginFor(key.ID), lv, wv)
	if err != nil {
		t.Fatalf("formats' reader: %v", err)
	}
	root20, _ := tlog.NewTiles(honest.st.Conn()).RootAt(context.Background(), 20)
	if cp.Size != 20 || !bytes.Equal(cp.Hash, root20[:]) || len(n.Sigs) != 2 || n.Sigs[1].Name != "internal-audit.example.com/witness" {
		t.Fatalf("formats' reader: size %d root %x sigs %+v", cp.Size, cp.Hash, n.Sigs)
	}
	if ts, err := fnote.CoSigV1Timestamp(n.Sigs[1]); err != nil || ts.IsZero() {
		t.Fatalf("cosignature timestamp %v: %v", ts, err)
	}
	// The checkpoint cosigned at 10 is still served with its cosignature.
	old10 := f.get(t, "/v1/log/checkpoint?size=10")
	if _, _, _, err := flog.ParseCheckpoint(old10, tlog.OriginFor(key.ID), lv, wv); err != nil {
		t.Fatal(err)
	}
	auditorHolds := f.file(t, "audited-20.note", served)
	cons := func(name string, old, size int64) string {
		return f.file(t, name, f.get(t, fmt.Sprintf("/v1/log/proof/consistency?old=%d&size=%d", old, size)))
	}

	// The operator rewrites history from row 7 on (Gaps 7 changes every
	// row after the 6th) and re-signs it with its own key.
	rewritten := newOperatorLog(t, key, verifytest.Chain{Events: 40, Gaps: 7})
	rewritten.signer = honest.signer
	rw20 := rewritten.sign(t, 20)
	rw30 := rewritten.sign(t, 30)
	f.serve(rewritten)
	stateBefore, _ := os.ReadFile(f.state())

	r = f.witness(t)
	if r.code != 1 || !strings.Contains(r.stderr, "REFUSED") || !strings.Contains(r.stderr, "does not extend the checkpoint of 20 leaves") || !strings.Contains(r.stderr, "history was rewritten") {
		t.Fatalf("witness on the rewritten log: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if after, _ := os.ReadFile(f.state()); !bytes.Equal(after, stateBefore) {
		t.Fatal("the refusal changed the witness's state")
	}
	if _, err := os.Stat(f.state() + ".refused-30.note"); err != nil {
		t.Fatalf("the refused checkpoint is not kept: %v", err)
	}
	if b := f.get(t, "/v1/log/checkpoint"); bytes.Count(b, []byte("\n— ")) != 1 {
		t.Fatalf("the rewritten checkpoint got a cosignature:\n%s", b)
	}

	// The auditor holding the checkpoint cosigned before the rewrite.
	newFile := f.file(t, "rw-30.note", rw30)
	rv := run(t, nil, "", "verify", "consistency", "--log-key", f.logKey, "--witness", f.wvkey, "--proof", cons("c20-30.json", 20, 30), auditorHolds, newFile)
	if rv.code != 1 || !strings.Contains(rv.stdout, "witness: internal-audit.example.com/witness cosigned") || !strings.Contains(rv.stderr, "history was rewritten") {
		t.Fatalf("verify consistency from the cosigned checkpoint: %d %s %s", rv.code, rv.stdout, rv.stderr)
	}
	// A reader who holds only the rewritten checkpoints sees a consistent
	// log signed by the operator's key ...
	rwOld := f.file(t, "rw-20.note", rw20)
	if rv := run(t, nil, "", "verify", "consistency", "--log-key", f.logKey, "--proof", cons("rc20-30.json", 20, 30), rwOld, newFile); rv.code != 0 {
		t.Fatalf("the rewritten log is self-consistent, want OK: %d %s %s", rv.code, rv.stdout, rv.stderr)
	}
	// ... and is caught by requiring the witness's cosignature.
	rv = run(t, nil, "", "verify", "consistency", "--log-key", f.logKey, "--witness", f.wvkey, "--witnesses", "1", "--proof", cons("rc20-30b.json", 20, 30), rwOld, newFile)
	if rv.code != 1 || !strings.Contains(rv.stderr, "has 0 valid witness cosignatures of the keys given, --witnesses wants 1 (not cosigned by: internal-audit.example.com/witness)") {
		t.Fatalf("verify consistency --witnesses 1 on the rewritten log: %d %s %s", rv.code, rv.stdout, rv.stderr)
	}
	// Its inclusion proofs too.
	inc := f.file(t, "inc.json", f.get(t, "/v1/log/proof/inclusion?seq=3&size=30"))
	if rv := run(t, nil, "", "verify", "inclusion", "--log-key", f.logKey, "--checkpoint", newFile, "--proof", inc); rv.code != 0 {
		t.Fatalf("inclusion without witnesses: %d %s %s", rv.code, rv.stdout, rv.stderr)
	}
	if rv := run(t, nil, "", "verify", "inclusion", "--log-key", f.logKey, "--witness", filepath.Join(f.dir, "keys", "witness.vkey"), "--witnesses", "1", "--checkpoint", newFile, "--proof", inc); rv.code != 1 || !strings.Contains(rv.stderr, "0 valid witness cosignatures") {
		t.Fatalf("inclusion --witnesses 1 on the rewritten log: %d %s %s", rv.code, rv.stdout, rv.stderr)
	}

	// The operator re-signs a tree of 20 leaves of the rewritten log: a
	// fork at the size the witness cosigned.
	onlyRw20 := newOperatorLog(t, key, verifytest.Chain{Events: 20, Gaps: 7})
	onlyRw20.signer = honest.signer
	onlyRw20.sign(t, 20)
	f.serve(onlyRw20)
	if r := f.witness(t); r.code != 1 || !strings.Contains(r.stderr, "two roots for 20 leaves") {
		t.Fatalf("witness on a fork: %d %s %s", r.code, r.stdout, r.stderr)
	}

	// Back on the honest log, the auditor requires the cosignature.
	f.serve(honest)
	proof := cons("h20-20.json", 10, 20)
	if rv := run(t, nil, "", "verify", "consistency", "--log-key", f.logKey, "--witness", f.wvkey, "--witnesses", "1", "--proof", proof, f.file(t, "h10.note", old10), auditorHolds); rv.code != 0 {
		t.Fatalf("honest consistency with witnesses: %d %s %s", rv.code, rv.stdout, rv.stderr)
	}
	// A cosignature altered in the file: named, refused.
	text, sigs, _ := tlog.SplitNote(served)
	b, _ := base64.StdEncoding.DecodeString(strings.Fields(sigs[1])[2])
	b[len(b)-1] ^= 1
	forged := tlog.JoinNote(text, []string{sigs[0], "— internal-audit.example.com/witness " + base64.StdEncoding.EncodeToString(b) + "\n"})
	if rv := run(t, nil, "", "verify", "consistency", "--log-key", f.logKey, "--witness", f.wvkey, "--witnesses", "1", "--proof", proof, f.file(t, "h10b.note", old10), f.file(t, "forged.note", forged)); rv.code != 1 || !strings.Contains(rv.stderr, `cosignature of witness "internal-audit.example.com/witness" does not verify`) {
		t.Fatalf("altered cosignature: %d %s %s", rv.code, rv.stdout, rv.stderr)
	}
}

// TestCosignatureRoute checks what POST /v1/log/cosignature refuses.
func TestCosignatureRoute(t *testing.T) {
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	o := newOperatorLog(t, key, verifytest.Chain{Events: 12})
	msg := o.sign(t, 12)
	f := newWitnessFixture(t, o)
	skey, _ := os.ReadFile(filepath.Join(f.dir, "keys", "witness.key"))
	cs, err := tlog.NewCosigner(string(skey))
	if err != nil {
		t.Fatal(err)
	}
	text, sigs, _ := tlog.SplitNote(msg)
	line, err := cs.Cosign(text)
	if err != nil {
		t.Fatal(err)
	}
	good := tlog.JoinNote(text, append(sigs, line))
	for _, c := range []struct {
		name string
		body []byte
		code int
		want string
	}{
		{"not a note", []byte("hello"), 400, "no blank line"},
		{"another root", tlog.JoinNote(tlog.OriginFor(key.ID)+"\n12\n"+base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n", []string{line}), 404, "its text differs"},
		{"unknown size", tlog.JoinNote(strings.Replace(text, "\n12\n", "\n13\n", 1), []string{line}), 404, "no checkpoint of 13 leaves"},
		{"the log's own name", tlog.JoinNote(text, append(sigs, "— "+tlog.OriginFor(key.ID)+" "+strings.Fields(line)[2]+"\n")), 400, "the log's own name"},
		{"not a cosignature", tlog.JoinNote(text, append(sigs, "— w.example/x "+base64.StdEncoding.EncodeToString([]byte("short sig"))+"\n")), 400, "an ed25519 cosignature/v1 has 76"},
		{"good", good, 200, `"stored":1`},
		{"again", good, 200, `"stored":0`},
	} {
		code, body := f.post(t, c.body)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: %d %s, want %d %q", c.name, code, body, c.code, c.want)
		}
	}
	// Without a token.
	resp, err := http.Post(f.srv.URL+"/v1/log/cosignature", "text/plain", bytes.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %s", resp.Status)
	}
	// Served once, with the log's signature first.
	served := f.get(t, "/v1/log/checkpoint")
	if !bytes.Equal(served, good) {
		t.Errorf("served:\n%s\nwant:\n%s", served, good)
	}
	var ip tlog.InclusionProof
	if err := json.Unmarshal(f.get(t, "/v1/log/proof/inclusion?seq=5"), &ip); err != nil || ip.Canonical == "" {
		t.Fatalf("inclusion proof without its row: %v", err)
	}
}

// TestPopulationStatesItsCheckpoint: report population names the log's
// newest signed checkpoint (with the witness cosignatures stored for it)
// in its JSON header, and on stderr for every format.
func TestPopulationStatesItsCheckpoint(t *testing.T) {
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	o := newOperatorLog(t, key, verifytest.Chain{Events: 9})
	args := []string{"report", "population", "--clickhouse-url", o.url, "--from", "2026-01-01", "--to", "2026-12-31", "--format", "json"}
	r := run(t, nil, "", args...)
	if r.code != 0 || !strings.Contains(r.stderr, "no signed checkpoint yet") || strings.Contains(r.stdout, "log_checkpoint") {
		t.Fatalf("without a checkpoint: %d %s %s", r.code, r.stdout, r.stderr)
	}
	o.sign(t, 6)
	msg := o.sign(t, 9)
	r = run(t, nil, "", args...)
	var head struct {
		Log struct {
			Origin   string `json:"origin"`
			TreeSize int64  `json:"tree_size"`
			Root     string `json:"root"`
			Note     string `json:"note"`
		} `json:"log_checkpoint"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &head); err != nil || r.code != 0 {
		t.Fatalf("population: %d %v %s %s", r.code, err, r.stdout, r.stderr)
	}
	root, _ := tlog.NewTiles(o.st.Conn()).RootAt(context.Background(), 9)
	if head.Log.Origin != tlog.OriginFor(key.ID) || head.Log.TreeSize != 9 || head.Log.Root != base64.StdEncoding.EncodeToString(root[:]) || head.Log.Note != string(msg) {
		t.Fatalf("log_checkpoint %+v, want 9 leaves, root %x, note %q", head.Log, root, msg)
	}
	if !strings.Contains(r.stderr, "computed against the log checkpoint "+tlog.OriginFor(key.ID)+", 9 leaves") {
		t.Fatalf("stderr: %s", r.stderr)
	}
}

// TestVerifyArchiveWithWitnesses: evidence verify --witnesses recomputes
// the tree of the checkpoint the witness cosigned from the archive's
// rows. A history rewritten and re-signed (chain checkpoints and log
// checkpoint, with the operator's key) is intact by its own checkpoints
// and caught by the witness's.
func TestVerifyArchiveWithWitnesses(t *testing.T) {
	key, err := verify.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pubDir := t.TempDir()
	if _, _, err := verify.WriteKeyPair(pubDir, key); err != nil {
		t.Fatal(err)
	}
	honest := newOperatorLog(t, key, verifytest.Chain{Events: 30, Every: 10, Key: key})
	honest.sign(t, 20)
	f := newWitnessFixture(t, honest)
	if r := f.witness(t); r.code != 0 {
		t.Fatalf("witness: %d %s %s", r.code, r.stdout, r.stderr)
	}
	verifyArchive := func(o *operatorLog, extra ...string) result {
		return run(t, nil, "", append([]string{"verify", "--clickhouse-url", o.url, "--public-key", pubDir}, extra...)...)
	}
	r := verifyArchive(honest, "--witness", f.wvkey, "--witnesses", "1")
	if r.code != 0 || !strings.Contains(r.stdout, "witnessed: the archive's first 20 rows (up to stream_seq 20)") || !strings.HasSuffix(r.stdout, "intact\n") {
		t.Fatalf("honest archive: %d %s %s", r.code, r.stdout, r.stderr)
	}

	rewritten := newOperatorLog(t, key, verifytest.Chain{Events: 30, Every: 10, Key: key, Gaps: 7})
	rewritten.signer = honest.signer
	rewritten.sign(t, 20)
	if r := verifyArchive(rewritten); r.code != 0 || !strings.HasSuffix(r.stdout, "intact\n") {
		t.Fatalf("the rewritten archive by its own checkpoints, want intact: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = verifyArchive(rewritten, "--witness", f.wvkey, "--witnesses", "1")
	if r.code != 1 || !strings.Contains(r.stdout, "TAMPERED: no log checkpoint in ClickHouse (1 sizes) carries 1 valid cosignatures") || strings.Contains(r.stdout, "intact") {
		t.Fatalf("rewritten, no cosigned checkpoint: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = verifyArchive(rewritten, "--witness", f.wvkey, "--witnesses", "1", "--witnessed-checkpoint", f.state())
	if r.code != 1 || !strings.Contains(r.stdout, "TAMPERED: the archive's first 20 rows (up to stream_seq 23), each hash recomputed from its content, do not hash to the root of the checkpoint the witnesses cosigned") {
		// The 20th row is stream_seq 23: 7, 14 and 21 are the gaps.
		t.Fatalf("rewritten, against the held cosigned checkpoint: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := verifyArchive(honest, "--witness", f.wvkey); r.code != 2 || !strings.Contains(r.stderr, "need --witnesses N") {
		t.Fatalf("--witness without --witnesses: %d %s", r.code, r.stderr)
	}
}
