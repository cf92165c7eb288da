package report_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/report"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// benchChanges is the number of changes (one production deployment each)
// of the benchmark's dataset: a quarter of a busy organization, derived
// from about 1 million events (EventCount 10 each), with 8 control results
// per change and a re-evaluation for one change in ten.
const benchChanges = 100_000

var benchFrom = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fillBenchmark writes the dataset straight into ClickHouse.
func fillBenchmark(b *testing.B, st *store.Store) {
	b.Helper()
	ctx := context.Background()
	const batch = 20_000
	span := int64(90 * 24 * time.Hour)
	statuses := []string{"pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass", "pass",
		"pass", "pass", "pass", "pass", "pass", "fail", "pending", "waived"}
	for lo := 0; lo < benchChanges; lo += batch {
		var changes []store.ChangeRow
		var deps []store.DeploymentRow
		var verdicts []store.DeploymentVerdictRow
		var results []store.ControlResultRow
		for i := lo; i < lo+batch && i < benchChanges; i++ {
			sum := sha256.Sum256([]byte(fmt.Sprint(i)))
			commit := hex.EncodeToString(sum[:20])
			repo := fmt.Sprintf("github.com/acme/service-%03d", i%300)
			id := repo + "@" + commit
			at := benchFrom.UnixNano() + span/benchChanges*int64(i)
			record := fmt.Sprintf(`{"id":%q,"repository":%q,"commit":%q,"padding":%q}`, id, repo, commit, string(make([]byte, 600)))
			rh := sha256.Sum256([]byte(record))
			changes = append(changes, store.ChangeRow{ChangeID: id, Repository: repo, Commit: commit, Commits: []string{commit},
				PRNumber: int64(i), PRTitle: fmt.Sprintf("PAY-%d Change number %d of the quarter", i, i), Author: fmt.Sprintf("dev%d", i%97),
				MergedBy: fmt.Sprintf("dev%d", (i+1)%97), MergedNs: at - int64(time.Hour), TicketKeys: []string{fmt.Sprintf("PAY-%d", i)},
				Environments: []string{"production"}, Services: []string{fmt.Sprintf("service-%03d", i%300)},
				FirstDeployedNs: at, LastDeployedNs: at + int64(time.Minute), Record: record, RecordHash: hex.EncodeToString(rh[:]),
				EventCount: 10, Version: 2<<62 | 10<<32, UpdatedAt: benchFrom})
			key := fmt.Sprintf("id:deploy-%d", i)
			svc := fmt.Sprintf("service-%03d", i%300)
			deps = append(deps, store.DeploymentRow{Environment: "production", Service: svc, DeploymentKey: key,
				DeploymentID: key[3:], ChangeID: id, MatchedBy: []string{"artifact"}, Repository: repo, Commit: commit,
				Digest: "sha256:" + hex.EncodeToString(sum[:]), RunID: fmt.Sprint(i), RunURL: "https://ci.example/runs/" + fmt.Sprint(i),
				Deployer: "github-actions[bot]", Outcome: "success", StartedNs: at, FinishedNs: at + int64(time.Minute),
				Deployment: "{}", RecordHash: hex.EncodeToString(rh[:]), Version: 2<<62 | 10<<32, UpdatedAt: benchFrom})
			st := statuses[i%len(statuses)]
			v := store.DeploymentVerdictRow{Environment: "production", Service: svc, DeploymentKey: key, DeploymentID: key[3:],
				ChangeID: id, Repository: repo, Commit: commit, Deployer: "github-actions[bot]", DeployedNs: at, Verdict: "pass",
				Results: "[]", RecordHash: hex.EncodeToString(rh[:]), BundleHash: "bundle", DecidedAt: benchFrom}
			for c := 1; c <= 8; c++ {
				s := "pass"
				if c == 2 {
					s = st
				}
				switch s {
				case "fail":
					v.Verdict, v.Failing = "fail", []string{"CM-2"}
				case "pending":
					v.Verdict, v.Pending = "pending", []string{"CM-2"}
				case "waived":
					v.Waived = []string{"CM-2"}
				}
				results = append(results, store.ControlResultRow{ChangeID: id, ControlID: fmt.Sprintf("CM-%d", c), ControlTitle: "Control",
					Severity: "high", Status: s, Reasons: []string{"a reason"}, Evidence: []string{"/ci run-" + fmt.Sprint(i)},
					Repository: repo, RecordHash: hex.EncodeToString(rh[:]), BundleHash: "bundle", Trigger: "update", EvaluatedNs: at})
				if i%10 == 0 && c == 1 {
					results = append(results, store.ControlResultRow{ChangeID: id, ControlID: "CM-1", ControlTitle: "Control",
						Severity: "high", Status: "pass", Repository: repo, RecordHash: hex.EncodeToString(rh[:]), BundleHash: "bundle",
						Trigger: "deadline", EvaluatedNs: at + int64(time.Hour)})
				}
			}
			verdicts = append(verdicts, v)
		}
		for _, err := range []error{st.InsertChanges(ctx, changes), st.InsertDeployments(ctx, deps),
			st.InsertDeploymentVerdicts(ctx, verdicts), st.InsertControlResults(ctx, results)} {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// peakHeap samples the Go heap while fn runs and returns its peak.
func peakHeap(fn func()) uint64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if v := sample[0].Value.Uint64(); v > peak {
				peak = v
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	wg.Wait()
	return peak
}

// BenchmarkPopulation measures the population report of a quarter of
// 100,000 production deployments (from ~1 million events): ClickHouse's
// joins, the transfer and the CSV or XLSX writing. peak-heap-MB is the
// Go heap's peak during one report (live and not yet collected objects,
// from a collected heap at its start).
//
//	go test -run '^$' -bench Population -benchtime 3x ./internal/report/
func BenchmarkPopulation(b *testing.B) {
	// A benchmark with sub-benchmarks runs once: the dataset is written
	// once, and dropped at the end.
	st := testenv.StoreAt(b, testenv.DatabaseURL(b))
	start := time.Now()
	fillBenchmark(b, st)
	b.Logf("dataset: %d changes, deployments and verdicts, %d control results, written in %s",
		benchChanges, benchChanges*8+benchChanges/10, time.Since(start).Round(time.Second))
	p := report.Period{Environment: "production", From: benchFrom, To: benchFrom.AddDate(0, 3, 0)}
	for _, format := range []string{"csv", "xlsx"} {
		b.Run(format, func(b *testing.B) {
			b.ReportAllocs()
			var peak uint64
			for b.Loop() {
				// Start from a collected heap, so the peak is this report's.
				b.StopTimer()
				runtime.GC()
				b.StartTimer()
				n := 0
				pk := peakHeap(func() {
					tw, err := report.NewTableWriter(io.Discard, format, report.Header{Report: "population", Period: p})
					if err != nil {
						b.Fatal(err)
					}
					if err := report.EachRow(context.Background(), st, p, func(r report.Row) error {
						n++
						return tw.Write(r, nil)
					}); err != nil {
						b.Fatal(err)
					}
					if err := tw.Close(); err != nil {
						b.Fatal(err)
					}
				})
				if n != benchChanges {
					b.Fatalf("population has %d rows, want %d", n, benchChanges)
				}
				peak = max(peak, pk)
			}
			b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
			b.ReportMetric(float64(benchChanges), "rows")
		})
	}
}
