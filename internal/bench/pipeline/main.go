// Command pipeline benchmarks the whole verdict core on real components:
// realistic changes of the catalog's types (internal/demo scenarios, about
// a dozen events each), their events shuffled within a window of changes,
// posted at full speed to POST /v1/events in batch mode by several posters,
// to evidenced running as a subprocess (embedded NATS, a ClickHouse server
// the bench starts), until every event is archived, correlated and judged;
// then a paced run measuring freshness. Beside it, in the same run and
// alternating with it round by round, the bare baseline of bench-ingest
// (benchkit.DrainBare: JetStream -> ClickHouse raw inserts) over the same
// events.
//
//	go run ./internal/bench/pipeline [-changes 10000] [-rounds 3] [-rate 2000] [-paced 20s]
//
// Criteria (each timed from the first post of the round):
//
//   - accepted: every post answered 202;
//   - archived: count() of the round's events table reaches the number of
//     events posted;
//   - correlated: evidenced's correlation consumer ("correlate" on
//     EVIDENCE_EVENTS) has nothing pending or unacknowledged and its ack
//     floor is at or past the highest stream sequence the posts returned
//     (every event taken into the change records);
//   - judged: uniqExact(deployment_key) of deployment_verdicts reaches the
//     number of distinct production deployments posted (every production
//     deployment has its verdict row).
//
// Freshness (paced run): for each production deployment, from the start of
// the post that carried its first event to the first verdict on the live
// stream (GET /live/events) listing that deployment (deployment_id) among
// its deployments.
//
// CPU is evidenced's own (utime+stime of /proc/PID/stat) from just before
// the first post to judged; peak RSS is its VmHWM at judged.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bench/benchkit"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/bus/embedded"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/demo"
	"github.com/evidencepipeline/evidence/internal/store"
)

type options struct {
	changes, window, batch, posters, rate, rounds int
	paced                                         time.Duration
	verdictDelay                                  string
	evidenced, cpuprofile, heapprofile            string
	cpuprofileFor                                 time.Duration
	seed                                          uint64
	keep                                          bool
}

