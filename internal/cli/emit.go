package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/evidencepipeline/evidence/internal/ce"
	"io"
	"os"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"github.com/evidencepipeline/evidence/producers/emitter"
)

func runEmit(ctx context.Context, args []string, env Env) int {
	if len(args) > 0 {
		if sub, ok := ciSubcommands[args[0]]; ok {
			return sub(ctx, args[1:], env)
		}
	}
	if flushRequested(args) {
		return runFlush(ctx, args, env)
	}
	fs := flagSet("emit", env)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: evidence emit pipeline|artifact|test|scan|deploy [flags]   (from CI; see evidence emit SUB -help)")
		fmt.Fprintln(env.Stderr, "       evidence emit --flush [--spool-dir DIR]                     (send the spooled events)")
		fmt.Fprintln(env.Stderr, "       evidence emit --type TYPE --source SOURCE [--subject S] [--id ID] [--data JSON | --data-file FILE|-] [flags]")
		fmt.Fprintln(env.Stderr, "\nSends one CloudEvent to evidenced, retrying with backoff while it is unreachable.")
		fs.PrintDefaults()
	}
	server := serverFlag(fs, env)
	typ := fs.String("type", "", "CloudEvents type, e.g. dev.evidencepipeline.pipelinerun.finished.v1 (required)")
	source := fs.String("source", "", "CloudEvents source, a URI-reference naming the producer (required)")
	subject := fs.String("subject", "", "CloudEvents subject")
	id := fs.String("id", "", "event id, unique per source (default: a random UUID); re-sending the same id stores it once")
	data := fs.String("data", "", "event data, JSON")
	dataFile := fs.String("data-file", "", "read the event data from FILE (- for standard input)")
	contentType := fs.String("content-type", "application/json", "datacontenttype of the data")
	at := fs.String("time", "", "event time, RFC 3339 (default: now)")
	attempts := fs.Int("attempts", 5, "most tries before giving up")
	timeout := fs.Duration("timeout", 2*time.Minute, "give up after this long in all")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "unexpected argument %q", fs.Arg(0))
	}
	var missing []string
	if *typ == "" {
		missing = append(missing, "--type")
	}
	if *source == "" {
		missing = append(missing, "--source")
	}
	if len(missing) > 0 {
		return fail(env, ExitUsage, "emit: %s required", strings.Join(missing, " and "))
	}
	if *data != "" && *dataFile != "" {
		return fail(env, ExitUsage, "emit: give --data or --data-file, not both")
	}
	ev := event.New()
	ev.SetType(*typ)
	ev.SetSource(*source)
	if *subject != "" {
		ev.SetSubject(*subject)
	}
	if *id == "" {
		*id = uuid.NewString()
	}
	ev.SetID(*id)
	t := time.Now().UTC()
	if *at != "" {
		p, err := ce.ParseTime(*at)
		if err != nil {
			return fail(env, ExitUsage, "emit: --time: %v", err)
		}
		t = p
	}
	ev.SetTime(t)
	payload := []byte(*data)
	if *dataFile != "" {
		var err error
		payload, err = readFileOrStdin(*dataFile, env)
		if err != nil {
			return fail(env, ExitUsage, "emit: --data-file: %v", err)
		}
	}
	if len(payload) > 0 {
		if strings.Contains(*contentType, "json") {
			if !json.Valid(payload) {
				return fail(env, ExitUsage, "emit: the data is not valid JSON (use --content-type for other data)")
			}
			if err := ev.SetData(*contentType, json.RawMessage(payload)); err != nil {
				return fail(env, ExitUsage, "emit: data: %v", err)
			}
		} else if err := ev.SetData(*contentType, payload); err != nil {
			return fail(env, ExitUsage, "emit: data: %v", err)
		}
	}
	if err := ev.Validate(); err != nil {
		return fail(env, ExitUsage, "emit: %v", err)
	}
	if err := admit(ev); err != nil {
		// Refused here, not spooled: the server would refuse it too.
		return fail(env, ExitUsage, "emit: %v (the server's input rules: docs/api.md)", err)
	}
	c := emitter.New(*server, env.Getenv("EVIDENCE_TOKEN"))
	c.Attempts = *attempts
	c.OnRetry = func(n int, err error, wait time.Duration) {
		fmt.Fprintf(env.Stderr, "evidence: attempt %d failed (%v); retrying in %s\n", n, err, wait.Round(time.Millisecond))
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	res, err := c.Send(ctx, ev)
	switch {
	case err == nil:
	case errors.Is(err, emitter.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return fail(env, ExitFail, "emit: could not deliver the event to %s: %v", *server, err)
	default:
		return fail(env, ExitFail, "emit: %v", err)
	}
	if len(res.Events) == 1 {
		r := res.Events[0]
		state := "stored"
		if r.Duplicate {
			state = "already stored"
		}
		fmt.Fprintf(env.Stdout, "%s: %s id=%s source=%s seq=%d\n", state, *typ, r.ID, r.Source, r.Seq)
	}
	return ExitOK
}

func readFileOrStdin(name string, env Env) ([]byte, error) {
	if name == "-" {
		if env.Stdin == nil {
			return nil, errors.New("no standard input")
		}
		return io.ReadAll(env.Stdin)
	}
	return os.ReadFile(name)
}

// admit applies the door's input rules (ce.Event.Admit: bounds, time
// range, strict JSON) to an event before it is sent or spooled.
func admit(ev event.Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return err
	}
	e, err := ce.ParseJSON(b)
	if err != nil {
		return err
	}
	return e.Admit()
}
