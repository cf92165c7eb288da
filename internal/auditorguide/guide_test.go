package auditorguide_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/evidencepipeline/evidence/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const guidePath = "../../docs/auditor-guide.md"

// guide is docs/auditor-guide.md, read once per test.
type guide struct {
	lines []string
}

func readGuide(t *testing.T) guide {
	t.Helper()
	b, err := os.ReadFile(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	return guide{lines: strings.Split(string(b), "\n")}
}

// section is the lines of the "## title" section (to the next "## "),
// with their line numbers (1-based).
func (g guide) section(t *testing.T, title string) (lines []string, first int) {
	t.Helper()
	start := -1
	for i, l := range g.lines {
		if start < 0 && l == "## "+title {
			start = i + 1
			continue
		}
		if start >= 0 && strings.HasPrefix(l, "## ") {
			return g.lines[start:i], start + 1
		}
	}
	if start < 0 {
		t.Fatalf("%s: no section %q", guidePath, title)
	}
	return g.lines[start:], start + 1
}

var (
	tableHeading = regexp.MustCompile("^### `([a-z_0-9]+)`$")
	columnRow    = regexp.MustCompile("^\\| `([a-z_0-9]+)` \\| ([^|]+?) \\|")
)

// TestDataDictionaryMatchesTheDatabase: every table and column of the
// migrated database (system.columns) is in the guide's data dictionary
// with its type, and the dictionary names nothing else.
func TestDataDictionaryMatchesTheDatabase(t *testing.T) {
	st := testenv.Store(t)
	rows, err := st.Conn().Query(context.Background(), "SELECT table, name, type FROM system.columns WHERE database = ? ORDER BY table, name", st.Database())
	if err != nil {
		t.Fatal(err)
	}
	inDB := map[string]string{} // table.column -> type
	tables := map[string]bool{}
	for rows.Next() {
		var table, name, typ string
		if err := rows.Scan(&table, &name, &typ); err != nil {
			t.Fatal(err)
		}
		inDB[table+"."+name] = typ
		tables[table] = true
	}
	rows.Close()
	if len(tables) < 6 {
		t.Fatalf("the migrated database has only %d tables: %v", len(tables), tables)
	}

	lines, first := readGuide(t).section(t, "Data dictionary")
	inGuide := map[string]string{}
	where := map[string]int{}
	guideTables := map[string]bool{}
	table := ""
	for i, l := range lines {
		if m := tableHeading.FindStringSubmatch(l); m != nil {
			table = m[1]
			if guideTables[table] {
				t.Errorf("%s:%d: table %s described twice", guidePath, first+i, table)
			}
			guideTables[table] = true
			continue
		}
		if m := columnRow.FindStringSubmatch(l); m != nil {
			if table == "" {
				t.Errorf("%s:%d: column %s outside a table", guidePath, first+i, m[1])
				continue
			}
			key := table + "." + m[1]
			if _, dup := inGuide[key]; dup {
				t.Errorf("%s:%d: column %s described twice", guidePath, first+i, key)
			}
			inGuide[key], where[key] = strings.TrimSpace(m[2]), first+i
			if strings.HasSuffix(strings.TrimSpace(l), "|  |") || strings.HasSuffix(strings.TrimSpace(l), "| |") {
				t.Errorf("%s:%d: column %s has no meaning", guidePath, first+i, key)
			}
		}
	}
	for tb := range tables {
		if !guideTables[tb] {
			t.Errorf("table %s is in the database and not in the guide's data dictionary", tb)
		}
	}
	for tb := range guideTables {
		if !tables[tb] {
			t.Errorf("the guide's data dictionary describes table %s, which the migrated database does not have", tb)
		}
	}
	for _, k := range sortedKeys(inDB) {
		g, ok := inGuide[k]
		switch {
		case !ok:
			t.Errorf("column %s (%s) is in the database and not in the guide's data dictionary", k, inDB[k])
		case g != inDB[k]:
			t.Errorf("%s:%d: column %s has type %s in the guide, %s in the database", guidePath, where[k], k, g, inDB[k])
		}
	}
	for _, k := range sortedKeys(inGuide) {
		if _, ok := inDB[k]; !ok {
			t.Errorf("%s:%d: the guide describes column %s, which the migrated database does not have", guidePath, where[k], k)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// TestSystemTablesTheAuditorCanRead: the guide's list of the system tables
// the auditor can read is exactly what the server shows it, and each of
// them can indeed be read (the endless numbers tables with a LIMIT).
func TestSystemTablesTheAuditorCanRead(t *testing.T) {
	st := testenv.Store(t)
	aud := testenv.AuditorConn(t, st.Database())
	ctx := context.Background()
	rows, err := aud.Query(ctx, "SELECT name FROM system.tables WHERE database = 'system' ORDER BY name")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		got = append(got, "system."+n)
	}
	rows.Close()

	g := readGuide(t)
	var listed []string
	in := false
	item := regexp.MustCompile("^- `(system\\.[a-z_]+)`$")
	for _, l := range g.lines {
		switch {
		case l == "<!-- begin:system-tables -->":
			in = true
		case l == "<!-- end:system-tables -->":
			in = false
		case in:
			m := item.FindStringSubmatch(l)
			if m == nil {
				t.Fatalf("%s: line %q in the system-tables list is not - `system.name`", guidePath, l)
			}
			listed = append(listed, m[1])
		}
	}
	if len(listed) == 0 {
		t.Fatalf("%s: no <!-- begin:system-tables --> list", guidePath)
	}
	slices.Sort(listed)
	for _, n := range got {
		if !slices.Contains(listed, n) {
			t.Errorf("the auditor can read %s, which the guide does not list", n)
		}
	}
	for _, n := range listed {
		if !slices.Contains(got, n) {
			t.Errorf("the guide lists %s, which the auditor cannot see", n)
		}
	}
	for _, n := range got {
		var c uint64
		if err := aud.QueryRow(ctx, "SELECT count() FROM (SELECT * FROM "+n+" LIMIT 10)").Scan(&c); err != nil {
			t.Errorf("the auditor cannot read %s: %v", n, err)
		}
	}
}

// query is a named SQL block of the guide's cookbook.
type query struct {
	name, sql string
	line      int
}

var nameMarker = regexp.MustCompile(`^-- name: ([a-z0-9-]+)$`)

func cookbook(t *testing.T) []query {
	t.Helper()
	lines, first := readGuide(t).section(t, "Cookbook")
	var out []query
	for i := 0; i < len(lines); i++ {
		if lines[i] != "```sql" {
			continue
		}
		start := i + 1
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		if len(body) == 0 {
			t.Fatalf("%s:%d: empty sql block", guidePath, first+start-1)
		}
		m := nameMarker.FindStringSubmatch(body[0])
		if m == nil {
			t.Fatalf("%s:%d: a cookbook sql block must start with -- name: <name>", guidePath, first+start)
		}
		out = append(out, query{name: m[1], sql: strings.Join(body[1:], "\n"), line: first + start})
	}
	return out
}

// TestCookbook runs every query of the cookbook as the auditor over the
// scenario and compares its rows with the expected ones.
func TestCookbook(t *testing.T) {
	st := testenv.Store(t)
	sc := fillScenario(t, st)
	aud := testenv.AuditorConn(t, st.Database())
	want := expectations(sc)

	qs := cookbook(t)
	seen := map[string]bool{}
	for _, q := range qs {
		if seen[q.name] {
			t.Errorf("%s:%d: query %s named twice", guidePath, q.line, q.name)
		}
		seen[q.name] = true
		exp, ok := want[q.name]
		if !ok {
			t.Errorf("%s:%d: query %s has no expected rows in this test: add them to expectations", guidePath, q.line, q.name)
			continue
		}
		t.Run(q.name, func(t *testing.T) {
			got, err := run(aud, q.sql)
			if err != nil {
				t.Fatalf("%s:%d: %s: %v", guidePath, q.line, q.name, err)
			}
			if len(exp) == 0 {
				t.Fatalf("no expected rows: the query would prove nothing")
			}
			if !reflect.DeepEqual(got, exp) {
				t.Errorf("%s:%d: %s returned\n%s\nwant\n%s", guidePath, q.line, q.name, show(got), show(exp))
			}
		})
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("the cookbook has no query %s (a recipe the guide must keep)", name)
		}
	}
}

func show(rows [][]string) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("  " + strings.Join(r, " | ") + "\n")
	}
	return b.String()
}

