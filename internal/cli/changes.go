package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/producers/ci"
)

// runChanges is `evidence changes`: read change records from evidenced
// (GET /v1/changes, role auditor; docs/changes.md).
func runChanges(ctx context.Context, args []string, env Env) int {
	if len(args) == 0 {
		changesUsage(env.Stderr)
		return ExitUsage
	}
	switch args[0] {
	case "show":
		return runChangesShow(ctx, args[1:], env)
	case "-h", "-help", "--help", "help":
		changesUsage(env.Stderr)
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "evidence: changes: unknown subcommand %q\n", args[0])
	changesUsage(env.Stderr)
	return ExitUsage
}

func changesUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: evidence changes show ID [flags]")
	fmt.Fprintln(w, "       evidence changes show [--repo REPOSITORY] [--commit SHA] [flags]   (default: the CI run's)")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Prints a change record: the pull request, reviews, tickets, runs, artifacts, tests, scans,")
	fmt.Fprintln(w, "deployments and exceptions of one change, with --events the events behind each item.")
}

// changesShowOpts are the flags of `evidence changes show`.
type changesShowOpts struct {
	server, repo, commit, output *string
	events                       *bool
	timeout                      *time.Duration
}

func runChangesShow(ctx context.Context, args []string, env Env) int {
	fs := flagSet("changes show", env)
	fs.Usage = func() {
		changesUsage(env.Stderr)
		fmt.Fprintln(env.Stderr, "\nID is a change record's id: REPOSITORY@COMMIT (e.g. github.com/acme/payments@c0ffee12...),")
		fmt.Fprintln(env.Stderr, "or unmatched:ENVIRONMENT/SERVICE/TARGET for a deployment that matches no change. Without an")
		fmt.Fprintln(env.Stderr, "ID, the records of --repo that hold --commit (any role: merge commit, a head, pushed,")
		fmt.Fprintln(env.Stderr, "deployed; 7 or more hex digits) are shown; in CI both default to the run's. Needs a token")
		fmt.Fprintln(env.Stderr, "with role auditor (EVIDENCE_TOKEN). Exit 0 found, 1 not found or failed, 2 usage.")
		fs.PrintDefaults()
	}
	o := changesShowOpts{
		server:  serverFlag(fs, env),
		repo:    fs.String("repo", "", "repository, host/owner/name or a URL (env EVIDENCE_REPO; default: from CI)"),
		commit:  fs.String("commit", "", "a commit of the change, full or abbreviated SHA (env EVIDENCE_COMMIT; default: from CI)"),
		events:  fs.Bool("events", false, "after each item, the events behind it (source and id)"),
		timeout: fs.Duration("timeout", 30*time.Second, "give up after this long"),
	}
	o.output = fs.String("o", "text", "output: text (for people) or json (the record as evidenced serves it)")
	fs.StringVar(o.output, "output", "text", "same as -o")

	pos, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if *o.output != "text" && *o.output != "json" {
		return fail(env, ExitUsage, "changes show: -o: want text or json, got %q", *o.output)
	}
	if len(pos) > 1 {
		return fail(env, ExitUsage, "changes show: unexpected argument %q (give one change ID)", pos[1])
	}
	token := env.Getenv("EVIDENCE_TOKEN")
	ctx, cancel := context.WithTimeout(ctx, *o.timeout)
	defer cancel()

	if len(pos) == 1 {
		id := strings.TrimSpace(pos[0])
		if id == "" {
			return fail(env, ExitUsage, "changes show: the change ID is empty")
		}
		if *o.repo != "" || *o.commit != "" {
			return fail(env, ExitUsage, "changes show: give a change ID or --repo and --commit, not both")
		}
		body, err := getChanges(ctx, *o.server, "/v1/changes/"+url.PathEscape(id), token)
		if err != nil {
			return fail(env, errorCode(err), "changes show: %v", err)
		}
		if *o.output == "json" {
			return printIndented(env, body)
		}
		var rec changeRecord
		if err := json.Unmarshal(body, &rec); err != nil {
			return fail(env, ExitFail, "changes show: evidenced answered a record that is not valid JSON: %v", err)
		}
		writeRecord(env.Stdout, rec, *o.events)
		return ExitOK
	}

	repo, commit, err := o.resolve(env)
	if err != nil {
		return fail(env, ExitUsage, "changes show: %v", err)
	}
	q := url.Values{"repo": {repo}, "commit": {commit}}
	body, err := getChanges(ctx, *o.server, "/v1/changes?"+q.Encode(), token)
	if err != nil {
		return fail(env, errorCode(err), "changes show: %v", err)
	}
	var list struct {
		Changes []changeRecord `json:"changes"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fail(env, ExitFail, "changes show: evidenced answered a list that is not valid JSON: %v", err)
	}
	if len(list.Changes) == 0 {
		return fail(env, ExitFail, "changes show: no change record of %s holds commit %s (not merged yet, or its evidence has not arrived)", repo, commit)
	}
	if *o.output == "json" {
		return printIndented(env, body)
	}
	if len(list.Changes) > 1 {
		fmt.Fprintf(env.Stdout, "%d change records of %s hold commit %s\n\n", len(list.Changes), repo, commit)
	}
	for i, rec := range list.Changes {
		if i > 0 {
			fmt.Fprintln(env.Stdout)
		}
		writeRecord(env.Stdout, rec, *o.events)
	}
	return ExitOK
}

// parseInterspersed parses flags that may come before and after the
// positional arguments (`show ID -o json`), as the other commands' users
// expect; everything after "--" is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if code, ok := parse(fs, args); !ok {
			return nil, code, false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, true
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, true
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// resolve gives the repository and commit to look up: the flags, else
// EVIDENCE_REPO and EVIDENCE_COMMIT, else the CI run's (the pull request's
// head commit in a pull request run, as emit does).
func (o changesShowOpts) resolve(env Env) (repo, commit string, err error) {
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
	repo = strings.ToLower(info.Repository)
	commit = strings.ToLower(strings.TrimSpace(info.Commit))
	var missing []string
	if repo == "" {
		missing = append(missing, "--repo")
	}
	if commit == "" {
		missing = append(missing, "--commit")
	}
	if len(missing) > 0 {
		return "", "", fmt.Errorf("give a change ID, or %s (outside CI they have no default)", strings.Join(missing, " and "))
	}
	if !repositoryRE.MatchString(repo) {
		return "", "", fmt.Errorf("repository %q is not host/owner/name (e.g. github.com/acme/payments): pass --repo", repo)
	}
	if !shaRE.MatchString(commit) {
		return "", "", fmt.Errorf("commit %q is not a commit SHA (7 to 64 hex digits): pass --commit", commit)
	}
	return repo, commit, nil
}

// unreachableError is a request that got no answer from evidenced (a
// connection error): exit 2, as a usage error, not 1 (an answer saying
// no).
type unreachableError struct{ error }

func (e unreachableError) Unwrap() error { return e.error }

// errorCode is the exit code of a failed request: 2 when evidenced could
// not be reached, else 1.
func errorCode(err error) int {
	var u unreachableError
	if errors.As(err, &u) {
		return ExitUsage
	}
	return ExitFail
}

// getChanges asks evidenced and returns the body of a 200 answer; any
// other answer is an error with evidenced's message.
func getChanges(ctx context.Context, server, path, token string) ([]byte, error) {
	base := strings.TrimRight(server, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("--server %q: %w", server, err)
	}
	req.Header.Set("Accept", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, unreachableError{fmt.Errorf("cannot reach evidenced at %s: %w", base, err)}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of evidenced at %s: %w", base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	// An error answer is a problem document (RFC 9457): its detail is the
	// message. A 404 of type no-route (or not a problem at all) means the
	// route is not served: an evidenced without it.
	if p := problem.Parse(resp.Header.Get("Content-Type"), body); p != nil && !p.Is(problem.NoRoute) {
		msg := p.Message()
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusBadRequest:
			return nil, errors.New(msg)
		case http.StatusUnauthorized:
			return nil, fmt.Errorf("%s (set EVIDENCE_TOKEN to a token with role auditor)", msg)
		}
		return nil, fmt.Errorf("evidenced answered %s: %s", resp.Status, msg)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("evidenced at %s does not serve change records (404 for %s): is it a version without GET /v1/changes?", base, path)
	}
	return nil, fmt.Errorf("evidenced answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
}

func printIndented(env Env, body []byte) int {
	var out bytes.Buffer
	if err := json.Indent(&out, body, "", "  "); err != nil {
		return fail(env, ExitFail, "changes show: evidenced answered invalid JSON: %v", err)
	}
	out.WriteByte('\n')
	_, _ = env.Stdout.Write(out.Bytes())
	return ExitOK
}

// The record as the API serves it (processors/correlate.Record, whose JSON
// is the contract: docs/changes.md). The CLI decodes it into its own
// types so that it does not depend on the server side. Times are kept as
// the RFC 3339 strings evidenced sends.
type (
	changeRecord struct {
		ID          string             `json:"id"`
		Repository  string             `json:"repository"`
		Commit      string             `json:"commit"`
		DirectPush  bool               `json:"direct_push"`
		Unmatched   bool               `json:"unmatched"`
		PullRequest *changePullRequest `json:"pull_request"`
		Pushes      []changePush       `json:"pushes"`
		Commits     []changeCommit     `json:"commits"`
		Tickets     []changeTicket     `json:"tickets"`
		Runs        []changeRun        `json:"runs"`
		Artifacts   []changeArtifact   `json:"artifacts"`
		Tests       []changeTest       `json:"tests"`
		Scans       []changeScan       `json:"scans"`
		Deployments []changeDeployment `json:"deployments"`
		Exceptions  []changeException  `json:"exceptions"`
	}
	changeIdentity struct {
		Login string `json:"login"`
		Name  string `json:"name"`
		Email string `json:"email"`
		Type  string `json:"type"`
	}
	changeCommit struct {
		SHA   string   `json:"sha"`
		Roles []string `json:"roles"`
	}
	changePullRequest struct {
		Number           int64           `json:"number"`
		URL              string          `json:"url"`
		Title            string          `json:"title"`
		Author           *changeIdentity `json:"author"`
		SourceBranch     string          `json:"source_branch"`
		SourceRepository string          `json:"source_repository"`
		TargetBranch     string          `json:"target_branch"`
		BaseCommit       string          `json:"base_commit"`
		OpenedAt         string          `json:"opened_at"`
		HeadCommit       string          `json:"head_commit"`
		Heads            []changeHead    `json:"heads"`
		MergeCommit      string          `json:"merge_commit"`
		Method           string          `json:"method"`
		MergedBy         *changeIdentity `json:"merged_by"`
		MergedAt         string          `json:"merged_at"`
		Reviews          []changeReview  `json:"reviews"`
		Events           []string        `json:"events"`
	}
	changeHead struct {
		Commit   string          `json:"commit"`
		Previous string          `json:"previous"`
		Via      string          `json:"via"`
		By       *changeIdentity `json:"by"`
		At       string          `json:"at"`
		Events   []string        `json:"events"`
	}
	changeReview struct {
		Reviewer    changeIdentity  `json:"reviewer"`
		Decision    string          `json:"decision"`
		HeadCommit  string          `json:"head_commit"`
		Stale       bool            `json:"stale"`
		Dismissed   bool            `json:"dismissed"`
		Superseded  bool            `json:"superseded"`
		At          string          `json:"at"`
		ReviewID    string          `json:"review_id"`
		URL         string          `json:"url"`
		DismissedBy *changeIdentity `json:"dismissed_by"`
		Events      []string        `json:"events"`
	}
	changePush struct {
		Provider      string             `json:"provider"`
		Ref           string             `json:"ref"`
		DefaultBranch string             `json:"default_branch"`
		Before        string             `json:"before"`
		After         string             `json:"after"`
		Forced        bool               `json:"forced"`
		Pusher        *changeIdentity    `json:"pusher"`
		Commits       []changePushCommit `json:"commits"`
		DeliveryID    string             `json:"delivery_id"`
		PayloadSHA256 string             `json:"payload_sha256"`
		At            string             `json:"at"`
		Events        []string           `json:"events"`
	}
	changePushCommit struct {
		SHA        string          `json:"sha"`
		Message    string          `json:"message"`
		Author     *changeIdentity `json:"author"`
		Timestamp  string          `json:"timestamp"`
		TicketKeys []string        `json:"ticket_keys"`
	}
	changeTicket struct {
		Key           string          `json:"key"`
		FoundIn       []string        `json:"found_in"`
		System        string          `json:"system"`
		Type          string          `json:"type"`
		RawType       string          `json:"raw_type"`
		Status        string          `json:"status"`
		Summary       string          `json:"summary"`
		URL           string          `json:"url"`
		RequestedBy   *changeIdentity `json:"requested_by"`
		PlannedWindow *struct {
			Start string `json:"start"`
			End   string `json:"end"`
		} `json:"planned_window"`
		CreatedAt  string               `json:"created_at"`
		History    []changeStatusChange `json:"history"`
		Approvals  []changeApproval     `json:"approvals"`
		Rejections []changeApproval     `json:"rejections"`
	}
	changeStatusChange struct {
		Action   string          `json:"action"`
		Status   string          `json:"status"`
		Previous string          `json:"previous"`
		By       *changeIdentity `json:"by"`
		At       string          `json:"at"`
		Events   []string        `json:"events"`
	}
	changeApproval struct {
		By      changeIdentity `json:"by"`
		At      string         `json:"at"`
		Group   string         `json:"group"`
		Status  string         `json:"status"`
		Comment string         `json:"comment"`
		Reason  string         `json:"reason"`
		Events  []string       `json:"events"`
	}
	changeRun struct {
		Repository string          `json:"repository"`
		RunID      string          `json:"run_id"`
		Attempt    int             `json:"attempt"`
		Commit     string          `json:"commit"`
		Branch     string          `json:"branch"`
		Tag        string          `json:"tag"`
		URL        string          `json:"run_url"`
		Pipeline   string          `json:"pipeline"`
		System     string          `json:"system"`
		Trigger    string          `json:"trigger"`
		Actor      *changeIdentity `json:"actor"`
		Change     int64           `json:"change"`
		StartedAt  string          `json:"started_at"`
		FinishedAt string          `json:"finished_at"`
		Outcome    string          `json:"outcome"`
		Events     []string        `json:"events"`
	}
	changeArtifact struct {
		Digest         string          `json:"digest"`
		Purl           string          `json:"purl"`
		Name           string          `json:"name"`
		Tags           []string        `json:"tags"`
		Repository     string          `json:"repository"`
		Commit         string          `json:"commit"`
		RunID          string          `json:"run_id"`
		RunURL         string          `json:"run_url"`
		Pipeline       string          `json:"pipeline"`
		System         string          `json:"system"`
		Builder        *changeIdentity `json:"builder"`
		BuiltAt        string          `json:"built_at"`
		AttestationURL string          `json:"attestation_url"`
		At             string          `json:"at"`
		Events         []string        `json:"events"`
	}
	changeTest struct {
		Repository      string  `json:"repository"`
		Commit          string  `json:"commit"`
		RunID           string  `json:"run_id"`
		RunURL          string  `json:"run_url"`
		Pipeline        string  `json:"pipeline"`
		System          string  `json:"system"`
		Suite           string  `json:"suite"`
		Outcome         string  `json:"outcome"`
		Tests           int64   `json:"tests"`
		Passed          int64   `json:"passed"`
		Failed          int64   `json:"failed"`
		Errors          int64   `json:"errors"`
		Skipped         int64   `json:"skipped"`
		DurationSeconds float64 `json:"duration_seconds"`
		ReportFormat    string  `json:"report_format"`
		Failures        []struct {
			Name    string `json:"name"`
			Message string `json:"message"`
		} `json:"failures"`
		FinishedAt string   `json:"finished_at"`
		At         string   `json:"at"`
		Events     []string `json:"events"`
	}
	changeScan struct {
		Repository  string `json:"repository"`
		Commit      string `json:"commit"`
		RunID       string `json:"run_id"`
		RunURL      string `json:"run_url"`
		Pipeline    string `json:"pipeline"`
		System      string `json:"system"`
		Tool        string `json:"tool"`
		ToolVersion string `json:"tool_version"`
		Category    string `json:"category"`
		Findings    struct {
			Critical int64 `json:"critical"`
			High     int64 `json:"high"`
			Medium   int64 `json:"medium"`
			Low      int64 `json:"low"`
			None     int64 `json:"none"`
		} `json:"findings"`
		Outcome      string   `json:"outcome"`
		ReportFormat string   `json:"report_format"`
		ReportURL    string   `json:"report_url"`
		Target       string   `json:"target"`
		Digest       string   `json:"digest"`
		FinishedAt   string   `json:"finished_at"`
		At           string   `json:"at"`
		Events       []string `json:"events"`
	}
	changeDeployment struct {
		Environment  string          `json:"environment"`
		Service      string          `json:"service"`
		DeploymentID string          `json:"deployment_id"`
		Digest       string          `json:"digest"`
		Purl         string          `json:"purl"`
		Artifact     string          `json:"artifact"`
		Repository   string          `json:"repository"`
		Commit       string          `json:"commit"`
		RunID        string          `json:"run_id"`
		RunURL       string          `json:"run_url"`
		Pipeline     string          `json:"pipeline"`
		System       string          `json:"system"`
		Deployer     *changeIdentity `json:"deployer"`
		TriggeredBy  *changeIdentity `json:"triggered_by"`
		Trigger      string          `json:"trigger"`
		TicketKeys   []string        `json:"ticket_keys"`
		Change       int64           `json:"change"`
		StartedAt    string          `json:"started_at"`
		FinishedAt   string          `json:"finished_at"`
		Outcome      string          `json:"outcome"`
		MatchedBy    []string        `json:"matched_by"`
		Events       []string        `json:"events"`
	}
	changeException struct {
		ID      string `json:"id"`
		Control string `json:"control"`
		Status  string `json:"status"`
		Scope   struct {
			Repository  string `json:"repository"`
			Service     string `json:"service"`
			Environment string `json:"environment"`
			Change      int64  `json:"change"`
			Commit      string `json:"commit"`
			TicketKey   string `json:"ticket_key"`
		} `json:"scope"`
		Reason      string          `json:"reason"`
		RequestedBy *changeIdentity `json:"requested_by"`
		RequestedAt string          `json:"requested_at"`
		TicketKey   string          `json:"ticket_key"`
		Approver    *changeIdentity `json:"approver"`
		GrantedAt   string          `json:"granted_at"`
		ExpiresAt   string          `json:"expires_at"`
		Events      []string        `json:"events"`
	}
)

// recordWriter prints a record for people: sections, one item a line
// with its details indented below, and with events the event behind
// each item ("<source> <id>", as the record names them).
type recordWriter struct {
	w      io.Writer
	events bool
	roles  map[string][]string // commit -> its roles in the change
}

// writeRecord prints rec as text.
func writeRecord(w io.Writer, rec changeRecord, events bool) {
	p := &recordWriter{w: w, events: events, roles: map[string][]string{}}
	for _, c := range rec.Commits {
		p.roles[c.SHA] = c.Roles
	}
	p.line(0, "Change %s", rec.ID)
	p.field(2, "repository", rec.Repository)
	p.field(2, "commit", rec.Commit)
	switch {
	case rec.Unmatched:
		p.field(2, "FLAG", "UNMATCHED deployment: what was deployed matches no change record (no pull request, review or ticket known)")
	case rec.DirectPush:
		p.field(2, "FLAG", "DIRECT PUSH to the default branch: no pull request, no review")
	}

	p.section("Commits", len(rec.Commits))
	for _, c := range rec.Commits {
		p.line(2, "%s  %s", c.SHA, strings.Join(c.Roles, ", "))
	}

	if rec.PullRequest == nil {
		p.blank()
		if rec.DirectPush || rec.Unmatched {
			p.line(0, "Pull request: none")
		} else {
			p.line(0, "Pull request: not known yet")
		}
	} else {
		p.pullRequest(rec.PullRequest)
	}

	if len(rec.Pushes) > 0 {
		p.section("Pushes to the default branch", len(rec.Pushes))
		for _, x := range rec.Pushes {
			p.push(x)
		}
	}

	p.section("Tickets", len(rec.Tickets))
	for _, t := range rec.Tickets {
		p.ticket(t)
	}

	p.section("Pipeline runs", len(rec.Runs))
	for _, r := range rec.Runs {
		name := r.Pipeline
		if name == "" {
			name = "run"
		}
		p.line(2, "%s  run %s attempt %d  %s  on %s", name, r.RunID, r.Attempt, orElse(r.Outcome, "RUNNING (not finished)"), p.commit(r.Commit))
		p.field(4, "system", joinNonEmpty(", ", r.System, prefixed("trigger ", r.Trigger), prefixed("branch ", r.Branch), prefixed("tag ", r.Tag), prefixedNum("change #", r.Change)))
		if r.Repository != rec.Repository {
			p.field(4, "repository", r.Repository)
		}
		p.field(4, "actor", whoIs(r.Actor))
		p.field(4, "started", r.StartedAt)
		p.field(4, "finished", r.FinishedAt)
		p.field(4, "url", r.URL)
		p.refs(4, r.Events)
	}

	p.section("Artifacts", len(rec.Artifacts))
	for _, a := range rec.Artifacts {
		tags := ""
		if len(a.Tags) > 0 {
			tags = " (" + strings.Join(a.Tags, ", ") + ")"
		}
		p.line(2, "%s%s  built from %s", a.Name, tags, p.commit(a.Commit))
		p.field(4, "digest", a.Digest)
		p.field(4, "purl", a.Purl)
		if a.Repository != rec.Repository {
			p.field(4, "repository", a.Repository)
		}
		p.field(4, "run", runText(a.RunID, a.Pipeline, a.System, a.RunURL))
		p.field(4, "builder", whoIs(a.Builder))
		p.field(4, "built", orElse(a.BuiltAt, a.At))
		p.field(4, "attestation", a.AttestationURL)
		p.refs(4, a.Events)
	}

	p.section("Tests", len(rec.Tests))
	for _, t := range rec.Tests {
		p.line(2, "%s  %s  on %s  %d tests: %d passed, %d failed, %d errors, %d skipped",
			t.Suite, t.Outcome, p.commit(t.Commit), t.Tests, t.Passed, t.Failed, t.Errors, t.Skipped)
		p.field(4, "run", runText(t.RunID, t.Pipeline, t.System, t.RunURL))
		p.field(4, "finished", orElse(t.FinishedAt, t.At))
		if t.DurationSeconds > 0 {
			p.field(4, "duration", strconv.FormatFloat(t.DurationSeconds, 'f', -1, 64)+"s")
		}
		p.field(4, "report", t.ReportFormat)
		for _, f := range t.Failures {
			p.field(4, "failure", joinNonEmpty(": ", f.Name, f.Message))
		}
		p.refs(4, t.Events)
	}

	p.section("Scans", len(rec.Scans))
	for _, s := range rec.Scans {
		f := s.Findings
		p.line(2, "%s  %s  on %s  findings: %d critical, %d high, %d medium, %d low, %d none",
			joinNonEmpty(" ", s.Tool, s.ToolVersion, "("+s.Category+")"), orElse(s.Outcome, "no outcome"), p.commit(s.Commit),
			f.Critical, f.High, f.Medium, f.Low, f.None)
		target := s.Target
		if s.Digest != "" {
			target = joinNonEmpty(" ", target, "("+s.Digest+")")
		}
		p.field(4, "target", target)
		p.field(4, "run", runText(s.RunID, s.Pipeline, s.System, s.RunURL))
		p.field(4, "finished", orElse(s.FinishedAt, s.At))
		p.field(4, "report", joinNonEmpty(" ", s.ReportFormat, s.ReportURL))
		p.refs(4, s.Events)
	}

	p.section("Deployments", len(rec.Deployments))
	for _, d := range rec.Deployments {
		matched := "matched by " + strings.Join(d.MatchedBy, ", ")
		if len(d.MatchedBy) == 0 {
			matched = "UNMATCHED"
		}
		p.line(2, "%s/%s  %s  %s", d.Environment, d.Service, orElse(d.Outcome, "IN PROGRESS (not finished)"), matched)
		p.field(4, "deployment", d.DeploymentID)
		p.field(4, "artifact", d.Artifact)
		p.field(4, "digest", d.Digest)
		p.field(4, "purl", d.Purl)
		if d.Commit != "" {
			c := p.commit(d.Commit)
			if d.Repository != "" && d.Repository != rec.Repository {
				c = d.Repository + "@" + c
			}
			p.field(4, "commit", c)
		}
		p.field(4, "deployer", whoIs(d.Deployer))
		// Beside a pipeline deployer: who started its run, and how.
		if d.TriggeredBy != nil {
			p.field(4, "triggered by", joinNonEmpty(" ", whoIs(d.TriggeredBy), parenthesized(d.Trigger)))
		} else {
			p.field(4, "trigger", d.Trigger)
		}
		p.field(4, "run", runText(d.RunID, d.Pipeline, d.System, d.RunURL))
		p.field(4, "tickets", strings.Join(d.TicketKeys, ", "))
		p.field(4, "change", prefixedNum("#", d.Change))
		p.field(4, "started", d.StartedAt)
		p.field(4, "finished", d.FinishedAt)
		p.refs(4, d.Events)
	}

	p.section("Exceptions", len(rec.Exceptions))
	for _, e := range rec.Exceptions {
		status := e.Status
		if status == "requested" {
			status = "REQUESTED (not granted)"
		}
		p.line(2, "%s  %s  %s", e.ID, e.Control, joinNonEmpty("  ", status, prefixed("expires ", e.ExpiresAt)))
		sc := e.Scope
		p.field(4, "scope", joinNonEmpty(", ", prefixed("repository ", sc.Repository), prefixed("service ", sc.Service),
			prefixed("environment ", sc.Environment), prefixedNum("change #", sc.Change), prefixed("commit ", shortSHA(sc.Commit)),
			prefixed("ticket ", sc.TicketKey)))
		p.field(4, "reason", e.Reason)
		p.field(4, "requested", joinNonEmpty(" by ", e.RequestedAt, whoIs(e.RequestedBy)))
		p.field(4, "granted", joinNonEmpty(" by ", e.GrantedAt, whoIs(e.Approver)))
		p.field(4, "ticket", e.TicketKey)
		p.refs(4, e.Events)
	}
}

func (p *recordWriter) pullRequest(pr *changePullRequest) {
	p.blank()
	p.line(0, "Pull request #%d  %s", pr.Number, pr.Title)
	p.field(2, "url", pr.URL)
	p.field(2, "author", whoIs(pr.Author))
	branches := pr.SourceBranch
	if pr.SourceRepository != "" {
		branches = pr.SourceRepository + ":" + branches
	}
	p.field(2, "branches", joinNonEmpty(" -> ", branches, pr.TargetBranch))
	p.field(2, "base commit", shortSHA(pr.BaseCommit))
	p.field(2, "opened", pr.OpenedAt)
	merged := "NOT MERGED"
	if pr.MergeCommit != "" || pr.MergedAt != "" {
		merged = joinNonEmpty(", ", joinNonEmpty(" by ", orElse(pr.MergedAt, "(time unknown)"), whoIs(pr.MergedBy)), prefixed("method ", pr.Method))
	}
	p.field(2, "merged", merged)
	p.field(2, "merge commit", shortSHA(pr.MergeCommit))
	p.field(2, "final head", shortSHA(pr.HeadCommit))
	p.refs(2, pr.Events)
	p.sub(2, "heads", len(pr.Heads))
	for _, h := range pr.Heads {
		after := ""
		if h.Previous != "" {
			after = "(after " + shortSHA(h.Previous) + ")"
		}
		p.line(4, "%s", joinNonEmpty("  ", shortSHA(h.Commit), h.Via, h.At, prefixed("by ", whoIs(h.By)), after))
		p.refs(6, h.Events)
	}
	p.sub(2, "reviews", len(pr.Reviews))
	for _, r := range pr.Reviews {
		var marks []string
		if r.Stale {
			marks = append(marks, "STALE (given on an earlier head, not the final one)")
		}
		if r.Dismissed {
			marks = append(marks, "DISMISSED (a later dismissal withdraws it)")
		}
		if r.Superseded {
			marks = append(marks, "SUPERSEDED (the reviewer's later approval or request for changes replaces it)")
		}
		if r.DismissedBy != nil {
			marks = append(marks, "dismissed by "+whoIs(r.DismissedBy))
		}
		reviewer := whoIs(&r.Reviewer)
		if pr.Author != nil && r.Reviewer.Login == pr.Author.Login {
			reviewer += ", the author"
		}
		p.line(4, "%s", joinNonEmpty("  ", r.Decision, reviewer, "on "+p.headOf(r.HeadCommit, pr.HeadCommit), r.At, strings.Join(marks, ", ")))
		p.field(6, "review", joinNonEmpty(" ", r.ReviewID, r.URL))
		p.refs(6, r.Events)
	}
}

func (p *recordWriter) push(x changePush) {
	ref := x.Ref
	if x.DefaultBranch != "" {
		ref += " (default branch " + x.DefaultBranch + ")"
	}
	forced := ""
	if x.Forced {
		forced = "FORCED"
	}
	p.line(2, "%s", joinNonEmpty("  ", ref, joinNonEmpty(" -> ", shortSHA(x.Before), shortSHA(x.After)), prefixed("by ", whoIs(x.Pusher)), x.At, forced))
	p.field(4, "provider", joinNonEmpty(", ", x.Provider, prefixed("delivery ", x.DeliveryID)))
	p.field(4, "payload", prefixed("sha256 ", x.PayloadSHA256))
	for _, c := range x.Commits {
		msg, _, _ := strings.Cut(c.Message, "\n")
		p.field(4, "commit", joinNonEmpty("  ", shortSHA(c.SHA), whoIs(c.Author), c.Timestamp, msg, prefixed("tickets ", strings.Join(c.TicketKeys, ", "))))
	}
	p.refs(4, x.Events)
}

func (p *recordWriter) ticket(t changeTicket) {
	if t.System == "" && t.Status == "" && len(t.History) == 0 && len(t.Approvals) == 0 && len(t.Rejections) == 0 {
		p.line(2, "%s  known only by its key (no event of the ticket seen yet)", t.Key)
		p.field(4, "found in", strings.Join(t.FoundIn, ", "))
		return
	}
	kind := t.Type
	if t.RawType != "" {
		kind = joinNonEmpty(" ", kind, "("+t.System+" "+strconv.Quote(t.RawType)+")")
	} else if t.System != "" {
		kind = joinNonEmpty(" ", kind, "("+t.System+")")
	}
	p.line(2, "%s", joinNonEmpty("  ", t.Key, kind, prefixed("status ", t.Status)))
	p.field(4, "found in", strings.Join(t.FoundIn, ", "))
	p.field(4, "summary", t.Summary)
	p.field(4, "url", t.URL)
	p.field(4, "requested by", whoIs(t.RequestedBy))
	p.field(4, "created", t.CreatedAt)
	if w := t.PlannedWindow; w != nil {
		p.field(4, "planned", joinNonEmpty(" to ", orElse(w.Start, "?"), orElse(w.End, "?")))
	}
	p.sub(4, "history", len(t.History))
	for _, h := range t.History {
		status := h.Status
		if h.Previous != "" {
			status = h.Previous + " -> " + status
		}
		p.line(6, "%s", joinNonEmpty("  ", h.At, h.Action, status, prefixed("by ", whoIs(h.By))))
		p.refs(8, h.Events)
	}
	p.sub(4, "approvals", len(t.Approvals))
	for _, a := range t.Approvals {
		p.approval(a)
	}
	if len(t.Rejections) > 0 {
		p.sub(4, "REJECTIONS", len(t.Rejections))
		for _, a := range t.Rejections {
			p.approval(a)
		}
	}
}

func (p *recordWriter) approval(a changeApproval) {
	p.line(6, "%s", joinNonEmpty("  ", a.At, whoIs(&a.By), prefixed("group ", a.Group), a.Status))
	p.field(8, "comment", a.Comment)
	p.field(8, "reason", a.Reason)
	p.refs(8, a.Events)
}

// section starts a section: its title and count, or "none".
func (p *recordWriter) section(title string, n int) {
	p.blank()
	if n == 0 {
		p.line(0, "%s: none", title)
		return
	}
	p.line(0, "%s (%d)", title, n)
}

// sub starts a list within an item: its title and count, or "none".
func (p *recordWriter) sub(indent int, title string, n int) {
	if n == 0 {
		p.line(indent, "%s: none", title)
		return
	}
	p.line(indent, "%s (%d)", title, n)
}

func (p *recordWriter) blank() { fmt.Fprintln(p.w) }

func (p *recordWriter) line(indent int, format string, a ...any) {
	fmt.Fprintf(p.w, "%s%s\n", strings.Repeat(" ", indent), strings.TrimRight(fmt.Sprintf(format, a...), " "))
}

// field prints "label  value", labels aligned; nothing when value is empty.
func (p *recordWriter) field(indent int, label, value string) {
	if value == "" {
		return
	}
	p.line(indent, "%-13s %s", label, value)
}

// refs prints the events behind an item, with --events.
func (p *recordWriter) refs(indent int, events []string) {
	if !p.events {
		return
	}
	for _, e := range events {
		p.line(indent, "event: %s", e)
	}
}

// commit is a short SHA with the roles the commit plays in the change.
func (p *recordWriter) commit(sha string) string {
	if sha == "" {
		return "(commit unknown)"
	}
	if roles := p.roles[sha]; len(roles) > 0 {
		return shortSHA(sha) + " (" + strings.Join(roles, ", ") + ")"
	}
	return shortSHA(sha)
}

// headOf names the head a review was given on, saying whether it is the
// final one.
func (p *recordWriter) headOf(sha, final string) string {
	if sha != "" && sha == final {
		return shortSHA(sha) + " (final head)"
	}
	return shortSHA(sha)
}

// short abbreviates a commit SHA to 12 digits (the Commits section has
// them in full).
func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// who is "login (Name <email>, type)", the parts that are known; type is
// shown when it is not "user" (a service account deploying is what CM-3
// calls automated).
func whoIs(id *changeIdentity) string {
	if id == nil {
		return ""
	}
	var parts []string
	switch {
	case id.Name != "" && id.Email != "":
		parts = append(parts, id.Name+" <"+id.Email+">")
	case id.Name != "":
		parts = append(parts, id.Name)
	case id.Email != "":
		parts = append(parts, "<"+id.Email+">")
	}
	if id.Type != "" && id.Type != "user" {
		parts = append(parts, id.Type)
	}
	login := orElse(id.Login, "(unknown)")
	if len(parts) == 0 {
		return login
	}
	return login + " (" + strings.Join(parts, ", ") + ")"
}

func runText(id, pipeline, system, runURL string) string {
	if id == "" && runURL == "" {
		return ""
	}
	detail := joinNonEmpty(", ", pipeline, system)
	if detail != "" {
		detail = "(" + detail + ")"
	}
	return joinNonEmpty("  ", joinNonEmpty(" ", id, detail), runURL)
}

// joinNonEmpty joins the non-empty parts.
func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, sep)
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

func prefixedNum(prefix string, n int64) string {
	if n == 0 {
		return ""
	}
	return prefix + strconv.FormatInt(n, 10)
}

// parenthesized is "(s)", or "" for an empty s.
func parenthesized(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}
