package cli_test

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/cli"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

type result struct {
	code           int
	stdout, stderr string
}

func run(t *testing.T, vars map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string { return vars[k] },
	})
	return result{code, out.String(), errb.String()}
}

// startEvidenced runs evidenced in-process and returns its URL.
func startEvidenced(t *testing.T) string {
	t.Helper()
	_, url := startDaemon(t)
	return url
}

const runType = "dev.evidencepipeline.pipelinerun.finished.v1"
const goodData = `{"repository":"github.com/acme/payments","commit":"4f2a9c1","run_id":"1","outcome":"success"}`

func TestEmit(t *testing.T) {
	server := startEvidenced(t)
	vars := map[string]string{"EVIDENCE_SERVER": server}

	r := run(t, vars, "", "emit", "--type", runType, "--source", "https://ci.example/acme", "--id", "run-1", "--data", goodData)
	if r.code != 0 || r.stdout != "stored: "+runType+" id=run-1 source=https://ci.example/acme seq=1\n" {
		t.Fatalf("first emit: %+v", r)
	}
	// The same id again is stored once.
	r = run(t, vars, goodData, "emit", "--type", runType, "--source", "https://ci.example/acme", "--id", "run-1", "--data-file", "-")
	if r.code != 0 || r.stdout != "already stored: "+runType+" id=run-1 source=https://ci.example/acme seq=1\n" {
		t.Fatalf("re-emit: %+v", r)
	}
	// A refusal is final, names the problem, exits 1.
	r = run(t, vars, "", "emit", "--type", runType, "--source", "https://ci.example/acme", "--data", `{"repository":"github.com/acme/payments","commit":"4f2a9c1","run_id":"1"}`)
	if r.code != cli.ExitFail || !strings.Contains(r.stderr, "refused by evidenced (400 Bad Request): data/outcome: required property is missing") {
		t.Fatalf("invalid emit: %+v", r)
	}
	if strings.Contains(r.stderr, "retrying") {
		t.Fatalf("a refusal was retried: %s", r.stderr)
	}
	// A token is sent when set (an open server ignores it).
	vars["EVIDENCE_TOKEN"] = "evd_x"
	r = run(t, vars, "", "emit", "--type", "com.example.note", "--source", "s", "--content-type", "text/plain", "--data", "hello")
	if r.code != 0 || !strings.Contains(r.stdout, "seq=2") {
		t.Fatalf("text emit: %+v", r)
	}
}

func TestEmitUnreachable(t *testing.T) {
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "", "emit", "--server", "http://127.0.0.1:"+strconv.Itoa(port), "--attempts", "2", "--type", "t", "--source", "s")
	if r.code != cli.ExitFail || !strings.Contains(r.stderr, "could not deliver the event to http://127.0.0.1:") ||
		!strings.Contains(r.stderr, "gave up after 2 attempts") || !strings.Contains(r.stderr, "attempt 1 failed") {
		t.Fatalf("unreachable: %+v", r)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"emit"}, "emit: --type and --source required"},
		{[]string{"emit", "--type", "t"}, "emit: --source required"},
		{[]string{"emit", "--type", "t", "--source", "s", "--data", "{", "--data-file", "x"}, "give --data or --data-file, not both"},
		{[]string{"emit", "--type", "t", "--source", "s", "--data", "{nope"}, "the data is not valid JSON"},
		{[]string{"emit", "--type", "t", "--source", "s", "--time", "today"}, "--time: must be an RFC 3339 timestamp"},
		{[]string{"emit", "--type", "t", "--source", "s", "--time", "1970-01-01T00:00:00Z"}, "--time: 1970-01-01T00:00:00Z is outside the times the archive holds exactly"},
		{[]string{"emit", "--type", strings.Repeat("t", 257), "--source", "s"}, "type: too long: 257 bytes, at most 256"},
		{[]string{"emit", "--type", "t", "--source", "s", "--data", `{"a":1,"a":2}`}, "data/a: member name appears twice"},
		{[]string{"nope"}, `unknown command "nope"`},
		{[]string{"token", "new", "--role", "root", "--name", "x"}, `unknown role "root"`},
		{[]string{"token", "new", "--role", "gate"}, "--name is required"},
	} {
		r := run(t, nil, "", tc.args...)
		if r.code != cli.ExitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: code %d stderr %q, want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

func TestTokenNew(t *testing.T) {
	r := run(t, nil, "", "token", "new", "--role", "producer", "--name", "ci-payments")
	m := regexp.MustCompile(`^token: (evd_[0-9a-f]{64})\ntokens file line: producer ([0-9a-f]{64}) ci-payments\n$`).FindStringSubmatch(r.stdout)
	if r.code != 0 || m == nil {
		t.Fatalf("token new: %+v", r)
	}
	if auth.Hash(m[1]) != m[2] {
		t.Fatal("the printed line does not hold the token's hash")
	}
	tokens, err := auth.Parse(strings.NewReader(strings.TrimPrefix(strings.Split(r.stdout, "\n")[1], "tokens file line: ")))
	if err != nil || tokens.Len() != 1 {
		t.Fatalf("the printed line is not a valid tokens file: %v", err)
	}
}
