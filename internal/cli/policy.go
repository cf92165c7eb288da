package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/replay"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
)

// runPolicy runs the controls-as-code commands (docs/policies.md):
// policy test [DIR] and policy replay.
func runPolicy(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		return fail(env, ExitUsage, "policy: want a subcommand: test [DIR] (run the Rego tests) or replay --policies DIR --from T --to T")
	}
	switch args[0] {
	case "test":
		return runPolicyTest(ctx, args[1:], env)
	case "replay":
		return runPolicyReplay(ctx, args[1:], env)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(env.Stderr, "usage: evidence policy test [DIR] [-v] [--run REGEX] [--builtin]")
		fmt.Fprintln(env.Stderr, "       evidence policy replay --policies DIR --from T --to T [--clickhouse-url URL] [--format text|json]")
		return ExitOK
	}
	return fail(env, ExitUsage, "policy: unknown subcommand %q: want test or replay", args[0])
}

func runPolicyTest(ctx context.Context, args []string, env Env) int {
	fs := flagSet("policy test", env)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: evidence policy test [DIR] [-v] [--run REGEX] [--builtin]")
		fmt.Fprintln(env.Stderr, "\nRuns the Rego tests (rules test_* in *_test.rego) of DIR, compiled with the built-in")
		fmt.Fprintln(env.Stderr, "controls (data.evidence.lib, data.evidence.controls.cm1..cm8, data.evidence.testing).")
		fmt.Fprintln(env.Stderr, "Without DIR, runs the built-in pack's own tests. Exit 0 all pass, 1 some fail,")
		fmt.Fprintln(env.Stderr, "2 when the policies or tests do not parse or compile.")
		fs.PrintDefaults()
	}
	verbose := fs.Bool("v", false, "print passing tests too")
	run := fs.String("run", "", "run only the tests whose package.name matches this regular expression")
	builtin := fs.Bool("builtin", false, "with DIR: run the built-in pack's tests as well")
	timeout := fs.Duration("timeout", 5*time.Second, "time limit of each test")
	// Flags may come before or after DIR.
	if code, ok := parse(fs, args); !ok {
		return code
	}
	dir := ""
	if fs.NArg() > 0 {
		dir = fs.Arg(0)
		if code, ok := parse(fs, fs.Args()[1:]); !ok {
			return code
		}
		if fs.NArg() > 0 {
			return fail(env, ExitUsage, "policy test: one directory only, got %q and %q", dir, fs.Arg(0))
		}
	}
	opts := policies.TestOptions{Dir: dir, Builtin: *builtin || dir == "", Run: *run, Timeout: *timeout}
	res, err := policies.RunTests(ctx, opts)
	var ce *policies.CompileError
	switch {
	case errors.As(err, &ce):
		return fail(env, ExitUsage, "policy test: %v", err)
	case err != nil && strings.HasPrefix(err.Error(), "run pattern"):
		return fail(env, ExitUsage, "policy test: --run: %v", err)
	case err != nil:
		return fail(env, ExitUsage, "policy test: %v", err)
	}
	what := "the built-in pack"
	if dir != "" {
		what = dir
	}
	if len(res) == 0 {
		if *run != "" {
			return fail(env, ExitFail, "policy test: no Rego test of %s matches --run %q", what, *run)
		}
		return fail(env, ExitFail, "policy test: no Rego tests (rules test_* in *_test.rego) in %s", what)
	}
	counts := map[string]int{}
	for _, r := range res {
		counts[r.Outcome]++
		if r.Outcome == policies.TestPass && !*verbose {
			continue
		}
		fmt.Fprintf(env.Stdout, "%-5s %s:%d %s.%s", r.Outcome, r.File, r.Line, strings.TrimPrefix(r.Package, "data."), r.Name)
		if *verbose {
			fmt.Fprintf(env.Stdout, " (%s)", r.Duration.Round(time.Microsecond))
		}
		fmt.Fprintln(env.Stdout)
		if r.Error != "" {
			fmt.Fprintf(env.Stdout, "      %s\n", strings.ReplaceAll(r.Error, "\n", "\n      "))
		}
		if r.Output != "" && r.Outcome != policies.TestPass {
			fmt.Fprintf(env.Stdout, "      print output:\n        %s\n", strings.ReplaceAll(strings.TrimRight(r.Output, "\n"), "\n", "\n        "))
		}
	}
	fmt.Fprintf(env.Stdout, "%d tests: %d passed, %d failed, %d errors", len(res), counts[policies.TestPass], counts[policies.TestFail], counts[policies.TestError])
	if counts[policies.TestSkip] > 0 {
		fmt.Fprintf(env.Stdout, ", %d skipped", counts[policies.TestSkip])
	}
	fmt.Fprintln(env.Stdout)
	if counts[policies.TestFail]+counts[policies.TestError] > 0 {
		return ExitFail
	}
	return ExitOK
}

