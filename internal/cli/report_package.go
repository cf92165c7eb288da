package cli

import "context"

// runVerifyPackage is being built; this placeholder is replaced by its implementation.
func runVerifyPackage(_ context.Context, _ []string, env Env) int {
	return fail(env, ExitFail, "evidence verify package: not built yet")
}
