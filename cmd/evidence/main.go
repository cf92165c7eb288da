// Command evidence is the evidence pipeline's command line: emit evidence
// from CI, make API tokens, and (as the project grows) ask the deployment
// gate, draw audit reports and verify the archive.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/evidencepipeline/evidence/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], cli.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv})
	stop()
	os.Exit(code)
}
