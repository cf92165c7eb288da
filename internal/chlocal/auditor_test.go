package chlocal_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// evidenceTables are tables of the migrated evidence database that fill
// gives a row; the tests read every table there is.
var evidenceTables = []string{"changes", "control_results", "deployment_verdicts", "deployments", "events", "schema_migrations"}

// fill writes one row into each evidence table and adds a view, so that
// every count the auditor reads can be compared with a non-zero one.
func fill(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	ns := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC).UnixNano()
	if err := st.InsertEvents(ctx, []store.EventRow{{StreamSeq: 1, EventID: "e1", Source: "s", Type: "t", ReceivedNs: ns, Data: []byte("{}"), Extensions: "{}", Hash: "h1"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertChanges(ctx, []store.ChangeRow{{ChangeID: "acme/pay@c1", Repository: "acme/pay", Commit: "c1", Record: "{}", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertDeployments(ctx, []store.DeploymentRow{{Environment: "production", Service: "pay", DeploymentKey: "id:1", ChangeID: "acme/pay@c1", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertControlResults(ctx, []store.ControlResultRow{{ChangeID: "acme/pay@c1", ControlID: "CM-1", Status: "pass", EvaluatedNs: ns}}); err != nil {
		t.Fatal(err)
	}
	if err := st.InsertDeploymentVerdicts(ctx, []store.DeploymentVerdictRow{{Environment: "production", Service: "pay", DeploymentKey: "id:1", ChangeID: "acme/pay@c1", DeployedNs: ns, Verdict: "pass"}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Conn().Exec(ctx, "CREATE VIEW live_changes AS SELECT change_id, repository FROM changes FINAL WHERE retired = 0"); err != nil {
		t.Fatal(err)
	}
}

func tablesOf(t *testing.T, conn driver.Conn, db string) []string {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name FROM system.tables WHERE database = ? ORDER BY name", db)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func count(t *testing.T, conn driver.Conn, q string, args ...any) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// TestAuditorReadsEveryEvidenceTable: the auditor reads every table and
// view of the evidence database, and sees the rows the writer wrote.
func TestAuditorReadsEveryEvidenceTable(t *testing.T) {
	st := testenv.Store(t)
	fill(t, st)
	aud := testenv.AuditorConn(t, st.Database())

	admin := tablesOf(t, st.Conn(), st.Database())
	for _, want := range append(slices.Clone(evidenceTables), "live_changes") {
		if !slices.Contains(admin, want) {
			t.Fatalf("the migrated database holds %v, not %s", admin, want)
		}
	}
	if got := tablesOf(t, aud, st.Database()); !slices.Equal(got, admin) {
		t.Errorf("the auditor sees tables %v in system.tables, the admin %v", got, admin)
	}
	// Every table, including those of later migrations (empty here).
	for _, table := range admin {
		q := "SELECT count() FROM " + table
		want := count(t, st.Conn(), q)
		if want == 0 && (slices.Contains(evidenceTables, table) || table == "live_changes") {
			t.Fatalf("%s is empty: the comparison would prove nothing", table)
		}
		if got := count(t, aud, q); got != want {
			t.Errorf("auditor: %s = %d, admin: %d", q, got, want)
		}
	}
	// A FINAL read and a join, the two forms the cookbook relies on.
	if got := count(t, aud, "SELECT count() FROM deployments FINAL ANY LEFT JOIN (SELECT change_id, repository AS change_repository FROM changes FINAL) USING change_id WHERE change_repository = 'acme/pay'"); got != 1 {
		t.Errorf("auditor: FINAL join counted %d rows, want 1", got)
	}
}

type refusal struct {
	name string
	stmt string
	code int32
	msg  string
}

func checkRefused(t *testing.T, err error, r refusal) {
	t.Helper()
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		t.Errorf("%s: %q was not refused with a ClickHouse exception: err = %v", r.name, r.stmt, err)
		return
	}
	if ex.Code != r.code || !strings.Contains(ex.Message, r.msg) {
		t.Errorf("%s: %q refused with code %d %q, want code %d and %q", r.name, r.stmt, ex.Code, ex.Message, r.code, r.msg)
	}
}

// TestAuditorIsRefused: every write, DDL, settings change, table function
// and other database is refused with ClickHouse's own error, and the data
// is the same afterwards.
func TestAuditorIsRefused(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	fill(t, st)
	db := st.Database()
	other := testenv.Store(t)
	if err := other.Conn().Exec(ctx, "CREATE TABLE secrets (a String) ENGINE = MergeTree ORDER BY a"); err != nil {
		t.Fatal(err)
	}
	aud := testenv.AuditorConn(t, db)
	srv := testenv.ClickHouse(t)

	readonly := func(what string) string { return "Cannot " + what + " in readonly mode" }
	denied := "Access denied to database " + other.Database() + " for user auditor"
	cases := []refusal{
		{"insert select", "INSERT INTO changes (change_id) SELECT 'forged'", 164, readonly("insert into table")},
		{"alter update", "ALTER TABLE changes UPDATE pr_title = 'x' WHERE 1", 164, readonly("execute query")},
		{"alter delete", "ALTER TABLE events DELETE WHERE stream_seq = 1", 164, readonly("execute query")},
		{"alter add column", "ALTER TABLE changes ADD COLUMN forged String", 164, readonly("execute query")},
		{"alter drop column", "ALTER TABLE changes DROP COLUMN pr_title", 164, readonly("execute query")},
		{"alter drop partition", "ALTER TABLE events DROP PARTITION 202602", 164, readonly("execute query")},
		{"drop table", "DROP TABLE events", 164, readonly("drop table")},
		{"drop database", "DROP DATABASE " + db, 164, readonly("drop table")},
		{"truncate", "TRUNCATE TABLE events", 164, readonly("drop table")},
		{"detach", "DETACH TABLE events", 164, readonly("drop table")},
		{"rename", "RENAME TABLE events TO events_old", 164, readonly("execute query")},
		{"optimize", "OPTIMIZE TABLE changes FINAL", 164, readonly("execute query")},
		{"create table", "CREATE TABLE forged (a UInt8) ENGINE = Memory", 164, readonly("create table")},
		{"create view", "CREATE VIEW forged AS SELECT 1", 164, readonly("create table")},
		{"create temporary table", "CREATE TEMPORARY TABLE forged (a UInt8)", 164, readonly("create table")},
		{"create database", "CREATE DATABASE forged", 164, readonly("create database")},
		{"set readonly 0", "SET readonly = 0", 164, readonly("execute SET query")},
		{"set readonly 2", "SET readonly = 2", 164, readonly("execute SET query")},
		// A value no machine has by default: ClickHouse lets a read-only
		// user SET a setting to the value it already has (max_threads is
		// the number of physical cores, 1 on some machines).
		{"set max_threads", "SET max_threads = 77", 164, readonly("execute SET query")},
		{"set allow_ddl", "SET allow_ddl = 1", 392, "Cannot modify 'allow_ddl' setting when DDL queries are prohibited"},
		{"system reload", "SYSTEM RELOAD CONFIG", 164, readonly("execute query")},
		{"system stop merges", "SYSTEM STOP MERGES", 164, readonly("execute query")},
		{"other database", "SELECT count() FROM " + other.Database() + ".secrets", 291, denied},
		{"default database", "SELECT count() FROM default.anything", 291, "Access denied to database default for user auditor"},
		{"use other database", "USE " + other.Database(), 291, denied},
		{"show create other", "SHOW CREATE TABLE " + other.Database() + ".secrets", 291, denied},
		{"describe other", "DESCRIBE TABLE " + other.Database() + ".secrets", 291, denied},
		{"remote", "SELECT count() FROM remote('" + srv.Addr() + "', " + other.Database() + ".secrets)", 164, "Table functions are forbidden in readonly mode"},
		{"merge", "SELECT count() FROM merge('" + other.Database() + "', '.*')", 164, "Table functions are forbidden in readonly mode"},
		{"file", "SELECT * FROM file('users.xml', 'TSV', 'line String')", 164, "Table functions are forbidden in readonly mode"},
		{"url", "SELECT * FROM url('http://127.0.0.1:1/', 'TSV', 'line String')", 164, "Table functions are forbidden in readonly mode"},
	}
	for _, c := range cases {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		checkRefused(t, aud.Exec(cctx, c.stmt), c)
		cancel()
	}

	// A batch insert, the way the writers insert.
	b, err := aud.PrepareBatch(ctx, "INSERT INTO events (stream_seq, event_id)")
	if err == nil {
		if err = b.Append(uint64(2), "forged"); err == nil {
			err = b.Send()
		}
	}
	checkRefused(t, err, refusal{"batch insert", "INSERT INTO events (stream_seq, event_id)", 164, readonly("insert into table")})

	// A setting sent with a query over the native protocol does not lift
	// readonly: 18.16 leaves it at 1 and still refuses writes.
	lift := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"readonly": 0, "allow_ddl": 1}))
	var ro string
	if err := aud.QueryRow(lift, "SELECT value FROM system.settings WHERE name = 'readonly'").Scan(&ro); err != nil || ro != "1" {
		t.Errorf("with the query setting readonly=0: readonly = %q, %v; want 1", ro, err)
	}
	checkRefused(t, aud.Exec(lift, "CREATE TABLE forged (a UInt8) ENGINE = Memory"), refusal{"create with readonly=0 sent", "CREATE TABLE forged", 164, readonly("create table")})
	// Over HTTP, a setting in the URL that would lift it is refused.
	for _, setting := range []string{"readonly=0", "readonly=2"} {
		u := "http://127.0.0.1:" + strconv.Itoa(srv.HTTPPort) + "/?database=" + db + "&" + setting
		req, err := http.NewRequestWithContext(ctx, "POST", u, strings.NewReader("SELECT count() FROM changes"))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth(chlocal.AuditorUser, srv.AuditorPassword())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || !strings.Contains(string(body), "Code: 164") || !strings.Contains(string(body), "Cannot override setting (readonly) in readonly mode") {
			t.Errorf("HTTP with %s: status %d, %s; want code 164, cannot override readonly", setting, resp.StatusCode, body)
		}
	}

	// A wrong password is refused at login.
	var hex *chlocal.HelloError
	if err := chlocal.Hello(srv.Addr(), chlocal.AuditorUser, srv.AuditorPassword()+"x", db, 5*time.Second); !errors.As(err, &hex) || hex.Code != 193 {
		t.Errorf("wrong auditor password: got %v, want exception 193 (WRONG_PASSWORD)", err)
	}

	// Nothing changed.
	for _, table := range evidenceTables {
		if n := count(t, st.Conn(), "SELECT count() FROM "+table); n == 0 {
			t.Errorf("%s lost its rows", table)
		}
	}
	if n := count(t, st.Conn(), "SELECT count() FROM system.columns WHERE database = ? AND table = 'changes' AND name IN ('forged', 'pr_title')", db); n != 1 {
		t.Errorf("changes columns altered: %d of forged, pr_title present, want only pr_title", n)
	}
	if n := count(t, st.Conn(), "SELECT count() FROM changes WHERE pr_title = 'x' OR change_id = 'forged'"); n != 0 {
		t.Errorf("%d forged rows in changes", n)
	}
	if n := count(t, st.Conn(), "SELECT count() FROM system.tables WHERE database = ? AND name IN ('forged', 'events_old')", db); n != 0 {
		t.Errorf("%d forged tables created", n)
	}
}

// TestAuditorAndTheSystemDatabase: ClickHouse 18.16 lets every user read
// the system database. It hides other databases from system.tables,
// columns, parts, mutations and databases, but system.processes shows the
// queries of every user, and KILL QUERY of another user's query is refused.
// docs/auditor-guide.md says so.
func TestAuditorAndTheSystemDatabase(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	other := testenv.Store(t)
	if err := other.Conn().Exec(ctx, "CREATE TABLE secrets (a String) ENGINE = MergeTree ORDER BY a"); err != nil {
		t.Fatal(err)
	}
	b, err := other.Conn().PrepareBatch(ctx, "INSERT INTO secrets (a)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append("s1"); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	if err := other.Conn().Exec(ctx, "ALTER TABLE secrets DELETE WHERE a = 'nothing'"); err != nil {
		t.Fatal(err)
	}
	aud := testenv.AuditorConn(t, st.Database())

	for _, table := range []string{"tables", "columns", "parts", "parts_columns", "mutations"} {
		q := "SELECT count() FROM system." + table + " WHERE database = ?"
		if n := count(t, other.Conn(), q, other.Database()); n == 0 {
			t.Fatalf("admin: system.%s shows nothing of %s: the check would prove nothing", table, other.Database())
		}
		if n := count(t, aud, q, other.Database()); n != 0 {
			t.Errorf("auditor: system.%s shows %d rows of the other database %s", table, n, other.Database())
		}
	}
	if n := count(t, aud, "SELECT count() FROM system.databases WHERE name = ?", other.Database()); n != 0 {
		t.Errorf("auditor: system.databases lists %s", other.Database())
	}
	if n := count(t, aud, "SELECT count() FROM system.databases WHERE name IN ('system', ?)", st.Database()); n != 2 {
		t.Errorf("auditor: system.databases lists %d of system and %s, want both", n, st.Database())
	}

	// A long query of the admin's, visible to the auditor, not killable.
	qctx, cancel := context.WithCancel(clickhouse.Context(ctx, clickhouse.WithQueryID("admin-long-"+st.Database())))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = other.Conn().Exec(qctx, "SELECT count() FROM system.numbers WHERE sleepEachRow(0.001) = 0 SETTINGS max_block_size = 100")
	}()
	t.Cleanup(func() {
		_ = st.Conn().Exec(ctx, "KILL QUERY WHERE query_id = 'admin-long-"+st.Database()+"'")
		cancel()
		wg.Wait()
	})
	testenv.Eventually(t, 10*time.Second, func() error {
		var user, query string
		err := aud.QueryRow(ctx, "SELECT user, query FROM system.processes WHERE query_id = ?", "admin-long-"+st.Database()).Scan(&user, &query)
		if err != nil {
			return err
		}
		if user != "default" || !strings.Contains(query, "sleepEachRow") {
			return errors.New("unexpected row: " + user + " " + query)
		}
		return nil
	})
	err = aud.Exec(ctx, "KILL QUERY WHERE query_id = 'admin-long-"+st.Database()+"'")
	checkRefused(t, err, refusal{"kill", "KILL QUERY", 164, "Readonly user auditor attempts to kill query created by default"})
	if n := count(t, st.Conn(), "SELECT count() FROM system.processes WHERE query_id = ? AND is_cancelled = 0", "admin-long-"+st.Database()); n != 1 {
		t.Errorf("the admin's query was cancelled by the auditor's KILL")
	}
}

// TestAuditorPassword: a generated password is kept in auditor.password
// (mode 0600) and reused; a given one is used and written nowhere; the
// URL carries it; users.xml holds its hash only.
func TestAuditorPassword(t *testing.T) {
	if _, err := chlocal.Binary(); err != nil {
		testenv.Unavailable(t, "clickhouse-server", err)
	}
	dir := t.TempDir()
	s1, err := chlocal.New(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	pw := s1.AuditorPassword()
	if len(pw) < 32 {
		t.Fatalf("generated password %q is short", pw)
	}
	fi, err := os.Stat(filepath.Join(dir, chlocal.AuditorPasswordFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", chlocal.AuditorPasswordFile, fi.Mode().Perm())
	}
	s2, err := chlocal.New(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s2.AuditorPassword() != pw {
		t.Errorf("second New in the same directory: password %q, want the kept %q", s2.AuditorPassword(), pw)
	}
	users, err := os.ReadFile(filepath.Join(dir, "users.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(users), pw) {
		t.Error("users.xml holds the auditor's password in clear")
	}
	if !strings.Contains(string(users), "<database>evidence</database>") || !strings.Contains(string(users), "<readonly>1</readonly>") {
		t.Errorf("users.xml does not restrict the auditor to evidence, read-only:\n%s", users)
	}
	o, err := store.ParseURL(s2.AuditorURL("evidence"))
	if err != nil {
		t.Fatal(err)
	}
	if o.User != "auditor" || o.Password != pw || o.Database != "evidence" || o.Addr != s2.Addr() {
		t.Errorf("AuditorURL parses to %+v", o)
	}

	dir2 := t.TempDir()
	s3, err := chlocal.NewWith(chlocal.Config{Dir: dir2, AuditorPassword: "given p@ss/word", AuditorDatabases: []string{"audit_a", "audit_b"}})
	if err != nil {
		t.Fatal(err)
	}
	if s3.AuditorPassword() != "given p@ss/word" {
		t.Errorf("given password not used: %q", s3.AuditorPassword())
	}
	if _, err := os.Stat(filepath.Join(dir2, chlocal.AuditorPasswordFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a given password was written to %s (stat: %v)", chlocal.AuditorPasswordFile, err)
	}
	if o, err := store.ParseURL(s3.AuditorURL("audit_a")); err != nil || o.Password != "given p@ss/word" {
		t.Errorf("AuditorURL with a password to escape parses to %+v, %v", o, err)
	}
	if got := s3.AuditorDatabases(); !slices.Equal(got, []string{"audit_a", "audit_b"}) {
		t.Errorf("AuditorDatabases = %v", got)
	}
	if _, err := chlocal.NewWith(chlocal.Config{Dir: t.TempDir(), AuditorDatabases: []string{"evidence; DROP"}}); err == nil || !strings.Contains(err.Error(), `"evidence; DROP"`) {
		t.Errorf("a bad database name: err = %v, want one naming it", err)
	}
}

// TestAllowAuditorWaitsForTheReload: after AllowAuditor returns, the
// auditor reads the new database at once; before, it was refused.
func TestAllowAuditorWaitsForTheReload(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	later := testenv.Store(t)
	aud := testenv.AuditorConn(t, st.Database())
	srv := testenv.ClickHouse(t)
	q := "SELECT count() FROM " + later.Database() + ".schema_migrations"
	var n uint64
	checkRefused(t, aud.QueryRow(ctx, q).Scan(&n), refusal{"before AllowAuditor", q, 291, "Access denied to database " + later.Database()})
	if err := chlocal.Hello(srv.Addr(), chlocal.AuditorUser, srv.AuditorPassword(), later.Database(), 5*time.Second); err == nil {
		t.Error("before AllowAuditor: the auditor's hello naming the database was answered")
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := srv.AllowAuditor(actx, later.Database()); err != nil {
		t.Fatal(err)
	}
	if err := aud.QueryRow(ctx, q).Scan(&n); err != nil || n == 0 {
		t.Errorf("after AllowAuditor: %s = %d, %v", q, n, err)
	}
	if err := chlocal.Hello(srv.Addr(), chlocal.AuditorUser, srv.AuditorPassword(), later.Database(), 5*time.Second); err != nil {
		t.Errorf("after AllowAuditor: hello = %v", err)
	}
	if err := srv.AllowAuditor(actx, "bad-name"); err == nil || !strings.Contains(err.Error(), `"bad-name"`) {
		t.Errorf("AllowAuditor of a database name with a dash: err = %v, want one naming it", err)
	}
}
