package helm

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// The Secrets' contents the tests give the pods. The NATS passwords are
// hex, as the README tells to make them (openssl rand -hex 32), and
// start with digits: the NATS server reads them through variables.
var testSecrets = map[string]string{
	"evidence/clickhouse-password": "c0ffee00c1c4" + strings.Repeat("ab", 26),
	"evidence-nats/evidenced":      "0123456789" + strings.Repeat("e", 54),
	"evidence-nats/producer":       "9876543210" + strings.Repeat("f", 54),
	"evidence-nats/auditor":        "5555555555" + strings.Repeat("a", 54),
}

// profile is what one set of values must give, worked out by hand from
// values.yaml or values-production.yaml and the benchmarks.
type profile struct {
	name       string
	files      []string
	replicas   int32
	natsNodes  int32
	cpuRequest string
	memRequest string
	memLimit   string
	// spread: one evidenced replica per node.
	spread bool
	pvc    string
}

var profiles = []profile{
	{name: "default", replicas: 2, natsNodes: 3, cpuRequest: "500m", memRequest: "768Mi", memLimit: "1Gi", pvc: "20Gi"},
	{name: "production", files: []string{filepath.Join(chartDir, "values-production.yaml")},
		replicas: 3, natsNodes: 3, cpuRequest: "2", memRequest: "1536Mi", memLimit: "2Gi", spread: true, pvc: "100Gi"},
}

// measuredPeakRSS is evidenced's peak RSS in bench-pipeline at 1,000
// changes (the chart's resource requests must cover it).
var measuredPeakRSS = resource.MustParse("604Mi")

func TestChartRenders(t *testing.T) {
	for _, p := range profiles {
		t.Run(p.name, func(t *testing.T) {
			m := render(t, p.files)
			want := []string{
				"ConfigMap/evidence-nats-config",
				"Deployment/evidence",
				"PodDisruptionBudget/evidence",
				"PodDisruptionBudget/evidence-nats",
				"Service/evidence",
				"Service/evidence-nats",
				"Service/evidence-nats-headless",
				"StatefulSet/evidence-nats",
			}
			if !slices.Equal(m.objects, want) {
				t.Fatalf("rendered\n  %s\nwant\n  %s", lines(m.objects), lines(want))
			}
			checkEvidenced(t, p, m)
			checkNATS(t, p, m)
		})
	}
}

