package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/producers/ci"
	"github.com/evidencepipeline/evidence/producers/emitter"
	"github.com/evidencepipeline/evidence/producers/junit"
	"github.com/evidencepipeline/evidence/producers/sarif"
)

// ciSubcommands are the `evidence emit` subcommands that build catalog
// events from the CI environment and the tools' reports.
var ciSubcommands = map[string]func(context.Context, []string, Env) int{
	"pipeline": runEmitPipeline,
	"artifact": runEmitArtifact,
	"test":     runEmitTest,
	"scan":     runEmitScan,
	"deploy":   runEmitDeploy,
}

// defaultSpoolDir is where undeliverable events wait, relative to the
// working directory, unless --spool-dir or EVIDENCE_SPOOL_DIR says.
const defaultSpoolDir = ".evidence-spool"

// ciOpts are the flags every CI subcommand takes.
type ciOpts struct {
	name                                 string
	server, source, id, at               *string
	repo, commit, runID, actor, spoolDir *string
	dryRun, noSpool                      *bool
	attempts                             *int
	timeout                              *time.Duration
}

// ciFlagSet makes the flag set of `evidence emit NAME` with the shared
// flags.
func ciFlagSet(name, synopsis, about string, env Env) (*flag.FlagSet, *ciOpts) {
	fs := flagSet("emit "+name, env)
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "usage: evidence emit %s %s [flags]\n\n%s\n\n", name, synopsis, about)
		fmt.Fprintln(env.Stderr, "Repository, commit, run id, run URL and actor come from the CI environment (GitHub Actions,")
		fmt.Fprintln(env.Stderr, "GitLab CI, Jenkins, CircleCI, Azure Pipelines, Buildkite, Tekton); the flags win. When")
		fmt.Fprintln(env.Stderr, "evidenced is unreachable the event is spooled; send the spool with evidence emit --flush.")
		fs.PrintDefaults()
	}
	spool := env.Getenv("EVIDENCE_SPOOL_DIR")
	if spool == "" {
		spool = defaultSpoolDir
	}
	o := &ciOpts{
		name:     name,
		server:   serverFlag(fs, env),
		source:   fs.String("source", "", "CloudEvents source (default: the repository's web URL when the run URL is on the same host, else urn:evidence:ci:SYSTEM:REPOSITORY)"),
		id:       fs.String("id", "", "event id (default: derived from the type, repository, commit, run id, run attempt and the event's key facts, so a re-run of the same step is stored once; random without a run id)"),
		at:       fs.String("time", "", "when it happened, RFC 3339 (default: now)"),
		repo:     fs.String("repo", "", "repository, host/owner/name or a URL (env EVIDENCE_REPO; default: from CI)"),
		commit:   fs.String("commit", "", "commit SHA (env EVIDENCE_COMMIT; default: from CI)"),
		runID:    fs.String("run-id", "", "pipeline run id (env EVIDENCE_RUN_ID; default: from CI)"),
		actor:    fs.String("actor", "", "who triggered the run, a login (env EVIDENCE_ACTOR; default: from CI); for deploy outside CI, who deployed"),
		spoolDir: fs.String("spool-dir", spool, "where undeliverable events wait (env EVIDENCE_SPOOL_DIR)"),
		dryRun:   fs.Bool("dry-run", false, "print the CloudEvent as JSON and send nothing"),
		noSpool:  fs.Bool("no-spool", false, "exit 1 when evidenced is unreachable instead of spooling the event"),
		attempts: fs.Int("attempts", 5, "most tries before giving up (then spool)"),
		timeout:  fs.Duration("timeout", 2*time.Minute, "give up after this long in all (then spool)"),
	}
	return fs, o
}

// ciRun is what a subcommand knows after its flags: the CI facts, the
// event time and the run attempt.
type ciRun struct {
	info    ci.Info
	at      time.Time
	attempt int
}

// usageError is a problem with the command line or the facts it leads to
// (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

