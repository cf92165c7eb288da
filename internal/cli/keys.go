package cli

import "context"

// runKeys is being built; this placeholder is replaced by its implementation.
func runKeys(_ context.Context, _ []string, env Env) int {
	return fail(env, ExitFail, "evidence keys: not built yet")
}
