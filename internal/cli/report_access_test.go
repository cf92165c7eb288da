package cli_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestReportAccess: `evidence report access` over access_grants rows
// written here by hand (not by the access stage), with a hand-worked
// answer: only the newest version of a repository's record counts, one
// line per period however often the record was written, periods that
// overlap the period only, the permissions asked for, and by default the
// repositories the access stage judged for a quarter overlapping the
// period (a production repository nobody holds write on still gets its
// line).
func TestReportAccess(t *testing.T) {
	dbURL := testenv.DatabaseURL(t)
	st := testenv.StoreAt(t, dbURL)
	ctx := context.Background()
	ns := func(s string) int64 {
		if s == "" {
			return 0
		}
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm.UnixNano()
	}
	const v1, v2 = uint64(1)<<32 | 7, uint64(2)<<32 | 9
	// Every row in one insert, one part: nothing merges the record's
	// repeated rows away before the report reads them.
	b, err := st.Conn().PrepareBatch(ctx, `INSERT INTO access_grants (repository, principal_kind, principal_login, principal_id, permission,
		platform_permission, valid_from, valid_from_ns, valid_to, valid_to_ns, action, granted_by, approver, ticket, grant_event,
		end_action, ended_by, end_event, record_hash, version, updated_at)`)
	if err != nil {
		t.Fatal(err)
	}
	grant := func(repo, login, perm, from, to string, version uint64, grantedBy, ended string) {
		t.Helper()
		endAction, endEvent := "", ""
		if to != "" {
			endAction, endEvent = "removed", "https://github.com/x end-"+login
		}
		if err := b.Append(repo, "user", login, "", perm, "", time.Unix(0, ns(from)).UTC(), ns(from), time.Unix(0, ns(to)).UTC(), ns(to),
			"granted", grantedBy, "", "", "https://github.com/x grant-"+login, endAction, ended, endEvent, "h", version, time.Now().UTC()); err != nil {
			t.Fatal(err)
		}
	}
	const pay, web, empty = "github.com/acme/pay", "github.com/acme/web", "github.com/acme/empty"
	grant(pay, "ann", "write", "2026-09-01T00:00:00Z", "", v2, "root", "")
	grant(pay, "ann", "write", "2026-09-01T00:00:00Z", "", v2, "root", "") // the record written again
	grant(pay, "ben", "admin", "2026-11-01T00:00:00Z", "2026-11-15T00:00:00Z", v2, "root", "root")
	grant(pay, "cid", "read", "2026-10-02T00:00:00Z", "", v2, "root", "")
	grant(pay, "dee", "write", "2026-01-01T00:00:00Z", "2026-09-30T00:00:00Z", v2, "root", "root") // ended before
	grant(pay, "eve", "maintain", "2027-01-05T00:00:00Z", "", v2, "root", "")                      // began after
	grant(pay, "zed", "write", "2026-10-01T00:00:00Z", "", v1, "root", "")                         // an older record
	grant("org:github.com/acme", "ann", "admin", "2026-01-01T00:00:00Z", "", v1, "root", "")
	grant(web, "fay", "write", "2026-08-01T00:00:00Z", "", v1, "fay", "")
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"access:" + pay + "@2026-Q4", "access:" + empty + "@2026-Q4", "access:" + web + "@2026-Q3", "access:" + pay + "@2026-Q3"} {
		b, err := st.Conn().PrepareBatch(ctx, "INSERT INTO control_results (change_id, control_id, status, evaluated_at, evaluated_at_ns)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append(id, "AC-1", "pass", time.Now().UTC(), time.Now().UnixNano()); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	o, err := store.ParseURL(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	url := testenv.AuditorURL(t, o.Database)
	q4 := []string{"access", "--from", "2026-10-01", "--to", "2026-12-31"}

	// lines reads a CSV report as "repository login permission from to".
	lines := func(t *testing.T, out string) []string {
		t.Helper()
		recs, err := csv.NewReader(strings.NewReader(out)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 || recs[0][0] != "repository" || len(recs[0]) != 16 {
			t.Fatalf("header %v", recs)
		}
		var got []string
		for _, r := range recs[1:] {
			got = append(got, strings.TrimSpace(strings.Join([]string{r[0], r[2], r[4], r[6], r[7]}, " ")))
		}
		return got
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{{
		name: "production repositories, write and up",
		args: q4,
		want: []string{
			empty,
			pay + " ann write 2026-09-01T00:00:00Z",
			pay + " ben admin 2026-11-01T00:00:00Z 2026-11-15T00:00:00Z",
		},
	}, {
		name: "every repository",
		args: append(slices.Clone(q4), "--all-repositories"),
		want: []string{
			pay + " ann write 2026-09-01T00:00:00Z",
			pay + " ben admin 2026-11-01T00:00:00Z 2026-11-15T00:00:00Z",
			web + " fay write 2026-08-01T00:00:00Z",
		},
	}, {
		name: "named, read",
		args: append(slices.Clone(q4), "--repository", "GitHub.com/acme/pay", "--repository", web, "--permissions", "read"),
		want: []string{pay + " cid read 2026-10-02T00:00:00Z", web},
	}, {
		name: "a period ending before a grant began",
		args: []string{"access", "--from", "2026-10-01", "--to", "2026-10-31", "--repository", pay, "--permissions", "admin,write"},
		want: []string{pay + " ann write 2026-09-01T00:00:00Z"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			r := reportRun(t, url, tc.args...)
			if r.code != 0 {
				t.Fatalf("%+v", r)
			}
			if got := lines(t, r.stdout); !slices.Equal(got, tc.want) {
				t.Errorf("lines\n%q\nwant\n%q", got, tc.want)
			}
		})
	}

	// Each line names the events behind it.
	j := reportRun(t, url, append(slices.Clone(q4), "--format", "json")...)
	if j.code != 0 {
		t.Fatalf("%+v", j)
	}
	var doc struct {
		Selection    string              `json:"selection"`
		Repositories []string            `json:"repositories"`
		Lines        []map[string]string `json:"lines"`
	}
	if err := json.Unmarshal([]byte(j.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Selection != "production" || !slices.Equal(doc.Repositories, []string{empty, pay}) || len(doc.Lines) != 2 {
		t.Fatalf("json: %+v", doc)
	}
	if b := doc.Lines[1]; b["grant_event"] != "https://github.com/x grant-ben" || b["end_event"] != "https://github.com/x end-ben" ||
		b["end_action"] != "removed" || b["granted_by"] != "root" || b["ended_by"] != "root" {
		t.Errorf("ben's line: %v", b)
	}

	// XLSX: the CSV's cells.
	out := filepath.Join(t.TempDir(), "access.xlsx")
	if x := reportRun(t, url, append(slices.Clone(q4), "--out", out)...); x.code != 0 || !strings.Contains(x.stderr, "access: 2 periods held on 2 production repositories") {
		t.Fatalf("xlsx: %+v", x)
	}
	f, err := excelize.OpenFile(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows("access")
	if err != nil {
		t.Fatal(err)
	}
	c := reportRun(t, url, q4...)
	recs, _ := csv.NewReader(strings.NewReader(c.stdout)).ReadAll()
	if len(rows) != len(recs) {
		t.Fatalf("xlsx has %d rows, csv %d", len(rows), len(recs))
	}
	for i := range recs {
		// GetRows drops trailing empty cells.
		if want := recs[i][:len(rows[i])]; !slices.Equal(rows[i], want) || slices.ContainsFunc(recs[i][len(rows[i]):], func(s string) bool { return s != "" }) {
			t.Errorf("xlsx row %d = %q, csv %q", i, rows[i], recs[i])
		}
	}

	// Usage errors name the flag.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"access", "--to", "2026-12-31"}, "--from and --to"},
		{append(slices.Clone(q4), "--permissions", "push"), `--permissions: "push"`},
		{append(slices.Clone(q4), "--all-repositories", "--repository", pay), "exclude each other"},
		{append(slices.Clone(q4), "--format", "pdf"), `--format "pdf"`},
	} {
		if r := reportRun(t, url, tc.args...); r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d %q, want 2 naming %s", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
