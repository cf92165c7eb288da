package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/report"
	"github.com/evidencepipeline/evidence/internal/store"
)

// runReport is `evidence report`: the auditor's reports, read straight
// from ClickHouse (docs/reports.md).
func runReport(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		reportUsage(env.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "population":
		return runReportTable(ctx, "population", args[1:], env)
	case "sample":
		return runReportTable(ctx, "sample", args[1:], env)
	case "controls":
		return runReportControls(ctx, args[1:], env)
	case "trace":
		return runReportTrace(ctx, args[1:], env)
	case "package":
		return runReportPackage(ctx, args[1:], env)
	case "access":
		return runReportAccess(ctx, args[1:], env)
	case "-h", "-help", "--help", "help":
		reportUsage(env.Stderr)
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "evidence: report: unknown report %q\n", args[0])
	reportUsage(env.Stderr)
	return ExitUsage
}

func reportUsage(w io.Writer) {
	fmt.Fprint(w, `usage: evidence report REPORT [flags]

  population --from --to [--env production] [--format csv|json|xlsx] [--out FILE]
             every deployment of the period with its change, its verdict at deployment and now
  sample     --size N | --confidence 95 --tolerable-rate 5 [--expected-rate 0] [--seed S] (and population's flags)
             a reproducible random sample of the population, from a printed seed
  controls   --from --to [--env production] [--format text|json]
             per control: population, passes, failures, waivers, pending; the failing changes
  trace      CHANGE [--format text|json]
             the full evidence of one change, with the raw events behind it
  package    --from --to --out FILE.zip --signing-key FILE [sample flags]
             population, sample, controls and the sampled changes' traces, in a signed zip
  access     --from --to [--repository R]... [--all-repositories] [--permissions write,maintain,admin]
             [--format csv|json|xlsx] [--out FILE]
             who held write or admin on each production repository during the period, with the
             grant and removal events behind each line

Reports read ClickHouse directly: --clickhouse-url (env EVIDENCE_CLICKHOUSE_URL), as the
read-only auditor user. --from and --to are RFC 3339 times or dates (UTC); a date given to
--to includes that day. Exit 0 done, 1 failed, 2 usage. See docs/reports.md.
`)
}

// reportFlags are the flags every report shares.
type reportFlags struct {
	url      *string
	timeout  *time.Duration
	env      *string
	from, to *string
}

func addReportFlags(fs *flag.FlagSet, env Env, period bool) *reportFlags {
	def := env.Getenv("EVIDENCE_CLICKHOUSE_URL")
	if def == "" {
		def = "clickhouse://127.0.0.1:9000/evidence"
	}
	f := &reportFlags{
		url:     fs.String("clickhouse-url", def, "ClickHouse, native protocol: clickhouse://auditor:PASSWORD@host:9000/evidence (env EVIDENCE_CLICKHOUSE_URL)"),
		timeout: fs.Duration("timeout", 30*time.Minute, "give up after this long"),
	}
	if period {
		f.env = fs.String("env", "production", "the environment deployed to")
		f.addPeriod(fs)
	}
	return f
}

// addPeriod adds --from and --to.
func (f *reportFlags) addPeriod(fs *flag.FlagSet) {
	f.from = fs.String("from", "", "start of the period, included: RFC 3339 time or date (UTC)")
	f.to = fs.String("to", "", "end of the period, excluded: RFC 3339 time, or a date whose day is included")
}

// period resolves --env, --from and --to.
func (f *reportFlags) period() (report.Period, error) {
	p := report.Period{Environment: strings.TrimSpace(*f.env)}
	if strings.TrimSpace(*f.from) == "" || strings.TrimSpace(*f.to) == "" {
		return p, errors.New("--from and --to are both required (e.g. --from 2026-01-01 --to 2026-03-31)")
	}
	var err error
	if p.From, err = parseReportTime(*f.from, false); err != nil {
		return p, fmt.Errorf("--from: %w", err)
	}
	if p.To, err = parseReportTime(*f.to, true); err != nil {
		return p, fmt.Errorf("--to: %w", err)
	}
	return p, p.Validate()
}

// parseReportTime reads an RFC 3339 time or a date (UTC); a date as the
// end of a period means the end of that day.
func parseReportTime(s string, end bool) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-03-31T23:59:59Z) nor a date (2026-03-31)", s)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// open connects to ClickHouse without creating anything.
func (f *reportFlags) open(ctx context.Context) (*store.Store, error) {
	st, err := store.OpenReadOnly(ctx, *f.url, nil)
	if err != nil {
		return nil, fmt.Errorf("--clickhouse-url %s: %w", store.Redacted(*f.url), err)
	}
	return st, nil
}

