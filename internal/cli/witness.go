package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/internal/tlog"
)

// Files evidence witness keygen writes.
const (
	WitnessKeyFile  = "witness.key"
	WitnessVKeyFile = "witness.vkey"
)

// runWitness: evidence witness keygen --out DIR --name NAME makes a
// witness key; evidence witness --server URL --log-key VKEY --key FILE
// --state FILE checks the log's newest checkpoint against the one it
// cosigned last and cosigns it (docs/tamper-evidence.md, "Witnesses").
func runWitness(ctx context.Context, args []string, env Env) int {
	if len(args) > 0 && args[0] == "keygen" {
		return runWitnessKeygen(args[1:], env)
	}
	fs := flagSet("witness", env)
	server := serverFlag(fs, env)
	logKey := fs.String("log-key", "", "the log's note verifier key (evidenced logs it at start as log_key=...), from the operator out of band (required)")
	keyFile := fs.String("key", "", "the witness's private key file, from evidence witness keygen (required)")
	stateFile := fs.String("state", "", "the witness's state file: the last checkpoint it cosigned (required; made at the first run)")
	publish := fs.Bool("publish", true, "post the cosignature back to evidenced (POST /v1/log/cosignature)")
	timeout := fs.Duration("timeout", time.Minute, "for each request to evidenced")
	fs.Usage = func() {
		fmt.Fprintln(env.Stderr, "usage: evidence witness --server URL --log-key VKEY --key witness.key --state FILE")
		fmt.Fprintln(env.Stderr, "       evidence witness keygen --out DIR --name NAME")
		fmt.Fprintln(env.Stderr, "\nA witness (run by someone other than the operator) fetches the log's newest signed checkpoint,")
		fmt.Fprintln(env.Stderr, "checks a consistency proof from the checkpoint it cosigned last (the state file), cosigns the")
		fmt.Fprintln(env.Stderr, "new one with its own key (C2SP tlog-cosignature) and posts the cosignature back. A checkpoint")
		fmt.Fprintln(env.Stderr, "that does not extend the last one is refused (exit 1) and the state is kept. Token of role")
		fmt.Fprintln(env.Stderr, "auditor in EVIDENCE_TOKEN. Exit 0 cosigned or nothing new, 1 refused or failed, 2 usage.")
		fmt.Fprintln(env.Stderr)
		fs.PrintDefaults()
	}
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "witness: unexpected argument %q", fs.Arg(0))
	}
	if *logKey == "" || *keyFile == "" || *stateFile == "" {
		return fail(env, ExitUsage, "witness: --log-key, --key and --state are required")
	}
	skey, err := os.ReadFile(*keyFile)
	if err != nil {
		return fail(env, ExitUsage, "witness: --key: %v", err)
	}
	if st, err := os.Stat(*keyFile); err == nil && st.Mode().Perm()&0o077 != 0 {
		return fail(env, ExitUsage, "witness: --key %s has mode %04o: a witness key must be readable by its owner only (chmod 600 %s)", *keyFile, st.Mode().Perm(), *keyFile)
	}
	cosigner, err := tlog.NewCosigner(string(skey))
	if err != nil {
		return fail(env, ExitUsage, "witness: --key %s: %v", *keyFile, err)
	}
	w := witnessClient{base: strings.TrimRight(*server, "/"), token: env.Getenv("EVIDENCE_TOKEN"), client: &http.Client{Timeout: *timeout}}

	// The last checkpoint cosigned.
	var older *tlog.Checkpoint
	if b, err := os.ReadFile(*stateFile); err == nil {
		c, _, err := tlog.OpenCheckpoint(b, strings.TrimSpace(*logKey))
		if err != nil {
			return fail(env, ExitFail, "witness: --state %s: %v", *stateFile, err)
		}
		older = &c
	} else if !errors.Is(err, os.ErrNotExist) {
		return fail(env, ExitFail, "witness: --state: %v", err)
	}

	msg, err := w.get(ctx, "/v1/log/checkpoint")
	if err != nil {
		return fail(env, ExitFail, "witness: %v", err)
	}
	newer, _, err := tlog.OpenCheckpoint(msg, strings.TrimSpace(*logKey))
	if err != nil {
		return fail(env, ExitFail, "witness: the checkpoint %s serves: %v", w.base, err)
	}
	if older != nil {
		var proof *tlog.ConsistencyProof
		if newer.Tree.N > older.Tree.N {
			b, err := w.get(ctx, "/v1/log/proof/consistency?old="+strconv.FormatInt(older.Tree.N, 10)+"&size="+strconv.FormatInt(newer.Tree.N, 10))
			if err != nil {
				return fail(env, ExitFail, "witness: %v", err)
			}
			proof = new(tlog.ConsistencyProof)
			if err := json.Unmarshal(b, proof); err != nil {
				return fail(env, ExitFail, "witness: the consistency proof %s serves is not JSON: %v", w.base, err)
			}
		}
		if err := tlog.CheckExtends(*older, newer, proof); err != nil {
			if !errors.Is(err, tlog.ErrRewritten) {
				return fail(env, ExitFail, "witness: %v", err)
			}
			refused := *stateFile + ".refused-" + strconv.FormatInt(newer.Tree.N, 10) + ".note"
			_ = os.WriteFile(refused, msg, 0o644)
			fmt.Fprintf(env.Stderr, "REFUSED: %s: the log's checkpoint of %d leaves (root %s) does not extend the checkpoint of %d leaves (root %s) this witness cosigned: %v\n",
				newer.Origin, newer.Tree.N, b64(newer.Tree.Hash[:]), older.Tree.N, b64(older.Tree.Hash[:]), err)
			fmt.Fprintf(env.Stderr, "REFUSED: not cosigned; the state %s is kept (the last checkpoint cosigned), the refused checkpoint is in %s. Keep both and tell the auditors: the operator's log was rewritten, rolled back or forked.\n", *stateFile, refused)
			return ExitFail
		}
	} else {
		fmt.Fprintf(env.Stderr, "witness: no state yet (%s): the first checkpoint, %d leaves, is trusted as it is; later ones must extend it\n", *stateFile, newer.Tree.N)
	}
	if older != nil && older.Tree == newer.Tree {
		// Already cosigned: post the held cosignature again (stored once)
		// rather than a new one each run.
		if *publish {
			held, err := os.ReadFile(*stateFile)
			if err == nil {
				err = w.post(ctx, "/v1/log/cosignature", held)
			}
			if err != nil {
				return fail(env, ExitFail, "witness: the checkpoint of %d leaves is cosigned (state %s) but could not publish it: %v", newer.Tree.N, *stateFile, err)
			}
		}
		fmt.Fprintf(env.Stdout, "cosigned already: %s, %d leaves (no new leaves since the last run), root %s\n", newer.Origin, newer.Tree.N, b64(newer.Tree.Hash[:]))
		return ExitOK
	}
	text, sigs, err := tlog.SplitNote(msg)
	if err != nil {
		return fail(env, ExitFail, "witness: %v", err)
	}
	line, err := cosigner.Cosign(text)
	if err != nil {
		return fail(env, ExitFail, "witness: %v", err)
	}
	cosigned := tlog.JoinNote(text, append(sigs, line))
	if err := writeFileAtomic(*stateFile, cosigned); err != nil {
		return fail(env, ExitFail, "witness: --state: %v", err)
	}
	if *publish {
		if err := w.post(ctx, "/v1/log/cosignature", cosigned); err != nil {
			return fail(env, ExitFail, "witness: cosigned the checkpoint of %d leaves (state %s) but could not publish it: %v", newer.Tree.N, *stateFile, err)
		}
	}
	if older != nil {
		fmt.Fprintf(env.Stdout, "cosigned: %s, %d leaves, root %s, as %s: it extends the %d leaves cosigned before (consistency proof checked)\n", newer.Origin, newer.Tree.N, b64(newer.Tree.Hash[:]), cosigner.Name(), older.Tree.N)
	} else {
		fmt.Fprintf(env.Stdout, "cosigned: %s, %d leaves, root %s, as %s\n", newer.Origin, newer.Tree.N, b64(newer.Tree.Hash[:]), cosigner.Name())
	}
	return ExitOK
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func runWitnessKeygen(args []string, env Env) int {
	fs := flagSet("witness keygen", env)
	out := fs.String("out", "", "directory to write "+WitnessKeyFile+" and "+WitnessVKeyFile+" to (required; created if missing)")
	name := fs.String("name", "", "the witness's name, e.g. internal-audit.example.com/witness (required)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(env, ExitUsage, "witness keygen: unexpected argument %q", fs.Arg(0))
	}
	if *out == "" || *name == "" {
		return fail(env, ExitUsage, "witness keygen: --out DIR and --name NAME are required")
	}
	skey, vkey, err := tlog.WitnessKeyPair(*name)
	if err != nil {
		return fail(env, ExitUsage, "witness keygen: --name: %v", err)
	}
	if err := os.MkdirAll(*out, 0o700); err != nil {
		return fail(env, ExitFail, "witness keygen: --out: %v", err)
	}
	priv, pub := filepath.Join(*out, WitnessKeyFile), filepath.Join(*out, WitnessVKeyFile)
	for _, p := range []string{priv, pub} {
		if _, err := os.Stat(p); err == nil {
			return fail(env, ExitFail, "witness keygen: %s exists: a key is never overwritten", p)
		}
	}
	if err := writeExclusive(priv, []byte(skey+"\n"), 0o600); err != nil {
		return fail(env, ExitFail, "witness keygen: %v", err)
	}
	if err := writeExclusive(pub, []byte(vkey+"\n"), 0o644); err != nil {
		return fail(env, ExitFail, "witness keygen: %v", err)
	}
	fmt.Fprintf(env.Stdout, "witness key: %s\nprivate key: %s (mode 0600; evidence witness --key)\nverifier key: %s (give it to auditors: evidence verify --witness)\n", vkey, priv, pub)
	return ExitOK
}

func writeExclusive(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeFileAtomic replaces path with data (a temporary file renamed).
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

type witnessClient struct {
	base, token string
	client      *http.Client
}

func (w witnessClient) do(ctx context.Context, method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, w.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("--server %q: %v", w.base, err)
	}
	if w.token != "" {
		req.Header.Set("Authorization", "Bearer "+w.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "text/plain; charset=utf-8")
	}
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", method, redactURL(w.base+path), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v", method, redactURL(w.base+path), err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := strings.TrimSpace(string(b))
		if p := problem.Parse(resp.Header.Get("Content-Type"), b); p != nil {
			msg = p.Message() // a problem document (docs/api.md#errors)
		}
		hint := ""
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			hint = " (set EVIDENCE_TOKEN to a token with role auditor)"
		}
		return nil, fmt.Errorf("%s %s: %s: %s%s", method, redactURL(w.base+path), resp.Status, msg, hint)
	}
	return b, nil
}

func (w witnessClient) get(ctx context.Context, path string) ([]byte, error) {
	return w.do(ctx, http.MethodGet, path, nil)
}

func (w witnessClient) post(ctx context.Context, path string, body []byte) error {
	_, err := w.do(ctx, http.MethodPost, path, body)
	return err
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
