// Package cli is the evidence command line: a thin layer of flag parsing
// over the producers and the API. Run executes one command with its
// streams and environment injected, so tests run the real commands
// in-process.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/evidencepipeline/evidence/internal/version"
)

// Env is what a command may touch of the outside world.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Exit codes.
const (
	ExitOK    = 0
	ExitFail  = 1 // the command ran and failed (refused, unreachable)
	ExitUsage = 2 // bad flags or arguments
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, env Env) int
}

var commands = map[string]command{
	"changes":    {"show a change record: changes show ID, or --repo R --commit SHA (default: the CI run's)", runChanges},
	"dashboards": {"push the Grafana dashboards to a Grafana: dashboards push --grafana-url URL (token from GRAFANA_TOKEN)", runDashboards},
	"gate":       {"ask the deployment gate: gate --env production (repository and commit from CI); exit 0 allow, 1 deny, 2 error", runGate},
	"emit":       {"send evidence: emit pipeline|artifact|test|scan|deploy from CI, --flush the spool, or one CloudEvent", runEmit},
	"keys":       {"make the ed25519 signing key of checkpoints and evidence packages: keys new --out DIR", runKeys},
	"policy":     {"controls as code: policy test DIR (run the Rego tests), policy replay --policies DIR --from --to", runPolicy},
	"report":     {"auditor reports from ClickHouse: report population|sample|controls|trace|package", runReport},
	"token":      {"make API tokens (token new --role R --name N)", runToken},
	"witness":    {"cosign the log's checkpoints after checking they extend the last one (witness --server --log-key --key --state; witness keygen)", runWitness},
	"verify":     {"check the archive against its signed checkpoints (verify --from --to), or an evidence package (verify package FILE.zip)", runVerify},
}

func init() {
	// Apart from the literal: completion lists the commands.
	commands["completion"] = command{"print a shell completion script: completion bash|zsh|fish", runCompletion}
}

// Run runs the command line args (without the program name).
func Run(ctx context.Context, args []string, env Env) int {
	if len(args) > 1 && args[0] == "help" {
		// evidence help CMD [SUB]: the command's own -h.
		return Run(ctx, append(append([]string{}, args[1:]...), "-h"), env)
	}
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		usage(env.Stderr)
		if len(args) == 0 {
			return ExitUsage
		}
		return ExitOK
	}
	if args[0] == "--version" || args[0] == "-version" || args[0] == "version" {
		fmt.Fprintln(env.Stdout, "evidence "+version.Get().String())
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "evidence: unknown command %q\n\n", args[0])
		usage(env.Stderr)
		return ExitUsage
	}
	return c.run(ctx, args[1:], env)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: evidence COMMAND [flags]")
	fmt.Fprintln(w)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "changes, emit and gate talk to evidenced: --server (EVIDENCE_SERVER, default")
	fmt.Fprintln(w, "http://127.0.0.1:8080), the API token from EVIDENCE_TOKEN. report, verify and policy replay")
	fmt.Fprintln(w, "read ClickHouse directly (--clickhouse-url, EVIDENCE_CLICKHOUSE_URL; auditors use the read-only")
	fmt.Fprintln(w, "auditor user). Run evidence COMMAND -help for its flags; evidence --version prints the version.")
}

// isHelp reports whether args ask for help: -h, -help, --help or help.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help")
}

// flagSet returns a flag set writing its messages to env.Stderr.
func flagSet(name string, env Env) *flag.FlagSet {
	fs := flag.NewFlagSet("evidence "+name, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	return fs
}

// parse parses flags and maps errors to exit codes: -help is success.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK, false
		}
		return ExitUsage, false
	}
	return 0, true
}

// serverFlag adds --server with its environment default.
func serverFlag(fs *flag.FlagSet, env Env) *string {
	def := env.Getenv("EVIDENCE_SERVER")
	if def == "" {
		def = "http://127.0.0.1:8080"
	}
	return fs.String("server", def, "evidenced base URL (env EVIDENCE_SERVER)")
}

func fail(env Env, code int, format string, a ...any) int {
	msg := fmt.Sprintf(format, a...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	fmt.Fprint(env.Stderr, "evidence: "+msg)
	return code
}
