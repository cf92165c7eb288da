// Command ingest benchmarks the ingest path end to end: HTTP batch posts to
// evidenced's receiver -> JetStream -> the archive -> ClickHouse, on real
// components (embedded NATS, a ClickHouse server it starts), and beside it a
// bare baseline: a minimal consumer that batch-inserts the same events from
// JetStream into ClickHouse with no validation, hashing or bookkeeping.
//
//	go run ./internal/bench/ingest [-events 200000] [-batch 1000] [-posters 4]
//
// It prints, for the sustained run: events/s accepted over HTTP, events/s
// committed to ClickHouse, and p50/p99 latency from post to committed row;
// for a paced run at -rate events/s: the same latencies; and the drain
// rates of the archive and of the bare baseline over the same events, with
// their ratio.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bench/benchkit"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/config"
	"github.com/evidencepipeline/evidence/internal/daemon"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/archive"
	"github.com/evidencepipeline/evidence/schemas"
)

func main() {
	events := flag.Int("events", 200000, "events in the sustained run")
	batch := flag.Int("batch", 1000, "events per HTTP post")
	posters := flag.Int("posters", 4, "concurrent HTTP posters")
	rate := flag.Int("rate", 1000, "events/s of the paced run")
	paced := flag.Duration("paced", 15*time.Second, "length of the paced run")
	archiveBatch := flag.Int("archive-batch", 10000, "archive (and baseline) rows per insert")
	rounds := flag.Int("rounds", 3, "drain rounds of each of the archive and the baseline")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.StringVar(&drainProfile, "drain-cpuprofile", "", "write a CPU profile of the first archive drain to this file")
	flag.Parse()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		_ = pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	if err := run(*events, *batch, *posters, *rate, *paced, *archiveBatch, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

var drainProfile string

// commits records, per stream sequence, when its row was committed.
type commits struct {
	mu   sync.Mutex
	at   map[uint64]time.Time
	rows atomic.Int64
}

func (c *commits) hook(rows []store.EventRow) {
	now := time.Now()
	c.mu.Lock()
	for _, r := range rows {
		c.at[r.StreamSeq] = now
	}
	c.mu.Unlock()
	c.rows.Add(int64(len(rows)))
}

func (c *commits) waitFor(n int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for c.rows.Load() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d rows committed after %s", c.rows.Load(), n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// event is a ~1 KB catalog event (pipeline run finished).
func event(run, i int) []byte {
	return fmt.Appendf(nil, `{"specversion":"1.0","id":"bench-%d-%08d","source":"https://ci.example/acme/payments","type":"dev.evidencepipeline.pipelinerun.finished.v1","subject":"run/%d","time":"2026-11-25T10:00:00Z","data":{"repository":"github.com/acme/payments","commit":"%040x","run_id":"%d","run_url":"https://ci.example/acme/payments/runs/%d","pipeline":"build-and-deploy","system":"github-actions","outcome":"success","started_at":"2026-11-25T09:58:00Z","finished_at":"2026-11-25T10:00:00Z","notes":"%0600d"}}`,
		run, i, i, i, i, i, i)
}

func body(run, from, n int) []byte {
	var b bytes.Buffer
	b.WriteByte('[')
	for i := from; i < from+n; i++ {
		if i > from {
			b.WriteByte(',')
		}
		b.Write(event(run, i))
	}
	b.WriteByte(']')
	return b.Bytes()
}

type posted struct {
	at   time.Time
	seqs []uint64
}

func percentiles(c *commits, ps []posted) (p50, p99, max time.Duration) {
	var lat []time.Duration
	c.mu.Lock()
	for _, p := range ps {
		for _, s := range p.seqs {
			if at, ok := c.at[s]; ok {
				lat = append(lat, at.Sub(p.at))
			}
		}
	}
	c.mu.Unlock()
	if len(lat) == 0 {
		return 0, 0, 0
	}
	slices.Sort(lat)
	return lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
}

func run(nEvents, batch, posters, rate int, pacedFor time.Duration, archiveBatch, rounds int) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "evidence-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ch, err := chlocal.New(filepath.Join(dir, "clickhouse"), 0, 0)
	if err != nil {
		return err
	}
	if err := ch.Start(ctx); err != nil {
		return err
	}
	defer ch.Stop()

	c := &commits{at: make(map[uint64]time.Time, nEvents+rate*int(pacedFor.Seconds())+1000)}
	cfg, _, err := config.Parse("evidenced", []string{"--http-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--clickhouse-url", ch.URL("evidence"), "--archive-batch-size", fmt.Sprint(archiveBatch), "--max-body-bytes", "64MiB",
		// The ingest path alone: correlation has its own benchmark.
		"--correlate=false"}, func(string) string { return "" })
	if err != nil {
		return err
	}
	d, err := daemon.Start(ctx, cfg, nil, daemon.Options{ArchiveHooks: archive.Hooks{Committed: c.hook}})
	if err != nil {
		return err
	}
	defer d.Shutdown(ctx)
	for d.Store() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	url := "http://" + d.Addr() + "/v1/events"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: posters}}
	fmt.Printf("evidence ingest benchmark: %d events of ~%d bytes, batches of %d, %d posters, archive batches of %d; GOMAXPROCS=%d\n",
		nEvents, len(event(0, 0)), batch, posters, archiveBatch, runtime.GOMAXPROCS(0))

	// Sustained run: posters as fast as they go.
	bodies := make([][]byte, 0, nEvents/batch+1)
	for from := 0; from < nEvents; from += batch {
		bodies = append(bodies, body(1, from, min(batch, nEvents-from)))
	}
	var next atomic.Int64
	results := make([][]posted, posters)
	errs := make(chan error, posters)
	start := time.Now()
	var wg sync.WaitGroup
	for p := 0; p < posters; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := int(next.Add(1)) - 1
				if k >= len(bodies) {
					return
				}
				at := time.Now()
				seqs, err := benchkit.PostBatch(hc, url, bodies[k])
				if err != nil {
					errs <- err
					return
				}
				results[p] = append(results[p], posted{at: at, seqs: seqs})
			}
		}()
	}
	wg.Wait()
	httpDone := time.Since(start)
	select {
	case err := <-errs:
		return err
	default:
	}
	if err := c.waitFor(int64(nEvents), 5*time.Minute); err != nil {
		return err
	}
	allDone := time.Since(start)
	var all []posted
	for _, r := range results {
		all = append(all, r...)
	}
	p50, p99, mx := percentiles(c, all)
	fmt.Printf("\nsustained: %d events\n", nEvents)
	fmt.Printf("  HTTP receiver accepted:   %8.0f events/s (%.2fs)\n", float64(nEvents)/httpDone.Seconds(), httpDone.Seconds())
	fmt.Printf("  committed to ClickHouse:  %8.0f events/s (%.2fs)\n", float64(nEvents)/allDone.Seconds(), allDone.Seconds())
	fmt.Printf("  post -> committed row:    p50 %v  p99 %v  max %v\n", p50.Round(time.Millisecond), p99.Round(time.Millisecond), mx.Round(time.Millisecond))

	// Paced run: rate events/s in posts of rate/10 every 100ms.
	per := max(rate/10, 1)
	ticks := int(pacedFor / (100 * time.Millisecond))
	var pacedPosts []posted
	before := c.rows.Load()
	tk := time.NewTicker(100 * time.Millisecond)
	for k := 0; k < ticks; k++ {
		<-tk.C
		at := time.Now()
		seqs, err := benchkit.PostBatch(hc, url, body(2, k*per, per))
		if err != nil {
			return err
		}
		pacedPosts = append(pacedPosts, posted{at: at, seqs: seqs})
	}
	tk.Stop()
	if err := c.waitFor(before+int64(ticks*per), time.Minute); err != nil {
		return err
	}
	p50, p99, mx = percentiles(c, pacedPosts)
	fmt.Printf("\npaced: %d events/s for %s (posts of %d every 100ms)\n", per*10, pacedFor, per)
	fmt.Printf("  post -> committed row:    p50 %v  p99 %v  max %v\n", p50.Round(time.Millisecond), p99.Round(time.Millisecond), mx.Round(time.Millisecond))

	// Drain comparison over the same stream: the archive into a fresh
	// database vs the bare baseline.
	// Rounds alternate (bare, archive, bare, archive, ...), each into fresh
	// tables, and the median of each is reported: ClickHouse's background
	// merges after one drain slow the next, whichever it is.
	total := uint64(nEvents + ticks*per)
	var archiveRates, bareRates []float64
	for r := 0; r < rounds; r++ {
		if err := benchkit.WaitMerges(ctx, ch); err != nil {
			return err
		}
		b, err := drainBare(ctx, d.JetStream(), ch, total, archiveBatch, r)
		if err != nil {
			return err
		}
		if err := benchkit.WaitMerges(ctx, ch); err != nil {
			return err
		}
		if drainProfile != "" && r == 0 {
			f, err := os.Create(drainProfile)
			if err != nil {
				return err
			}
			_ = pprof.StartCPUProfile(f)
		}
		a, err := drainArchive(ctx, d.JetStream(), ch, total, archiveBatch, r)
		if drainProfile != "" && r == 0 {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
		}
		fmt.Printf("  drain round %d: archive %.0f events/s, bare %.0f events/s\n", r+1, a, b)
		// Drop both so that their background merges do not weigh on the
		// next round.
		if err := benchkit.DropDatabases(ctx, ch, fmt.Sprintf("drain_bare_%d", r), fmt.Sprintf("drain_archive_%d", r)); err != nil {
			return err
		}
		archiveRates, bareRates = append(archiveRates, a), append(bareRates, b)
	}
	archiveRate, bareRate := benchkit.Median(archiveRates), benchkit.Median(bareRates)
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("\ndrain of %d stored events (JetStream -> ClickHouse, %d-row inserts), median of %d rounds:\n", total, archiveBatch, rounds)
	fmt.Printf("  archive (parse, chain, bookkeeping): %8.0f events/s\n", archiveRate)
	fmt.Printf("  bare baseline (raw insert):          %8.0f events/s\n", bareRate)
	fmt.Printf("  ratio archive/bare:                  %8.2f\n", archiveRate/bareRate)
	fmt.Printf("\nGo heap in use at the end: %d MiB; total allocated: %d MiB\n", ms.HeapInuse>>20, ms.TotalAlloc>>20)
	return nil
}

