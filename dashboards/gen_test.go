package dashboards_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

var update = flag.Bool("update", false, "rewrite the dashboards' JSON files from defs_test.go")

// chQuery is a panel target of the grafana-clickhouse-datasource plugin
// (its SQL editor's query model): the foundation SDK has no type for it.
type chQuery struct {
	RefID      string                `json:"refId"`
	Datasource *common.DataSourceRef `json:"datasource"`
	EditorType string                `json:"editorType"` // sql
	QueryType  string                `json:"queryType"`  // table, timeseries
	Format     int                   `json:"format"`     // 0 time series, 1 table
	RawSQL     string                `json:"rawSql"`
}

func (chQuery) ImplementsDataqueryVariant() {}
func (q chQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(chQuery)
	return ok && reflect.DeepEqual(q, o)
}
func (chQuery) DataqueryType() string { return chType }
func (chQuery) Validate() error       { return nil }

var _ variants.Dataquery = chQuery{}

func ptr[T any](v T) *T { return &v }

func dsRef() *common.DataSourceRef {
	return &common.DataSourceRef{Type: ptr(chType), Uid: ptr(chUID)}
}

// traceLink is the data link of a change_id column to the change trace.
const traceLink = "/d/" + traceUID + "/change-trace?var-change=${__value.raw:percentencode}&${__url_time_range}"

// build turns a definition into Grafana's dashboard model.
func build(d dashDef) *dashboard.Dashboard {
	db := dashboard.NewDashboard()
	db.Uid, db.Title, db.Description = ptr(d.uid), ptr(d.title), ptr(d.desc)
	db.Tags = d.tags
	db.Timezone = ptr("utc")
	db.Editable = ptr(false)
	db.Refresh = ptr("1m")
	db.Time = &dashboard.DashboardDashboardTime{From: d.from, To: "now"}
	db.Links = []dashboard.DashboardLink{{Title: "Evidence dashboards", Type: dashboard.DashboardLinkTypeDashboards,
		Icon: "external link", Tags: []string{"evidence"}, AsDropdown: true, IncludeVars: true, KeepTime: true}}

	for _, v := range d.vars {
		m := dashboard.VariableModel{Name: v.name, Label: ptr(v.label), Description: ptr(v.desc)}
		switch v.kind {
		case "textbox":
			m.Type = dashboard.VariableTypeTextbox
			m.Query = &dashboard.StringOrMap{String: ptr(v.current)}
			m.Current = &dashboard.VariableOption{Text: str(v.current), Value: str(v.current)}
		case "query":
			q := sqlFragments.Replace(v.query)
			m.Type = dashboard.VariableTypeQuery
			m.Datasource = dsRef()
			m.Query = &dashboard.StringOrMap{String: ptr(q)}
			m.Definition = ptr(q)
			m.Refresh = ptr(dashboard.VariableRefreshOnTimeRangeChanged)
			m.Sort = ptr(dashboard.VariableSortAlphabeticalAsc)
			if v.multi {
				m.Multi, m.IncludeAll, m.AllValue = ptr(true), ptr(true), ptr("'__all__'")
				m.Current = &dashboard.VariableOption{Text: str("All"), Value: dashboard.StringOrArrayOfString{ArrayOfString: []string{"$__all"}}}
			} else {
				m.Multi, m.IncludeAll = ptr(false), ptr(false)
				m.Current = &dashboard.VariableOption{Text: str(v.current), Value: str(v.current)}
			}
		default:
			panic("variable kind " + v.kind)
		}
		db.Templating.List = append(db.Templating.List, m)
	}

	var x, y, rowH uint32
	for i, p := range d.panels {
		w, h := uint32(p.w), uint32(p.h)
		if x+w > 24 {
			x, y, rowH = 0, y+rowH, 0
		}
		panel := dashboard.Panel{
			Type: p.kind, Id: ptr(uint32(i + 1)), Title: ptr(p.title), Description: ptr(p.desc),
			Datasource: dsRef(), GridPos: &dashboard.GridPos{X: x, Y: y, W: w, H: h},
		}
		x += w
		rowH = max(rowH, h)
		q := chQuery{RefID: "A", Datasource: dsRef(), EditorType: "sql", QueryType: "table", Format: 1, RawSQL: sqlFragments.Replace(p.sql)}
		fc := dashboard.NewFieldConfigSource()
		if p.unit != "" {
			fc.Defaults.Unit = ptr(p.unit)
		}
		switch p.kind {
		case "stat":
			o := stat.NewOptions()
			o.GraphMode, o.TextMode, o.ColorMode = common.BigValueGraphModeNone, common.BigValueTextModeValue, common.BigValueColorModeValue
			o.ReduceOptions.Calcs = []string{"lastNotNull"}
			o.Orientation = common.VizOrientationAuto
			panel.Options = o
		case "table":
			o := table.NewOptions()
			o.Footer.Reducer = []string{} // the SDK's default null does not pass its own strict check
			panel.Options = o
		case "timeseries":
			q.QueryType, q.Format = "timeseries", 0
			panel.Options = timeseries.NewOptions()
		default:
			panic("panel kind " + p.kind)
		}
		if p.changeLink {
			fc.Overrides = append(fc.Overrides, dashboard.DashboardFieldConfigSourceOverrides{
				Matcher: dashboard.MatcherConfig{Id: "byName", Options: "change_id"},
				Properties: []dashboard.DynamicConfigValue{{Id: "links", Value: []map[string]any{
					{"title": "Change trace", "url": traceLink},
				}}},
			})
		}
		panel.FieldConfig = fc
		panel.Targets = []variants.Dataquery{q}
		db.Panels = append(db.Panels, dashboard.PanelOrRowPanel{Panel: &panel})
	}
	return db
}

func str(s string) dashboard.StringOrArrayOfString {
	return dashboard.StringOrArrayOfString{String: ptr(s)}
}

func render(t *testing.T, d dashDef) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(build(d)); err != nil {
		t.Fatalf("%s: %v", d.file, err)
	}
	return buf.Bytes()
}

// TestGenerated keeps the JSON files equal to what defs_test.go generates
// (-update rewrites them).
func TestGenerated(t *testing.T) {
	for _, d := range defs {
		want := render(t, d)
		if *update {
			if err := os.WriteFile(d.file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(d.file)
		if err != nil {
			t.Fatalf("%v (run go test ./dashboards -run TestGenerated -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("dashboards/%s differs from defs_test.go: run go test ./dashboards -run TestGenerated -update", d.file)
		}
	}
	if !*update {
		entries, _ := os.ReadDir(".")
		known := map[string]bool{}
		for _, d := range defs {
			known[d.file] = true
		}
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".json") && !known[e.Name()] {
				t.Errorf("dashboards/%s has no definition in defs_test.go", e.Name())
			}
		}
	}
}
