package cli

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"

	fnote "github.com/transparency-dev/formats/note"

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
	wf := witnessFlags(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *vkey == "" || *cpFile == "" || *proofFile == "" {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion: --log-key, --checkpoint and --proof are required")
		return ExitUsage
	}
	wkeys, err := wf.keys()
	if err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion:", err)
		return ExitUsage
	}
	c, cosigs, err := readWitnessedCheckpoint(*cpFile, *vkey, wkeys, *wf.need)
	if err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion: FAIL:", err)
		return ExitFail
	}
	printCosignatures(env, *cpFile, cosigs)
	var p tlog.InclusionProof
	if err := readJSONFile(*proofFile, &p); err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion:", err)
		return ExitFail
	}
	if err := tlog.VerifyRowInclusion(c, p); err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify inclusion: FAIL:", err)
		return ExitFail
	}
	fmt.Fprintf(env.Stdout, "OK: the row of stream sequence %d (event %s %s, hash %s recomputed from the row) is leaf %d of the tree of %d leaves signed by %s\n", p.StreamSeq, p.Source, p.ID, p.RowHash, p.LeafIndex, c.Tree.N, c.Origin)
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
	wf := witnessFlags(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *vkey == "" || *proofFile == "" || fs.NArg() != 2 {
		fmt.Fprintln(env.Stderr, "usage: evidence verify consistency --log-key VKEY --proof PROOF.json [--witness KEY --witnesses N] OLD-CHECKPOINT NEW-CHECKPOINT")
		return ExitUsage
	}
	wkeys, err := wf.keys()
	if err != nil {
		fmt.Fprintln(env.Stderr, "evidence verify consistency:", err)
		return ExitUsage
	}
	// The older checkpoint is the reader's own (kept from an earlier
	// audit): its cosignatures are shown, and checked when present; the
	// newer must have --witnesses of them.
	older, oldCosigs, err := readWitnessedCheckpoint(fs.Arg(0), *vkey, wkeys, 0)
	if err == nil {
		printCosignatures(env, fs.Arg(0), oldCosigs)
		var newer tlog.Checkpoint
		var newCosigs []tlog.Cosignature
		if newer, newCosigs, err = readWitnessedCheckpoint(fs.Arg(1), *vkey, wkeys, *wf.need); err == nil {
			printCosignatures(env, fs.Arg(1), newCosigs)
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

// witnessOpts are the --witness and --witnesses flags of the verify
// commands.
type witnessOpts struct {
	list stringList
	need *int
}

func witnessFlags(fs *flag.FlagSet) *witnessOpts {
	w := &witnessOpts{}
	fs.Var(&w.list, "witness", "a witness's verifier key (name+hash+key, or a file holding it: witness.vkey), repeatable")
	w.need = fs.Int("witnesses", 0, "require this many valid cosignatures, from distinct --witness keys, on the checkpoint")
	return w
}

// keys are the witness verifier keys given, read from files when a value
// is not a key.
func (w *witnessOpts) keys() ([]string, error) {
	var out []string
	for _, v := range w.list {
		v = strings.TrimSpace(v)
		if _, kerr := fnote.NewVerifierForCosignatureV1(v); kerr != nil {
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, fmt.Errorf("--witness %q: neither a witness verifier key (name+hash+key: %v) nor a readable file: %v", v, kerr, err)
			}
			v = strings.TrimSpace(string(b))
		}
		out = append(out, v)
	}
	if *w.need < 0 || *w.need > len(out) {
		return nil, fmt.Errorf("--witnesses %d: give at least that many --witness keys (%d given)", *w.need, len(out))
	}
	return out, nil
}

func readWitnessedCheckpoint(path, vkey string, wkeys []string, need int) (tlog.Checkpoint, []tlog.Cosignature, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return tlog.Checkpoint{}, nil, err
	}
	c, cs, err := tlog.OpenWitnessed(b, []string{strings.TrimSpace(vkey)}, wkeys, need)
	if err != nil {
		return tlog.Checkpoint{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, cs, nil
}

func printCosignatures(env Env, path string, cs []tlog.Cosignature) {
	for _, c := range cs {
		fmt.Fprintf(env.Stdout, "witness: %s cosigned %s at %s\n", c.Name, path, c.Time.Format("2006-01-02T15:04:05Z"))
	}
}
