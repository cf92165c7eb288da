package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/producers/emitter"
)

// flushRequested reports whether the emit arguments ask for --flush
// (-flush, --flush=true, ...), before any "--" terminator.
func flushRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "flush" {
			continue
		}
		if !hasVal {
			return true
		}
		b, err := strconv.ParseBool(val)
		return err != nil || b // a bad value: let the flag parser say so
	}
	return false
}

// runFlush is `evidence emit --flush`: it sends the spooled events in
// order, deleting each file once stored, and moving a refused one to
// SPOOL/refused/ with its reason.
func runFlush(ctx context.Context, args []string, env Env) int {
	fs := flagSet("emit --flush", env)
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: evidence emit --flush [--spool-dir DIR] [--server URL]")
		fmt.Fprintln(env.Stderr, "\nSends the events spooled while evidenced was unreachable, oldest first. A stored event is")
		fmt.Fprintln(env.Stderr, "deleted from the spool; a refused one is moved to DIR/refused/ with its reason in NAME.reason.")
		fmt.Fprintln(env.Stderr, "Exit 1 when events remain (evidenced still unreachable) or were refused.")
		fs.PrintDefaults()
	}
	fs.Bool("flush", true, "send the spooled events")
	server := serverFlag(fs, env)
	def := env.Getenv("EVIDENCE_SPOOL_DIR")
	if def == "" {
		def = defaultSpoolDir
	}
	dir := fs.String("spool-dir", def, "the spool directory (env EVIDENCE_SPOOL_DIR)")
	attempts := fs.Int("attempts", 5, "most tries per spooled send before stopping")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long in all")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "emit --flush: unexpected argument %q", fs.Arg(0))
	}
	c := emitter.New(*server, env.Getenv("EVIDENCE_TOKEN"))
	c.Attempts = *attempts
	c.OnRetry = func(n int, err error, wait time.Duration) {
		fmt.Fprintf(env.Stderr, "evidence: attempt %d failed (%v); retrying in %s\n", n, err, wait.Round(time.Millisecond))
	}
	refusedDir := filepath.Join(*dir, emitter.RefusedDir)
	sp := emitter.Spool{Dir: *dir, OnFlush: func(f emitter.FlushedFile) {
		switch f.State {
		case emitter.FlushSent:
			stored, dup := 0, 0
			if f.Result != nil {
				stored, dup = f.Result.Stored, f.Result.Duplicates
			}
			fmt.Fprintf(env.Stdout, "sent: %s (%d event(s): %d stored, %d already stored)\n", f.Name, f.Events, stored, dup)
		case emitter.FlushRefused:
			fmt.Fprintf(env.Stdout, "refused: %s -> %s: %v\n", f.Name, filepath.Join(refusedDir, f.Name), f.Err)
		case emitter.FlushKept:
			fmt.Fprintf(env.Stdout, "kept: %s: %v\n", f.Name, f.Err)
		}
	}}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	sent, refused, ferr := sp.Flush(ctx, c)
	pending, perr := sp.Pending()
	if perr != nil && ferr == nil {
		ferr = perr
	}
	fmt.Fprintf(env.Stdout, "flushed %s: sent %d, kept %d, refused %d\n", *dir, sent, len(pending), refused)
	switch {
	case ferr != nil && (errors.Is(ferr, emitter.ErrUnavailable) || errors.Is(ferr, context.DeadlineExceeded)):
		return fail(env, ExitFail, "emit --flush: evidenced at %s unavailable; %d file(s) kept in %s, run evidence emit --flush again later", *server, len(pending), *dir)
	case ferr != nil:
		return fail(env, ExitFail, "emit --flush: %v", ferr)
	case refused > 0:
		return fail(env, ExitFail, "emit --flush: %d file(s) refused by evidenced, kept in %s with the reasons", refused, refusedDir)
	case len(pending) > 0:
		return fail(env, ExitFail, "emit --flush: %d file(s) remain in %s", len(pending), *dir)
	}
	return ExitOK
}
