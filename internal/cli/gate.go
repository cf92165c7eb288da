package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/producers/ci"
)

// gateVerdict is GET /v1/gate's answer (decoded here: the CLI does not
// import the server's packages).
type gateVerdict struct {
	Decision    string        `json:"decision"`
	Repo        string        `json:"repo"`
	Commit      string        `json:"commit"`
	Artifact    string        `json:"artifact"`
	Environment string        `json:"environment"`
	Production  bool          `json:"production"`
	Change      *string       `json:"change"`
	Reasons     []string      `json:"reasons"`
	Controls    []gateControl `json:"controls"`
	BundleHash  string        `json:"bundle_hash"`
	EvaluatedAt time.Time     `json:"evaluated_at"`
	// Behind: the server's correlation had not caught up with the
	// question; asking again is worth it.
	Behind *struct {
		AskedAt   time.Time `json:"asked_at"`
		Watermark time.Time `json:"watermark"`
	} `json:"behind"`
}

type gateControl struct {
	ID        string     `json:"id"`
	Title     string     `json:"title"`
	Change    string     `json:"change"`
	Status    string     `json:"status"`
	Reasons   []string   `json:"reasons"`
	Deadline  *time.Time `json:"deadline"`
	Exception string     `json:"exception"`
}

// waitable: denied only because evidence may still arrive (pending
// controls) or the change is not known yet.
func (v gateVerdict) waitable() bool {
	if v.Decision != "deny" {
		return false
	}
	if v.Behind != nil {
		return true
	}
	if v.Change == nil {
		return true
	}
	for _, c := range v.Controls {
		if c.Status == "fail" {
			return false
		}
	}
	return true
}

func runGate(ctx context.Context, args []string, env Env) int {
	fs := flagSet("gate", env)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: evidence gate --env ENVIRONMENT [--repo R] [--commit SHA | --artifact DIGEST] [--wait D] [-o text|json]")
		fmt.Fprintln(env.Stderr, "\nAsks evidenced whether the change may be deployed to ENVIRONMENT now. Repository and commit")
		fmt.Fprintln(env.Stderr, "default to the CI run's. Needs a token with role gate (EVIDENCE_TOKEN).")
		fmt.Fprintln(env.Stderr, "Exit 0 allow, 1 deny, 2 error (usage, unreachable, server error).")
		fs.PrintDefaults()
	}
	server := serverFlag(fs, env)
	envName := fs.String("env", "", "the environment to deploy to (required)")
	repo := fs.String("repo", "", "repository, host/owner/name or a URL (default: from CI)")
	commit := fs.String("commit", "", "the commit to deploy (default: from CI)")
	artifact := fs.String("artifact", "", "the artifact digest to deploy (sha256:...), instead of --commit; found across repositories when no repository is given or known from CI")
	wait := fs.Duration("wait", 0, "while denied only for pending evidence, ask again until allowed or this long has passed")
	interval := fs.Duration("poll-interval", 5*time.Second, "time between two questions with --wait")
	timeout := fs.Duration("timeout", 30*time.Second, "give up on one question after this long")
	output := fs.String("o", "text", "output: text or json")
	fs.StringVar(output, "output", "text", "same as -o")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "gate: unexpected argument %q", fs.Arg(0))
	}
	if *output != "text" && *output != "json" {
		return fail(env, ExitUsage, "gate: -o: want text or json, got %q", *output)
	}
	if strings.TrimSpace(*envName) == "" {
		return fail(env, ExitUsage, "gate: --env is required (e.g. --env production)")
	}
	if *interval <= 0 {
		return fail(env, ExitUsage, "gate: --poll-interval must be positive")
	}
	info := ci.Detect(env.Getenv)
	r := strings.ToLower(ci.NormalizeRepository(strings.TrimSpace(*repo)))
	if r == "" {
		r = strings.ToLower(ci.NormalizeRepository(info.Repository))
	}
	c := strings.ToLower(strings.TrimSpace(*commit))
	a := strings.ToLower(strings.TrimSpace(*artifact))
	if c == "" && a == "" {
		c = strings.ToLower(info.Commit)
	}
	switch {
	case r == "" && a == "":
		return fail(env, ExitUsage, "gate: --repo is required outside CI (or --artifact alone)")
	case r != "" && !repositoryRE.MatchString(r):
		return fail(env, ExitUsage, "gate: repository %q is not host/owner/name: pass --repo", r)
	case c != "" && a != "":
		return fail(env, ExitUsage, "gate: give --commit or --artifact, not both")
	case c == "" && a == "":
		return fail(env, ExitUsage, "gate: --commit or --artifact is required outside CI")
	case c != "" && !shaRE.MatchString(c):
		return fail(env, ExitUsage, "gate: commit %q is not a commit SHA (7 to 64 hex digits)", c)
	}
	q := url.Values{"env": {strings.TrimSpace(*envName)}}
	if r != "" {
		q.Set("repo", r)
	}
	if a != "" {
		q.Set("artifact", a)
	} else {
		q.Set("commit", c)
	}
	token := env.Getenv("EVIDENCE_TOKEN")
	deadline := time.Now().Add(*wait)
	for {
		v, body, err := askGate(ctx, *server, "/v1/gate?"+q.Encode(), token, *timeout)
		if err != nil {
			return fail(env, ExitUsage, "gate: %v", err)
		}
		if v.Decision == "allow" || *wait <= 0 || !v.waitable() || !time.Now().Add(*interval).Before(deadline) {
			if *output == "json" {
				if code := printIndented(env, body); code != ExitOK {
					return ExitUsage
				}
			} else {
				writeVerdict(env, v)
			}
			if v.Decision == "allow" {
				return ExitOK
			}
			return ExitFail
		}
		fmt.Fprintf(env.Stderr, "evidence: gate: denied for now (pending evidence); asking again in %s\n", *interval)
		select {
		case <-ctx.Done():
			return fail(env, ExitUsage, "gate: %v", ctx.Err())
		case <-time.After(*interval):
		}
	}
}

