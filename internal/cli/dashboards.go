package cli

import "context"

// runDashboards is being built; this placeholder is replaced by its implementation.
func runDashboards(_ context.Context, _ []string, env Env) int {
	return fail(env, ExitFail, "evidence dashboards: not built yet")
}
