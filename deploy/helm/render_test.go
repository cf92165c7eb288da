package helm

import (
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/loader"
	"helm.sh/helm/v4/pkg/cli/values"
	"helm.sh/helm/v4/pkg/getter"
	release "helm.sh/helm/v4/pkg/release/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// chartDir is the chart under test, relative to this package.
const chartDir = "evidence"

// The release the tests render: its name and namespace show up in the
// URLs evidenced is given.
const (
	releaseName = "evidence"
	namespace   = "audit"
)

// manifest is a rendered chart, every document decoded strictly into its
// Kubernetes API type, by name.
type manifest struct {
	deployments  map[string]*appsv1.Deployment
	statefulSets map[string]*appsv1.StatefulSet
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	pdbs         map[string]*policyv1.PodDisruptionBudget
	// objects is "Kind/name" of every document, sorted.
	objects []string
}

// renderChart renders the chart as `helm template` does (client-side dry
// run: no cluster), with the chart's values.yaml and then valueFiles and
// sets (--set) on top. It returns the manifest text.
func renderChart(t *testing.T, valueFiles []string, sets ...string) (string, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart %s: %v", chartDir, err)
	}
	vals, err := mergeValues(valueFiles, sets...)
	if err != nil {
		t.Fatalf("values %v %v: %v", valueFiles, sets, err)
	}
	cfg := action.NewConfiguration(action.ConfigurationSetLogger(slog.DiscardHandler))
	install := action.NewInstall(cfg)
	install.DryRunStrategy = action.DryRunClient
	install.ReleaseName = releaseName
	install.Namespace = namespace
	install.Replace = true
	rel, err := install.Run(chrt, vals)
	if err != nil {
		return "", err
	}
	r, ok := rel.(*release.Release)
	if !ok {
		t.Fatalf("install returned a %T, want *release.Release", rel)
	}
	if len(r.Hooks) > 0 {
		t.Fatalf("the chart renders %d hooks; the tests below check only the manifest", len(r.Hooks))
	}
	return r.Manifest, nil
}

// mergeValues reads the values files and --set values as helm does.
func mergeValues(files []string, sets ...string) (map[string]any, error) {
	opts := values.Options{ValueFiles: files, Values: sets}
	return opts.MergeValues(getter.Providers{})
}

