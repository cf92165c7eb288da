package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// everyCommand is each command line of the CLI, written out by hand: the
// commands and their subcommands. TestCompletionBash checks the
// completion lists the same first words.
var everyCommand = [][]string{
	{"changes"}, {"changes", "show"}, {"completion"},
	{"dashboards"}, {"dashboards", "push"}, {"gate"},
	{"emit"}, {"emit", "pipeline"}, {"emit", "artifact"}, {"emit", "test"}, {"emit", "scan"}, {"emit", "deploy"},
	{"keys"}, {"keys", "new"}, {"policy"}, {"policy", "test"}, {"policy", "replay"},
	{"report"}, {"report", "population"}, {"report", "sample"}, {"report", "controls"}, {"report", "trace"}, {"report", "package"}, {"report", "access"},
	{"token"}, {"token", "new"}, {"verify"}, {"verify", "package"}, {"verify", "inclusion"}, {"verify", "consistency"},
	{"witness"}, {"witness", "keygen"},
}

// TestHelpAndUsageExitCodes: over every command, -h, -help, --help and
// `evidence help CMD` exit 0 and print the command's usage; an unknown
// flag exits 2 and names it.
func TestHelpAndUsageExitCodes(t *testing.T) {
	for _, c := range everyCommand {
		name := strings.Join(c, " ")
		for _, h := range []string{"-h", "-help", "--help"} {
			r := run(t, nil, "", append(append([]string{}, c...), h)...)
			if r.code != 0 || !strings.Contains(strings.ToLower(r.stderr+r.stdout), "usage") && !strings.Contains(r.stderr, "-") {
				t.Errorf("evidence %s %s: exit %d, want 0 with its usage: %q", name, h, r.code, r.stderr)
			}
		}
		r := run(t, nil, "", append([]string{"help"}, c...)...)
		if r.code != 0 || r.stderr+r.stdout == "" {
			t.Errorf("evidence help %s: exit %d %q, want 0 with its usage", name, r.code, r.stderr)
		}
		r = run(t, nil, "", append(append([]string{}, c...), "--no-such-flag")...)
		if r.code != 2 || !strings.Contains(r.stderr, "no-such-flag") {
			t.Errorf("evidence %s --no-such-flag: exit %d %q, want 2 naming the flag", name, r.code, r.stderr)
		}
	}
	for _, args := range [][]string{{}, {"no-such-command"}, {"help", "no-such-command"}} {
		if r := run(t, nil, "", args...); r.code != 2 {
			t.Errorf("evidence %v: exit %d, want 2", args, r.code)
		}
	}
	if r := run(t, nil, "", "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "evidence ") {
		t.Errorf("evidence --version: %+v", r)
	}
}

// TestConnectionErrorExitsTwo: the commands that ask evidenced exit 2
// when it cannot be reached (a closed loopback port), and say so.
func TestConnectionErrorExitsTwo(t *testing.T) {
	vars := map[string]string{"EVIDENCE_SERVER": "http://127.0.0.1:1"}
	for _, args := range [][]string{
		{"gate", "--env", "production", "--repo", "github.com/acme/payments", "--commit", "c0ffee1234567890abcdef1234567890abcdef12"},
		{"changes", "show", "github.com/acme/payments@c0ffee1234567890abcdef1234567890abcdef12"},
	} {
		r := run(t, vars, "", args...)
		if r.code != 2 || !strings.Contains(r.stderr, "127.0.0.1:1") {
			t.Errorf("evidence %v against a closed port: exit %d %q, want 2 naming the server", args, r.code, r.stderr)
		}
	}
}

// TestCompletionBash sources the bash completion and completes as bash
// does: the first word, a subcommand, help's argument; zsh and fish
// scripts parse (zsh -n, fish --no-execute) where those shells exist.
func TestCompletionBash(t *testing.T) {
	r := run(t, nil, "", "completion", "bash")
	if r.code != 0 {
		t.Fatalf("completion bash: %+v", r)
	}
	f := filepath.Join(t.TempDir(), "evidence.bash")
	if err := os.WriteFile(f, []byte(r.stdout), 0o644); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) []string {
		t.Helper()
		script := `source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); _evidence; printf '%s\n' "${COMPREPLY[@]}"`
		out, err := exec.Command("bash", append([]string{"-c", script, "bash", f}, words...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %v: %v\n%s", words, err, out)
		}
		return strings.Fields(string(out))
	}
	var firsts []string
	seen := map[string]bool{}
	for _, c := range everyCommand {
		if !seen[c[0]] {
			seen[c[0]] = true
			firsts = append(firsts, c[0])
		}
	}
	firsts = append(firsts, "help", "version")
	got := complete("evidence", "")
	if len(got) != len(firsts) {
		t.Errorf("first words %v, want %v", got, firsts)
	}
	for _, w := range firsts {
		if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+w+" ") {
			t.Errorf("first words %v lack %s", got, w)
		}
	}
	if got := complete("evidence", "em"); strings.Join(got, " ") != "emit" {
		t.Errorf("evidence em<TAB>: %v, want emit", got)
	}
	if got := complete("evidence", "emit", "d"); strings.Join(got, " ") != "deploy" {
		t.Errorf("evidence emit d<TAB>: %v, want deploy", got)
	}
	if got := complete("evidence", "report", "p"); strings.Join(got, " ") != "population package" {
		t.Errorf("evidence report p<TAB>: %v, want population package", got)
	}
	if got := complete("evidence", "help", "ga"); strings.Join(got, " ") != "gate" {
		t.Errorf("evidence help ga<TAB>: %v, want gate", got)
	}
	for _, sh := range [][]string{{"zsh", "-n"}, {"fish", "--no-execute"}} {
		if _, err := exec.LookPath(sh[0]); err != nil {
			continue // not installed here: bash is the one checked
		}
		r := run(t, nil, "", "completion", sh[0])
		p := filepath.Join(t.TempDir(), "c")
		os.WriteFile(p, []byte(r.stdout), 0o644)
		if out, err := exec.Command(sh[0], sh[1], p).CombinedOutput(); r.code != 0 || err != nil {
			t.Errorf("%s: exit %d, %v %s", sh, r.code, err, out)
		}
	}
	if r := run(t, nil, "", "completion", "tcsh"); r.code != 2 || !strings.Contains(r.stderr, `unknown shell "tcsh"`) {
		t.Errorf("completion tcsh: %+v", r)
	}
}
