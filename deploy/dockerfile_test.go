package deploy_test

import (
	"bufio"
	"encoding/json"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// readDockerfile splits a Dockerfile into instructions. It handles comments,
// parser directives and backslash continuations: enough for the checks here,
// not a full BuildKit parser.
func readDockerfile(t *testing.T, file string) []instruction {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []instruction
		cur   strings.Builder
		start int
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		text := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(text, "#") || (text == "" && cur.Len() == 0) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		}
		cont := strings.HasSuffix(text, "\\")
		cur.WriteString(strings.TrimSuffix(text, "\\"))
		if cont {
			cur.WriteString(" ")
			continue
		}
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// stages groups instructions by build stage (each starts with FROM).
func stages(ins []instruction) [][]instruction {
	var out [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			out = append(out, nil)
		}
		if len(out) > 0 {
			out[len(out)-1] = append(out[len(out)-1], in)
		}
	}
	return out
}

func TestDockerfile(t *testing.T) {
	root := repoRoot(t)
	st := stages(readDockerfile(t, filepath.Join(root, "Dockerfile")))
	if len(st) < 2 {
		t.Fatalf("%d stages, want a builder and a runtime stage", len(st))
	}

	// Builder: the Go toolchain of go.mod, static binaries of both commands.
	build, runtime := st[0], st[len(st)-1]
	if from := build[0].args; !strings.HasPrefix(from, "golang:1.26") {
		t.Errorf("builder FROM %q, want golang:1.26", from)
	}
	built := false
	for _, in := range build {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			built = true
			for _, want := range []string{"CGO_ENABLED=0", "./cmd/evidenced", "./cmd/evidence", "-o /out/"} {
				if !strings.Contains(in.args, want) {
					t.Errorf("line %d: go build lacks %q", in.line, want)
				}
			}
		}
	}
	if !built {
		t.Error("builder stage has no go build")
	}
	for _, cmd := range []string{"evidenced", "evidence"} {
		if _, err := os.Stat(filepath.Join(root, "cmd", cmd)); err != nil {
			t.Errorf("go build target ./cmd/%s: %v", cmd, err)
		}
	}

	// Runtime: small image, not root, the port and data dir compose uses.
	from := runtime[0].args
	if !strings.HasPrefix(from, "gcr.io/distroless/static") && !strings.HasPrefix(from, "alpine:") {
		t.Errorf("runtime FROM %q, want distroless/static or alpine", from)
	}
	var (
		expose, volume, user []string
		entrypoint           []string
	)
	for _, in := range runtime {
		switch in.cmd {
		case "EXPOSE":
			expose = append(expose, strings.Fields(in.args)...)
		case "VOLUME":
			volume = append(volume, strings.Fields(in.args)...)
		case "USER":
			user = append(user, in.args)
		case "ENTRYPOINT":
			entrypoint = nil
			if err := json.Unmarshal([]byte(in.args), &entrypoint); err != nil {
				t.Errorf("line %d: ENTRYPOINT %s is not exec form: %v", in.line, in.args, err)
			}
		}
	}
	if len(user) == 0 || strings.HasPrefix(user[len(user)-1], "root") || strings.HasPrefix(user[len(user)-1], "0") {
		t.Errorf("runtime USER %q: the image must not run as root", user)
	}
	if len(entrypoint) == 0 || path.Base(entrypoint[0]) != "evidenced" {
		t.Fatalf("ENTRYPOINT %q, want evidenced", entrypoint)
	}

	p := loadProject(t)
	ev := service(t, p, "evidenced")

	// The compose healthcheck runs the binary the image installs.
	var test []string
	if ev.HealthCheck != nil {
		test = ev.HealthCheck.Test
	}
	if len(test) < 3 || test[0] != "CMD" || test[1] != entrypoint[0] || test[2] != "healthcheck" {
		t.Errorf("evidenced healthcheck test %q, want [CMD %s healthcheck] (no shell in the image)", test, entrypoint[0])
	}
	_, port, err := net.SplitHostPort(env(t, ev, "EVIDENCE_HTTP_ADDR"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(expose, port) && !slices.Contains(expose, port+"/tcp") {
		t.Errorf("EXPOSE %v lacks the EVIDENCE_HTTP_ADDR port %s", expose, port)
	}
	if dataDir := env(t, ev, "EVIDENCE_DATA_DIR"); !slices.Contains(volume, dataDir) {
		t.Errorf("VOLUME %v lacks EVIDENCE_DATA_DIR %s", volume, dataDir)
	}
}

// TestDockerignore checks that local state stays out of the build context
// and that what the build needs is not excluded. Patterns are matched with
// path.Match after dropping a leading "/" or "**/", which covers the simple
// patterns the file uses.
func TestDockerignore(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		patterns = append(patterns, l)
	}
	excluded := func(p string) bool {
		ex := false
		for _, pat := range patterns {
			neg := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(pat, "!")
			pat = strings.TrimSuffix(strings.TrimPrefix(pat, "/"), "/")
			anyDepth := strings.HasPrefix(pat, "**/")
			pat = strings.TrimPrefix(pat, "**/")
			candidates := []string{p}
			// A pattern naming a directory excludes everything below it.
			for d := path.Dir(p); d != "."; d = path.Dir(d) {
				candidates = append(candidates, d)
			}
			if anyDepth {
				candidates = append(candidates, path.Base(p))
			}
			for _, c := range candidates {
				if ok, _ := path.Match(pat, c); ok {
					ex = !neg
				}
			}
		}
		return ex
	}
	for _, p := range []string{".git", "data/spool/x", "internal/store/store.test", "evidenced"} {
		if !excluded(p) {
			t.Errorf(".dockerignore does not exclude %s", p)
		}
	}
	for _, p := range []string{"go.mod", "go.sum", "cmd/evidenced/main.go", "cmd/evidence/main.go", "internal/store/store.go", "processors/evaluate/controls/cm1.rego", "schemas/events/change.json"} {
		if excluded(p) {
			t.Errorf(".dockerignore excludes %s, which the build needs", p)
		}
	}
}
