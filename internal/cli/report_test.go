package cli_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	sumtlog "golang.org/x/mod/sumdb/tlog"

	"github.com/evidencepipeline/evidence/internal/cli"
	"github.com/evidencepipeline/evidence/internal/report"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	itlog "github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
	"github.com/evidencepipeline/evidence/processors/correlate/correlatetest"
)

// The report scenario: the correlator's scenarios' events archived and
// correlated into change records, with control results and verdicts
// written as the evaluation stage would:
//
//	squash_merge        compliant: every control passes, at deployment and now
//	two_environments    pending at deployment (CM-1, ticket approval awaited), passing now;
//	                    its staging deployment is outside the production population
//	direct_push         failing CM-2 (no review), at deployment and now; CM-1 names an
//	                    event the archive does not hold
//	deploy_before_build CM-6 waived by exception EXC-7
//	unmatched           a deployment that matches no change: CM-8 fails, the other
//	                    controls are not evaluated
const (
	idSquash   = "github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"
	idTwoEnv   = "github.com/acme/payments@70ffee1234567890abcdef1234567890abcdef70"
	idDirect   = "github.com/acme/ledger@d1ec7a11ce5e5f60718293a4b5c6d7e8f90a1b2c"
	idWaived   = "github.com/acme/payments@64ffee00112233445566778899aabbccddeeff64"
	idUnmatch  = "unmatched:production/payments/github.com/acme/payments@72c0ffee00112233445566778899aabbccddee72"
	missingRef = "https://acme.atlassian.net LED-7-approval"
	// lateApproval is the late evidence of the two-environment change.
	lateApproval = "https://acme.atlassian.net CHG0031301-approval"
	bundle       = "b0d1e5"
)

var reportNow = time.Date(2025, 4, 1, 12, 0, 0, 0, time.UTC)

var controlTitles = map[string]string{
	"CM-1": "Approved change ticket", "CM-2": "Peer review", "CM-3": "Segregation of duties", "CM-4": "Tests passed",
	"CM-5": "Security scans", "CM-6": "Provenance", "CM-7": "Authorized deployment path", "CM-8": "No unauthorized change",
}

