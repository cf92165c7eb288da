package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// runVerifyChain is evidence verify [--from --to | --from-seq --to-seq]
// [--nats-url]: the archive's hash chain recomputed from ClickHouse and
// checked against the signed checkpoints, those of the ClickHouse table,
// or with --nats-url those of the JetStream stream EVIDENCE_CHECKPOINTS
// after comparing the table with it. Exit 0 intact, 1 tampered, 2 usage or
// connection errors.
func runVerifyChain(ctx context.Context, args []string, env Env) int {
	fs := flagSet("verify", env)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: evidence verify --public-key FILE|DIR [--from T --to T | --from-seq N --to-seq N] [--clickhouse-url URL] [--nats-url URL [--nats-creds FILE]]")
		fmt.Fprintln(env.Stderr, "       evidence verify package FILE.zip")
		fmt.Fprintln(env.Stderr, "\nRecomputes the archive's hash chain from ClickHouse and checks it against the signed")
		fmt.Fprintln(env.Stderr, "checkpoints; names the first row altered, deleted or inserted. Times are RFC 3339 or dates")
		fmt.Fprintln(env.Stderr, "(YYYY-MM-DD; --to DATE includes that day), compared with when events were archived.")
		fmt.Fprintln(env.Stderr, "With --nats-url the checkpoints are read from the JetStream stream EVIDENCE_CHECKPOINTS")
		fmt.Fprintln(env.Stderr, "(which denies deletes), compared with the ClickHouse table, and the chain is checked against them.")
		fmt.Fprintln(env.Stderr, "Exit 0 intact, 1 tampered, 2 usage or connection error. See docs/tamper-evidence.md.")
		fs.PrintDefaults()
	}
	defURL := env.Getenv("EVIDENCE_CLICKHOUSE_URL")
	if defURL == "" {
		defURL = "clickhouse://127.0.0.1:9000/evidence"
	}
	chURL := fs.String("clickhouse-url", defURL, "ClickHouse, as the read-only auditor user: clickhouse://auditor:PASSWORD@host:9000/evidence (env EVIDENCE_CLICKHOUSE_URL)")
	var pubs stringList
	fs.Var(&pubs, "public-key", "public key file (.pub) or directory of them that checkpoints may be signed with; repeatable (required)")
	from := fs.String("from", "", "first day or instant of the period (RFC 3339 or YYYY-MM-DD)")
	to := fs.String("to", "", "end of the period: a date includes that day, an instant is excluded")
	fromSeq := fs.Uint64("from-seq", 0, "first stream_seq to check (instead of --from)")
	toSeq := fs.Uint64("to-seq", 0, "last stream_seq to check (instead of --to)")
	natsURL := fs.String("nats-url", env.Getenv("EVIDENCE_NATS_URL"), "NATS server holding the stream EVIDENCE_CHECKPOINTS, nats://[user:password@]host:4222: check against its checkpoints, read-only (env EVIDENCE_NATS_URL)")
	natsCreds := fs.String("nats-creds", env.Getenv("EVIDENCE_NATS_CREDS"), "NATS credentials file (JWT and nkey seed) for --nats-url (env EVIDENCE_NATS_CREDS)")
	wf := witnessFlags(fs)
	held := fs.String("witnessed-checkpoint", "", "with --witnesses: a log checkpoint cosigned by the witnesses that you hold (default: the newest such in ClickHouse)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "verify: unexpected argument %q", fs.Arg(0))
	}
	if len(pubs) == 0 {
		return fail(env, ExitUsage, "verify: --public-key is required: the public key(s) the checkpoints are signed with, handed to you out of band")
	}
	keys := verify.PublicKeys{}
	for _, p := range pubs {
		k, err := verify.LoadPublicKeys(p)
		if err != nil {
			return fail(env, ExitUsage, "verify: --public-key: %v", err)
		}
		for id, pub := range k {
			keys[id] = pub
		}
	}
	if (*from != "" || *to != "") && (*fromSeq != 0 || *toSeq != 0) {
		return fail(env, ExitUsage, "verify: give --from/--to or --from-seq/--to-seq, not both")
	}
	if *toSeq != 0 && *toSeq < *fromSeq {
		return fail(env, ExitUsage, "verify: --to-seq %d is before --from-seq %d", *toSeq, *fromSeq)
	}
	var fromT, toT time.Time
	var err error
	if *from != "" {
		if fromT, err = parsePeriodBound(*from, false); err != nil {
			return fail(env, ExitUsage, "verify: --from: %v", err)
		}
	}
	if *to != "" {
		if toT, err = parsePeriodBound(*to, true); err != nil {
			return fail(env, ExitUsage, "verify: --to: %v", err)
		}
	}
	if !fromT.IsZero() && !toT.IsZero() && !toT.After(fromT) {
		return fail(env, ExitUsage, "verify: --to %s is not after --from %s", *to, *from)
	}
	wkeys, err := wf.keys()
	if err != nil {
		return fail(env, ExitUsage, "verify: %v", err)
	}
	if *wf.need == 0 && (len(wkeys) > 0 || *held != "") {
		return fail(env, ExitUsage, "verify: --witness and --witnessed-checkpoint need --witnesses N (how many of the witnesses must have cosigned)")
	}
	if *natsCreds != "" {
		if *natsURL == "" {
			return fail(env, ExitUsage, "verify: --nats-creds is for --nats-url, which is not given")
		}
		if _, err := os.Stat(*natsCreds); err != nil {
			return fail(env, ExitUsage, "verify: --nats-creds: %v", err)
		}
	}

	st, err := store.OpenReadOnly(ctx, *chURL, nil)
	if err != nil {
		return fail(env, ExitUsage, "verify: --clickhouse-url %s: %v", store.Redacted(*chURL), err)
	}
	defer st.Close()
	conn := st.Conn()
	opts := verify.Options{FromSeq: *fromSeq, ToSeq: *toSeq, Keys: keys}
	if !fromT.IsZero() || !toT.IsZero() {
		if opts.FromSeq, opts.ToSeq, err = verify.SeqRange(ctx, conn, fromT, toT); err != nil {
			return fail(env, ExitUsage, "verify: %v", err)
		}
	}
	var sc *verify.StreamCheckpoints
	if *natsURL != "" {
		// Read the stream before the table: evidenced publishes a
		// checkpoint before it stores it, so every checkpoint of the table
		// read afterwards is in what was read, but for those made meanwhile.
		if sc, err = readCheckpointStream(ctx, *natsURL, *natsCreds); err != nil {
			return fail(env, ExitUsage, "verify: --nats-url %s: %v", redactNATS(*natsURL), err)
		}
	}
	prog := newProgress(env.Stderr)
	opts.Progress = prog.report
	var res *verify.Result
	var cmp *verify.StreamComparison
	if sc != nil {
		res, cmp, err = verify.VerifyWithStream(ctx, conn, opts, sc)
	} else {
		res, err = verify.Verify(ctx, conn, opts)
	}
	prog.done()
	if err != nil {
		return fail(env, ExitUsage, "verify: %v", err)
	}
	var wr witnessedResult
	if *wf.need > 0 {
		if wr, err = checkWitnessed(ctx, conn, keys, wkeys, *wf.need, *held); err != nil {
			return fail(env, ExitUsage, "verify: --witnesses: %v", err)
		}
		for _, p := range wr.problems {
			fmt.Fprintln(env.Stdout, p)
		}
	}
	if len(wr.problems) > 0 && res.OK() {
		// The chain is intact by itself, but not the history the
		// witnesses cosigned: not "intact".
		res.Problems = append(res.Problems, verify.Problem{Message: "the chain is consistent with its own checkpoints, but not with what the witnesses cosigned (above)"})
	}
	printVerifyResult(env.Stdout, res, keys, cmp, redactNATS(*natsURL), wr.lines...)
	if !res.OK() || len(wr.problems) > 0 {
		return ExitFail
	}
	return ExitOK
}