func main() {
	var o options
	flag.IntVar(&o.changes, "changes", 10000, "changes in each full-speed round")
	flag.IntVar(&o.window, "window", 170, "the events of this many consecutive changes are shuffled together")
	flag.IntVar(&o.batch, "batch", 500, "events per HTTP post")
	flag.IntVar(&o.posters, "posters", 4, "concurrent HTTP posters")
	flag.IntVar(&o.rate, "rate", 2000, "events/s of the paced run")
	flag.DurationVar(&o.paced, "paced", 20*time.Second, "length of the paced run (0: none)")
	flag.IntVar(&o.rounds, "rounds", 3, "rounds of each of the baseline and the pipeline, alternating")
	flag.StringVar(&o.verdictDelay, "verdict-delay", "0s", "evidenced's --verdict-delay: the default 1m would hold every deployment's verdict a minute, timing the delay rather than the work")
	flag.StringVar(&o.evidenced, "evidenced", "", "evidenced binary to run (default: go build ./cmd/evidenced into a temporary directory)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of evidenced (its --pprof-addr) during the first full-speed round to this file")
	flag.DurationVar(&o.cpuprofileFor, "cpuprofile-for", 20*time.Second, "length of the -cpuprofile profile")
	flag.StringVar(&o.heapprofile, "heapprofile", "", "write a heap profile of evidenced (its --pprof-addr, after a GC) once the first full-speed round is judged to this file")
	flag.Uint64Var(&o.seed, "seed", 1, "seed of the changes and of the shuffle")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (evidenced's logs) at the end")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", a...)
}

// change is one change's events as posted, and its production deployments.
type change struct {
	events  [][]byte // CloudEvents JSON
	prodDep []string // deployment_id of the production deployment each event is of ("" for others)
}

// changeSource makes the n-th change of a run: today the demo's scenarios
// (every kind of the catalog's delivery, compliant or not); another
// generator can replace it.
func changeSource(seed uint64, run string, n int, base time.Time) (change, error) {
	sc := demo.Build(seed, run, n, base.Add(time.Duration(n)*10*time.Second), 2*time.Minute)
	var c change
	for _, e := range sc.Events {
		b, err := json.Marshal(e)
		if err != nil {
			return c, err
		}
		dep := ""
		if strings.Contains(e.Type(), ".deployment.") {
			var d struct {
				Environment  string `json:"environment"`
				DeploymentID string `json:"deployment_id"`
			}
			if json.Unmarshal(e.Data(), &d) == nil && d.Environment == "production" && d.DeploymentID != "" {
				dep = d.DeploymentID
			}
		}
		c.events, c.prodDep = append(c.events, b), append(c.prodDep, dep)
	}
	return c, nil
}

// item is one event in posting order.
type item struct {
	json    []byte
	typ     string
	prodDep string
}

func workload(seed uint64, run string, from, n, window int, base time.Time) ([]item, int, error) {
	groups := make([][]item, 0, n)
	deps := map[string]bool{}
	for i := from; i < from+n; i++ {
		c, err := changeSource(seed, run, i, base)
		if err != nil {
			return nil, 0, err
		}
		g := make([]item, len(c.events))
		for k := range c.events {
			var t struct {
				Type string `json:"type"`
			}
			_ = json.Unmarshal(c.events[k], &t)
			g[k] = item{json: c.events[k], typ: t.Type, prodDep: c.prodDep[k]}
			if c.prodDep[k] != "" {
				deps[c.prodDep[k]] = true
			}
		}
		groups = append(groups, g)
	}
	return shuffleWindows(groups, window, rand.New(rand.NewPCG(seed, uint64(from)))), len(deps), nil
}

func body(items []item) []byte {
	n := 2
	for _, it := range items {
		n += len(it.json) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '[')
	for i, it := range items {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it.json...)
	}
	return append(b, ']')
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func run(o options) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "evidence-bench-pipeline-")
	if err != nil {
		return err
	}
	if o.keep {
		progress("temporary directory kept: %s", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin := o.evidenced
	if bin == "" {
		bin = filepath.Join(dir, "evidenced")
		progress("building evidenced")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/evidenced")
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build ./cmd/evidenced (run from the repository root): %w", err)
		}
	}
	ch, err := chlocal.New(filepath.Join(dir, "clickhouse"), 0, 0)
	if err != nil {
		return err
	}
	if err := ch.Start(ctx); err != nil {
		return err
	}
	defer ch.Stop()

	base := time.Now().UTC().Add(-time.Duration(o.changes)*10*time.Second - 2*time.Hour).Truncate(time.Second)
	items, nDeps, err := workload(o.seed, "bench", 0, o.changes, o.window, base)
	if err != nil {
		return err
	}
	var bodies [][]byte
	size := 0
	for from := 0; from < len(items); from += o.batch {
		bodies = append(bodies, body(items[from:min(from+o.batch, len(items))]))
		size += len(bodies[len(bodies)-1])
	}
	fmt.Printf("evidence pipeline benchmark: %d changes, %d events (~%d B each), %d production deployments; shuffled within windows of %d changes; batches of %d, %d posters; evidenced --verdict-delay %s; GOMAXPROCS=%d, %d CPUs\n",
		o.changes, len(items), size/max(len(items), 1), nDeps, o.window, o.batch, o.posters, o.verdictDelay, runtime.GOMAXPROCS(0), runtime.NumCPU())

	// The baseline's own NATS, holding the same events.
	bare, err := newBaseline(ctx, filepath.Join(dir, "bare-nats"), items)
	if err != nil {
		return err
	}
	defer bare.close()

	var rs []roundResult
	var bareRates []float64
	for r := 0; r < o.rounds; r++ {
		if err := benchkit.WaitMerges(ctx, ch); err != nil {
			return err
		}
		b, err := benchkit.DrainBare(ctx, bare.js, ch, fmt.Sprintf("bare_%d", r), fmt.Sprintf("bench_bare_%d", r), uint64(len(items)), 10000)
		if err != nil {
			return fmt.Errorf("baseline: %w", err)
		}
		if err := benchkit.DropDatabases(ctx, ch, fmt.Sprintf("bare_%d", r)); err != nil {
			return err
		}
		bareRates = append(bareRates, b)
		fmt.Printf("  round %d: baseline %.0f events/s\n", r+1, b)
		if err := benchkit.WaitMerges(ctx, ch); err != nil {
			return err
		}
		res, err := pipelineRound(ctx, o, r, bin, dir, ch, bodies, len(items), nDeps, r == o.rounds-1)
		if err != nil {
			return fmt.Errorf("round %d: %w", r+1, err)
		}
		rs = append(rs, res)
		fmt.Printf("  round %d: pipeline accepted %.0f, archived %.0f, correlated %.0f, judged %.0f events/s; %.2f ms CPU/change; peak RSS %d MiB\n",
			r+1, res.rate(res.accepted), res.rate(res.archived), res.rate(res.correlated), res.rate(res.judged), res.cpuPerChange(), res.peakRSS>>20)
		if err := benchkit.DropDatabases(ctx, ch, fmt.Sprintf("pipeline_%d", r)); err != nil {
			return err
		}
	}
	report(o, rs, bareRates, len(items))
	return nil
}

