package dashboards_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"

	"github.com/evidencepipeline/evidence/dashboards"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// parsed is a dashboard file read with Grafana's dashboard types.
type parsed struct {
	file   dashboards.Dashboard
	model  dashboard.Dashboard
	panels []parsedPanel
}

type parsedPanel struct {
	title string
	kind  string
	query chQuery
	links []string // data link URLs of the change_id column
}

// parse reads every embedded dashboard strictly with the foundation SDK
// (unknown fields, wrong types and missing required fields fail, panel
// options are checked against their panel plugin's schema), and decodes
// each target as the ClickHouse plugin's query model.
func parse(t *testing.T) []parsed {
	t.Helper()
	plugins.RegisterDefaultPlugins()
	all, err := dashboards.All()
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != len(defs) {
		t.Fatalf("%d embedded dashboards, %d defined", len(all), len(defs))
	}
	var out []parsed
	for _, f := range all {
		var d dashboard.Dashboard
		var strict dashboard.Dashboard
		if err := realError(strict.UnmarshalJSONStrict(f.JSON)); err != nil {
			t.Fatalf("dashboards/%s does not parse as a Grafana dashboard: %v", f.File, err)
		}
		// The strict decoder of v0.0.22 drops every panel (its typed-nil
		// error stops PanelOrRowPanel before it keeps the panel), so the
		// model is read again with the lenient decoder, now known valid.
		if err := json.Unmarshal(f.JSON, &d); err != nil {
			t.Fatalf("dashboards/%s: %v", f.File, err)
		}
		if err := d.Validate(); err != nil {
			t.Fatalf("dashboards/%s: %v", f.File, err)
		}
		p := parsed{file: f, model: d}
		ids := map[uint32]bool{}
		for i, pr := range d.Panels {
			if pr.Panel == nil {
				t.Fatalf("dashboards/%s: panel %d is a row; rows are not used", f.File, i)
			}
			pn := pr.Panel
			where := fmt.Sprintf("dashboards/%s panel %q", f.File, deref(pn.Title))
			if pn.Id == nil || ids[*pn.Id] {
				t.Errorf("%s: missing or duplicate id", where)
			} else {
				ids[*pn.Id] = true
			}
			if pn.Datasource == nil || deref(pn.Datasource.Uid) != chUID || deref(pn.Datasource.Type) != chType {
				t.Errorf("%s: data source is not the provisioned ClickHouse (%s/%s)", where, chType, chUID)
			}
			if len(pn.Targets) != 1 {
				t.Fatalf("%s: %d targets, want 1", where, len(pn.Targets))
			}
			// The SDK has no ClickHouse query type: it keeps the target as an
			// unknown data query, which must be exactly the plugin's model.
			raw, ok := pn.Targets[0].(variants.UnknownDataquery)
			if !ok {
				t.Fatalf("%s: target decoded as %T", where, pn.Targets[0])
			}
			b, _ := json.Marshal(raw)
			var q chQuery
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&q); err != nil {
				t.Fatalf("%s: target: %v", where, err)
			}
			if q.EditorType != "sql" || q.RawSQL == "" {
				t.Errorf("%s: target is not a raw SQL query", where)
			}
			switch {
			case pn.Type == "timeseries" && (q.Format != 0 || q.QueryType != "timeseries"),
				pn.Type != "timeseries" && (q.Format != 1 || q.QueryType != "table"):
				t.Errorf("%s: %s panel with format %d queryType %q", where, pn.Type, q.Format, q.QueryType)
			}
			pp := parsedPanel{title: deref(pn.Title), kind: pn.Type, query: q}
			if pn.FieldConfig != nil {
				for _, o := range pn.FieldConfig.Overrides {
					if o.Matcher.Id == "byName" && o.Matcher.Options == "change_id" {
						for _, prop := range o.Properties {
							if prop.Id != "links" {
								continue
							}
							links, _ := prop.Value.([]any)
							for _, l := range links {
								m, _ := l.(map[string]any)
								u, _ := m["url"].(string)
								pp.links = append(pp.links, u)
							}
						}
					}
				}
			}
			p.panels = append(p.panels, pp)
		}
		out = append(out, p)
	}
	return out
}