// parsePeriodBound reads RFC 3339 or a date (UTC); a date as an end bound
// means the end of that day.
func parsePeriodBound(v string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	t, err := time.Parse("2006-01-02", v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-01-31T00:00:00Z) nor a date (2026-01-31)", v)
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// readCheckpointStream connects to NATS as the auditor's user and reads
// EVIDENCE_CHECKPOINTS. A permissions violation ends the read at once,
// naming the subject refused.
func readCheckpointStream(ctx context.Context, natsURL, creds string) (*verify.StreamCheckpoints, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	opts := []nats.Option{nats.Name("evidence verify"), nats.Timeout(5 * time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				cancel(fmt.Errorf("%w: the user needs the read-only permissions in docs/tamper-evidence.md", err))
			}
		})}
	if creds != "" {
		opts = append(opts, nats.UserCredentials(creds))
	}
	nc, err := nats.Connect(natsURL, opts...)
	if err != nil {
		return nil, err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	return verify.ReadStream(ctx, js)
}

// redactNATS hides the passwords of a NATS URL (or comma-separated list).
func redactNATS(s string) string {
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			if _, has := u.User.Password(); has {
				parts[i] = u.Redacted()
			} else {
				u.User = url.User("xxxxx") // a token
				parts[i] = u.String()
			}
		}
	}
	return strings.Join(parts, ",")
}