type roundResult struct {
	events, changes                        int
	accepted, archived, correlated, judged time.Duration
	cpu                                    time.Duration
	peakRSS                                int64
	fresh                                  *freshness
}

func (r roundResult) rate(d time.Duration) float64 { return ratio(float64(r.events), d.Seconds()) }
func (r roundResult) cpuPerChange() float64 {
	return ratio(float64(r.cpu.Microseconds())/1000, float64(r.changes))
}

type freshness struct {
	rate, posted, seen, deps, reconnects int
	lat                                  []time.Duration
}

func report(o options, rs []roundResult, bareRates []float64, events int) {
	med := func(f func(roundResult) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return benchkit.Median(xs)
	}
	bareRate := benchkit.Median(bareRates)
	fmt.Printf("\nfull speed, %d changes (%d events), median of %d rounds; ratio = median events/s / median baseline events/s of the same run\n", o.changes, events, len(rs))
	fmt.Printf("  %-34s %10.0f events/s\n", "baseline (bare JetStream->ClickHouse)", bareRate)
	for _, s := range []struct {
		name string
		d    func(roundResult) time.Duration
	}{
		{"accepted over HTTP", func(r roundResult) time.Duration { return r.accepted }},
		{"archived (rows in events)", func(r roundResult) time.Duration { return r.archived }},
		{"correlated (consumer acked all)", func(r roundResult) time.Duration { return r.correlated }},
		{"judged (deployment_verdicts rows)", func(r roundResult) time.Duration { return r.judged }},
	} {
		ev := med(func(r roundResult) float64 { return r.rate(s.d(r)) })
		chg := med(func(r roundResult) float64 { return ratio(float64(r.changes), s.d(r).Seconds()) })
		secs := med(func(r roundResult) float64 { return s.d(r).Seconds() })
		fmt.Printf("  %-34s %10.0f events/s %8.1f changes/s  ratio %.3f  (%.1fs)\n", s.name, ev, chg, ratio(ev, bareRate), secs)
	}
	fmt.Printf("  evidenced CPU per change:          %10.2f ms (%.1fs of CPU per round, first post to judged)\n",
		med(func(r roundResult) float64 { return r.cpuPerChange() }), med(func(r roundResult) float64 { return r.cpu.Seconds() }))
	fmt.Printf("  evidenced peak RSS (VmHWM):        %10.0f MiB\n", med(func(r roundResult) float64 { return float64(r.peakRSS >> 20) }))
	for _, r := range rs {
		if f := r.fresh; f != nil {
			fmt.Printf("\npaced: %d events/s for %s on the last round's evidenced (%d changes already in), %d events posted\n", f.rate, o.paced, o.changes, f.posted)
			fmt.Printf("  freshness (post -> verdict on /live/events listing the deployment), %d of %d production deployments seen: p50 %v  p99 %v  max %v",
				f.seen, f.deps, benchkit.Percentile(f.lat, 50).Round(time.Millisecond), benchkit.Percentile(f.lat, 99).Round(time.Millisecond), benchkit.Percentile(f.lat, 100).Round(time.Millisecond))
			if f.reconnects > 0 {
				fmt.Printf("  (stream reconnected %d times)", f.reconnects)
			}
			fmt.Println()
		}
	}
}

// baseline is the bench's own embedded NATS holding the round's events.
type baseline struct {
	emb *embedded.Server
	nc  *nats.Conn
	js  jetstream.JetStream
}

