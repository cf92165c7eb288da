package cli

import "context"

// runVerifyChain is being built; this placeholder is replaced by its implementation.
func runVerifyChain(_ context.Context, _ []string, env Env) int {
	return fail(env, ExitFail, "evidence verify (hash chain): not built yet")
}
