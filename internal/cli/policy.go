package cli

import "context"

// runPolicy is being built; this placeholder is replaced by its implementation.
func runPolicy(_ context.Context, _ []string, env Env) int {
	return fail(env, ExitFail, "evidence policy: not built yet")
}
