package deploy_test

import (
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

// The services docker-compose.yml must define.
var wantServices = []string{"nats", "clickhouse", "grafana", "evidenced"}

// repoRoot is the directory holding docker-compose.yml, the Dockerfile and
// the dashboards: the parent of this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// loadProject loads docker-compose.yml the way `docker compose` does (schema
// validation, interpolation, normalization, consistency checks, paths
// resolved against the file's directory), with an empty environment: no OS
// variables and no .env file, so every ${VAR:-default} takes its default.
func loadProject(t *testing.T) *types.Project {
	t.Helper()
	root := repoRoot(t)
	opts, err := cli.NewProjectOptions(
		[]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root),
	)
	if err != nil {
		t.Fatalf("compose options: %v", err)
	}
	if len(opts.Environment) != 0 {
		t.Fatalf("compose environment not empty: %v", opts.Environment)
	}
	project, err := opts.LoadProject(t.Context())
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return project
}

// service returns the named service or fails the test.
func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %q: %v", name, err)
	}
	return s
}

// env returns the value of a service's environment variable, failing the
// test when it is absent or has no value.
func env(t *testing.T, s types.ServiceConfig, key string) string {
	t.Helper()
	v, ok := s.Environment[key]
	if !ok || v == nil {
		t.Fatalf("service %s: environment %s is not set", s.Name, key)
	}
	return *v
}

func TestComposeServices(t *testing.T) {
	p := loadProject(t)
	if p.Name != "evidence" {
		t.Errorf("project name = %q, want %q (named volumes are prefixed with it)", p.Name, "evidence")
	}
	for _, name := range wantServices {
		if _, ok := p.Services[name]; !ok {
			t.Errorf("service %q missing; have %v", name, p.ServiceNames())
		}
	}
	for name, s := range p.Services {
		if s.Restart != types.RestartPolicyUnlessStopped {
			t.Errorf("service %s: restart = %q, want %q", name, s.Restart, types.RestartPolicyUnlessStopped)
		}
	}
}

func TestComposeHealthchecks(t *testing.T) {
	p := loadProject(t)
	for _, name := range wantServices {
		s := service(t, p, name)
		hc := s.HealthCheck
		if hc == nil || hc.Disable {
			t.Errorf("service %s: no healthcheck", name)
			continue
		}
		if len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL") || strings.TrimSpace(hc.Test[1]) == "" {
			t.Errorf("service %s: healthcheck test = %q, want [CMD|CMD-SHELL, command...]", name, hc.Test)
		}
		if hc.Interval == nil || hc.Timeout == nil || hc.Retries == nil {
			t.Errorf("service %s: healthcheck needs interval, timeout and retries", name)
		}
	}
}

func TestComposeDependsOnHealthy(t *testing.T) {
	p := loadProject(t)
	want := map[string][]string{
		"evidenced": {"nats", "clickhouse"},
		"grafana":   {"clickhouse"},
	}
	for name, deps := range want {
		s := service(t, p, name)
		for _, dep := range deps {
			d, ok := s.DependsOn[dep]
			if !ok {
				t.Errorf("service %s does not depend on %s", name, dep)
				continue
			}
			if d.Condition != types.ServiceConditionHealthy {
				t.Errorf("service %s depends on %s with condition %q, want %q", name, dep, d.Condition, types.ServiceConditionHealthy)
			}
		}
	}
}

// imageTag splits "repo/name:tag" into its name and tag ("" when untagged).
func imageTag(image string) (name, tag string) {
	i := strings.LastIndex(image, ":")
	if i < 0 || strings.Contains(image[i:], "/") {
		return image, ""
	}
	return image[:i], image[i+1:]
}

// majorMinor reads the leading "MAJOR.MINOR" of a tag like "26.8",
// "26.8.20.9" or "26.8-alpine".
func majorMinor(tag string) (major, minor int, err error) {
	fields := strings.FieldsFunc(tag, func(r rune) bool { return r == '.' || r == '-' })
	if len(fields) < 2 {
		return 0, 0, errors.New("want MAJOR.MINOR")
	}
	if major, err = strconv.Atoi(fields[0]); err != nil {
		return 0, 0, err
	}
	if minor, err = strconv.Atoi(fields[1]); err != nil {
		return 0, 0, err
	}
	return major, minor, nil
}