func newBaseline(ctx context.Context, storeDir string, items []item) (*baseline, error) {
	emb, err := embedded.Start(embedded.Config{StoreDir: storeDir})
	if err != nil {
		return nil, err
	}
	b := &baseline{emb: emb}
	if b.nc, err = emb.Connect("bench-baseline"); err != nil {
		b.close()
		return nil, err
	}
	if b.js, err = jetstream.New(b.nc); err != nil {
		b.close()
		return nil, err
	}
	if err := bus.EnsureStreams(ctx, b.js, bus.StreamConfig{}); err != nil {
		b.close()
		return nil, err
	}
	for from := 0; from < len(items); from += 1000 {
		var fs []jetstream.PubAckFuture
		for _, it := range items[from:min(from+1000, len(items))] {
			f, err := b.js.PublishAsync(bus.Subject(it.typ), it.json)
			if err != nil {
				b.close()
				return nil, err
			}
			fs = append(fs, f)
		}
		for _, f := range fs {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				b.close()
				return nil, err
			}
		}
	}
	return b, nil
}

func (b *baseline) close() {
	if b.nc != nil {
		b.nc.Close()
	}
	b.emb.Shutdown()
}

// proc is a running evidenced.
type proc struct {
	cmd              *exec.Cmd
	http, nats, prof string
	dataDir          string // its NATS users file is there
	exited           chan error
}

func startEvidenced(o options, bin, dataDir, logPath, chURL string) (*proc, error) {
	p := &proc{exited: make(chan error, 1), dataDir: dataDir}
	var err error
	for _, a := range []*string{&p.http, &p.nats, &p.prof} {
		if *a, err = freePort(); err != nil {
			return nil, err
		}
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p.cmd = exec.Command(bin, "--http-addr", p.http, "--data-dir", dataDir, "--nats-listen", p.nats, "--pprof-addr", p.prof,
		"--clickhouse-url", chURL, "--max-body-bytes", "64MiB", "--verdict-delay", o.verdictDelay, "--log-format", "json")
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { p.exited <- p.cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + p.http + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p, nil
		}
		select {
		case err := <-p.exited:
			return nil, fmt.Errorf("evidenced exited at start (%v): see %s", err, logPath)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("evidenced not serving after a minute: see %s", logPath)
		}
	}
}

func (p *proc) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