// realError is err, or nil when it is an empty cog.BuildErrors: the SDK's
// strict decoders return their error list as an error even when it is
// empty (a typed nil).
func realError(err error) error {
	var be cog.BuildErrors
	if errors.As(err, &be) && len(be) == 0 {
		return nil
	}
	return err
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// TestDashboardsParse: every dashboard is a valid Grafana dashboard of the
// schema version the SDK targets, with a stable uid, in the provisioned
// folder's naming, and every table showing change ids links to the trace.
func TestDashboardsParse(t *testing.T) {
	want := dashboard.NewDashboard().SchemaVersion
	uids := map[string]bool{}
	for _, p := range parse(t) {
		if p.model.SchemaVersion != want {
			t.Errorf("dashboards/%s: schemaVersion %d, the SDK's dashboard types are version %d", p.file.File, p.model.SchemaVersion, want)
		}
		if !strings.HasPrefix(p.file.UID, "evidence-") || uids[p.file.UID] {
			t.Errorf("dashboards/%s: uid %q is not a unique evidence-* uid", p.file.File, p.file.UID)
		}
		uids[p.file.UID] = true
		if len(p.panels) == 0 {
			t.Errorf("dashboards/%s: no panels", p.file.File)
		}
		for _, pn := range p.panels {
			for _, l := range pn.links {
				if !strings.HasPrefix(l, "/d/"+traceUID+"/") || !strings.Contains(l, "var-change=${__value.raw") {
					t.Errorf("dashboards/%s panel %q: link %q does not open the change trace with the change", p.file.File, pn.title, l)
				}
			}
		}
	}
	if !uids[traceUID] {
		t.Fatalf("no dashboard has uid %s, which the links open", traceUID)
	}
	for _, p := range parse(t) {
		if p.file.UID != traceUID {
			continue
		}
		found := false
		for _, v := range p.model.Templating.List {
			found = found || v.Name == "change"
		}
		if !found {
			t.Errorf("the change trace has no variable named change, which the links set")
		}
	}
}

// ---- Grafana's and the plugin's expansion of a panel query ----

// selection is the value chosen for a variable: All, or values.
type selection struct {
	all    bool
	values []string
}

var varRef = regexp.MustCompile(`\$\{(\w+)(?::(\w+))?\}|\$(\w+)`)

// expandVariables does what Grafana's template service does to a query
// before it is sent: ${name:format} becomes the variable's value in that
// format; All becomes the custom all value, unformatted. Only the formats
// the dashboards use are implemented; an unformatted $name in SQL is
// refused (its quoting would depend on Grafana's defaults).
func expandVariables(sql string, vars map[string]dashboard.VariableModel, sel map[string]selection) (string, error) {
	var errs []string
	out := varRef.ReplaceAllStringFunc(sql, func(m string) string {
		g := varRef.FindStringSubmatch(m)
		name, format := g[1], g[2]
		if name == "" {
			name = g[3]
		}
		if strings.HasPrefix(name, "__") {
			return m // a data source macro, expanded later
		}
		v, ok := vars[name]
		if !ok {
			errs = append(errs, "unknown variable $"+name)
			return m
		}
		if g[1] == "" || format == "" {
			errs = append(errs, "variable $"+name+" used without a format")
			return m
		}
		s := sel[name]
		if s.all {
			if v.AllValue == nil {
				errs = append(errs, "variable $"+name+": All without a custom all value")
				return m
			}
			return *v.AllValue
		}
		if len(s.values) > 1 && !deref(v.Multi) {
			errs = append(errs, "variable $"+name+" is not multi-valued")
		}
		quoted := make([]string, len(s.values))
		for i, val := range s.values {
			switch format {
			case "singlequote":
				quoted[i] = "'" + strings.ReplaceAll(val, "'", `\'`) + "'"
			case "sqlstring":
				quoted[i] = "'" + strings.ReplaceAll(val, "'", "''") + "'"
			default:
				errs = append(errs, "format "+format+" of $"+name+" is not implemented")
			}
		}
		return strings.Join(quoted, ",")
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

var macroRef = regexp.MustCompile(`\$__(\w+)(?:\(([^()]*)\))?`)

// expandMacros does what grafana-clickhouse-datasource's backend does
// (pkg/macros): $__timeFilter(col), $__fromTime, $__toTime. Any other
// macro fails: it is not implemented here, so it is not tested.
func expandMacros(sql string, from, to time.Time) (string, error) {
	var errs []string
	dt := func(t time.Time) string { return fmt.Sprintf("toDateTime(%d)", t.Unix()) }
	out := macroRef.ReplaceAllStringFunc(sql, func(m string) string {
		g := macroRef.FindStringSubmatch(m)
		switch g[1] {
		case "fromTime":
			return dt(from)
		case "toTime":
			return dt(to)
		case "timeFilter":
			col := strings.TrimSpace(g[2])
			if col == "" || strings.Contains(col, ",") {
				errs = append(errs, "$__timeFilter takes one column: "+m)
				return m
			}
			return fmt.Sprintf("%s >= %s AND %s <= %s", col, dt(from), col, dt(to))
		}
		errs = append(errs, "macro $__"+g[1]+" is not implemented by this test")
		return m
	})
	if len(errs) > 0 {
		return "", fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return out, nil
}

// run runs a query and renders its rows as strings, numbers without
// trailing zeros, times as UTC "2006-01-02 15:04:05".
func run(ctx context.Context, st *store.Store, sql string) ([][]string, []string, error) {
	rows, err := st.Conn().Query(ctx, sql)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	cols := rows.Columns()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, nil, err
		}
		row := make([]string, len(ptrs))
		for i, p := range ptrs {
			row[i] = render1(reflect.ValueOf(p).Elem().Interface())
		}
		out = append(out, row)
	}
	return out, cols, rows.Err()
}

func render1(v any) string {
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return "null"
		}
		return render1(rv.Elem().Interface())
	}
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format(time.DateTime)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case []string:
		return strings.Join(x, ",")
	}
	return fmt.Sprint(v)
}

// variableOptions runs a query variable's query and returns its options.
func variableOptions(ctx context.Context, st *store.Store, v dashboard.VariableModel) ([]string, error) {
	if v.Query == nil || v.Query.String == nil {
		return nil, fmt.Errorf("variable %s has no query", v.Name)
	}
	rows, _, err := run(ctx, st, *v.Query.String)
	if err != nil {
		return nil, fmt.Errorf("variable %s: %w", v.Name, err)
	}
	var opts []string
	for _, r := range rows {
		opts = append(opts, r[0])
	}
	return opts, nil
}