func TestMajorMinor(t *testing.T) {
	for _, tc := range []struct {
		tag          string
		major, minor int
		ok           bool
	}{
		{"26.8", 26, 8, true},
		{"25.3.14.14-alpine", 25, 3, true},
		{"24.8-alpine", 24, 8, true},
		{"latest", 0, 0, false},
		{"26", 0, 0, false},
		{"", 0, 0, false},
	} {
		major, minor, err := majorMinor(tc.tag)
		if (err == nil) != tc.ok || major != tc.major || minor != tc.minor {
			t.Errorf("majorMinor(%q) = %d, %d, %v; want %d, %d, ok=%v", tc.tag, major, minor, err, tc.major, tc.minor, tc.ok)
		}
	}
}

func TestComposeImages(t *testing.T) {
	p := loadProject(t)

	// Third-party images are pinned to a version, never "latest".
	for _, name := range []string{"nats", "clickhouse", "grafana"} {
		s := service(t, p, name)
		_, tag := imageTag(s.Image)
		if tag == "" || tag == "latest" {
			t.Errorf("service %s: image %q is not pinned to a version", name, s.Image)
		}
	}

	// ClickHouse: a current long-term-support release. LTS releases are
	// YY.3 and YY.8; the DESIGN's "current releases" means 24.x or later.
	ch := service(t, p, "clickhouse")
	repo, tag := imageTag(ch.Image)
	if repo != "clickhouse/clickhouse-server" {
		t.Errorf("clickhouse image = %q, want clickhouse/clickhouse-server", ch.Image)
	}
	major, minor, err := majorMinor(tag)
	switch {
	case err != nil:
		t.Errorf("clickhouse image tag %q: %v", tag, err)
	case major < 24:
		t.Errorf("clickhouse image tag %q: major %d < 24, not a current release", tag, major)
	case minor != 3 && minor != 8:
		t.Errorf("clickhouse image tag %q: %d.%d is not an LTS release (YY.3 or YY.8)", tag, major, minor)
	}

	// NATS: a 2.x server with JetStream on the named volume.
	nats := service(t, p, "nats")
	repo, tag = imageTag(nats.Image)
	if repo != "nats" || !strings.HasPrefix(tag, "2.") {
		t.Errorf("nats image = %q, want nats:2.x", nats.Image)
	}
	cmd := strings.Join(nats.Command, " ")
	for _, flag := range []string{"-js", "-sd /data", "-m 8222"} {
		if !strings.Contains(cmd, flag) {
			t.Errorf("nats command %q lacks %q", cmd, flag)
		}
	}
	if got := volumeTarget(nats, types.VolumeTypeVolume, "/data"); got == nil {
		t.Errorf("nats: store dir /data is not on a named volume")
	}

	// evidenced is built from the repository's Dockerfile.
	ev := service(t, p, "evidenced")
	if ev.Build == nil {
		t.Fatal("evidenced: no build section")
	}
	if ev.Build.Context != repoRoot(t) {
		t.Errorf("evidenced: build context = %q, want the repository root %q", ev.Build.Context, repoRoot(t))
	}
	dockerfile := ev.Build.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if _, err := os.Stat(filepath.Join(ev.Build.Context, dockerfile)); err != nil {
		t.Errorf("evidenced: Dockerfile: %v", err)
	}
}

// volumeTarget returns the service's mount of the given type at target.
func volumeTarget(s types.ServiceConfig, typ, target string) *types.ServiceVolumeConfig {
	for i, v := range s.Volumes {
		if v.Type == typ && v.Target == target {
			return &s.Volumes[i]
		}
	}
	return nil
}