// reportScenario fills a fresh database with the scenario and returns its
// URL.
//
// Its events are chained with real row hashes and the transparency log is
// built over them (as at the upgrade) and signed, with the log key it
// returns (a note verifier key), so packages carry inclusion proofs.
func reportScenario(t *testing.T) (string, string) {
	t.Helper()
	url := testenv.DatabaseURL(t)
	st := testenv.StoreAt(t, url)
	ctx := context.Background()

	var events []store.EventRow
	prevHash := ""
	records := map[string]correlate.Record{}
	add := func(scenario string, n int) {
		evs := correlatetest.Events(t, filepath.Join(scenarios, scenario, "events.json"), n)
		for _, e := range evs {
			seq := uint64(len(events) + 1)
			events = append(events, store.EventRow{StreamSeq: seq, EventID: e.ID, Source: e.Source, Type: e.Type, Subject: e.Subject,
				EventTimeNs: e.Time.UnixNano(), ReceivedNs: e.Time.Add(time.Second).UnixNano(), DataContentType: e.DataContentType,
				DataSchema: e.DataSchema, Extensions: e.ExtensionsJSON(), Data: e.Data, DataBase64: e.DataBase64,
				PrevHash: prevHash})
			h, err := verify.RowHash(&events[len(events)-1])
			if err != nil {
				t.Fatal(err)
			}
			events[len(events)-1].Hash, prevHash = h, h
		}
		for _, r := range correlatetest.State(t, evs...).Records() {
			records[r.ID] = r
		}
	}
	add("squash_merge", 0)
	add("two_environments", 0)
	add("direct_push", 0)
	add("deploy_before_build", 0)
	add("unmatched_relinked", 1)
	if err := st.InsertEvents(ctx, events); err != nil {
		t.Fatal(err)
	}
	logKey := signScenarioLog(t, st)
	for _, id := range []string{idSquash, idTwoEnv, idDirect, idWaived, idUnmatch} {
		r, ok := records[id]
		if !ok {
			t.Fatalf("the scenario has no record %s", id)
		}
		c, deps, err := chsink.Rows(r, reportNow)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.InsertChanges(ctx, []store.ChangeRow{c}); err != nil {
			t.Fatal(err)
		}
		if err := st.InsertDeployments(ctx, deps); err != nil {
			t.Fatal(err)
		}
	}

	// Results: every control passes unless said otherwise.
	type override struct {
		control, status, reason, exception string
		evidence                           []string
	}
	var results []store.ControlResultRow
	var verdicts []store.DeploymentVerdictRow
	judge := func(id string, at time.Time, trigger string, controls []string, over ...override) []store.ControlResultRow {
		r := records[id]
		c, deps, _ := chsink.Rows(r, reportNow)
		var ev []string
		for _, d := range r.Deployments {
			for _, e := range d.Events {
				ev = append(ev, e.String())
			}
		}
		var rows []store.ControlResultRow
		for _, ctl := range controls {
			row := store.ControlResultRow{ChangeID: id, ControlID: ctl, ControlTitle: controlTitles[ctl], Severity: "high",
				Status: "pass", Evidence: ev, Repository: c.Repository, Environments: c.Environments, Services: c.Services,
				RecordHash: c.RecordHash, BundleHash: bundle, Trigger: trigger, EvaluatedNs: at.UnixNano()}
			for _, o := range over {
				if o.control != ctl {
					continue
				}
				row.Status, row.ExceptionID = o.status, o.exception
				if o.reason != "" {
					row.Reasons = []string{o.reason}
				}
				if o.evidence != nil {
					row.Evidence = o.evidence
				}
				if o.status == "pending" {
					row.DeadlineNs = at.Add(48 * time.Hour).UnixNano()
				}
			}
			rows = append(rows, row)
		}
		results = append(results, rows...)
		_ = deps
		return rows
	}
	verdict := func(id string, rows []store.ControlResultRow) {
		r := records[id]
		_, deps, _ := chsink.Rows(r, reportNow)
		for _, d := range deps {
			if d.Environment != "production" {
				continue
			}
			v := store.DeploymentVerdictRow{Environment: d.Environment, Service: d.Service, DeploymentKey: d.DeploymentKey,
				DeploymentID: d.DeploymentID, ChangeID: id, Repository: d.Repository, Commit: d.Commit, Deployer: d.Deployer,
				DeployedNs: d.StartedNs, RecordHash: rows[0].RecordHash, BundleHash: bundle, DecidedAt: reportNow,
				Failing: []string{}, Pending: []string{}, Waived: []string{}}
			if v.DeployedNs == 0 {
				v.DeployedNs = d.FinishedNs
			}
			type res struct {
				Control  string   `json:"control"`
				Status   string   `json:"status"`
				Reasons  []string `json:"reasons"`
				Evidence []string `json:"evidence"`
			}
			var rs []res
			for _, x := range rows {
				rs = append(rs, res{x.ControlID, x.Status, x.Reasons, x.Evidence})
				switch x.Status {
				case "fail":
					v.Failing = append(v.Failing, x.ControlID)
				case "pending":
					v.Pending = append(v.Pending, x.ControlID)
				case "waived":
					v.Waived = append(v.Waived, x.ControlID)
				}
			}
			b, _ := json.Marshal(rs)
			v.Results = string(b)
			switch {
			case len(v.Failing) > 0:
				v.Verdict = "fail"
			case len(v.Pending) > 0:
				v.Verdict = "pending"
			default:
				v.Verdict = "pass"
			}
			verdicts = append(verdicts, v)
		}
	}
	all := []string{"CM-1", "CM-2", "CM-3", "CM-4", "CM-5", "CM-6", "CM-7", "CM-8"}
	at := func(s string) time.Time { t0, _ := time.Parse(time.RFC3339, s); return t0 }
	verdict(idSquash, judge(idSquash, at("2025-03-04T07:02:00Z"), "update", all))
	verdict(idTwoEnv, judge(idTwoEnv, at("2025-03-11T07:00:00Z"), "update", all,
		override{control: "CM-1", status: "pending", reason: "ticket CHG0031301 is not approved yet"}))
	judge(idTwoEnv, at("2025-03-11T09:00:00Z"), "update", []string{"CM-1"})
	verdict(idDirect, judge(idDirect, at("2025-03-12T22:58:00Z"), "update", all,
		override{control: "CM-2", status: "fail", reason: "direct push to the default branch: no pull request, no review"},
		override{control: "CM-1", status: "pass", evidence: []string{missingRef}}))
	verdict(idWaived, judge(idWaived, at("2025-03-07T10:05:00Z"), "update", all,
		override{control: "CM-6", status: "waived", exception: "EXC-7", reason: "deployed before its build was reported"}))
	verdict(idUnmatch, judge(idUnmatch, at("2025-03-14T02:14:00Z"), "update", []string{"CM-8"},
		override{control: "CM-8", status: "fail", reason: "the deployment matches no change record"}))
	if err := st.InsertControlResults(ctx, results); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertDeploymentVerdicts(ctx, verdicts); err != nil {
		t.Fatal(err)
	}
	// Late evidence beside the two-environment deployment's verdict
	// (pending on CM-1): the ticket's approval arrived after the cutoff
	// (CM-1 pending -> pass, written twice, as a crash between the write
	// and the note in the bucket would); before it, a late test report
	// made CM-4 fail, then a rerun made it pass again (noted back at its
	// decided status: no longer a change).
	lateRow := func(control, decided, late, noted string, events ...string) store.LateEvidenceRow {
		return store.LateEvidenceRow{Environment: "production", Service: "payments", DeploymentKey: "id:payments-production-121",
			ChangeID: idTwoEnv, ControlID: control, DecidedStatus: decided, LateStatus: late, LateEvents: events,
			ArrivedByNs: at("2025-03-11T07:02:00Z").UnixNano(), RecordHash: "1a7e" + control, BundleHash: bundle,
			NotedNs: at(noted).UnixNano()}
	}
	cm4 := lateRow("CM-4", "pass", "fail", "2025-03-11T08:00:00Z", "/ci/github-actions/acme/payments 9876543500-unit-late")
	cm4.LateReasons = []string{"the unit tests of the deployed artifact failed"}
	lateCM1 := lateRow("CM-1", "pending", "pass", "2025-03-11T09:00:00Z", lateApproval)
	late := []store.LateEvidenceRow{cm4, lateCM1, lateCM1,
		lateRow("CM-4", "pass", "pass", "2025-03-11T09:30:00Z", "/ci/github-actions/acme/payments 9876543500-unit-rerun")}
	if err := st.InsertLateEvidence(ctx, late); err != nil {
		t.Fatal(err)
	}
	return url, logKey
}

