package cli

import "context"

// runReport is being built; this placeholder is replaced by its implementation.
func runReport(_ context.Context, _ []string, env Env) int {
	return fail(env, ExitFail, "evidence report: not built yet")
}