// printVerifyResult writes the findings and the summary; cmp is the
// comparison with the stream at natsURL, nil when the checkpoints were
// read from ClickHouse only.
func printVerifyResult(w io.Writer, res *verify.Result, keys verify.PublicKeys, cmp *verify.StreamComparison, natsURL string, witnessed ...string) {
	ts := func(c *verify.Checkpoint) string { return c.Created().Format(time.RFC3339) }
	if !res.OK() {
		for _, p := range res.Problems {
			fmt.Fprintf(w, "TAMPERED: %s\n", p.Message)
		}
	}
	switch {
	case res.Anchor != nil:
		fmt.Fprintf(w, "started from: checkpoint at seq %d (%d events, made %s, key %s)\n", res.Anchor.Seq, res.Anchor.Count, ts(res.Anchor), res.Anchor.KeyID)
	default:
		fmt.Fprintln(w, "started from: the first row of the chain")
	}
	if res.Events == 0 {
		fmt.Fprintln(w, "events checked: 0")
	} else {
		fmt.Fprintf(w, "events checked: %d (stream_seq %d..%d)\n", res.Events, res.FirstSeq, res.LastSeq)
	}
	fmt.Fprintf(w, "checkpoints checked: %d (keys: %s)\n", res.Checkpoints, strings.Join(keys.IDs(), ", "))
	if cmp == nil {
		fmt.Fprintln(w, "checkpoints from: ClickHouse only, not compared with the stream EVIDENCE_CHECKPOINTS (give --nats-url: checkpoints deleted from ClickHouse together with a rewrite of the rows they signed are only seen that way)")
	} else {
		end := "head"
		if cmp.ToSeq > 0 {
			end = fmt.Sprint(cmp.ToSeq)
		}
		fmt.Fprintf(w, "checkpoints from: stream EVIDENCE_CHECKPOINTS at %s, compared with ClickHouse for stream_seq %d..%s: %d in the stream, %d in ClickHouse, %d identical\n",
			natsURL, cmp.FromSeq, end, cmp.Stream, cmp.Table, cmp.Identical)
		if cmp.Later > 0 {
			fmt.Fprintf(w, "note: %d checkpoints of ClickHouse were made after the stream was read and not compared\n", cmp.Later)
		}
	}
	if c := res.LastSigned; c != nil {
		fmt.Fprintf(w, "last signed head: stream_seq %d, %d events, hash %s, made %s, key %s\n", c.Seq, c.Count, c.Head, ts(c), c.KeyID)
	} else {
		fmt.Fprintln(w, "last signed head: none in range")
	}
	if res.OK() {
		if res.Unsigned > 0 {
			fmt.Fprintf(w, "note: the last %d rows checked (up to stream_seq %d) come after the last checkpoint: they are checked against each other only; deleting the newest of them, or adding rows after them, is not detectable until a checkpoint signs them\n", res.Unsigned, res.LastSeq)
		}
		for _, l := range witnessed {
			fmt.Fprintln(w, l)
		}
		fmt.Fprintln(w, "intact")
	}
}

// progress writes a one-line counter to a terminal (nothing otherwise).
type progress struct {
	w     io.Writer
	start time.Time
	shown bool
}

func newProgress(w io.Writer) *progress {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return &progress{w: w, start: time.Now()}
		}
	}
	return &progress{}
}

func (p *progress) report(pr verify.Progress) {
	if p.w == nil {
		return
	}
	rate := float64(pr.Events) / time.Since(p.start).Seconds()
	end := "head"
	if pr.LastSeq > 0 {
		end = fmt.Sprint(pr.LastSeq)
	}
	fmt.Fprintf(p.w, "\rverifying: %d events, stream_seq %d of %s, %.0f events/s   ", pr.Events, pr.Seq, end, rate)
	p.shown = true
}

func (p *progress) done() {
	if p.shown {
		fmt.Fprintln(p.w)
	}
}