// render renders the chart and decodes it; any error fails the test.
func render(t *testing.T, valueFiles []string, sets ...string) *manifest {
	t.Helper()
	text, err := renderChart(t, valueFiles, sets...)
	if err != nil {
		t.Fatalf("render with %v %v: %v", valueFiles, sets, err)
	}
	m, err := decodeManifest(text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifest splits a manifest into documents and decodes each one
// strictly (an unknown or duplicated field is an error) into the
// Kubernetes API type its apiVersion and kind name. A kind the tests do
// not know is an error too: a new kind needs its checks.
func decodeManifest(text string) (*manifest, error) {
	m := &manifest{
		deployments:  map[string]*appsv1.Deployment{},
		statefulSets: map[string]*appsv1.StatefulSet{},
		services:     map[string]*corev1.Service{},
		configMaps:   map[string]*corev1.ConfigMap{},
		pdbs:         map[string]*policyv1.PodDisruptionBudget{},
	}
	for i, doc := range docSeparator.Split(text, -1) {
		source := "document " + fmt.Sprint(i)
		empty := true
		for line := range strings.Lines(doc) {
			line = strings.TrimSpace(line)
			if s, ok := strings.CutPrefix(line, "# Source: "); ok {
				source = s
			}
			if line != "" && !strings.HasPrefix(line, "#") {
				empty = false
			}
		}
		if empty {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			return nil, fmt.Errorf("%s: not YAML: %w", source, err)
		}
		var obj any
		name := head.Metadata.Name
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 Deployment":
			o := &appsv1.Deployment{}
			obj, m.deployments[name] = o, o
		case "apps/v1 StatefulSet":
			o := &appsv1.StatefulSet{}
			obj, m.statefulSets[name] = o, o
		case "v1 Service":
			o := &corev1.Service{}
			obj, m.services[name] = o, o
		case "v1 ConfigMap":
			o := &corev1.ConfigMap{}
			obj, m.configMaps[name] = o, o
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			obj, m.pdbs[name] = o, o
		default:
			return nil, fmt.Errorf("%s: %s %s %q: a kind these tests do not decode", source, head.APIVersion, head.Kind, name)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			return nil, fmt.Errorf("%s: %s %q does not decode strictly as %T: %w", source, head.Kind, name, obj, err)
		}
		m.objects = append(m.objects, head.Kind+"/"+name)
	}
	sort.Strings(m.objects)
	for i := 1; i < len(m.objects); i++ {
		if m.objects[i] == m.objects[i-1] {
			return nil, fmt.Errorf("%s rendered twice", m.objects[i])
		}
	}
	return m, nil
}

// TestDecodeIsStrict shows that the decoder the chart's tests rely on
// refuses what Kubernetes would not know: a misspelt field, a field at
// the wrong level, a kind nobody checks, a duplicated key.
func TestDecodeIsStrict(t *testing.T) {
	good := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: 80\n"
	if _, err := decodeManifest(good); err != nil {
		t.Fatalf("a valid Service: %v", err)
	}
	for name, doc := range map[string]string{
		"misspelt field": "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  port:\n    - port: 80\n",
		"wrong level":    "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nports:\n  - port: 80\n",
		"wrong type":     "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: d\nspec:\n  replicas: two\n",
		"unknown kind":   "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n",
		"duplicate key":  "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  name: t\n",
		"twice":          good + "---\n" + good,
	} {
		if _, err := decodeManifest(doc); err == nil {
			t.Errorf("%s: decoded without an error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// containerNamed is the pod's container (or init container) called name.
func containerNamed(t *testing.T, pod *corev1.PodSpec, name string) *corev1.Container {
	t.Helper()
	for _, list := range [][]corev1.Container{pod.Containers, pod.InitContainers} {
		for i := range list {
			if list[i].Name == name {
				return &list[i]
			}
		}
	}
	t.Fatalf("no container %q in the pod", name)
	return nil
}

// envVar is the container's variable called name.
func envVar(t *testing.T, c *corev1.Container, name string) corev1.EnvVar {
	t.Helper()
	for _, e := range c.Env {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("container %s has no variable %s", c.Name, name)
	return corev1.EnvVar{}
}

// expandEnv gives every plain variable of c its value as the kubelet
// does: $(NAME) is replaced by the value of a variable defined earlier in
// the list (a later one, or an unknown one, stays as written, which is
// reported as an error here), $$ is a literal $. Variables from secrets
// take their value from secrets[secretName/key].
func expandEnv(c *corev1.Container, secrets map[string]string) (map[string]string, error) {
	got := map[string]string{}
	ref := regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			s := e.ValueFrom.SecretKeyRef
			if s == nil {
				return nil, fmt.Errorf("%s: valueFrom other than a secret", e.Name)
			}
			v, ok := secrets[s.Name+"/"+s.Key]
			if !ok {
				if s.Optional != nil && *s.Optional {
					continue
				}
				return nil, fmt.Errorf("%s: secret %s key %s not given to the test", e.Name, s.Name, s.Key)
			}
			got[e.Name] = v
			continue
		}
		var err error
		got[e.Name] = ref.ReplaceAllStringFunc(e.Value, func(r string) string {
			if r == "$$" {
				return "$"
			}
			name := r[2 : len(r)-1]
			v, ok := got[name]
			if !ok {
				err = fmt.Errorf("%s refers to $(%s), which is not defined before it: Kubernetes would leave it as written", e.Name, name)
			}
			return v
		})
		if err != nil {
			return nil, err
		}
	}
	return got, nil
}

// mountedFile finds which volume holds path in container c: the volume
// and the path inside it.
func mountedFile(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, path string) (corev1.Volume, corev1.VolumeMount, string) {
	t.Helper()
	var best *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") && (best == nil || len(vm.MountPath) > len(best.MountPath)) {
			best = &c.VolumeMounts[i]
		}
	}
	if best == nil {
		t.Fatalf("container %s: no volume mounted over %s", c.Name, path)
	}
	for _, v := range pod.Volumes {
		if v.Name == best.Name {
			return v, *best, strings.TrimPrefix(path, strings.TrimSuffix(best.MountPath, "/")+"/")
		}
	}
	t.Fatalf("container %s mounts volume %q, which the pod does not have", c.Name, best.Name)
	return corev1.Volume{}, corev1.VolumeMount{}, ""
}

// lines is s's non-empty lines, for messages.
func lines(s []string) string { return strings.Join(s, "\n  ") }

// keysOf is m's keys, sorted.
func keysOf[V any](m map[string]V) []string {
	k := make([]string, 0, len(m))
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}