// run runs q and returns its rows, each value as text: times in UTC as
// 2006-01-02 15:04:05, arrays as [a,b], the rest as fmt prints it.
func run(conn driver.Conn, q string) ([][]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	types := rows.ColumnTypes()
	var out [][]string
	for rows.Next() {
		ptrs := make([]any, len(types))
		for i, ct := range types {
			ptrs[i] = reflect.New(ct.ScanType()).Interface()
		}
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		row := make([]string, len(ptrs))
		for i, p := range ptrs {
			row[i] = text(reflect.ValueOf(p).Elem().Interface())
		}
		out = append(out, row)
	}
	return out, rows.Err()
}

func text(v any) string {
	switch x := v.(type) {
	case time.Time:
		return x.UTC().Format("2006-01-02 15:04:05")
	case []string:
		return "[" + strings.Join(x, ",") + "]"
	default:
		return fmt.Sprint(x)
	}
}

// expectations are the rows each cookbook query must return over the
// scenario (scenario_test.go), worked out from what the scenario wrote.
func expectations(sc scenario) map[string][][]string {
	id := func(name string) string {
		if name == "U" {
			return sc.unmatchedID
		}
		return sc.changes[name].id()
	}
	byID := func(rows [][]string, col int) [][]string {
		sort.SliceStable(rows, func(i, j int) bool { return rows[i][col] < rows[j][col] })
		return rows
	}

	population := [][]string{}
	for _, n := range []string{"A", "B", "C", "D", "E", "F", "G", "X"} {
		c := sc.changes[n]
		var keys []string
		for _, tk := range c.tickets {
			keys = append(keys, tk.Key)
		}
		population = append(population, []string{id(n), repo, c.commit(), fmt.Sprint(c.pr), c.author, c.author,
			"[" + strings.Join(keys, ",") + "]", "0", sc.hashes[n]})
	}
	population = append(population, []string{id("U"), "", "", "0", "", "", "[]", "1", sc.hashes["U"]})

	withoutApproval := byID([][]string{
		{id("B"), "CM-1", "fail", "[ticket CHG-102 has no approval]", "2026-02-11 10:00:00"},
		{id("C"), "CM-2", "fail", "[pull request #103 has no approving review]", "2026-03-01 00:00:00"},
		{id("F"), "CM-1", "fail", "[emergency ticket CHG-106 not approved within 24h0m0s after the deployment at 2026-03-01T10:00:00Z]", "2026-03-02 10:00:01"},
		{id("U"), "CM-1", "fail", "[no change ticket linked to the change]", "2026-03-10 22:00:00"},
		{id("U"), "CM-2", "fail", "[deployment matches no change record: no review]", "2026-03-10 22:00:00"},
	}, 0)

	emergency := byID([][]string{
		{id("E"), "CHG-105", "2026-02-20 10:00:00", "carol", "2026-02-20 14:00:00", "1"},
		{id("E"), "CHG-105", "2026-02-20 10:00:00", "dan", "2026-02-20 15:00:00", "1"},
		{id("F"), "CHG-106", "2026-03-01 10:00:00", "", "1970-01-01 00:00:00", "0"},
	}, 0)

	tampered := sha256.Sum256([]byte(sc.tampered.Record))
	return map[string][][]string{
		"population":               byID(population, 0),
		"changes-without-approval": withoutApproval,
		"self-approved-changes": {
			{id("D"), "erin", "[author erin is also ticket CHG-104 approver]"},
		},
		"emergency-changes": emergency,
		"deployments-outside-the-pipeline": {
			{"2026-03-05 10:00:00", "production", "payments", "id:dep-g", id("G"), "0", "mallory", "fail", "[CM-7]"},
			{"2026-03-10 22:00:00", "production", "payments", "id:dep-u", id("U"), "1", "ops-bob", "fail", "[CM-1,CM-2,CM-3,CM-7,CM-8]"},
		},
		"exceptions-in-force": {
			{id("X"), "CM-4", "EXC-8", "2030-12-31T00:00:00Z", "1", "2026-03-12 10:00:00"},
			{id("X"), "CM-5", "EXC-10", "2026-03-15T00:00:00Z", "0", "2026-03-12 10:00:00"},
		},
		"verdict-not-pass-at-deployment": {
			{"2026-02-11 10:00:00", "production", "payments", id("B"), "github-actions[bot]", "fail", "[CM-1]", "[]", "[]"},
			{"2026-02-12 10:00:00", "production", "payments", id("C"), "github-actions[bot]", "fail", "[CM-2]", "[]", "[]"},
			{"2026-02-14 10:00:00", "production", "payments", id("D"), "github-actions[bot]", "fail", "[CM-3]", "[]", "[]"},
			{"2026-02-20 10:00:00", "production", "payments", id("E"), "github-actions[bot]", "pending", "[]", "[CM-1]", "[]"},
			{"2026-03-01 10:00:00", "production", "payments", id("F"), "github-actions[bot]", "pending", "[]", "[CM-1]", "[]"},
			{"2026-03-05 10:00:00", "production", "payments", id("G"), "mallory", "fail", "[CM-7]", "[]", "[]"},
			{"2026-03-10 22:00:00", "production", "payments", id("U"), "ops-bob", "fail", "[CM-1,CM-2,CM-3,CM-7,CM-8]", "[]", "[]"},
		},
		"late-evidence-would-change-verdict": {
			{"2026-02-11 10:00:00", "production", "payments", "id:dep-b", id("B"), "fail", "CM-2", "pass", "fail",
				"[https://scenario.example/dismissal-b dismissal-b]", "2026-02-12 09:00:00"},
		},
		"record-integrity": {
			{sc.tampered.ChangeID, fmt.Sprint(sc.tampered.Version), sc.tampered.RecordHash, hex.EncodeToString(tampered[:])},
		},
	}
}

// TestGuideLinks: the files the guide links to exist.
func TestGuideLinks(t *testing.T) {
	f, err := os.Open(guidePath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	link := regexp.MustCompile(`\]\(([a-z0-9_-]+\.md)\)`)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		for _, m := range link.FindAllStringSubmatch(sc.Text(), -1) {
			if _, err := os.Stat(filepath.Join(filepath.Dir(guidePath), m[1])); err != nil {
				t.Errorf("%s:%d: link to %s: %v", guidePath, n, m[1], err)
			}
		}
	}
}