func drainArchive(ctx context.Context, js jetstream.JetStream, ch *chlocal.Server, total uint64, batch, round int) (float64, error) {
	st, err := store.Open(ctx, ch.URL(fmt.Sprintf("drain_archive_%d", round)), nil)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	ms, err := store.LoadMigrations(migrations())
	if err != nil {
		return 0, err
	}
	if _, err := st.Migrate(ctx, ms); err != nil {
		return 0, err
	}
	var n atomic.Int64
	a := archive.New(js, st, archive.Config{Consumer: fmt.Sprintf("bench_archive_%d", round), BatchSize: batch}, nil, nil,
		archive.Hooks{Committed: func(rows []store.EventRow) { n.Add(int64(len(rows))) }})
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now()
	go a.Run(rctx)
	for uint64(n.Load()) < total {
		time.Sleep(2 * time.Millisecond)
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// drainBare is the baseline (benchkit.DrainBare) into drain_bare_<round>.
func drainBare(ctx context.Context, js jetstream.JetStream, ch *chlocal.Server, total uint64, batch, round int) (float64, error) {
	return benchkit.DrainBare(ctx, js, ch, fmt.Sprintf("drain_bare_%d", round), fmt.Sprintf("bench_bare_%d", round), total, batch)
}

func migrations() fs.FS { return schemas.Migrations() }
