package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"
)

const (
	clickhousePlugin = "grafana-clickhouse-datasource"
	provisioningDir  = "dashboards/provisioning"
)

// datasourceFile is the part of a Grafana data source provisioning file the
// tests check.
type datasourceFile struct {
	APIVersion  int `yaml:"apiVersion"`
	Datasources []struct {
		Name     string `yaml:"name"`
		Type     string `yaml:"type"`
		UID      string `yaml:"uid"`
		JSONData struct {
			Host            string `yaml:"host"`
			Port            int    `yaml:"port"`
			Protocol        string `yaml:"protocol"`
			DefaultDatabase string `yaml:"defaultDatabase"`
			Username        string `yaml:"username"`
		} `yaml:"jsonData"`
		SecureJSONData map[string]string `yaml:"secureJsonData"`
	} `yaml:"datasources"`
}

// dashboardFile is the part of a Grafana dashboard provider file the tests
// check.
type dashboardFile struct {
	APIVersion int `yaml:"apiVersion"`
	Providers  []struct {
		Name    string `yaml:"name"`
		Type    string `yaml:"type"`
		Folder  string `yaml:"folder"`
		Options struct {
			Path string `yaml:"path"`
		} `yaml:"options"`
	} `yaml:"providers"`
}

// readYAML decodes a repository file, given relative to the repository root.
func readYAML(t *testing.T, rel string, v any) {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := yaml.NewDecoder(f).Decode(v); err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
}

// expandGrafanaEnv does what Grafana does to provisioning files: replace
// $VAR and ${VAR} with the variable's value in Grafana's environment.
func expandGrafanaEnv(s string, grafana types.ServiceConfig) string {
	return os.Expand(s, func(key string) string {
		if v, ok := grafana.Environment[key]; ok && v != nil {
			return *v
		}
		return ""
	})
}

func TestGrafanaDatasource(t *testing.T) {
	p := loadProject(t)
	grafana := service(t, p, "grafana")
	ch := service(t, p, "clickhouse")

	var f datasourceFile
	readYAML(t, provisioningDir+"/datasources/clickhouse.yaml", &f)
	if f.APIVersion != 1 {
		t.Errorf("apiVersion = %d, want 1", f.APIVersion)
	}
	if len(f.Datasources) != 1 {
		t.Fatalf("%d data sources, want 1", len(f.Datasources))
	}
	ds := f.Datasources[0]
	if ds.Type != clickhousePlugin {
		t.Errorf("type = %q, want %q", ds.Type, clickhousePlugin)
	}
	// Dashboards refer to the data source by this uid.
	if ds.UID != "clickhouse" {
		t.Errorf("uid = %q, want %q", ds.UID, "clickhouse")
	}

	// It points at the clickhouse service's native port and database.
	if _, ok := p.Services[ds.JSONData.Host]; !ok {
		t.Errorf("jsonData.host = %q is not a compose service", ds.JSONData.Host)
	}
	if ds.JSONData.Protocol != "native" || ds.JSONData.Port != 9000 {
		t.Errorf("jsonData protocol/port = %s/%d, want native/9000", ds.JSONData.Protocol, ds.JSONData.Port)
	}
	if !slices.ContainsFunc(ch.Ports, func(pc types.ServicePortConfig) bool { return int(pc.Target) == ds.JSONData.Port }) {
		t.Errorf("clickhouse does not serve port %d", ds.JSONData.Port)
	}
	if got, want := ds.JSONData.DefaultDatabase, env(t, ch, "CLICKHOUSE_DB"); got != want {
		t.Errorf("jsonData.defaultDatabase = %q, clickhouse CLICKHOUSE_DB = %q", got, want)
	}

	// The credentials come from Grafana's environment, which must resolve to
	// the user and password the clickhouse service creates.
	if got, want := expandGrafanaEnv(ds.JSONData.Username, grafana), env(t, ch, "CLICKHOUSE_USER"); got != want {
		t.Errorf("jsonData.username %q expands to %q in grafana, clickhouse CLICKHOUSE_USER = %q", ds.JSONData.Username, got, want)
	}
	password, ok := ds.SecureJSONData["password"]
	if !ok || !strings.Contains(password, "$") {
		t.Errorf("secureJsonData.password must come from the environment (${CLICKHOUSE_PASSWORD}), got %q", password)
	}
	if expandGrafanaEnv(password, grafana) != env(t, ch, "CLICKHOUSE_PASSWORD") {
		t.Errorf("secureJsonData.password %q does not expand, in grafana's environment, to clickhouse's CLICKHOUSE_PASSWORD", password)
	}

	// The plugin is installed before Grafana provisions the data source.
	plugins := strings.Split(env(t, grafana, "GF_PLUGINS_PREINSTALL_SYNC"), ",")
	if !slices.ContainsFunc(plugins, func(p string) bool {
		id, _, _ := strings.Cut(strings.TrimSpace(p), "@")
		return id == ds.Type
	}) {
		t.Errorf("grafana: GF_PLUGINS_PREINSTALL_SYNC = %q does not install %s", plugins, ds.Type)
	}
}

func TestGrafanaDashboardProvider(t *testing.T) {
	p := loadProject(t)
	grafana := service(t, p, "grafana")
	root := repoRoot(t)

	var f dashboardFile
	readYAML(t, provisioningDir+"/dashboards/evidence.yaml", &f)
	if f.APIVersion != 1 {
		t.Errorf("apiVersion = %d, want 1", f.APIVersion)
	}
	if len(f.Providers) != 1 {
		t.Fatalf("%d providers, want 1", len(f.Providers))
	}
	prov := f.Providers[0]
	if prov.Type != "file" || prov.Folder != "Evidence" {
		t.Errorf("provider type/folder = %q/%q, want file/Evidence", prov.Type, prov.Folder)
	}

	// The provider reads the path where compose mounts the dashboards/ dir.
	mount := volumeTarget(grafana, types.VolumeTypeBind, prov.Options.Path)
	switch {
	case mount == nil:
		t.Errorf("provider path %q is not a bind mount of the grafana service", prov.Options.Path)
	case mount.Source != filepath.Join(root, "dashboards"):
		t.Errorf("provider path %q is mounted from %q, want the repository's dashboards/", prov.Options.Path, mount.Source)
	}

	// Both provisioning directories are mounted where Grafana reads them.
	for _, kind := range []string{"datasources", "dashboards"} {
		target := "/etc/grafana/provisioning/" + kind
		m := volumeTarget(grafana, types.VolumeTypeBind, target)
		if m == nil {
			t.Errorf("grafana: nothing mounted at %s", target)
			continue
		}
		if want := filepath.Join(root, filepath.FromSlash(provisioningDir), kind); m.Source != want {
			t.Errorf("grafana: %s mounted from %q, want %q", target, m.Source, want)
		}
	}

	// Grafana's data lives on a named volume and it listens where published.
	if volumeTarget(grafana, types.VolumeTypeVolume, "/var/lib/grafana") == nil {
		t.Error("grafana: /var/lib/grafana is not a named volume")
	}
	if !slices.ContainsFunc(grafana.Ports, func(pc types.ServicePortConfig) bool {
		return pc.Target == 3000 && pc.Published == strconv.Itoa(3000)
	}) {
		t.Errorf("grafana: port 3000 not published as 3000 (%+v)", grafana.Ports)
	}
}