// sampleFlags choose the sample's size and seed.
type sampleFlags struct {
	size                            *int
	confidence, tolerable, expected *float64
	seed                            *string
}

func addSampleFlags(fs *flag.FlagSet) *sampleFlags {
	return &sampleFlags{
		size:       fs.Int("size", 0, "the sample size; else computed from --confidence and --tolerable-rate"),
		confidence: fs.Float64("confidence", 0, "confidence level in percent (e.g. 95)"),
		tolerable:  fs.Float64("tolerable-rate", 0, "tolerable deviation rate in percent (e.g. 5)"),
		expected:   fs.Float64("expected-rate", 0, "expected deviation rate in percent"),
		seed:       fs.String("seed", "", "the seed of the draw (default: a random one, printed)"),
	}
}

// plan decides the sample size and seed from the flags.
func (s *sampleFlags) plan(fs *flag.FlagSet) (report.SizePlan, string, error) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var plan report.SizePlan
	switch {
	case set["size"] && (set["confidence"] || set["tolerable-rate"] || set["expected-rate"]):
		return plan, "", errors.New("give --size or --confidence and --tolerable-rate, not both")
	case set["size"]:
		if *s.size < 1 {
			return plan, "", fmt.Errorf("--size %d: want 1 or more", *s.size)
		}
		plan = report.SizePlan{Size: *s.size, Given: true, Method: "given (--size)"}
	case set["confidence"] && set["tolerable-rate"]:
		var err error
		if plan, err = report.SampleSize(*s.confidence, *s.tolerable, *s.expected); err != nil {
			return plan, "", err
		}
	default:
		return plan, "", errors.New("give --size N, or --confidence and --tolerable-rate (e.g. --confidence 95 --tolerable-rate 5)")
	}
	seed := strings.TrimSpace(*s.seed)
	if set["seed"] && seed == "" {
		return plan, "", errors.New("--seed is empty")
	}
	if seed == "" {
		var err error
		if seed, err = report.NewSeed(); err != nil {
			return plan, "", err
		}
	}
	return plan, seed, nil
}

// output opens --out, or stdout when it is empty or "-".
func output(path string, env Env) (io.Writer, func() error, error) {
	if path == "" || path == "-" {
		return env.Stdout, func() error { return nil }, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--out: %w", err)
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	return bw, func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return fmt.Errorf("--out %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("--out %s: %w", path, err)
		}
		return nil
	}, nil
}

// formatFromOut is the format an --out file's extension names, if any.
func formatFromOut(out string) string {
	switch strings.ToLower(filepath.Ext(out)) {
	case ".csv":
		return "csv"
	case ".json":
		return "json"
	case ".xlsx":
		return "xlsx"
	}
	return ""
}

// tableFormat is the format of a table report: --format, else the one
// --out's extension names, else csv.
func tableFormat(format, out string) (string, error) {
	f := format
	if f == "" {
		f = formatFromOut(out)
	}
	if f == "" {
		f = "csv"
	}
	if f != "csv" && f != "json" && f != "xlsx" {
		return "", fmt.Errorf("--format %q: want csv, json or xlsx", f)
	}
	return f, nil
}