var (
	repositoryRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]+)?(/[a-z0-9_.~-]+){2,}$`)
	shaRE        = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	digestRE     = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// resolve detects the CI facts, applies the flags (which win over the
// EVIDENCE_* variables, which win over detection) and checks that the
// needed fields are known and well formed.
func (o *ciOpts) resolve(rest []string, env Env, need ...ci.Field) (ciRun, error) {
	if len(rest) > 0 {
		return ciRun{}, usagef("unexpected argument %q", rest[0])
	}
	info := ci.Detect(env.Getenv)
	if strings.TrimSpace(*o.commit) == "" && env.Getenv("EVIDENCE_COMMIT") == "" {
		if head := pullRequestHead(info, env); head != "" {
			info.Commit = head
		}
	}
	if v := strings.TrimSpace(*o.repo); v != "" {
		info.Repository = ci.NormalizeRepository(v)
	}
	if v := strings.TrimSpace(*o.commit); v != "" {
		info.Commit = v
	}
	if v := strings.TrimSpace(*o.runID); v != "" {
		info.RunID = v
	}
	if v := strings.TrimSpace(*o.actor); v != "" {
		info.Actor = v
	}
	// The catalog spells repositories and commits in lower case.
	info.Repository = strings.ToLower(info.Repository)
	info.Commit = strings.ToLower(strings.TrimSpace(info.Commit))
	if err := info.Require(need...); err != nil {
		return ciRun{}, usagef("%v", err)
	}
	if info.Repository != "" && !repositoryRE.MatchString(info.Repository) {
		return ciRun{}, usagef("repository %q is not host/owner/name (e.g. github.com/acme/payments): pass --repo or set EVIDENCE_REPO", info.Repository)
	}
	if info.Commit != "" && !shaRE.MatchString(info.Commit) {
		return ciRun{}, usagef("commit %q is not a hex SHA: pass --commit with the full SHA", info.Commit)
	}
	if info.RunURL != "" {
		if u, err := url.Parse(info.RunURL); err != nil || !u.IsAbs() || u.Host == "" {
			fmt.Fprintf(env.Stderr, "evidence: ignoring the run URL %q: not an absolute URL\n", info.RunURL)
			info.RunURL = ""
		}
	}
	r := ciRun{info: info, at: time.Now().UTC()}
	if *o.at != "" {
		t, err := time.Parse(time.RFC3339Nano, *o.at)
		if err != nil {
			return ciRun{}, usagef("--time: not an RFC 3339 timestamp: %q", *o.at)
		}
		r.at = t.UTC()
	}
	if n, err := strconv.Atoi(info.RunAttempt); err == nil && n > 0 {
		r.attempt = n
	}
	return r, nil
}

// pullRequestHead returns the head commit of the pull or merge request a
// run is for, when the commit the CI system reports is a temporary merge
// commit: the catalog wants the change's head commit, which is what
// reviews are about. GitHub Actions reports the merge commit in
// GITHUB_SHA for pull_request events and gives the head only in the event
// payload (GITHUB_EVENT_PATH); GitLab's merged results pipelines give it
// in CI_MERGE_REQUEST_SOURCE_BRANCH_SHA. "" when there is none.
func pullRequestHead(info ci.Info, env Env) string {
	var head string
	switch info.System {
	case ci.GitHubActions:
		if info.Event != "pull_request" && info.Event != "pull_request_target" {
			return ""
		}
		path := strings.TrimSpace(env.Getenv("GITHUB_EVENT_PATH"))
		if path == "" {
			return ""
		}
		b, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintf(env.Stderr, "evidence: warning: reading the pull request's head commit: %v; using GITHUB_SHA (the merge commit)\n", err)
			return ""
		}
		var payload struct {
			PullRequest struct {
				Head struct {
					SHA string `json:"sha"`
				} `json:"head"`
			} `json:"pull_request"`
		}
		if err := json.Unmarshal(b, &payload); err != nil {
			fmt.Fprintf(env.Stderr, "evidence: warning: reading the pull request's head commit from %s: %v; using GITHUB_SHA (the merge commit)\n", path, err)
			return ""
		}
		head = payload.PullRequest.Head.SHA
	case ci.GitLabCI:
		head = env.Getenv("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA")
	}
	head = strings.ToLower(strings.TrimSpace(head))
	if !shaRE.MatchString(head) {
		return ""
	}
	return head
}

// meta returns the attributes of the event; key names the event's own
// subject when there is no repository (deployments).
func (o *ciOpts) meta(r ciRun, key string) emitter.Meta {
	src := *o.source
	if src == "" {
		src = defaultSource(r.info, key)
	}
	return emitter.Meta{Source: src, ID: *o.id, Time: r.at, RunAttempt: r.attempt}
}

// defaultSource names the producer: the repository's web URL when the run
// URL is on the repository's host (GitHub, GitLab), otherwise
// urn:evidence:ci:SYSTEM:REPOSITORY (SYSTEM "cli" outside CI).
func defaultSource(info ci.Info, key string) string {
	if host, path, ok := strings.Cut(info.Repository, "/"); ok {
		if u, err := url.Parse(info.RunURL); err == nil && u.Scheme != "" && u.Host != "" &&
			strings.EqualFold(u.Hostname(), stripRepoPort(host)) {
			return u.Scheme + "://" + u.Host + "/" + path
		}
	}
	system := info.System
	if system == "" {
		system = "cli"
	}
	if info.Repository != "" {
		key = info.Repository
	}
	return "urn:evidence:ci:" + system + ":" + key
}

func stripRepoPort(host string) string {
	h, _, _ := strings.Cut(host, ":")
	return h
}

// triggers maps a CI system's trigger (ci.Info.Event) to the catalog's.
var triggers = map[string]string{
	ci.GitHubActions + ":push":                   "push",
	ci.GitHubActions + ":pull_request":           "pull_request",
	ci.GitHubActions + ":pull_request_target":    "pull_request",
	ci.GitHubActions + ":merge_group":            "push",
	ci.GitHubActions + ":schedule":               "schedule",
	ci.GitHubActions + ":workflow_dispatch":      "manual",
	ci.GitHubActions + ":repository_dispatch":    "api",
	ci.GitHubActions + ":workflow_run":           "pipeline",
	ci.GitHubActions + ":workflow_call":          "pipeline",
	ci.GitHubActions + ":release":                "tag",
	ci.GitLabCI + ":push":                        "push",
	ci.GitLabCI + ":merge_request_event":         "pull_request",
	ci.GitLabCI + ":external_pull_request_event": "pull_request",
	ci.GitLabCI + ":schedule":                    "schedule",
	ci.GitLabCI + ":web":                         "manual",
	ci.GitLabCI + ":chat":                        "manual",
	ci.GitLabCI + ":webide":                      "manual",
	ci.GitLabCI + ":api":                         "api",
	ci.GitLabCI + ":trigger":                     "api",
	ci.GitLabCI + ":pipeline":                    "pipeline",
	ci.GitLabCI + ":parent_pipeline":             "pipeline",
	ci.AzurePipelines + ":individualci":          "push",
	ci.AzurePipelines + ":batchedci":             "push",
	ci.AzurePipelines + ":pullrequest":           "pull_request",
	ci.AzurePipelines + ":schedule":              "schedule",
	ci.AzurePipelines + ":manual":                "manual",
	ci.AzurePipelines + ":buildcompletion":       "pipeline",
	ci.AzurePipelines + ":resourcetrigger":       "pipeline",
	ci.Buildkite + ":webhook":                    "push",
	ci.Buildkite + ":api":                        "api",
	ci.Buildkite + ":ui":                         "manual",
	ci.Buildkite + ":schedule":                   "schedule",
	ci.Buildkite + ":trigger_job":                "pipeline",
}

func triggerOf(info ci.Info) string {
	if info.Event == "" {
		if info.PullRequest != "" {
			return "pull_request"
		}
		return ""
	}
	if t, ok := triggers[info.System+":"+strings.ToLower(info.Event)]; ok {
		return t
	}
	return "other"
}

func changeOf(info ci.Info) *emitter.Change {
	n, err := strconv.Atoi(info.PullRequest)
	if err != nil || n < 1 {
		return nil
	}
	return &emitter.Change{Number: n}
}

// deliver prints (--dry-run) or sends the event, spooling it when
// evidenced is unreachable unless --no-spool.
func (o *ciOpts) deliver(ctx context.Context, env Env, ev event.Event) int {
	if *o.dryRun {
		b, err := json.Marshal(ev)
		if err != nil {
			return fail(env, ExitFail, "emit %s: %v", o.name, err)
		}
		var out bytes.Buffer
		if err := json.Indent(&out, b, "", "  "); err != nil {
			return fail(env, ExitFail, "emit %s: %v", o.name, err)
		}
		out.WriteByte('\n')
		_, _ = env.Stdout.Write(out.Bytes())
		return ExitOK
	}
	c := emitter.New(*o.server, env.Getenv("EVIDENCE_TOKEN"))
	c.Attempts = *o.attempts
	c.OnRetry = func(n int, err error, wait time.Duration) {
		fmt.Fprintf(env.Stderr, "evidence: attempt %d failed (%v); retrying in %s\n", n, err, wait.Round(time.Millisecond))
	}
	sctx, cancel := context.WithTimeout(ctx, *o.timeout)
	defer cancel()
	res, err := c.Send(sctx, ev)
	var refused *emitter.RefusedError
	switch {
	case err == nil:
		printStored(env, ev.Type(), res)
		return ExitOK
	case errors.As(err, &refused):
		return fail(env, ExitFail, "emit %s: %v", o.name, err)
	case *o.noSpool:
		return fail(env, ExitFail, "emit %s: could not deliver the event to %s: %v (not spooled: --no-spool)", o.name, *o.server, err)
	}
	path, perr := emitter.Spool{Dir: *o.spoolDir}.Put(ev)
	if perr != nil {
		return fail(env, ExitFail, "emit %s: could not deliver the event to %s (%v), nor spool it: %v", o.name, *o.server, err, perr)
	}
	fmt.Fprintf(env.Stderr, "evidence: could not deliver the event to %s: %v\n", *o.server, err)
	fmt.Fprintf(env.Stderr, "evidence: spooled %s id=%s to %s\n", ev.Type(), ev.ID(), path)
	fmt.Fprintf(env.Stderr, "evidence: send it later with: evidence emit --flush --spool-dir %s\n", shellQuote(*o.spoolDir))
	return ExitOK
}

func printStored(env Env, typ string, res *emitter.Result) {
	if res == nil || len(res.Events) != 1 {
		fmt.Fprintf(env.Stdout, "stored: %s\n", typ)
		return
	}
	r := res.Events[0]
	state := "stored"
	if r.Duplicate {
		state = "already stored"
	}
	fmt.Fprintf(env.Stdout, "%s: %s id=%s source=%s seq=%d\n", state, typ, r.ID, r.Source, r.Seq)
}

func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>*?()[]{}#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// done maps an error of a subcommand to its exit code.
func done(env Env, name string, err error) int {
	var u *usageError
	if errors.As(err, &u) {
		return fail(env, ExitUsage, "emit %s: %s", name, u.msg)
	}
	return fail(env, ExitFail, "emit %s: %v", name, err)
}

// stringList is a repeatable flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// --- pipeline ---------------------------------------------------------------

func runEmitPipeline(ctx context.Context, args []string, env Env) int {
	fs, o := ciFlagSet("pipeline", "--status started|success|failure|cancelled|error",
		"Reports a pipeline run: started (pipelinerun.started) or how it ended (pipelinerun.finished).", env)
	status := fs.String("status", "", "started, or how the run ended: success, failure, cancelled, error (required)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	switch *status {
	case "started", "success", "failure", "cancelled", "error":
	case "":
		return fail(env, ExitUsage, "emit pipeline: --status required: started, success, failure, cancelled or error")
	default:
		return fail(env, ExitUsage, "emit pipeline: --status %q: want started, success, failure, cancelled or error", *status)
	}
	r, err := o.resolve(fs.Args(), env, ci.FieldRepository, ci.FieldCommit, ci.FieldRunID)
	if err != nil {
		return done(env, o.name, err)
	}
	i := r.info
	d := emitter.PipelineRun{
		Repository: i.Repository, Commit: i.Commit, Branch: i.Branch,
		RunID: i.RunID, RunAttempt: r.attempt, RunURL: i.RunURL, Pipeline: i.Pipeline, System: i.System,
		Actor: emitter.LoginIdentity(i.Actor), Trigger: triggerOf(i), Change: changeOf(i),
	}
	var ev event.Event
	if *status == "started" {
		d.StartedAt = r.at
		ev, err = emitter.PipelineRunStarted(o.meta(r, ""), d)
	} else {
		d.Outcome, d.FinishedAt = *status, r.at
		ev, err = emitter.PipelineRunFinished(o.meta(r, ""), d)
	}
	if err != nil {
		return done(env, o.name, err)
	}
	return o.deliver(ctx, env, ev)
}

// --- artifact ---------------------------------------------------------------

func runEmitArtifact(ctx context.Context, args []string, env Env) int {
	fs, o := ciFlagSet("artifact", "--digest sha256:HEX --name NAME | --image REF@sha256:HEX | --file PATH",
		"Reports an artifact the run built (artifact.built): its digest ties deployments to this build.", env)
	digest := fs.String("digest", "", "the artifact's digest, sha256:HEX (with --name)")
	name := fs.String("name", "", "the artifact's name: image repository without tag, or file or package name")
	image := fs.String("image", "", "an OCI image reference with its digest, REGISTRY/REPO[:TAG]@sha256:HEX: gives digest, name and tag")
	file := fs.String("file", "", "a file whose SHA-256 is the digest (name: the file's base name)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	a := emitter.Artifact{Name: strings.TrimSpace(*name)}
	given := 0
	for _, v := range []string{*digest, *image, *file} {
		if v != "" {
			given++
		}
	}
	switch {
	case given == 0:
		return fail(env, ExitUsage, "emit artifact: give --digest (with --name), --image or --file")
	case given > 1:
		return fail(env, ExitUsage, "emit artifact: give one of --digest, --image and --file")
	case *digest != "":
		d, err := parseDigest(*digest)
		if err != nil {
			return fail(env, ExitUsage, "emit artifact: --digest: %v", err)
		}
		if a.Name == "" {
			return fail(env, ExitUsage, "emit artifact: --name required with --digest")
		}
		a.Digest = d
	case *image != "":
		ref, err := parseImageRef(*image)
		if err != nil {
			return fail(env, ExitUsage, "emit artifact: --image: %v", err)
		}
		a.Digest = ref.Digest
		if a.Name == "" {
			a.Name = ref.Name
		}
		if ref.Tag != "" {
			a.Tags = []string{ref.Tag}
		}
	default:
		d, err := fileDigest(*file)
		if err != nil {
			return fail(env, ExitUsage, "emit artifact: --file: %v", err)
		}
		a.Digest = d
		if a.Name == "" {
			a.Name = filepath.Base(*file)
		}
	}
	r, err := o.resolve(fs.Args(), env, ci.FieldRepository, ci.FieldCommit, ci.FieldRunID)
	if err != nil {
		return done(env, o.name, err)
	}
	i := r.info
	a.Repository, a.Commit, a.RunID, a.RunURL, a.Pipeline, a.System = i.Repository, i.Commit, i.RunID, i.RunURL, i.Pipeline, i.System
	a.BuiltAt = r.at
	ev, err := emitter.ArtifactBuilt(o.meta(r, ""), a)
	if err != nil {
		return done(env, o.name, err)
	}
	return o.deliver(ctx, env, ev)
}

// imageRef is a parsed OCI image reference.
type imageRef struct {
	// Name is the reference without tag and digest
	// (localhost:5000/acme/app).
	Name, Tag, Digest string
}

// parseImageRef parses REGISTRY[:PORT]/REPO[:TAG]@sha256:HEX. A
// reference without a digest is an error: resolving a tag needs the
// registry, which the CLI does not talk to.
func parseImageRef(s string) (imageRef, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return imageRef{}, errors.New("empty image reference")
	}
	name, dig, hasDigest := strings.Cut(s, "@")
	var ref imageRef
	// A tag follows the last ':' after the last '/' (a ':' before it is a
	// registry port).
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		name, ref.Tag = name[:i], name[i+1:]
		if ref.Tag == "" {
			return imageRef{}, fmt.Errorf("%q: empty tag", s)
		}
	}
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.ContainsAny(name, " \t@") {
		return imageRef{}, fmt.Errorf("%q is not an image reference (REGISTRY/REPO[:TAG]@sha256:HEX)", s)
	}
	ref.Name = name
	if !hasDigest {
		return imageRef{}, fmt.Errorf("%q has no digest: pass the digest (--digest sha256:HEX with --name, or --image %s@sha256:HEX); "+
			"resolving a tag needs the registry (docker buildx imagetools inspect %s, or crane digest %s)", s, s, s, s)
	}
	d, err := parseDigest(dig)
	if err != nil {
		return imageRef{}, fmt.Errorf("%q: %w", s, err)
	}
	ref.Digest = d
	return ref, nil
}

// parseDigest checks a sha256 digest, lower-casing its hex.
func parseDigest(s string) (string, error) {
	d := strings.TrimSpace(s)
	if algo, hexd, ok := strings.Cut(d, ":"); ok && strings.EqualFold(algo, "sha256") {
		d = "sha256:" + strings.ToLower(hexd)
	}
	if !digestRE.MatchString(d) {
		return "", fmt.Errorf("%q is not a sha256 digest (sha256: and 64 hex digits)", s)
	}
	return d, nil
}

// fileDigest returns the sha256 digest of a file's content.
func fileDigest(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if st.IsDir() {
		return "", fmt.Errorf("%s is a directory", path)
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// --- test -------------------------------------------------------------------

func runEmitTest(ctx context.Context, args []string, env Env) int {
	fs, o := ciFlagSet("test", "[--suite NAME] --junit FILE [--junit FILE...] [FILE...]",
		"Reports test results read from JUnit XML (test.reported): passed only when no test failed or errored.\n"+
			"Files after the flags are more reports, so that a glob works: --junit reports/TEST-*.xml", env)
	var files stringList
	fs.Var(&files, "junit", "a JUnit XML report (repeatable; the reports are summed)")
	suite := fs.String("suite", "", "suite name (default: the report's only suite, else the first file's name without .xml)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if len(files) == 0 {
		return fail(env, ExitUsage, "emit test: --junit FILE required")
	}
	files = append(files, fs.Args()...) // the rest of a glob
	r, err := o.resolve(nil, env, ci.FieldRepository, ci.FieldCommit)
	if err != nil {
		return done(env, o.name, err)
	}
	sum, err := junit.ParseFiles(files...)
	if err != nil {
		return fail(env, ExitUsage, "emit test: %v", err)
	}
	i := r.info
	d := emitter.TestReport{
		Repository: i.Repository, Commit: i.Commit, RunID: i.RunID, RunURL: i.RunURL, Pipeline: i.Pipeline, System: i.System,
		Suite: *suite, Tests: sum.Tests, Passed: sum.Passed, Failed: sum.Failed, Errors: sum.Errors, Skipped: sum.Skipped,
		Outcome: "passed", DurationSeconds: math.Round(sum.Duration.Seconds()*1000) / 1000, ReportFormat: "junit",
		FinishedAt: r.at,
	}
	if d.Failed+d.Errors > 0 {
		d.Outcome = "failed"
	}
	if d.Suite == "" {
		d.Suite = defaultSuite(sum, files[0])
	}
	for _, s := range sum.Suites {
		for _, c := range s.Failures {
			if len(d.Failures) == 100 {
				break
			}
			n := c.Name
			if c.Classname != "" {
				n = c.Classname + "." + c.Name
			}
			if strings.TrimSpace(n) == "" {
				n = s.Name
			}
			if strings.TrimSpace(n) == "" {
				n = "(unnamed test)"
			}
			d.Failures = append(d.Failures, emitter.TestFailure{Name: n, Message: c.Message})
		}
	}
	fmt.Fprintf(env.Stderr, "evidence: tests %s: %d run, %d passed, %d failed, %d errors, %d skipped: %s\n",
		d.Suite, d.Tests, d.Passed, d.Failed, d.Errors, d.Skipped, d.Outcome)
	if d.Tests == 0 {
		fmt.Fprintln(env.Stderr, "evidence: warning: the reports hold no test cases")
	}
	ev, err := emitter.TestReported(o.meta(r, ""), d)
	if err != nil {
		return done(env, o.name, err)
	}
	return o.deliver(ctx, env, ev)
}

func defaultSuite(sum *junit.Summary, first string) string {
	names := map[string]bool{}
	for _, s := range sum.Suites {
		names[s.Name] = true
	}
	if len(names) == 1 && len(sum.Suites) > 0 && strings.TrimSpace(sum.Suites[0].Name) != "" {
		return sum.Suites[0].Name
	}
	base := strings.TrimSuffix(filepath.Base(first), filepath.Ext(first))
	if base == "" || base == "." {
		return "junit"
	}
	return base
}

// --- scan -------------------------------------------------------------------

func runEmitScan(ctx context.Context, args []string, env Env) int {
	fs, o := ciFlagSet("scan", "--sarif FILE [--category sast|dependency|secrets|container] [--fail-on high]",
		"Reports a security scan read from SARIF 2.1.0 (scan.reported): findings by severity; the outcome is\nfailed when any finding is at or above the threshold (--fail-on, default high).", env)
	file := fs.String("sarif", "", "the scanner's SARIF 2.1.0 log (required)")
	category := fs.String("category", "", "sast, dependency, secrets, container, dast or other (default: guessed from the tool, else sast)")
	failOn := fs.String("fail-on", "", "exit 1 after recording the scan when a finding is at or above this severity: critical, high, medium, low or none")
	tool := fs.String("tool", "", "scanner name (default: the SARIF log's tool driver name, lower case)")
	target := fs.String("target", "", "what was scanned when not the repository's source: an image reference, a URL or a path")
	digest := fs.String("digest", "", "digest of the scanned image, sha256:HEX (container scans)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *file == "" {
		return fail(env, ExitUsage, "emit scan: --sarif FILE required")
	}
	threshold := sarif.High
	if *failOn != "" {
		t, err := sarif.ParseSeverity(*failOn)
		if err != nil {
			return fail(env, ExitUsage, "emit scan: --fail-on: %v", err)
		}
		threshold = t
	}
	switch *category {
	case "", "sast", "dependency", "secrets", "container", "dast", "other":
	default:
		return fail(env, ExitUsage, "emit scan: --category %q: want sast, dependency, secrets, container, dast or other", *category)
	}
	dig := ""
	if *digest != "" {
		d, err := parseDigest(*digest)
		if err != nil {
			return fail(env, ExitUsage, "emit scan: --digest: %v", err)
		}
		dig = d
	}
	r, err := o.resolve(fs.Args(), env, ci.FieldRepository, ci.FieldCommit)
	if err != nil {
		return done(env, o.name, err)
	}
	f, err := os.Open(*file)
	if err != nil {
		return fail(env, ExitUsage, "emit scan: --sarif: %v", err)
	}
	sum, err := sarif.Parse(f)
	f.Close()
	if err != nil {
		return fail(env, ExitUsage, "emit scan: %s: %v", *file, err)
	}
	name := strings.ToLower(strings.TrimSpace(*tool))
	if name == "" {
		name = strings.ToLower(strings.Join(sum.Tools, ","))
	}
	if name == "" {
		return fail(env, ExitUsage, "emit scan: %s names no tool (runs[].tool.driver.name): pass --tool", *file)
	}
	cat := *category
	if cat == "" {
		cat = guessCategory(name, dig != "")
	}
	i := r.info
	d := emitter.ScanReport{
		Repository: i.Repository, Commit: i.Commit, RunID: i.RunID, RunURL: i.RunURL, Pipeline: i.Pipeline, System: i.System,
		Tool: name, Category: cat,
		Findings: emitter.Findings{
			Critical: sum.BySeverity[sarif.Critical], High: sum.BySeverity[sarif.High], Medium: sum.BySeverity[sarif.Medium],
			Low: sum.BySeverity[sarif.Low], None: sum.BySeverity[sarif.None],
		},
		Outcome: "passed", ReportFormat: "sarif", Target: strings.TrimSpace(*target), Digest: dig, FinishedAt: r.at,
	}
	above := sum.Above(threshold)
	if above > 0 {
		d.Outcome = "failed"
	}
	fmt.Fprintf(env.Stderr, "evidence: scan %s (%s): %d critical, %d high, %d medium, %d low, %d none (%d suppressed): %s (threshold %s)\n",
		d.Tool, d.Category, d.Findings.Critical, d.Findings.High, d.Findings.Medium, d.Findings.Low, d.Findings.None,
		sum.Suppressed, d.Outcome, threshold)
	ev, err := emitter.ScanReported(o.meta(r, ""), d)
	if err != nil {
		return done(env, o.name, err)
	}
	code := o.deliver(ctx, env, ev)
	if code == ExitOK && *failOn != "" && above > 0 {
		return fail(env, ExitFail, "emit scan: %d finding(s) at or above %s (--fail-on %s); the scan was recorded", above, threshold, *failOn)
	}
	return code
}

// guessCategory guesses what a scanner scans for from its name.
func guessCategory(tool string, image bool) string {
	has := func(names ...string) bool {
		for _, n := range names {
			if strings.Contains(tool, n) {
				return true
			}
		}
		return false
	}
	switch {
	case has("gitleaks", "trufflehog", "detect-secrets", "secret"):
		return "secrets"
	case has("trivy", "grype") && image:
		return "container"
	case has("trivy", "grype", "osv-scanner", "dependency-check", "snyk", "npm audit", "pip-audit", "govulncheck", "dependabot"):
		return "dependency"
	}
	return "sast"
}

// --- deploy -----------------------------------------------------------------

func runEmitDeploy(ctx context.Context, args []string, env Env) int {
	fs, o := ciFlagSet("deploy", "--env ENV --service NAME --digest sha256:HEX [--status success|failure|cancelled|started]",
		"Reports a deployment: started (deployment.started) or how it ended (deployment.finished).\n"+
			"In CI the deployer is the pipeline (SYSTEM:PIPELINE, type service) and the run's actor, who triggered\n"+
			"it (--actor), is kept beside it as triggered_by; outside CI the deployer is the person, --actor.", env)
	environment := fs.String("env", "", "target environment, e.g. production (required)")
	service := fs.String("service", "", "the service deployed (required)")
	digest := fs.String("digest", "", "digest of the artifact deployed, sha256:HEX (or --image)")
	image := fs.String("image", "", "the image deployed, REGISTRY/REPO[:TAG]@sha256:HEX: gives the digest and the artifact")
	status := fs.String("status", "success", "started, or how the deployment ended: success, failure, cancelled")
	var tickets stringList
	fs.Var(&tickets, "ticket", "a change ticket the deployment implements, e.g. CHG0031234 (repeatable)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	var missing []string
	if strings.TrimSpace(*environment) == "" {
		missing = append(missing, "--env")
	}
	if strings.TrimSpace(*service) == "" {
		missing = append(missing, "--service")
	}
	if len(missing) > 0 {
		return fail(env, ExitUsage, "emit deploy: %s required", strings.Join(missing, " and "))
	}
	switch *status {
	case "started", "success", "failure", "cancelled":
	default:
		return fail(env, ExitUsage, "emit deploy: --status %q: want started, success, failure or cancelled", *status)
	}
	d := emitter.Deployment{Environment: strings.TrimSpace(*environment), Service: strings.TrimSpace(*service)}
	switch {
	case *digest != "" && *image != "":
		return fail(env, ExitUsage, "emit deploy: give --digest or --image, not both")
	case *digest != "":
		v, err := parseDigest(*digest)
		if err != nil {
			return fail(env, ExitUsage, "emit deploy: --digest: %v", err)
		}
		d.Digest = v
	case *image != "":
		ref, err := parseImageRef(*image)
		if err != nil {
			return fail(env, ExitUsage, "emit deploy: --image: %v", err)
		}
		d.Digest, d.Artifact = ref.Digest, ref.Name
		if ref.Tag != "" {
			d.Artifact += ":" + ref.Tag
		}
	}
	for _, t := range tickets {
		if t = strings.TrimSpace(t); t == "" || strings.ContainsAny(t, " \t\n") {
			return fail(env, ExitUsage, "emit deploy: --ticket %q: one key without spaces", t)
		}
		d.TicketKeys = append(d.TicketKeys, strings.TrimSpace(t))
	}
	r, err := o.resolve(fs.Args(), env)
	if err != nil {
		return done(env, o.name, err)
	}
	i := r.info
	// What was deployed: the digest, or else the commit.
	if d.Digest == "" {
		if err := i.Require(ci.FieldCommit); err != nil {
			return fail(env, ExitUsage, "emit deploy: %v, or pass --digest", err)
		}
	}
	d.Repository, d.Commit, d.RunID, d.RunURL, d.Pipeline, d.System = i.Repository, i.Commit, i.RunID, i.RunURL, i.Pipeline, i.System
	d.Change = changeOf(i)
	d.Deployer, d.TriggeredBy, d.Trigger = deployIdentities(r)
	if d.Deployer == nil {
		fmt.Fprintln(env.Stderr, "evidence: warning: no CI system detected and no --actor: the deployment names no deployer (CM-3 and CM-7 cannot pass); pass --actor LOGIN, the person who deployed")
	}
	var ev event.Event
	if *status == "started" {
		d.StartedAt = r.at
		ev, err = emitter.DeploymentStarted(o.meta(r, d.Service), d)
	} else {
		d.Outcome, d.FinishedAt = *status, r.at
		ev, err = emitter.DeploymentFinished(o.meta(r, d.Service), d)
	}
	if err != nil {
		return done(env, o.name, err)
	}
	return o.deliver(ctx, env, ev)
}

// deployIdentities are who deployed, who triggered the deploying run and
// how (docs/ci.md, "Identities"). A deploy step in CI is the pipeline's
// deployment: the deployer is the pipeline's own identity
// (emitter.PipelineIdentity: SYSTEM:PIPELINE, type service) and the
// run's actor is kept beside it as the trigger, never as the deployer.
// Outside CI the deployment is the person's: the deployer is the actor
// (--actor or EVIDENCE_ACTOR), with no trigger.
func deployIdentities(r ciRun) (deployer, triggeredBy *emitter.Identity, trigger string) {
	i := r.info
	if i.System == "" {
		return emitter.LoginIdentity(i.Actor), nil, ""
	}
	return emitter.PipelineIdentity(i.System, i.Pipeline), emitter.LoginIdentity(i.Actor), deployTrigger(r)
}

// deployTrigger is how the deploying job came to run: manual for a job
// started by hand inside its run (a GitLab manual job) and for a re-run
// attempt (GitHub Actions GITHUB_RUN_ATTEMPT > 1, re-run by
// GITHUB_TRIGGERING_ACTOR), else the run's trigger.
func deployTrigger(r ciRun) string {
	if r.info.ManualJob || r.attempt > 1 {
		return "manual"
	}
	return triggerOf(r.info)
}