func checkEvidenced(t *testing.T, p profile, m *manifest) {
	d := m.deployments["evidence"]
	if d.Namespace != namespace {
		t.Errorf("Deployment namespace %q, want %q", d.Namespace, namespace)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != p.replicas {
		t.Errorf("replicas %v, want %d", d.Spec.Replicas, p.replicas)
	}
	pod := &d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)
	sel := labels.SelectorFromSet(d.Spec.Selector.MatchLabels)
	if !sel.Matches(podLabels) {
		t.Errorf("the Deployment's selector %v does not select its pods %v", sel, podLabels)
	}
	c := containerNamed(t, pod, "evidenced")

	// Ports and probes: /healthz for start and liveness, /readyz for
	// readiness, on the port evidenced listens on.
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	env, err := expandEnv(c, testSecrets)
	if err != nil {
		t.Fatal(err)
	}
	host, port, err := net.SplitHostPort(env["EVIDENCE_HTTP_ADDR"])
	if err != nil || host != "0.0.0.0" {
		t.Fatalf("EVIDENCE_HTTP_ADDR %q: want 0.0.0.0:PORT (the pod's address)", env["EVIDENCE_HTTP_ADDR"])
	}
	if strconv.Itoa(int(ports["http"])) != port {
		t.Errorf("container port http is %d, evidenced listens on %s", ports["http"], port)
	}
	for name, pr := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{
		"startup":   {c.StartupProbe, "/healthz"},
		"liveness":  {c.LivenessProbe, "/healthz"},
		"readiness": {c.ReadinessProbe, "/readyz"},
	} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s probe: none, or not an HTTP GET", name)
			continue
		}
		g := pr.probe.HTTPGet
		if g.Path != pr.path {
			t.Errorf("%s probe path %q, want %q", name, g.Path, pr.path)
		}
		if got := g.Port.String(); got != "http" && got != port {
			t.Errorf("%s probe port %s, want http (%s)", name, got, port)
		}
		if pr.probe.TimeoutSeconds < 2 {
			t.Errorf("%s probe timeout %d s: /readyz itself waits up to 3 s for its checks", name, pr.probe.TimeoutSeconds)
		}
	}

	// The Service reaches the pods' http port; the PDB covers the pods.
	svc := m.services["evidence"]
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service selector %v does not select the pods %v", svc.Spec.Selector, podLabels)
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != "http" {
		t.Errorf("Service ports %+v: want one, to target port http", svc.Spec.Ports)
	}
	pdb := m.pdbs["evidence"]
	if !labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels).Matches(podLabels) || pdb.Spec.MaxUnavailable == nil || pdb.Spec.MaxUnavailable.IntValue() != 1 {
		t.Errorf("PDB %+v: want maxUnavailable 1 over the pods", pdb.Spec)
	}

	// Secrets come from Secrets: every variable whose name says it holds
	// one is a secretKeyRef, never a value.
	for _, e := range c.Env {
		n := e.Name
		secretish := strings.Contains(n, "PASSWORD") || strings.Contains(n, "SECRET") || (strings.Contains(n, "TOKEN") && !strings.HasSuffix(n, "_FILE"))
		if secretish && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "") {
			t.Errorf("%s is a secret given as a value %q, not from a Secret", n, e.Value)
		}
	}
	for name, ref := range map[string]string{
		"EVIDENCE_NATS_PASSWORD":       "evidence-nats/evidenced",
		"EVIDENCE_CLICKHOUSE_PASSWORD": "evidence/clickhouse-password",
		"EVIDENCE_GITHUB_SECRET":       "evidence/github-secret",
		"EVIDENCE_GITLAB_TOKEN":        "evidence/gitlab-token",
		"EVIDENCE_JIRA_SECRET":         "evidence/jira-secret",
		"EVIDENCE_SERVICENOW_SECRET":   "evidence/servicenow-secret",
	} {
		s := envVar(t, c, name).ValueFrom.SecretKeyRef
		if got := s.Name + "/" + s.Key; got != ref {
			t.Errorf("%s from secret %s, want %s", name, got, ref)
		}
		optional := s.Optional != nil && *s.Optional
		if want := strings.Contains(name, "PASSWORD"); optional == want {
			t.Errorf("%s: optional %v; the passwords are required, the webhook secrets optional", name, optional)
		}
	}

	// The URLs, as the kubelet expands them.
	nurls := strings.Split(env["EVIDENCE_NATS_URL"], ",")
	sts := m.statefulSets["evidence-nats"]
	natsPort := 0
	for _, cp := range containerNamed(t, &sts.Spec.Template.Spec, "nats").Ports {
		if cp.Name == "nats" {
			natsPort = int(cp.ContainerPort)
		}
	}
	if hl := m.services[sts.Spec.ServiceName]; hl == nil || hl.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("the NATS StatefulSet's service %q is not a headless Service of the chart", sts.Spec.ServiceName)
	}
	var wantHosts []string
	for i := range *sts.Spec.Replicas {
		wantHosts = append(wantHosts, fmt.Sprintf("%s-%d.%s.%s.svc:%d", sts.Name, i, sts.Spec.ServiceName, namespace, natsPort))
	}
	var gotHosts []string
	for _, raw := range nurls {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("EVIDENCE_NATS_URL part %q: %v", raw, err)
		}
		pw, _ := u.User.Password()
		if u.Scheme != "nats" || u.User.Username() != "evidenced" || pw != testSecrets["evidence-nats/evidenced"] {
			t.Errorf("EVIDENCE_NATS_URL part %s: want nats://evidenced:<the evidenced password>@...", u.Redacted())
		}
		gotHosts = append(gotHosts, u.Host)
	}
	if !slices.Equal(gotHosts, wantHosts) {
		t.Errorf("EVIDENCE_NATS_URL hosts\n  %s\nwant every NATS pod\n  %s", lines(gotHosts), lines(wantHosts))
	}
	cu, err := url.Parse(env["EVIDENCE_CLICKHOUSE_URL"])
	if err != nil {
		t.Fatalf("EVIDENCE_CLICKHOUSE_URL: %v", err)
	}
	if pw, _ := cu.User.Password(); cu.Scheme != "clickhouse" || cu.User.Username() != "evidence" || pw != testSecrets["evidence/clickhouse-password"] ||
		cu.Host != "clickhouse:9000" || cu.Path != "/evidence" {
		t.Errorf("EVIDENCE_CLICKHOUSE_URL %s: want clickhouse://evidence:<the password>@clickhouse:9000/evidence", cu.Redacted())
	}
	for _, n := range []string{"EVIDENCE_STREAM_REPLICAS", "EVIDENCE_KV_REPLICAS"} {
		if env[n] != strconv.Itoa(int(*sts.Spec.Replicas)) {
			t.Errorf("%s %q, want the NATS cluster's %d nodes", n, env[n], *sts.Spec.Replicas)
		}
	}

	// Files: the tokens file from the Secret; the signing key copied by
	// the init container, as evidenced's user and mode 0600, from the
	// Secret to the volume evidenced reads it from; the data dir writable.
	if v, _, item := mountedFile(t, pod, c, env["EVIDENCE_TOKENS_FILE"]); v.Secret == nil || v.Secret.SecretName != "evidence" ||
		len(v.Secret.Items) != 1 || v.Secret.Items[0].Key != "tokens" || v.Secret.Items[0].Path != item {
		t.Errorf("EVIDENCE_TOKENS_FILE %s: want key tokens of Secret evidence, got volume %+v", env["EVIDENCE_TOKENS_FILE"], v)
	}
	keyPath := env["EVIDENCE_SIGNING_KEY"]
	v, _, _ := mountedFile(t, pod, c, keyPath)
	if v.EmptyDir == nil || v.EmptyDir.Medium != corev1.StorageMediumMemory {
		t.Errorf("EVIDENCE_SIGNING_KEY %s is on volume %+v, want an emptyDir in memory", keyPath, v)
	}
	ic := containerNamed(t, pod, "signing-key")
	if iv, _, _ := mountedFile(t, pod, ic, keyPath); iv.Name != v.Name {
		t.Errorf("the init container writes the key to volume %s, evidenced reads it from %s", iv.Name, v.Name)
	}
	script := strings.Join(ic.Command, " ")
	src, ok := strings.CutSuffix(strings.TrimSpace(script[strings.Index(script, "cat ")+4:]), " > "+keyPath)
	if !strings.Contains(script, "umask 077 && cat ") || !ok {
		t.Fatalf("init container command %q: want umask 077 && cat SECRET > %s", script, keyPath)
	}
	if sv, _, item := mountedFile(t, pod, ic, src); sv.Secret == nil || sv.Secret.SecretName != "evidence" ||
		len(sv.Secret.Items) != 1 || sv.Secret.Items[0].Key != "evidence-signing.key" || sv.Secret.Items[0].Path != item {
		t.Errorf("the init container copies %s: want key evidence-signing.key of Secret evidence, got volume %+v", src, sv)
	}
	sc := pod.SecurityContext
	if sc == nil || sc.RunAsUser == nil || ic.SecurityContext != nil && ic.SecurityContext.RunAsUser != nil ||
		c.SecurityContext == nil || c.SecurityContext.RunAsUser != nil || sc.FSGroup == nil {
		t.Errorf("the pod's user and fsGroup must be set once for both containers (the key's owner is the one reading it)")
	}
	if sc != nil && (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) {
		t.Errorf("runAsNonRoot is not set")
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Errorf("evidenced's root filesystem is not read-only")
	}
	if dv, dm, _ := mountedFile(t, pod, c, env["EVIDENCE_DATA_DIR"]+"/x"); dv.EmptyDir == nil || dm.ReadOnly {
		t.Errorf("EVIDENCE_DATA_DIR %s: want a writable emptyDir, got %+v", env["EVIDENCE_DATA_DIR"], dv)
	}

	// Resources from the benchmarks.
	r := c.Resources
	for what, q := range map[string]struct {
		got  resource.Quantity
		want string
	}{
		"requests.cpu":    {r.Requests[corev1.ResourceCPU], p.cpuRequest},
		"requests.memory": {r.Requests[corev1.ResourceMemory], p.memRequest},
		"limits.memory":   {r.Limits[corev1.ResourceMemory], p.memLimit},
	} {
		if q.got.Cmp(resource.MustParse(q.want)) != 0 {
			t.Errorf("%s %s, want %s", what, q.got.String(), q.want)
		}
	}
	if mem := r.Requests[corev1.ResourceMemory]; mem.Cmp(measuredPeakRSS) < 0 {
		t.Errorf("requests.memory %s is below the measured peak RSS %s", mem.String(), measuredPeakRSS.String())
	}
	if _, ok := r.Limits[corev1.ResourceCPU]; ok {
		t.Errorf("a CPU limit throttles a CPU-bound evidenced: leave it to requests")
	}
	spread := false
	for _, tsc := range pod.TopologySpreadConstraints {
		if tsc.TopologyKey == "kubernetes.io/hostname" && tsc.WhenUnsatisfiable == corev1.DoNotSchedule &&
			labels.SelectorFromSet(tsc.LabelSelector.MatchLabels).Matches(podLabels) {
			spread = true
		}
	}
	if spread != p.spread {
		t.Errorf("one replica per node: %v, want %v", spread, p.spread)
	}
}