// runReportTable is the population and the sample.
func runReportTable(ctx context.Context, name string, args []string, env Env) int {
	fs := flagSet("report "+name, env)
	rf := addReportFlags(fs, env, true)
	format := fs.String("format", "", "csv, json or xlsx (default: from --out's extension, else csv)")
	out := fs.String("out", "", "write to this file (default: standard output)")
	var sf *sampleFlags
	if name == "sample" {
		sf = addSampleFlags(fs)
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "report %s: unexpected argument %q", name, fs.Arg(0))
	}
	p, err := rf.period()
	if err != nil {
		return fail(env, ExitUsage, "report %s: %v", name, err)
	}
	f, err := tableFormat(*format, *out)
	if err != nil {
		return fail(env, ExitUsage, "report %s: %v", name, err)
	}
	var plan report.SizePlan
	var seed string
	if sf != nil {
		if plan, seed, err = sf.plan(fs); err != nil {
			return fail(env, ExitUsage, "report sample: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *rf.timeout)
	defer cancel()
	st, err := rf.open(ctx)
	if err != nil {
		return fail(env, ExitFail, "report %s: %v", name, err)
	}
	defer st.Close()
	prog := newReportProgress(env)
	defer prog.done()
	fmt.Fprintf(env.Stderr, "%s: %s deployments from %s to %s (excluded)\n", name, p.Environment,
		p.From.Format(time.RFC3339), p.To.Format(time.RFC3339))

	w, closeOut, err := output(*out, env)
	if err != nil {
		return fail(env, ExitUsage, "report %s: %v", name, err)
	}
	if name == "population" {
		// The checkpoint first: the rows are read after it, so every
		// event it signs was archived before they were.
		lc, err := report.CurrentLogCheckpoint(ctx, st)
		if err != nil {
			closeOut()
			return fail(env, ExitFail, "report population: %v", err)
		}
		if lc != nil {
			fmt.Fprintf(env.Stderr, "population: computed against the log checkpoint %s, %d leaves, root %s (the events archived up to it are its leaves 0..%d)\n", lc.Origin, lc.TreeSize, lc.Root, lc.TreeSize-1)
		} else {
			fmt.Fprintln(env.Stderr, "population: the transparency log has no signed checkpoint yet: the report states none")
		}
		tw, err := report.NewTableWriter(w, f, report.Header{Report: "population", Period: p, Log: lc})
		if err != nil {
			closeOut()
			return fail(env, ExitFail, "report population: %v", err)
		}
		n := 0
		err = report.EachRow(ctx, st, p, func(r report.Row) error {
			n++
			if n%1000 == 0 {
				prog.show("population: %d rows", n)
			}
			return tw.Write(r, nil)
		})
		if err == nil {
			err = tw.Close()
		}
		if cerr := closeOut(); err == nil {
			err = cerr
		}
		prog.done()
		if err != nil {
			return fail(env, ExitFail, "report population: %v", err)
		}
		fmt.Fprintf(env.Stderr, "population: %d deployments\n", n)
		return ExitOK
	}

	rows, err := report.Rows(ctx, st, p, func(n int) { prog.show("population: %d rows", n) })
	if err != nil {
		closeOut()
		return fail(env, ExitFail, "report sample: %v", err)
	}
	s, err := report.DrawSample(rows, seed, plan)
	if err == nil {
		err = s.Write(w, f, p)
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	prog.done()
	if err != nil {
		return fail(env, ExitFail, "report sample: %v", err)
	}
	writeSampleNote(env.Stderr, s, p)
	return ExitOK
}

// writeSampleNote tells the auditor how to re-perform the draw.
func writeSampleNote(w io.Writer, s report.Sample, p report.Period) {
	fmt.Fprintf(w, "sample: %d of %d deployments, seed %s (size: %s)\n", s.Info.Drawn, s.Info.Population, s.Info.Seed, s.Info.Plan.Method)
	if s.Info.Drawn < s.Info.Plan.Size {
		fmt.Fprintf(w, "sample: the population is smaller than the sample size %d: every deployment is in the sample\n", s.Info.Plan.Size)
	}
	fmt.Fprintf(w, "re-perform: evidence report sample --env %s --from %s --to %s --size %d --seed %s\n",
		p.Environment, p.From.Format(time.RFC3339), p.To.Format(time.RFC3339), s.Info.Plan.Size, s.Info.Seed)
}

func runReportControls(ctx context.Context, args []string, env Env) int {
	fs := flagSet("report controls", env)
	rf := addReportFlags(fs, env, true)
	format := fs.String("format", "text", "text or json")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "report controls: unexpected argument %q", fs.Arg(0))
	}
	p, err := rf.period()
	if err != nil {
		return fail(env, ExitUsage, "report controls: %v", err)
	}
	if *format != "text" && *format != "json" {
		return fail(env, ExitUsage, "report controls: --format %q: want text or json", *format)
	}
	ctx, cancel := context.WithTimeout(ctx, *rf.timeout)
	defer cancel()
	st, err := rf.open(ctx)
	if err != nil {
		return fail(env, ExitFail, "report controls: %v", err)
	}
	defer st.Close()
	c, err := report.LoadControls(ctx, st, p)
	if err != nil {
		return fail(env, ExitFail, "report controls: %v", err)
	}
	if *format == "json" {
		err = c.WriteJSON(env.Stdout)
	} else {
		err = c.WriteText(env.Stdout)
	}
	if err != nil {
		return fail(env, ExitFail, "report controls: %v", err)
	}
	return ExitOK
}

func runReportTrace(ctx context.Context, args []string, env Env) int {
	fs := flagSet("report trace", env)
	rf := addReportFlags(fs, env, false)
	format := fs.String("format", "text", "text or json")
	pos, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 || strings.TrimSpace(pos[0]) == "" {
		return fail(env, ExitUsage, "report trace: give one change id (e.g. github.com/acme/payments@c0ffee...; see the population's change_id)")
	}
	if *format != "text" && *format != "json" {
		return fail(env, ExitUsage, "report trace: --format %q: want text or json", *format)
	}
	ctx, cancel := context.WithTimeout(ctx, *rf.timeout)
	defer cancel()
	st, err := rf.open(ctx)
	if err != nil {
		return fail(env, ExitFail, "report trace: %v", err)
	}
	defer st.Close()
	ts, err := report.LoadTraces(ctx, st, []string{strings.TrimSpace(pos[0])})
	if err != nil {
		return fail(env, ExitFail, "report trace: %v", err)
	}
	if *format == "json" {
		err = report.WriteTraceJSON(env.Stdout, ts[0])
	} else {
		err = writeTraceText(env.Stdout, ts[0])
	}
	if err != nil {
		return fail(env, ExitFail, "report trace: %v", err)
	}
	return ExitOK
}

// reportProgress shows one updating line on stderr when it is a terminal.
type reportProgress struct {
	w     io.Writer
	shown bool
}

func newReportProgress(env Env) *reportProgress {
	if f, ok := env.Stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return &reportProgress{w: f}
		}
	}
	return &reportProgress{}
}

