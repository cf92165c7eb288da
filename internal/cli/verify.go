package cli

import "context"

// runVerify dispatches evidence verify: "verify package FILE.zip" checks an
// evidence package offline; otherwise it checks the archive's hash chain
// against its signed checkpoints.
func runVerify(ctx context.Context, args []string, env Env) int {
	if len(args) > 0 {
		switch args[0] {
		case "package":
			return runVerifyPackage(ctx, args[1:], env)
		case "inclusion":
			return runVerifyInclusion(ctx, args[1:], env)
		case "consistency":
			return runVerifyConsistency(ctx, args[1:], env)
		}
	}
	return runVerifyChain(ctx, args, env)
}