// TestNoSecretInValues: no values file holds a password, secret, token or
// key; the only ones named so are references ($VARIABLES the NATS server
// reads from its environment, Secret names and keys).
func TestNoSecretInValues(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(chartDir, "values*.yaml"))
	if err != nil || len(files) < 2 {
		t.Fatalf("values files %v: %v", files, err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v any
		if err := yaml.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var walk func(path string, v any)
		walk = func(path string, v any) {
			switch x := v.(type) {
			case map[string]any:
				for k, e := range x {
					walk(path+"."+k, e)
				}
			case []any:
				for i, e := range x {
					walk(fmt.Sprintf("%s[%d]", path, i), e)
				}
			case string:
				leaf := strings.ToLower(path[strings.LastIndex(path, ".")+1:])
				if !slices.ContainsFunc([]string{"password", "secret", "token", "signingkey", "privatekey", "apikey"}, func(s string) bool { return strings.Contains(leaf, s) }) {
					return
				}
				isRef := strings.HasPrefix(x, "<< $") && strings.HasSuffix(x, " >>") ||
					strings.Contains(path, "secretKeyRef") || strings.HasPrefix(path, ".secrets.")
				if x != "" && !isRef {
					t.Errorf("%s: %s = %q looks like a secret in the values", f, path, x)
				}
			}
		}
		walk("", v)
	}
}