func pipelineRound(ctx context.Context, o options, r int, bin, dir string, ch *chlocal.Server, bodies [][]byte, nEvents, nDeps int, last bool) (roundResult, error) {
	res := roundResult{events: nEvents, changes: o.changes}
	db := fmt.Sprintf("pipeline_%d", r)
	logPath := filepath.Join(dir, fmt.Sprintf("evidenced-%d.log", r))
	p, err := startEvidenced(o, bin, filepath.Join(dir, fmt.Sprintf("data-%d", r)), logPath, ch.URL(db))
	if err != nil {
		return res, err
	}
	defer p.stop()
	pid := p.cmd.Process.Pid
	st, err := store.Open(ctx, ch.URL(db), nil)
	if err != nil {
		return res, err
	}
	defer st.Close()
	// The embedded NATS listening for clients has users: connect as
	// evidenced (it reads the stage's consumers).
	users, _, err := embedded.LoadOrCreateUsers(filepath.Join(p.dataDir, embedded.UsersFile))
	if err != nil {
		return res, err
	}
	nc, err := nats.Connect("nats://"+p.nats, nats.Name("bench-pipeline"), nats.UserInfo(embedded.UserEvidenced, users.Password(embedded.UserEvidenced)))
	if err != nil {
		return res, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return res, err
	}
	// Ready: the migrations are applied (the archive is connected).
	if err := waitUntil(time.Minute, func() (bool, error) {
		var n uint64
		err := st.Conn().QueryRow(ctx, fmt.Sprintf("SELECT count() FROM system.tables WHERE database = '%s' AND name = 'deployment_verdicts'", db)).Scan(&n)
		return n == 1, err
	}); err != nil {
		return res, fmt.Errorf("evidenced's ClickHouse tables: %w (see %s)", err, logPath)
	}

	if o.cpuprofile != "" && r == 0 {
		go fetchProfile("http://"+p.prof+"/debug/pprof/profile?seconds="+fmt.Sprint(int(o.cpuprofileFor.Seconds())), o.cpuprofile)
	}
	cpu0, err := procCPU(pid)
	if err != nil {
		return res, err
	}
	url := "http://" + p.http + "/v1/events"
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: o.posters}}
	var next atomic.Int64
	var maxSeq atomic.Uint64
	errs := make(chan error, o.posters)
	start := time.Now()
	var wg sync.WaitGroup
	for range o.posters {
		wg.Go(func() {
			for {
				k := int(next.Add(1)) - 1
				if k >= len(bodies) {
					return
				}
				seqs, err := benchkit.PostBatch(hc, url, bodies[k])
				if err != nil {
					errs <- err
					return
				}
				for _, s := range seqs {
					for m := maxSeq.Load(); s > m && !maxSeq.CompareAndSwap(m, s); m = maxSeq.Load() {
					}
				}
			}
		})
	}
	wg.Wait()
	res.accepted = time.Since(start)
	select {
	case err := <-errs:
		return res, err
	default:
	}
	// Poll the three criteria until all hold.
	var archived, judged uint64
	var corr string
	lastLine := time.Now()
	timeout := 10*time.Minute + time.Duration(o.changes)*50*time.Millisecond
	for res.archived == 0 || res.correlated == 0 || res.judged == 0 {
		select {
		case err := <-p.exited:
			return res, fmt.Errorf("evidenced exited (%v): see %s", err, logPath)
		case <-time.After(50 * time.Millisecond):
		}
		now := time.Since(start)
		if res.archived == 0 {
			if err := st.Conn().QueryRow(ctx, "SELECT count() FROM events").Scan(&archived); err != nil {
				return res, err
			}
			if archived >= uint64(nEvents) {
				res.archived = now
			}
		}
		if res.correlated == 0 {
			done, what, err := correlatedAll(ctx, js, maxSeq.Load())
			if err != nil {
				return res, err
			}
			corr = what
			if done {
				res.correlated = now
			}
		}
		if res.judged == 0 {
			if err := st.Conn().QueryRow(ctx, "SELECT uniqExact(deployment_key) FROM deployment_verdicts").Scan(&judged); err != nil {
				return res, err
			}
			if judged >= uint64(nDeps) {
				res.judged = now
				if res.cpu, err = procCPU(pid); err != nil {
					return res, err
				}
				res.cpu -= cpu0
				if res.peakRSS, err = procPeakRSS(pid); err != nil {
					return res, err
				}
				if o.heapprofile != "" && r == 0 {
					fetchProfile("http://"+p.prof+"/debug/pprof/heap?gc=1", o.heapprofile)
				}
			}
		}
		if time.Since(lastLine) >= 5*time.Second {
			lastLine = time.Now()
			c, _ := procCPU(pid)
			progress("round %d: %.0fs: archived %d/%d events, correlation %s, judged %d/%d deployments; evidenced CPU %.1fs",
				r+1, now.Seconds(), archived, nEvents, corr, judged, nDeps, (c - cpu0).Seconds())
		}
		if now > timeout {
			return res, fmt.Errorf("not done after %s: archived %d/%d, correlation %s, judged %d/%d (see %s)", timeout, archived, nEvents, corr, judged, nDeps, logPath)
		}
	}
	if last && o.paced > 0 {
		f, err := pacedRun(ctx, o, p, logPath)
		if err != nil {
			return res, fmt.Errorf("paced run: %w", err)
		}
		res.fresh = f
	}
	return res, nil
}

// correlatedAll reports whether evidenced's correlation consumer has taken
// in every event up to stream sequence seq, and its position.
func correlatedAll(ctx context.Context, js jetstream.JetStream, seq uint64) (bool, string, error) {
	s, err := js.Stream(ctx, bus.EventStream)
	if err != nil {
		return false, "", err
	}
	c, err := s.Consumer(ctx, "correlate")
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return false, "not started", nil
	}
	if err != nil {
		return false, "", err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return false, "", err
	}
	what := fmt.Sprintf("acked %d/%d", info.AckFloor.Stream, seq)
	return info.NumPending == 0 && info.NumAckPending == 0 && info.AckFloor.Stream >= seq, what, nil
}

func waitUntil(timeout time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := f()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("timed out")
			}
			return fmt.Errorf("after %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetchProfile(url, path string) {
	resp, err := http.Get(url)
	if err != nil {
		progress("profile: %v", err)
		return
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		progress("profile: %v", err)
		return
	}
	defer f.Close()
	if _, err := f.ReadFrom(resp.Body); err != nil {
		progress("profile: %v", err)
		return
	}
	progress("profile of evidenced written to %s (go tool pprof %s)", path, path)
}