func runPolicyReplay(ctx context.Context, args []string, env Env) int {
	fs := flagSet("policy replay", env)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: evidence policy replay --policies DIR --from T --to T [--clickhouse-url URL] [--format text|json]")
		fmt.Fprintln(env.Stderr, "\nRe-evaluates the changes deployed in [from, to) with the built-in controls and DIR's, as of")
		fmt.Fprintln(env.Stderr, "the time their recorded results were evaluated, and reports, change by change, the controls")
		fmt.Fprintln(env.Stderr, "whose status would differ. Reads ClickHouse only (works as the auditor user); writes nothing.")
		fmt.Fprintln(env.Stderr, "Exit 0 when nothing differs, 1 when something does, 2 on bad usage or when it cannot run (ClickHouse).")
		fs.PrintDefaults()
	}
	def := env.Getenv("EVIDENCE_CLICKHOUSE_URL")
	if def == "" {
		def = "clickhouse://127.0.0.1:9000/evidence"
	}
	chURL := fs.String("clickhouse-url", def, "ClickHouse, native protocol, e.g. clickhouse://auditor:PASSWORD@host:9000/evidence (env EVIDENCE_CLICKHOUSE_URL)")
	dir := fs.String("policies", "", "the policy directory to replay with (custom controls beside the built-in ones); required")
	from := fs.String("from", "", "start of the period, included: RFC 3339 time or date (UTC); required")
	to := fs.String("to", "", "end of the period, excluded: RFC 3339 time, or a date whose day is included; required")
	format := fs.String("format", "text", "output: text or json")
	delay := fs.Duration("verdict-delay", replay.DefaultVerdictDelay, "the --verdict-delay of the evidenced that decided the deployment verdicts: each is replayed on the record as it stood at the deployment's arrival plus it")
	params := paramFlags(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "policy replay: unexpected argument %q", fs.Arg(0))
	}
	p, err := params()
	if err != nil {
		return fail(env, ExitUsage, "policy replay: %v", err)
	}
	if *dir == "" {
		return fail(env, ExitUsage, "policy replay: --policies is required (a directory of .rego files; an empty one replays the built-in controls alone)")
	}
	if *format != "text" && *format != "json" {
		return fail(env, ExitUsage, "policy replay: --format %q: want text or json", *format)
	}
	start, err := periodBound(*from, false)
	if err != nil {
		return fail(env, ExitUsage, "policy replay: --from: %v", err)
	}
	end, err := periodBound(*to, true)
	if err != nil {
		return fail(env, ExitUsage, "policy replay: --to: %v", err)
	}
	if !start.Before(end) {
		return fail(env, ExitUsage, "policy replay: --from %s is not before --to %s", *from, *to)
	}
	custom, _, err := policies.ReadDir(*dir)
	if err != nil {
		return fail(env, ExitUsage, "policy replay: --policies: %v", err)
	}
	b, err := policies.Load(ctx, custom)
	if err != nil {
		return fail(env, ExitUsage, "policy replay: --policies %s: %v", *dir, err)
	}
	st, err := store.OpenReadOnly(ctx, *chURL, nil)
	if err != nil {
		return fail(env, ExitUsage, "policy replay: --clickhouse-url %s: %v", store.Redacted(*chURL), err)
	}
	defer st.Close()
	if *delay < 0 {
		return fail(env, ExitUsage, "policy replay: --verdict-delay must not be negative, got %s", *delay)
	}
	rep, err := replay.RunOptions(ctx, st, b, p, start, end, time.Now(), replay.Options{VerdictDelay: *delay})
	if err != nil {
		return fail(env, ExitUsage, "policy replay: %v", err)
	}
	if *format == "json" {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fail(env, ExitUsage, "policy replay: %v", err)
		}
	} else {
		writeReplay(env.Stdout, rep, *dir)
	}
	if rep.Differing > 0 || rep.VerdictsDiffering > 0 {
		return ExitFail
	}
	return ExitOK
}

