package cli

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/report"
	"github.com/evidencepipeline/evidence/internal/verify"
)

// runReportPackage is `evidence report package`: the signed evidence
// package of a period (docs/reports.md).
func runReportPackage(ctx context.Context, args []string, env Env) int {
	fs := flagSet("report package", env)
	rf := addReportFlags(fs, env, true)
	sf := addSampleFlags(fs)
	out := fs.String("out", "", "the package file to write (FILE.zip)")
	keyPath := fs.String("signing-key", env.Getenv("EVIDENCE_SIGNING_KEY"),
		"ed25519 private key, PKCS#8 PEM, as evidence keys new writes (env EVIDENCE_SIGNING_KEY)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "report package: unexpected argument %q", fs.Arg(0))
	}
	p, err := rf.period()
	if err != nil {
		return fail(env, ExitUsage, "report package: %v", err)
	}
	if *out == "" || *out == "-" {
		return fail(env, ExitUsage, "report package: --out FILE.zip is required")
	}
	if *keyPath == "" {
		return fail(env, ExitUsage, "report package: --signing-key FILE is required (make one with evidence keys new --out DIR)")
	}
	key, err := readSigningKey(*keyPath)
	if err != nil {
		return fail(env, ExitUsage, "report package: --signing-key: %v", err)
	}
	plan, seed, err := sf.plan(fs)
	if err != nil {
		return fail(env, ExitUsage, "report package: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, *rf.timeout)
	defer cancel()
	st, err := rf.open(ctx)
	if err != nil {
		return fail(env, ExitFail, "report package: %v", err)
	}
	defer st.Close()

	tmp := *out + ".partial"
	f, err := os.Create(tmp)
	if err != nil {
		return fail(env, ExitUsage, "report package: --out: %v", err)
	}
	prog := newReportProgress(env)
	sum, err := report.BuildPackage(ctx, st, f, report.PackageOptions{
		Period: p, Plan: plan, Seed: seed, Key: key, Now: time.Now(), TraceText: writeTraceText,
		Progress: func(what string) { prog.show("package: %s", what) },
	})
	prog.done()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, *out)
	}
	if err != nil {
		os.Remove(tmp)
		return fail(env, ExitFail, "report package: %v", err)
	}
	m := sum.Manifest
	fmt.Fprintf(env.Stdout, "package %s: %d files, signed by key %s\n", *out, sum.Files, m.Signature.KeyID)
	fmt.Fprintf(env.Stdout, "population: %d %s deployments from %s to %s (excluded)\n", m.Population, m.Environment, m.From, m.To)
	fmt.Fprintf(env.Stdout, "sample: %d deployments of %d changes, size %d (%s), seed %s\n", m.Sample.Drawn, m.Sample.Changes,
		plan.Size, plan.Method, m.Sample.Seed)
	return ExitOK
}

// runVerifyPackage is `evidence verify package FILE.zip --public-key
// FILE`: checks an evidence package offline. Exit 0 intact, 1 something
// is wrong (each problem named), 2 usage or unreadable input.
func runVerifyPackage(_ context.Context, args []string, env Env) int {
	fs := flagSet("verify package", env)
	pubPath := fs.String("public-key", "", "the signer's ed25519 public key, PKIX PEM (evidence-signing.pub)")
	var logKeys stringList
	fs.Var(&logKeys, "log-key", "the transparency log's note verifier key (name+hash+key), repeatable; default: the log evidenced signs with --public-key")
	wf := witnessFlags(fs)
	pos, code, ok := parseInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) != 1 {
		return fail(env, ExitUsage, "verify package: give one package file: verify package FILE.zip --public-key FILE")
	}
	if *pubPath == "" {
		return fail(env, ExitUsage, "verify package: --public-key FILE is required (the signer's evidence-signing.pub)")
	}
	pub, err := verify.ReadPublicKey(*pubPath)
	if err != nil {
		return fail(env, ExitUsage, "verify package: --public-key: %v", err)
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return fail(env, ExitUsage, "verify package: %v", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(env, ExitUsage, "verify package: %v", err)
	}
	for i, k := range logKeys {
		logKeys[i] = strings.TrimSpace(k)
	}
	wkeys, err := wf.keys()
	if err != nil {
		return fail(env, ExitUsage, "verify package: %v", err)
	}
	res := report.VerifyPackageWitnessed(f, fi.Size(), pub, logKeys, report.Witnesses{Keys: wkeys, Need: *wf.need})
	for _, n := range res.Notes {
		fmt.Fprintf(env.Stdout, "note: %s\n", n)
	}
	if len(res.Problems) > 0 {
		fmt.Fprintf(env.Stdout, "package %s is NOT intact: %d problems\n", pos[0], len(res.Problems))
		for _, p := range res.Problems {
			fmt.Fprintf(env.Stdout, "  %s\n", p)
		}
		return ExitFail
	}
	m := res.Manifest
	fmt.Fprintf(env.Stdout, "package %s is intact: %d files match manifest.json, signed by key %s\n", pos[0], res.Files, verify.KeyID(pub))
	fmt.Fprintf(env.Stdout, "%s deployments from %s to %s (excluded): population %d, sample %d (seed %s), made %s\n",
		m.Environment, m.From, m.To, m.Population, m.Sample.Drawn, m.Sample.Seed, m.CreatedAt)
	if res.Log != nil {
		fmt.Fprintf(env.Stdout, "inclusion: %d events of %d traces proven leaves of the log %s at %d leaves (log/checkpoint.note)\n",
			res.Proven, m.Sample.Changes, res.Log.Origin, res.Log.Tree.N)
	}
	printCosignatures(env, report.LogCheckpointFile, res.Cosignatures)
	return ExitOK
}

// readSigningKey reads the package's signing key as evidence keys new
// wrote it (readable by its owner only).
func readSigningKey(path string) (ed25519.PrivateKey, error) {
	k, err := verify.LoadSigningKey(path)
	if err != nil {
		return nil, err
	}
	return k.Private, nil
}
