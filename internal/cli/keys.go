package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/evidencepipeline/evidence/internal/verify"
)

// runKeys: keys new --out DIR makes a signing key pair; keys id FILE prints
// the key id of a public key.
func runKeys(_ context.Context, args []string, env Env) int {
	usage := func() {
		fmt.Fprintln(env.Stderr, "usage: evidence keys new --out DIR   make an ed25519 signing key pair")
		fmt.Fprintln(env.Stderr, "       evidence keys id FILE.pub     print a public key's key id")
		fmt.Fprintln(env.Stderr, "\nkeys new writes DIR/evidence-signing.key (PKCS#8 PEM, mode 0600: give it to evidenced")
		fmt.Fprintln(env.Stderr, "with --signing-key) and DIR/evidence-signing.pub (PKIX PEM: give it to auditors, out of")
		fmt.Fprintln(env.Stderr, "band) and prints the key id; it never overwrites a key. See docs/tamper-evidence.md.")
	}
	if len(args) == 0 {
		usage()
		return ExitUsage
	}
	switch args[0] {
	case "new":
		return runKeysNew(args[1:], env)
	case "id":
		if len(args) != 2 {
			return fail(env, ExitUsage, "keys id: want one public key file, got %d arguments", len(args)-1)
		}
		keys, err := verify.LoadPublicKeys(args[1])
		if err != nil {
			return fail(env, ExitUsage, "keys id: %v", err)
		}
		for _, id := range keys.IDs() {
			fmt.Fprintln(env.Stdout, id)
		}
		return ExitOK
	case "-h", "-help", "--help", "help":
		usage()
		return ExitOK
	}
	usage()
	return fail(env, ExitUsage, "keys: unknown subcommand %q", args[0])
}

func runKeysNew(args []string, env Env) int {
	fs := flagSet("keys new", env)
	out := fs.String("out", "", "directory to write evidence-signing.key and evidence-signing.pub to (required; created if missing)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "keys new: unexpected argument %q", fs.Arg(0))
	}
	if *out == "" {
		return fail(env, ExitUsage, "keys new: --out DIR is required")
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fail(env, ExitFail, "keys new: --out: %v", err)
	}
	key, err := verify.GenerateKey()
	if err != nil {
		return fail(env, ExitFail, "keys new: %v", err)
	}
	priv, pub, err := verify.WriteKeyPair(*out, key)
	if err != nil {
		return fail(env, ExitFail, "keys new: --out: %v", err)
	}
	fmt.Fprintf(env.Stdout, "key id:      %s\nprivate key: %s (mode 0600; evidenced --signing-key)\npublic key:  %s (give it to auditors out of band: evidence verify --public-key)\n", key.ID, priv, pub)
	return ExitOK
}