func TestComposeEvidencedEnvironment(t *testing.T) {
	p := loadProject(t)
	ev := service(t, p, "evidenced")
	ch := service(t, p, "clickhouse")

	for _, key := range []string{
		"EVIDENCE_NATS_URL", "EVIDENCE_CLICKHOUSE_URL", "EVIDENCE_HTTP_ADDR",
		"EVIDENCE_TOKENS_FILE", "EVIDENCE_DATA_DIR",
	} {
		if env(t, ev, key) == "" {
			t.Errorf("evidenced: %s is empty", key)
		}
	}

	// NATS: the nats service's client port, over the compose network.
	natsURL, err := url.Parse(env(t, ev, "EVIDENCE_NATS_URL"))
	if err != nil {
		t.Fatalf("EVIDENCE_NATS_URL: %v", err)
	}
	if natsURL.Scheme != "nats" || natsURL.Host != "nats:4222" {
		t.Errorf("EVIDENCE_NATS_URL = %q, want nats://nats:4222", natsURL)
	}

	// ClickHouse: native port of the clickhouse service, with the user,
	// password and database the clickhouse service creates.
	chURL, err := url.Parse(env(t, ev, "EVIDENCE_CLICKHOUSE_URL"))
	if err != nil {
		t.Fatalf("EVIDENCE_CLICKHOUSE_URL: %v", err)
	}
	if chURL.Scheme != "clickhouse" || chURL.Host != "clickhouse:9000" {
		t.Errorf("EVIDENCE_CLICKHOUSE_URL host = %s://%s, want clickhouse://clickhouse:9000", chURL.Scheme, chURL.Host)
	}
	if got, want := chURL.User.Username(), env(t, ch, "CLICKHOUSE_USER"); got != want {
		t.Errorf("EVIDENCE_CLICKHOUSE_URL user = %q, clickhouse CLICKHOUSE_USER = %q", got, want)
	}
	if got, _ := chURL.User.Password(); got != env(t, ch, "CLICKHOUSE_PASSWORD") {
		t.Errorf("EVIDENCE_CLICKHOUSE_URL password differs from clickhouse CLICKHOUSE_PASSWORD")
	}
	if got, want := strings.TrimPrefix(chURL.Path, "/"), env(t, ch, "CLICKHOUSE_DB"); got != want {
		t.Errorf("EVIDENCE_CLICKHOUSE_URL database = %q, clickhouse CLICKHOUSE_DB = %q", got, want)
	}
	if env(t, ch, "CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT") != "1" {
		t.Errorf("clickhouse: CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT must be 1")
	}

	// HTTP: listens on all interfaces of the container, on the port that is
	// published.
	host, port, err := net.SplitHostPort(env(t, ev, "EVIDENCE_HTTP_ADDR"))
	if err != nil {
		t.Fatalf("EVIDENCE_HTTP_ADDR: %v", err)
	}
	if host != "0.0.0.0" && host != "" {
		t.Errorf("EVIDENCE_HTTP_ADDR host = %q: unreachable from the published port", host)
	}
	published := false
	for _, pc := range ev.Ports {
		if strconv.Itoa(int(pc.Target)) == port {
			published = true
		}
	}
	if !published {
		t.Errorf("evidenced: EVIDENCE_HTTP_ADDR port %s is not published (ports %+v)", port, ev.Ports)
	}

	// The tokens file is the example, mounted read-only: evidenced refuses to
	// listen beyond loopback without one.
	tokens := volumeTarget(ev, types.VolumeTypeBind, env(t, ev, "EVIDENCE_TOKENS_FILE"))
	switch {
	case tokens == nil:
		t.Errorf("evidenced: EVIDENCE_TOKENS_FILE %q is not bind-mounted", env(t, ev, "EVIDENCE_TOKENS_FILE"))
	case tokens.Source != filepath.Join(repoRoot(t), "deploy", "tokens.example"):
		t.Errorf("evidenced: tokens file mounted from %q, want deploy/tokens.example", tokens.Source)
	case !tokens.ReadOnly:
		t.Errorf("evidenced: tokens file is mounted read-write")
	}

	// The data directory is on a named volume.
	if volumeTarget(ev, types.VolumeTypeVolume, env(t, ev, "EVIDENCE_DATA_DIR")) == nil {
		t.Errorf("evidenced: EVIDENCE_DATA_DIR %q is not on a named volume", env(t, ev, "EVIDENCE_DATA_DIR"))
	}
}