func askGate(ctx context.Context, server, path, token string, timeout time.Duration) (gateVerdict, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var v gateVerdict
	body, err := getChanges(ctx, server, path, token)
	if err != nil {
		return v, nil, err
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, nil, fmt.Errorf("evidenced answered a verdict that is not valid JSON: %w", err)
	}
	if v.Decision != "allow" && v.Decision != "deny" {
		return v, nil, fmt.Errorf("evidenced answered decision %q: want allow or deny", v.Decision)
	}
	return v, body, nil
}

func writeVerdict(env Env, v gateVerdict) {
	w := env.Stdout
	what := v.Repo + "@" + v.Commit
	if v.Artifact != "" {
		what = v.Repo + " artifact " + v.Artifact
	}
	fmt.Fprintf(w, "%s: %s to %s\n", strings.ToUpper(v.Decision), what, v.Environment)
	if v.Change != nil {
		fmt.Fprintf(w, "change: %s\n", *v.Change)
	} else {
		fmt.Fprintln(w, "change: none")
	}
	for _, c := range v.Controls {
		label := c.ID
		if c.Change != "" {
			label += " (" + c.Change + ")"
		}
		fmt.Fprintf(w, "%-7s %s %s\n", strings.ToUpper(c.Status), label, c.Title)
		for _, r := range c.Reasons {
			fmt.Fprintf(w, "        - %s\n", r)
		}
		if c.Deadline != nil {
			fmt.Fprintf(w, "        deadline: %s\n", c.Deadline.UTC().Format(time.RFC3339))
		}
		if c.Exception != "" {
			fmt.Fprintf(w, "        exception: %s\n", c.Exception)
		}
	}
	for _, r := range v.Reasons {
		fmt.Fprintf(w, "reason: %s\n", r)
	}
	fmt.Fprintf(w, "policy bundle: %s\n", v.BundleHash)
}
