package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/evidencepipeline/evidence/internal/tlog"
)

// runVerifyInclusion checks offline that a row is in the log:
//
//	evidence verify inclusion --log-key VKEY --checkpoint NOTE --proof PROOF.json
//
// PROOF.json is GET /v1/log/proof/inclusion's answer; NOTE a signed
// checkpoint (GET /v1/log/checkpoint) of the proof's tree size.
func runVerifyInclusion(_ context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("verify inclusion", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	vkey := fs.String("log-key", "", "the log's note verifier key (name+hash+key), from the operator out of band")
	cpFile := fs.String("checkpoint", "", "a signed checkpoint of the log (file)")
	proofFile := fs.String("proof", "", "an inclusion proof (JSON file of GET /v1/log/proof/inclusion)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *vkey == "" || *cpFile == "" || *proofFile == "" {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion: --log-key, --checkpoint and --proof are required")
		return ExitUsage
	}
	c, err := readCheckpoint(*cpFile, *vkey)
	if err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion:", err)
		return ExitFail
	}
	var p tlog.InclusionProof
	if err := readJSONFile(*proofFile, &p); err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion:", err)
		return ExitFail
	}
	if err := tlog.VerifyInclusion(c, p); err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion: FAIL:", err)
		return ExitFail
	}
	fmt.Fprintf(env.Stdout, "OK: the row of stream sequence %d (hash %s) is leaf %d of the tree of %d leaves signed by %s\n", p.StreamSeq, p.RowHash, p.LeafIndex, c.Tree.N, c.Origin)
	return ExitOK
}

// runVerifyConsistency checks offline that NEW extends OLD:
//
//	evidence verify consistency --log-key VKEY --proof PROOF.json OLD NEW
func runVerifyConsistency(_ context.Context, args []string, env Env) int {
	fs := flag.NewFlagSet("verify consistency", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	vkey := fs.String("log-key", "", "the log's note verifier key (name+hash+key), from the operator out of band")
	proofFile := fs.String("proof", "", "a consistency proof (JSON file of GET /v1/log/proof/consistency?old=OLD&size=NEW)")
	if err := fs.Parse(args); err != nil {
		return ExitUsage
	}
	if *vkey == "" || *proofFile == "" || fs.NArg() != 2 {
		fmt.Fprintln(env.Stderr, "usage: evidence verify consistency --log-key VKEY --proof PROOF.json OLD-CHECKPOINT NEW-CHECKPOINT")
		return ExitUsage
	}
	older, err := readCheckpoint(fs.Arg(0), *vkey)
	if err == nil {
		var newer tlog.Checkpoint
		if newer, err = readCheckpoint(fs.Arg(1), *vkey); err == nil {
			var p tlog.ConsistencyProof
			if err = readJSONFile(*proofFile, &p); err == nil {
				if err = tlog.VerifyConsistency(older, newer, p); err == nil {
					fmt.Fprintf(env.Stdout, "OK: the tree of %d leaves extends the tree of %d (%s)\n", newer.Tree.N, older.Tree.N, newer.Origin)
					return ExitOK
				}
				err = fmt.Errorf("FAIL: %w", err)
			}
		}
	}
	fmt.Fprintln(env.Stderr, "evidence verify consistency:", err)
	return ExitFail
}

func readCheckpoint(path, vkey string) (tlog.Checkpoint, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tlog.Checkpoint{}, err
	}
	c, _, err := tlog.OpenCheckpoint(b, strings.TrimSpace(vkey))
	if err != nil {
		return tlog.Checkpoint{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func readJSONFile(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: not a proof: %w", path, err)
	}
	return nil
}