// periodBound reads --from or --to: an RFC 3339 time, or a date (UTC):
// its start, or for the end of a period the start of the next day.
func periodBound(v string, end bool) (time.Time, error) {
	if v == "" {
		return time.Time{}, errors.New("required (RFC 3339 time or YYYY-MM-DD)")
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UTC(), nil
	}
	d, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a date YYYY-MM-DD", v)
	}
	if end {
		d = d.AddDate(0, 0, 1)
	}
	return d, nil
}

func writeReplay(w io.Writer, rep *replay.Report, dir string) {
	fmt.Fprintf(w, "Replay of the changes deployed from %s to %s with the built-in controls and %s\n",
		rep.From.Format(time.RFC3339), rep.To.Format(time.RFC3339), filepath.Clean(dir))
	fmt.Fprintf(w, "bundle replayed: %s\n", rep.BundleHash)
	fmt.Fprintf(w, "bundles recorded: %s\n", orNone(strings.Join(rep.RecordedBundles, ", ")))
	for _, d := range rep.Diffs {
		fmt.Fprintf(w, "\n%s (as of %s)\n", d.Change, d.AsOf.Format(time.RFC3339Nano))
		if d.RecordChanged {
			fmt.Fprintln(w, "  note: the recorded results judged an earlier version of the record (evidence arrived since)")
		}
		for _, c := range d.Controls {
			rec := string(c.Recorded)
			if rec == "" {
				rec = "not recorded"
			}
			fmt.Fprintf(w, "  %s %s: %s -> %s\n", c.Control, c.Title, rec, c.Replayed)
			for _, r := range c.Reasons {
				fmt.Fprintf(w, "      now: %s\n", r)
			}
			for _, r := range c.RecordedReasons {
				fmt.Fprintf(w, "      was: %s\n", r)
			}
		}
	}
	for _, d := range rep.VerdictDiffs {
		fmt.Fprintf(w, "\nverdict of %s %s %s (%s), deployed %s, evidence arrived by %s: %s -> %s\n", d.Environment, d.Service, d.DeploymentKey,
			d.Change, d.DeployedAt.Format(time.RFC3339Nano), d.ArrivedBy.Format(time.RFC3339Nano), d.Recorded, d.Replayed)
		if d.Note != "" {
			fmt.Fprintf(w, "  note: %s\n", d.Note)
		} else if !d.RecordMatches {
			fmt.Fprintln(w, "  note: the record rebuilt as of the cutoff is not the one the verdict judged (another --verdict-delay?)")
		}
		for _, c := range d.Controls {
			rec := string(c.Recorded)
			if rec == "" {
				rec = "not recorded"
			}
			fmt.Fprintf(w, "  %s %s: %s -> %s\n", c.Control, c.Title, rec, c.Replayed)
		}
	}
	fmt.Fprintf(w, "\n%d changes replayed, %d would differ; %d controls differ in status; new controls: %s; removed controls: %s\n",
		rep.Changes, rep.Differing, rep.ControlsDiffering, orNone(strings.Join(rep.NewControls, ", ")), orNone(strings.Join(rep.RemovedControls, ", ")))
	fmt.Fprintf(w, "%d deployment verdicts replayed (verdict delay %s), %d would differ\n", rep.Verdicts, rep.VerdictDelay, rep.VerdictsDiffering)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// paramFlags adds the built-in controls' parameters, as evidenced takes
// them (docs/evaluation.md), to fs; the function it returns reads them
// once fs is parsed.
func paramFlags(fs *flag.FlagSet) func() (policies.Params, error) {
	d := policies.DefaultParams()
	prod := fs.String("production-environments", strings.Join(d.ProductionEnvironments, ","), "comma-separated environments the controls apply to (as evidenced's flag)")
	emergency := fs.Duration("emergency-window", d.EmergencyWindow, "how long after the deployment an emergency change's ticket may be approved (CM-1)")
	threshold := fs.String("scan-severity-threshold", d.ScanSeverityThreshold, "an open finding at or above it fails CM-5: low, medium, high or critical")
	scans := fs.String("required-scan-categories", strings.Join(d.RequiredScanCategories, ","), "comma-separated scans that must have run (CM-5); none for none")
	pipelines := fs.String("pipeline-identities", strings.Join(d.PipelineIdentities, ","), "comma-separated logins of automated builders and deployers; none for none")
	systems := fs.String("pipeline-systems", strings.Join(d.PipelineSystems, ","), "comma-separated CI systems whose pipelines deploy as themselves (CM-3, CM-7); none for none")
	trigger := fs.String("manual-trigger-by-author", d.ManualTriggerByAuthor, "the change's author starting the deploying run on demand: allow (CM-3 passes and names it) or fail")
	branches := fs.String("protected-branches", strings.Join(d.ProtectedBranches, ","), "comma-separated branches changes must be merged into (CM-7)")
	deadline := fs.Duration("pending-deadline", d.PendingDeadline, "how long after a production deployment missing evidence may still arrive")
	list := func(v string) []string {
		out := []string{}
		for _, s := range strings.Split(v, ",") {
			if s = strings.TrimSpace(s); s != "" && !strings.EqualFold(s, "none") {
				out = append(out, s)
			}
		}
		return out
	}
	return func() (policies.Params, error) {
		p := policies.Params{
			ProductionEnvironments: list(*prod), EmergencyWindow: *emergency, ScanSeverityThreshold: strings.ToLower(*threshold),
			RequiredScanCategories: list(*scans), PipelineIdentities: list(*pipelines), ProtectedBranches: list(*branches),
			PendingDeadline: *deadline, PipelineSystems: list(*systems), ManualTriggerByAuthor: strings.ToLower(*trigger),
		}
		switch {
		case len(p.ProductionEnvironments) == 0:
			return p, errors.New("--production-environments: give at least one environment")
		case len(p.ProtectedBranches) == 0:
			return p, errors.New("--protected-branches: give at least one branch")
		case p.EmergencyWindow <= 0:
			return p, fmt.Errorf("--emergency-window %s: must be positive", p.EmergencyWindow)
		case p.PendingDeadline <= 0:
			return p, fmt.Errorf("--pending-deadline %s: must be positive", p.PendingDeadline)
		}
		switch p.ScanSeverityThreshold {
		case "low", "medium", "high", "critical":
		default:
			return p, fmt.Errorf("--scan-severity-threshold %q: want low, medium, high or critical", *threshold)
		}
		switch p.ManualTriggerByAuthor {
		case policies.AllowManualTriggerByAuthor, policies.FailManualTriggerByAuthor:
		default:
			return p, fmt.Errorf("--manual-trigger-by-author %q: want allow or fail", *trigger)
		}
		return p, nil
	}
}