func TestComposeBindMountsExist(t *testing.T) {
	p := loadProject(t)
	root := repoRoot(t)
	binds := 0
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			binds++
			rel, err := filepath.Rel(root, v.Source)
			if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				t.Errorf("service %s: bind source %q is outside the repository", name, v.Source)
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("service %s: bind source %s: %v", name, rel, err)
			}
			if !v.ReadOnly {
				t.Errorf("service %s: bind mount %s -> %s is read-write; repository files are mounted :ro", name, rel, v.Target)
			}
		}
	}
	if binds == 0 {
		t.Error("no bind mounts found; the Grafana provisioning and tokens mounts are missing")
	}
}

func TestComposeNamedVolumesDeclared(t *testing.T) {
	p := loadProject(t)
	used := map[string]bool{}
	for name, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeVolume {
				continue
			}
			if v.Source == "" {
				t.Errorf("service %s: anonymous volume at %s; use a named one", name, v.Target)
				continue
			}
			used[v.Source] = true
			if _, ok := p.Volumes[v.Source]; !ok {
				t.Errorf("service %s: volume %q is not declared under volumes:", name, v.Source)
			}
		}
	}
	for name := range p.Volumes {
		if !used[name] {
			t.Errorf("volume %q is declared but no service uses it", name)
		}
	}
	// Every service keeps its state on a named volume.
	for _, name := range wantServices {
		s := service(t, p, name)
		if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == types.VolumeTypeVolume }) {
			t.Errorf("service %s has no named volume", name)
		}
	}
}

func TestComposePortsLoopback(t *testing.T) {
	p := loadProject(t)
	for name, s := range p.Services {
		for _, pc := range s.Ports {
			if pc.HostIP != "127.0.0.1" {
				t.Errorf("service %s: port %d published on %q, want 127.0.0.1", name, pc.Target, pc.HostIP)
			}
			if pc.Published == "" {
				t.Errorf("service %s: port %d has no fixed host port", name, pc.Target)
			}
		}
	}
}

// undefaultedVars returns the variables that s interpolates without a
// default: ${VAR}, $VAR, ${VAR:?err}. ${VAR:-default} and ${VAR-default}
// are fine; $$ is an escaped dollar.
func undefaultedVars(s string) []string {
	var bad []string
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			continue
		}
		switch next := s[i+1]; {
		case next == '$':
			i++
		case next == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return append(bad, s[i:])
			}
			expr := s[i+2 : i+end]
			name := expr
			if j := strings.IndexAny(expr, ":-?+"); j >= 0 {
				name = expr[:j]
			}
			op := expr[len(name):]
			if !strings.HasPrefix(op, ":-") && !strings.HasPrefix(op, "-") {
				bad = append(bad, "${"+expr+"}")
			}
			i += end
		case next == '_' || next >= 'A' && next <= 'Z' || next >= 'a' && next <= 'z':
			bad = append(bad, s[i:])
		}
	}
	return bad
}

func TestUndefaultedVars(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{"plain", 0},
		{"${A:-x}", 0},
		{"${A-x}", 0},
		{"u:${A:-evidence}@h/${B:-db}", 0},
		{"$$HOME and $${NOT}", 0},
		{"${A}", 1},
		{"${A:?required}", 1},
		{"$A", 1},
		{"${A:-x} ${B}", 1},
		{"${A", 1},
	} {
		if got := undefaultedVars(tc.in); len(got) != tc.want {
			t.Errorf("undefaultedVars(%q) = %q, want %d", tc.in, got, tc.want)
		}
	}
}

// TestComposeVariablesHaveDefaults reads every scalar of docker-compose.yml
// (comments excluded) and requires each interpolated variable to carry a
// default, so `docker compose up` works with nothing set and nothing in the
// file is a real credential.
func TestComposeVariablesHaveDefaults(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(n *yaml.Node)
	vars := 0
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			vars += strings.Count(n.Value, "${") - strings.Count(n.Value, "$${")
			for _, v := range undefaultedVars(n.Value) {
				t.Errorf("docker-compose.yml:%d: %s has no default", n.Line, v)
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(&doc)
	if vars == 0 {
		t.Error("no ${VAR:-default} found; the passwords are expected to come from the environment")
	}
}