// TestChartRefusesBadValues: values evidenced or JetStream could not run
// with fail at render time with a message naming the value.
func TestChartRefusesBadValues(t *testing.T) {
	for _, c := range []struct {
		sets []string
		want string
	}{
		{[]string{"replicas=0"}, "replicas: 0: give at least 1 evidenced replica"},
		{[]string{"streamReplicas=5"}, "streamReplicas 5 is more than the NATS cluster's 3 nodes (nats.config.cluster.replicas)"},
		{[]string{"kvReplicas=4"}, "kvReplicas 4 is more than the NATS cluster's 3 nodes"},
		{[]string{"nats.enabled=false"}, "nats.enabled is false and natsURL is empty"},
		{[]string{"clickhouse.host="}, "clickhouse.host is required"},
		{[]string{"secrets.name="}, "secrets.name is required"},
	} {
		_, err := renderChart(t, nil, c.sets...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--set %v: error %v, want one saying %q", c.sets, err, c.want)
		}
	}
}

// TestChartExternalNATS: with the NATS chart off, evidenced connects to
// natsURL (its password still from the Secret) and nothing of NATS is
// rendered.
func TestChartExternalNATS(t *testing.T) {
	m := render(t, nil, "nats.enabled=false", "natsURL=nats://evidenced:$(EVIDENCE_NATS_PASSWORD)@nats.example:4222",
		"streamReplicas=1", "kvReplicas=1")
	want := []string{"Deployment/evidence", "PodDisruptionBudget/evidence", "Service/evidence"}
	if !slices.Equal(m.objects, want) {
		t.Fatalf("rendered %v, want %v", m.objects, want)
	}
	env, err := expandEnv(containerNamed(t, &m.deployments["evidence"].Spec.Template.Spec, "evidenced"), testSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if want := "nats://evidenced:" + testSecrets["evidence-nats/evidenced"] + "@nats.example:4222"; env["EVIDENCE_NATS_URL"] != want {
		t.Errorf("EVIDENCE_NATS_URL %q, want %q", env["EVIDENCE_NATS_URL"], want)
	}
	if env["EVIDENCE_STREAM_REPLICAS"] != "1" {
		t.Errorf("EVIDENCE_STREAM_REPLICAS %q, want 1", env["EVIDENCE_STREAM_REPLICAS"])
	}
}
