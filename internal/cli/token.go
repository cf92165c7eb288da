package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/evidencepipeline/evidence/internal/auth"
)

func runToken(ctx context.Context, args []string, env Env) int {
	const use = "usage: evidence token new --role producer|gate|auditor|admin --name NAME"
	if isHelp(args) {
		fmt.Fprintln(env.Stderr, use)
		return ExitOK
	}
	if len(args) == 0 {
		return fail(env, ExitUsage, use)
	}
	if args[0] != "new" {
		return fail(env, ExitUsage, "token: unknown subcommand %q: want new\n%s", args[0], use)
	}
	fs := flagSet("token new", env)
	role := fs.String("role", "", "producer, gate, auditor or admin (required)")
	name := fs.String("name", "", "whose token it is, one word, e.g. ci-payments (required)")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	r, err := auth.ParseRole(*role)
	if err != nil {
		return fail(env, ExitUsage, "token new: --role: %v", err)
	}
	if *name == "" || strings.ContainsAny(*name, " \t\n#") {
		return fail(env, ExitUsage, "token new: --name is required, one word without spaces or #")
	}
	tok, err := auth.NewToken()
	if err != nil {
		return fail(env, ExitFail, "token new: %v", err)
	}
	fmt.Fprintf(env.Stdout, "token: %s\n", tok)
	fmt.Fprintf(env.Stdout, "tokens file line: %s %s %s\n", r, auth.Hash(tok), *name)
	fmt.Fprintln(env.Stderr, "Give the token to its user (it is shown once); add the line to evidenced's --tokens-file and restart evidenced.")
	return ExitOK
}