// signScenarioLog builds the transparency log over the archived rows (the
// archive's upgrade path) and stores a checkpoint of it signed with a key
// of its own, as evidenced's checkpointer does; it returns the log's
// verifier key.
func signScenarioLog(t *testing.T, st *store.Store) string {
	t.Helper()
	ctx := context.Background()
	l, err := itlog.Open(ctx, st.Conn())
	if err != nil {
		t.Fatal(err)
	}
	root, err := l.Root()
	if err != nil {
		t.Fatal(err)
	}
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	signer, err := itlog.NewSigner(itlog.OriginFor(verify.KeyID(pub)), priv)
	if err != nil {
		t.Fatal(err)
	}
	tree := sumtlog.Tree{N: l.Size(), Hash: root}
	msg, err := signer.Sign(tree)
	if err != nil {
		t.Fatal(err)
	}
	if err := itlog.StoreCheckpoint(ctx, st.Conn(), itlog.StoredCheckpoint{Size: tree.N, Root: root, Note: msg, CreatedNs: reportNow.UnixNano()}); err != nil {
		t.Fatal(err)
	}
	return signer.VerifierKey()
}

// resignZip rewrites a package as its signer could: edit changes files,
// then manifest.json gets their new sizes and digests and is signed again
// with key.
func resignZip(t *testing.T, src, dst string, key ed25519.PrivateKey, edit func(name string, b []byte) []byte) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	files := map[string][]byte{}
	var order []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		files[f.Name] = edit(f.Name, b)
		order = append(order, f.Name)
	}
	var m report.Manifest
	if err := json.Unmarshal(files[report.ManifestFile], &m); err != nil {
		t.Fatal(err)
	}
	for i, e := range m.Files {
		sum := sha256.Sum256(files[e.Path])
		m.Files[i].Size, m.Files[i].SHA256 = int64(len(files[e.Path])), hex.EncodeToString(sum[:])
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	mb = append(mb, '\n')
	files[report.ManifestFile] = mb
	files[report.SignatureFile] = []byte(base64.StdEncoding.EncodeToString(ed25519.Sign(key, mb)) + "\n")
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range order {
		w, _ := zw.Create(name)
		_, _ = w.Write(files[name])
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// reportGolden compares got with testdata/report/name, or rewrites it with
// -update.
func reportGolden(t *testing.T, name, got string) {
	t.Helper()
	goldenAt(t, "report", name, got)
}

var period = []string{"--from", "2025-03-01", "--to", "2025-03-31"}

func reportRun(t *testing.T, url string, args ...string) result {
	t.Helper()
	return run(t, map[string]string{"EVIDENCE_CLICKHOUSE_URL": url}, "", append([]string{"report"}, args...)...)
}

func TestReports(t *testing.T) {
	// The reports run as the read-only auditor user.
	scenarioURL, logKey := reportScenario(t)
	o, err := store.ParseURL(scenarioURL)
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.AuditorURL(t, o.Database)

	t.Run("population", func(t *testing.T) {
		r := reportRun(t, url, append([]string{"population"}, period...)...)
		if r.code != 0 {
			t.Fatalf("population: %+v", r)
		}
		reportGolden(t, "population.csv", r.stdout)
		recs, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		// Five production deployments in time order; the staging one is not.
		var got []string
		for _, rec := range recs[1:] {
			got = append(got, rec[8]+" "+rec[18]+" "+rec[22])
		}
		want := []string{idSquash + " pass pass", idWaived + " pass pass", idTwoEnv + " pending pass",
			idDirect + " fail fail", idUnmatch + " fail fail"}
		if !slices.Equal(got, want) {
			t.Errorf("population (change, verdict at deployment, now) =\n%q\nwant\n%q", got, want)
		}
		// late_evidence, the last column: the newest row per control whose
		// status differs from the decided one (CM-4 was noted back at pass).
		var lates []string
		for _, rec := range recs {
			lates = append(lates, rec[len(rec)-1])
		}
		if want := []string{"late_evidence", "", "", "CM-1 pending->pass", "", ""}; !slices.Equal(lates, want) || len(recs[0]) != len(report.Columns)+1 {
			t.Errorf("population late_evidence = %q, want %q as column %d", lates, want, len(report.Columns)+1)
		}
		if !strings.Contains(r.stderr, "population: 5 deployments") {
			t.Errorf("stderr = %q, want the count", r.stderr)
		}

		j := reportRun(t, url, append([]string{"population", "--format", "json"}, period...)...)
		if j.code != 0 {
			t.Fatalf("population json: %+v", j)
		}
		reportGolden(t, "population.json", j.stdout)
		var doc struct {
			Count int              `json:"count"`
			Rows  []map[string]any `json:"rows"`
		}
		if err := json.Unmarshal([]byte(j.stdout), &doc); err != nil || doc.Count != 5 || len(doc.Rows) != 5 {
			t.Fatalf("population json: count %d rows %d err %v", doc.Count, len(doc.Rows), err)
		}

		// XLSX: the same cells as the CSV, the row number a number.
		out := filepath.Join(t.TempDir(), "population.xlsx")
		x := reportRun(t, url, append([]string{"population", "--out", out}, period...)...)
		if x.code != 0 || x.stdout != "" {
			t.Fatalf("population xlsx: %+v", x)
		}
		f, err := excelize.OpenFile(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		rows, err := f.GetRows("population")
		if err != nil {
			t.Fatal(err)
		}
		for i := range recs {
			// GetRows drops trailing empty cells.
			want := recs[i]
			for len(want) > 0 && want[len(want)-1] == "" {
				want = want[:len(want)-1]
			}
			if i >= len(rows) || !slices.Equal(rows[i], want) {
				t.Errorf("xlsx row %d = %q, want the CSV's %q", i+1, rows[i], want)
			}
		}
		about, _ := f.GetRows("about")
		if len(about) < 4 || about[3][1] != "2025-04-01T00:00:00Z" {
			t.Errorf("xlsx about sheet = %q, want the period's end 2025-04-01 (--to 2025-03-31 includes that day)", about)
		}

		// A narrower period leaves out what falls outside it.
		n := reportRun(t, url, "population", "--from", "2025-03-05", "--to", "2025-03-12T22:58:00Z")
		if n.code != 0 || strings.Count(n.stdout, "\n") != 3 || !strings.Contains(n.stdout, idWaived) || !strings.Contains(n.stdout, idTwoEnv) {
			t.Errorf("population from 5 March to the direct push (excluded) = %+v, want the waived and two-environment rows", n)
		}
	})

	t.Run("sample", func(t *testing.T) {
		r := reportRun(t, url, append([]string{"sample", "--size", "3", "--seed", "20250331", "--format", "json"}, period...)...)
		if r.code != 0 {
			t.Fatalf("sample: %+v", r)
		}
		reportGolden(t, "sample.json", r.stdout)
		if !strings.Contains(r.stderr, "seed 20250331") || !strings.Contains(r.stderr, "--size 3 --seed 20250331") {
			t.Errorf("stderr = %q, want the seed and the command that re-performs the draw", r.stderr)
		}
		// Re-perform the draw from the population CSV alone: the 3 rows
		// with the lowest SHA-256 of seed, LF, key.
		pop := reportRun(t, url, append([]string{"population"}, period...)...)
		recs, _ := csv.NewReader(strings.NewReader(pop.stdout)).ReadAll()
		type scored struct{ score, row string }
		var all []scored
		for _, rec := range recs[1:] {
			all = append(all, scored{report.Score("20250331", rec[2]+"/"+rec[3]+"/"+rec[4]), rec[0]})
		}
		slices.SortFunc(all, func(a, b scored) int { return strings.Compare(a.score, b.score) })
		var want []string
		for _, s := range all[:3] {
			want = append(want, s.row)
		}
		slices.Sort(want)
		var doc struct {
			Rows []struct {
				Row  int    `json:"row"`
				Rank int    `json:"rank"`
				Key  string `json:"deployment_key"`
			} `json:"rows"`
			Sample report.SampleInfo `json:"sample"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, row := range doc.Rows {
			got = append(got, fmt.Sprint(row.Row))
		}
		slices.Sort(got)
		if !slices.Equal(got, want) || doc.Sample.Population != 5 || doc.Sample.Seed != "20250331" {
			t.Errorf("sample rows %v (population %d), re-performed %v", got, doc.Sample.Population, want)
		}

		// The size from confidence and tolerable rate: 59 > 5, so all.
		c := reportRun(t, url, append([]string{"sample", "--confidence", "95", "--tolerable-rate", "5"}, period...)...)
		if c.code != 0 || strings.Count(c.stdout, "\n") != 6 || !strings.Contains(c.stderr, "every deployment is in the sample") ||
			!strings.Contains(c.stderr, "--size 59 --seed ") {
			t.Errorf("sample 95/5 = %+v, want every row and the size 59 in the re-perform command", c)
		}
		// A random seed differs between runs and is printed.
		s1 := reportRun(t, url, append([]string{"sample", "--size", "1"}, period...)...)
		s2 := reportRun(t, url, append([]string{"sample", "--size", "1"}, period...)...)
		if !strings.Contains(s1.stderr, "seed ") || s1.stderr == s2.stderr {
			t.Errorf("two unseeded draws printed %q and %q, want two different printed seeds", s1.stderr, s2.stderr)
		}
		for _, bad := range [][]string{{"--size", "3", "--confidence", "95"}, {}, {"--confidence", "95"}, {"--size", "0"},
			{"--confidence", "95", "--tolerable-rate", "5", "--expected-rate", "5"}} {
			b := reportRun(t, url, append(append([]string{"sample"}, bad...), period...)...)
			if b.code != cli.ExitUsage || !strings.Contains(b.stderr, "report sample:") {
				t.Errorf("sample %v = %+v, want a usage error", bad, b)
			}
		}
	})

	t.Run("controls", func(t *testing.T) {
		r := reportRun(t, url, append([]string{"controls"}, period...)...)
		if r.code != 0 {
			t.Fatalf("controls: %+v", r)
		}
		reportGolden(t, "controls.txt", r.stdout)
		j := reportRun(t, url, append([]string{"controls", "--format", "json"}, period...)...)
		if j.code != 0 {
			t.Fatalf("controls json: %+v", j)
		}
		reportGolden(t, "controls.json", j.stdout)
		var c report.Controls
		if err := json.Unmarshal([]byte(j.stdout), &c); err != nil {
			t.Fatal(err)
		}
		counts := map[string]string{}
		for _, cc := range c.Controls {
			counts[cc.Control] = fmt.Sprintf("%d/%d/%d/%d/%d/%d", cc.Population, cc.Pass, cc.Fail, cc.Waived, cc.Pending, cc.NotEvaluated)
		}
		// population/pass/fail/waived/pending/not evaluated
		want := map[string]string{"CM-1": "5/4/0/0/0/1", "CM-2": "5/3/1/0/0/1", "CM-6": "5/3/0/1/0/1", "CM-8": "5/4/1/0/0/0"}
		for id, w := range want {
			if counts[id] != w {
				t.Errorf("%s = %s, want %s", id, counts[id], w)
			}
		}
		if len(c.Controls) != 8 || c.Changes != 5 || c.Deployments != 5 {
			t.Errorf("controls: %d controls over %d changes (%d deployments), want 8 over 5 (5)", len(c.Controls), c.Changes, c.Deployments)
		}
	})

	t.Run("trace", func(t *testing.T) {
		r := reportRun(t, url, "trace", idDirect)
		if r.code != 0 {
			t.Fatalf("trace: %+v", r)
		}
		reportGolden(t, "trace_direct_push.txt", r.stdout)
		for _, want := range []string{"DIRECT PUSH", "CM-2  FAIL  Peer review", "record        intact", missingRef, "Raw events"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("trace text lacks %q", want)
			}
		}
		j := reportRun(t, url, "trace", idTwoEnv, "--format", "json")
		if j.code != 0 {
			t.Fatalf("trace json: %+v", j)
		}
		reportGolden(t, "trace_two_environments.json", j.stdout)
		var tr report.Trace
		if err := json.Unmarshal([]byte(j.stdout), &tr); err != nil {
			t.Fatal(err)
		}
		// Every event the record names is in the trace, with its data.
		var rec map[string]any
		_ = json.Unmarshal(tr.Record, &rec)
		named := eventRefs(rec)
		have := map[string]bool{}
		for _, e := range tr.Events {
			have[e.Ref()] = len(e.Data) > 0
		}
		for _, n := range named {
			if !have[n] {
				t.Errorf("trace lacks the event %s (or its data) that the record names", n)
			}
		}
		if len(tr.Results) != 9 || len(tr.InForce) != 8 || tr.InForce[0].Status != "pass" || len(tr.Verdicts) != 1 ||
			tr.Verdicts[0].Verdict != "pending" || !tr.RecordIntact || len(tr.MissingEvents) != 0 {
			t.Errorf("trace of %s: %d results, %d in force (CM-1 %s), verdicts %+v, intact %v, missing %v", idTwoEnv,
				len(tr.Results), len(tr.InForce), tr.InForce[0].Status, tr.Verdicts, tr.RecordIntact, tr.MissingEvents)
		}
		// The late evidence beside the verdict, which stands (hand-worked:
		// the four rows written, the duplicate read once, oldest first).
		lt := tr.Verdicts[0]
		var lates []string
		for _, l := range lt.Late {
			lates = append(lates, l.NotedAt+" "+l.Control+" "+l.Decided+"->"+l.Late+" "+strings.Join(l.Events, ","))
		}
		wantLate := []string{
			"2025-03-11T08:00:00Z CM-4 pass->fail /ci/github-actions/acme/payments 9876543500-unit-late",
			"2025-03-11T09:00:00Z CM-1 pending->pass " + lateApproval,
			"2025-03-11T09:30:00Z CM-4 pass->pass /ci/github-actions/acme/payments 9876543500-unit-rerun",
		}
		if !slices.Equal(lates, wantLate) || lt.Verdict != "pending" || lt.LateNote != report.LateNote {
			t.Errorf("late evidence of %s = %q (verdict %s, note %q), want\n%q beside the pending verdict", idTwoEnv, lates,
				lt.Verdict, lt.LateNote, wantLate)
		}
		txt := reportRun(t, url, "trace", idTwoEnv)
		if txt.code != 0 {
			t.Fatalf("trace text: %+v", txt)
		}
		wantText := `    late evidence (arrived after the decision; the decided verdict PENDING stands, unchanged):
      CM-4  PASS -> FAIL  noted 2025-03-11T08:00:00Z
        reason        the unit tests of the deployed artifact failed
        late event    /ci/github-actions/acme/payments 9876543500-unit-late
        judged        record 1a7eCM-4  bundle b0d1e5  cutoff 2025-03-11T07:02:00Z
      CM-1  PENDING -> PASS  noted 2025-03-11T09:00:00Z
        late event    https://acme.atlassian.net CHG0031301-approval
        judged        record 1a7eCM-1  bundle b0d1e5  cutoff 2025-03-11T07:02:00Z
      CM-4  PASS -> PASS  noted 2025-03-11T09:30:00Z
        late event    /ci/github-actions/acme/payments 9876543500-unit-rerun
        judged        record 1a7eCM-4  bundle b0d1e5  cutoff 2025-03-11T07:02:00Z
`
		if !strings.Contains(txt.stdout, wantText) {
			t.Errorf("trace text of %s lacks the late evidence\n%s\ngot\n%s", idTwoEnv, wantText, txt.stdout)
		}
		if d := reportRun(t, url, "trace", idDirect); strings.Contains(d.stdout, "late evidence") {
			t.Errorf("trace of %s shows late evidence it has none of", idDirect)
		}

		n := reportRun(t, url, "trace", "github.com/acme/nothing@0000000")
		if n.code != cli.ExitFail || !strings.Contains(n.stderr, `no change record "github.com/acme/nothing@0000000"`) {
			t.Errorf("trace of an unknown change = %+v", n)
		}
	})

	t.Run("usage", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"population", "--from", "2025-03-01"}, "--from and --to are both required"},
			{[]string{"population", "--from", "2025-03-31", "--to", "2025-03-01"}, "is not before --to"},
			{[]string{"population", "--from", "March", "--to", "2025-03-01"}, `--from: "March" is neither`},
			{[]string{"population", "--format", "pdf", "--from", "2025-03-01", "--to", "2025-03-02"}, `--format "pdf"`},
			{[]string{"trace"}, "give one change id"},
			{[]string{"bogus"}, `unknown report "bogus"`},
		} {
			r := reportRun(t, url, c.args...)
			if r.code != cli.ExitUsage || !strings.Contains(r.stderr, c.want) {
				t.Errorf("report %v = %+v, want exit 2 and %q", c.args, r, c.want)
			}
		}
		r := run(t, map[string]string{"EVIDENCE_CLICKHOUSE_URL": "clickhouse://127.0.0.1:1/evidence"}, "",
			append([]string{"report", "population"}, period...)...)
		if r.code != cli.ExitFail || !strings.Contains(r.stderr, "--clickhouse-url clickhouse://127.0.0.1:1/evidence") {
			t.Errorf("unreachable ClickHouse = %+v, want exit 1 naming the URL", r)
		}
	})

	t.Run("package", func(t *testing.T) {
		dir := t.TempDir()
		// The signer's keys as evidence keys new writes them.
		k := run(t, nil, "", "keys", "new", "--out", filepath.Join(dir, "signer"))
		if k.code != 0 {
			t.Fatalf("keys new: %+v", k)
		}
		priv, pub := filepath.Join(dir, "signer", "evidence-signing.key"), filepath.Join(dir, "signer", "evidence-signing.pub")
		pubKey, err := verify.ReadPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		keyID := verify.KeyID(pubKey)
		if !strings.Contains(k.stdout, keyID) {
			t.Errorf("keys new printed %q; the key id of its public key is %s", k.stdout, keyID)
		}
		_, otherPub := writeKeys(t, dir, "other")
		pkg := filepath.Join(dir, "q1.zip")
		r := reportRun(t, url, append([]string{"package", "--out", pkg, "--signing-key", priv, "--size", "3", "--seed", "20250331"}, period...)...)
		if r.code != 0 || !strings.Contains(r.stdout, "seed 20250331") || !strings.Contains(r.stdout, "signed by key "+keyID) {
			t.Fatalf("package: %+v", r)
		}
		names := zipNames(t, pkg)
		for _, want := range []string{"README.txt", "population.csv", "population.json", "sample.csv", "sample.json", "controls.txt",
			"controls.json", "manifest.json", "manifest.sig"} {
			if !slices.Contains(names, want) {
				t.Errorf("package lacks %s: %v", want, names)
			}
		}
		// The sample in the package is the one `report sample` draws with
		// the same seed, and each sampled change has its trace.
		s := reportRun(t, url, append([]string{"sample", "--size", "3", "--seed", "20250331", "--format", "json"}, period...)...)
		if got := zipFile(t, pkg, "sample.json"); got != s.stdout {
			t.Errorf("the package's sample.json differs from report sample's:\n%s\n---\n%s", got, s.stdout)
		}
		var doc struct {
			Rows []struct {
				Change string `json:"change_id"`
			} `json:"rows"`
		}
		_ = json.Unmarshal([]byte(s.stdout), &doc)
		for _, row := range doc.Rows {
			dir := report.TraceDir(row.Change)
			if !slices.Contains(names, dir+"/trace.json") || !slices.Contains(names, dir+"/trace.txt") {
				t.Errorf("package lacks the trace of sampled change %s (%s)", row.Change, dir)
			}
		}

		v := run(t, nil, "", "verify", "package", pkg, "--public-key", pub, "--log-key", logKey)
		if v.code != 0 || !strings.Contains(v.stdout, "is intact") {
			t.Fatalf("verify an intact package: %+v", v)
		}
		// Every event of every sampled change is proven, offline, against
		// the log's checkpoint: the expected count is the events of the
		// traces in the package.
		wantEvents, traces := 0, 0
		for _, n := range names {
			if strings.HasSuffix(n, "/trace.json") {
				var tr report.Trace
				if err := json.Unmarshal([]byte(zipFile(t, pkg, n)), &tr); err != nil {
					t.Fatal(err)
				}
				wantEvents += len(tr.Events)
				traces++
			}
		}
		if wantEvents == 0 || !strings.Contains(v.stdout, fmt.Sprintf("inclusion: %d events of %d traces proven leaves of the log", wantEvents, traces)) {
			t.Errorf("verify of an intact package: want %d events of %d traces proven, got\n%s", wantEvents, traces, v.stdout)
		}
		if !slices.Contains(names, report.LogCheckpointFile) {
			t.Errorf("package lacks %s: %v", report.LogCheckpointFile, names)
		}
		// Without --log-key the log key is the package signer's: another
		// key signed this log, and verify says so.
		v = run(t, nil, "", "verify", "package", pkg, "--public-key", pub)
		if v.code != cli.ExitFail || !strings.Contains(v.stdout, "log/checkpoint.note: checkpoint note: ") || !strings.Contains(v.stdout, "--log-key") {
			t.Errorf("verify with the wrong log key = %+v, want exit 1 naming the checkpoint and --log-key", v)
		}

		// The package's signer alters an event, or a proof, and signs the
		// manifest again: the manifest is intact, the log is not fooled.
		signer, err := verify.LoadSigningKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		// A sampled change with at least two events.
		squashDir := ""
		var squash report.Trace
		for _, n := range names {
			if d, ok := strings.CutSuffix(n, "/trace.json"); ok {
				var tr report.Trace
				_ = json.Unmarshal([]byte(zipFile(t, pkg, n)), &tr)
				if len(tr.Events) >= 2 {
					squashDir, squash = d, tr
					break
				}
			}
		}
		if squashDir == "" {
			t.Fatalf("no trace of the package has two events: %v", names)
		}
		ev := squash.Events[1]
		evName := fmt.Sprintf("%s: event %s (stream_seq %d)", squashDir, ev.Ref(), ev.StreamSeq)
		editEvent := func(file string, f func(tr *report.Trace, in *report.TraceInclusion)) func(string, []byte) []byte {
			return func(name string, b []byte) []byte {
				if name != squashDir+"/"+file {
					return b
				}
				var tr report.Trace
				var in report.TraceInclusion
				var out []byte
				if file == "trace.json" {
					_ = json.Unmarshal(b, &tr)
					f(&tr, nil)
					out, _ = json.MarshalIndent(tr, "", "  ")
				} else {
					_ = json.Unmarshal(b, &in)
					f(nil, &in)
					out, _ = json.MarshalIndent(in, "", "  ")
				}
				return out
			}
		}
		dataAltered, proofAltered, canonAltered, dropped := filepath.Join(dir, "data.zip"), filepath.Join(dir, "proof.zip"),
			filepath.Join(dir, "canon.zip"), filepath.Join(dir, "dropped.zip")
		resignZip(t, pkg, dataAltered, signer.Private, editEvent("trace.json", func(tr *report.Trace, _ *report.TraceInclusion) {
			tr.Events[1].Data = json.RawMessage(`{"forged":true}`)
		}))
		resignZip(t, pkg, proofAltered, signer.Private, editEvent("inclusion.json", func(_ *report.Trace, in *report.TraceInclusion) {
			for i := range in.Events {
				if in.Events[i].StreamSeq == ev.StreamSeq {
					in.Events[i].Proof[0][0] ^= 1
				}
			}
		}))
		resignZip(t, pkg, canonAltered, signer.Private, editEvent("inclusion.json", func(_ *report.Trace, in *report.TraceInclusion) {
			for i := range in.Events {
				if in.Events[i].StreamSeq == ev.StreamSeq {
					in.Events[i].Canonical = base64.StdEncoding.EncodeToString([]byte(`{"specversion":"1.0","id":"forged"}`))
				}
			}
		}))
		resignZip(t, pkg, dropped, signer.Private, editEvent("inclusion.json", func(_ *report.Trace, in *report.TraceInclusion) {
			in.Events = slices.DeleteFunc(in.Events, func(e report.EventInclusion) bool { return e.StreamSeq == ev.StreamSeq })
		}))
		for _, c := range []struct{ file, want string }{
			{dataAltered, evName + ` was altered: trace.json shows another "data", the event proven in the log does not`},
			{proofAltered, evName + " is not proven in the log: row of stream sequence"},
			{canonAltered, evName + " was altered: its row in inclusion.json hashes to"},
			{dropped, evName + " has no inclusion proof in inclusion.json"},
		} {
			v := run(t, nil, "", "verify", "package", c.file, "--public-key", pub, "--log-key", logKey)
			if v.code != cli.ExitFail || !strings.Contains(v.stdout, "1 problems") || !strings.Contains(v.stdout, c.want) {
				t.Errorf("verify %s = %+v, want exit 1, one problem: %q", filepath.Base(c.file), v, c.want)
			}
		}

		altered := filepath.Join(dir, "altered.zip")
		rewriteZip(t, pkg, altered, func(name string, b []byte) []byte {
			if name == "population.csv" {
				return bytes.Replace(b, []byte(",fail,"), []byte(",pass,"), 1)
			}
			return b
		}, nil)
		extra := filepath.Join(dir, "extra.zip")
		rewriteZip(t, pkg, extra, nil, map[string]string{"traces/forged/trace.json": "{}"})
		missing := filepath.Join(dir, "missing.zip")
		rewriteZip(t, pkg, missing, func(name string, b []byte) []byte {
			if name == "controls.txt" {
				return nil
			}
			return b
		}, nil)
		manifest := filepath.Join(dir, "manifest.zip")
		rewriteZip(t, pkg, manifest, func(name string, b []byte) []byte {
			if name == "manifest.json" {
				return bytes.Replace(b, []byte(`"population": 5`), []byte(`"population": 4`), 1)
			}
			return b
		}, nil)
		for _, c := range []struct {
			file, key, want string
		}{
			{altered, pub, "population.csv was altered: its sha256 is"},
			{extra, pub, "traces/forged/trace.json is an extra file: the manifest does not list it"},
			{missing, pub, "controls.txt is missing: the manifest lists it"},
			{manifest, pub, "manifest.sig: the signature does not match manifest.json"},
			{pkg, otherPub, "manifest.sig: the signature does not match manifest.json with the public key"},
		} {
			v := run(t, nil, "", "verify", "package", c.file, "--public-key", c.key, "--log-key", logKey)
			if v.code != cli.ExitFail || !strings.Contains(v.stdout, "NOT intact") || !strings.Contains(v.stdout, c.want) {
				t.Errorf("verify %s with %s = %+v, want exit 1 and %q", filepath.Base(c.file), filepath.Base(c.key), v, c.want)
			}
		}
		// Only the altered file is named.
		v = run(t, nil, "", "verify", "package", altered, "--public-key", pub, "--log-key", logKey)
		if strings.Contains(v.stdout, "sample.csv") || !strings.Contains(v.stdout, "1 problems") {
			t.Errorf("verify of one altered file: %s", v.stdout)
		}

		notZip := filepath.Join(dir, "not.zip")
		_ = os.WriteFile(notZip, []byte("hello"), 0o644)
		for _, c := range []struct {
			args []string
			code int
			want string
		}{
			{[]string{"verify", "package", notZip, "--public-key", pub}, cli.ExitFail, "not a readable zip archive"},
			{[]string{"verify", "package", pkg}, cli.ExitUsage, "--public-key FILE is required"},
			{[]string{"verify", "package", pkg, "--public-key", priv}, cli.ExitUsage, `PEM block "PRIVATE KEY", want "PUBLIC KEY"`},
			{[]string{"verify", "package", filepath.Join(dir, "none.zip"), "--public-key", pub}, cli.ExitUsage, "none.zip"},
			{[]string{"report", "package", "--out", pkg, "--signing-key", pub, "--size", "1", "--from", "2025-03-01", "--to", "2025-03-02"},
				cli.ExitUsage, `--signing-key: ` + pub + `: a "PUBLIC KEY" PEM block`},
		} {
			r := run(t, map[string]string{"EVIDENCE_CLICKHOUSE_URL": url}, "", c.args...)
			if r.code != c.code || !strings.Contains(r.stdout+r.stderr, c.want) {
				t.Errorf("%v = %+v, want exit %d and %q", c.args, r, c.code, c.want)
			}
		}
	})
}

// writeKeys writes an ed25519 key pair as evidence keys new does (PKCS#8
// and PKIX PEM) and returns the paths.
func writeKeys(t *testing.T, dir, name string) (priv, pub string) {
	t.Helper()
	pk, sk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	skDER, err := x509.MarshalPKCS8PrivateKey(sk)
	if err != nil {
		t.Fatal(err)
	}
	pkDER, err := x509.MarshalPKIXPublicKey(pk)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: skDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func zipNames(t *testing.T, path string) []string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var out []string
	for _, f := range zr.File {
		out = append(out, f.Name)
	}
	return out
}

func zipFile(t *testing.T, path, name string) string {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// rewriteZip copies src to dst, passing each file through edit (nil
// drops it), and adds the extra files.
func rewriteZip(t *testing.T, src, dst string, edit func(name string, b []byte) []byte, extra map[string]string) {
	t.Helper()
	zr, err := zip.OpenReader(src)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		if edit != nil {
			if b = edit(f.Name, b); b == nil {
				continue
			}
		}
		w, _ := zw.Create(f.Name)
		_, _ = w.Write(b)
	}
	for name, content := range extra {
		w, _ := zw.Create(name)
		_, _ = io.WriteString(w, content)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}