// pacedRun posts new changes at o.rate events/s (posts of rate/10 every
// 100ms) while reading the live verdict stream, and measures, for each
// production deployment, the time from the post that carried its first
// event to the first verdict on the stream listing it.
func pacedRun(ctx context.Context, o options, p *proc, logPath string) (*freshness, error) {
	per := max(o.rate/10, 1)
	ticks := int(o.paced / (100 * time.Millisecond))
	need := per * ticks
	// Enough changes for the run (a dozen events each).
	nChanges := need/8 + o.window
	items, _, err := workload(o.seed, "paced", o.changes, nChanges, o.window, time.Now().UTC().Add(-time.Hour).Truncate(time.Second))
	if err != nil {
		return nil, err
	}
	items = items[:min(need, len(items))]
	f := &freshness{rate: per * 10}

	var mu sync.Mutex
	postedAt := map[string]time.Time{}
	seenAt := map[string]time.Time{}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ready := make(chan struct{})
	go func() {
		f.reconnects = readStream(sctx, "http://"+p.http+"/live/events", ready, func(deps []string) {
			now := time.Now()
			mu.Lock()
			for _, d := range deps {
				if _, ok := seenAt[d]; !ok {
					seenAt[d] = now
				}
			}
			mu.Unlock()
		}) - 1
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		return nil, errors.New("live stream not open after 30s")
	}
	hc := &http.Client{}
	url := "http://" + p.http + "/v1/events"
	progress("paced: posting %d events/s for %s", per*10, o.paced)
	tk := time.NewTicker(100 * time.Millisecond)
	for k := 0; k < ticks; k++ {
		<-tk.C
		batch := items[k*per : min((k+1)*per, len(items))]
		at := time.Now()
		mu.Lock()
		for _, it := range batch {
			if it.prodDep != "" {
				if _, ok := postedAt[it.prodDep]; !ok {
					postedAt[it.prodDep] = at
				}
			}
		}
		mu.Unlock()
		if _, err := benchkit.PostBatch(hc, url, body(batch)); err != nil {
			tk.Stop()
			return nil, err
		}
	}
	tk.Stop()
	f.posted, f.deps = len(items), len(postedAt)
	progress("paced: %d events posted; waiting (at most 2 minutes) for the verdicts of %d production deployments", len(items), len(postedAt))
	// Wait for the verdicts of every deployment posted.
	lastLine := time.Now()
	_ = waitUntil(2*time.Minute, func() (bool, error) {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for d := range postedAt {
			if _, ok := seenAt[d]; ok {
				n++
			}
		}
		if time.Since(lastLine) >= 5*time.Second {
			lastLine = time.Now()
			progress("paced: verdicts of %d/%d deployments seen", n, len(postedAt))
		}
		return n == len(postedAt), nil
	})
	mu.Lock()
	defer mu.Unlock()
	for d, at := range postedAt {
		if s, ok := seenAt[d]; ok {
			f.lat = append(f.lat, s.Sub(at))
		}
	}
	f.seen = len(f.lat)
	slices.Sort(f.lat)
	return f, nil
}

// readStream reads the SSE verdict stream until ctx ends, reconnecting
// with Last-Event-ID when it is cut (a client too slow is dropped), and
// calls got with the deployment ids of each verdict. ready is closed once
// the first connection is open. It returns the number of connections.
func readStream(ctx context.Context, url string, ready chan struct{}, got func([]string)) int {
	last, conns := "", 0
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		if last != "" {
			req.Header.Set("Last-Event-ID", last)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			time.Sleep(100 * time.Millisecond)
			continue
		}
		conns++
		if conns == 1 {
			close(ready)
		}
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			switch {
			case len(line) > 4 && string(line[:4]) == "id: ":
				last = string(line[4:])
			case len(line) > 6 && string(line[:6]) == "data: ":
				var v struct {
					Deployments []struct {
						DeploymentID string `json:"deployment_id"`
					} `json:"deployments"`
				}
				if json.Unmarshal(line[6:], &v) == nil && len(v.Deployments) > 0 {
					ids := make([]string, 0, len(v.Deployments))
					for _, d := range v.Deployments {
						ids = append(ids, d.DeploymentID)
					}
					got(ids)
				}
			}
		}
		resp.Body.Close()
	}
	return conns
}