func (p *reportProgress) show(format string, a ...any) {
	if p.w == nil {
		return
	}
	fmt.Fprintf(p.w, "\r\033[K"+format, a...)
	p.shown = true
}

func (p *reportProgress) done() {
	if p.w != nil && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// runReportAccess is `evidence report access`: the user-access review's
// evidence (docs/access.md).
func runReportAccess(ctx context.Context, args []string, env Env) int {
	fs := flagSet("report access", env)
	rf := addReportFlags(fs, env, false)
	// A period, but no environment: access is per repository.
	access := "access"
	rf.env = &access
	rf.addPeriod(fs)
	format := fs.String("format", "", "csv, json or xlsx (default: from --out's extension, else csv)")
	out := fs.String("out", "", "write to this file (default: standard output)")
	var repos stringList
	fs.Var(&repos, "repository", "a repository to report (host/owner/name; repeatable); default: the production repositories the access stage judged in the period")
	all := fs.Bool("all-repositories", false, "every repository with a grant, not only the production ones")
	perms := fs.String("permissions", "write,maintain,admin", "comma-separated permissions to report: read, triage, write, maintain, admin")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "report access: unexpected argument %q", fs.Arg(0))
	}
	p, err := rf.period()
	if err != nil {
		return fail(env, ExitUsage, "report access: %v", err)
	}
	if *all && len(repos) > 0 {
		return fail(env, ExitUsage, "report access: --all-repositories and --repository exclude each other")
	}
	f, err := tableFormat(*format, *out)
	if err != nil {
		return fail(env, ExitUsage, "report access: %v", err)
	}
	q := report.AccessQuery{From: p.From, To: p.To, Repositories: repos, All: *all}
	for _, s := range strings.Split(*perms, ",") {
		if s = strings.ToLower(strings.TrimSpace(s)); s != "" {
			q.Permissions = append(q.Permissions, s)
		}
	}
	for _, s := range q.Permissions {
		if !slices.Contains(report.AccessPermissions, s) {
			return fail(env, ExitUsage, "report access: --permissions: %q: want some of %s", s, strings.Join(report.AccessPermissions, ", "))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *rf.timeout)
	defer cancel()
	st, err := rf.open(ctx)
	if err != nil {
		return fail(env, ExitFail, "report access: %v", err)
	}
	defer st.Close()
	a, err := report.LoadAccess(ctx, st, q)
	if err != nil {
		return fail(env, ExitFail, "report access: %v", err)
	}
	w, closeOut, err := output(*out, env)
	if err != nil {
		return fail(env, ExitUsage, "report access: %v", err)
	}
	err = a.Write(w, f)
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fail(env, ExitFail, "report access: %v", err)
	}
	fmt.Fprintf(env.Stderr, "access: %d periods held on %d %s repositories from %s to %s (excluded)\n",
		len(a.Lines), len(a.Repositories), a.Selection, a.From, a.To)
	if a.Selection == "production" && len(a.Repositories) == 0 {
		fmt.Fprintln(env.Stderr, "access: the access stage judged no repository in this period; name them with --repository, or --all-repositories")
	}
	return ExitOK
}
