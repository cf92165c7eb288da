package access

import (
	"context"
	"fmt"
	"testing"

	"github.com/evidencepipeline/evidence/internal/testenv"
)

// TestWriteAndReadNewestVersion writes an older and a newer version of the
// hand-worked record (history) to a real ClickHouse and reads, as the
// read-only auditor, the rows of the newest version with the query
// 0009_access.sql documents: the newer record's 4 grants and 3 protection
// periods, not the older one's.
func TestWriteAndReadNewestVersion(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	es := history(t)
	older := Derive(repo, facts(t, es[:3]...)) // snapshot 1, carol, rule 1 deleted
	newer := Derive(repo, facts(t, es...))
	for _, r := range []Record{newer, older} { // the older written last
		if err := Write(ctx, st.Conn(), r); err != nil {
			t.Fatal(err)
		}
	}
	aud := testenv.AuditorConn(t, st.Database())
	q := func(table, cols string) []string {
		rows, err := aud.Query(ctx, "SELECT "+cols+" FROM "+table+
			" WHERE (repository, version) IN (SELECT repository, max(version) FROM "+table+" GROUP BY repository) ORDER BY "+cols)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var a, b string
			var c int64
			if err := rows.Scan(&a, &b, &c); err != nil {
				t.Fatal(err)
			}
			out = append(out, fmt.Sprintf("%s %s %d", a, b, c))
		}
		return out
	}
	grants := q("access_grants", "principal_login, end_action, valid_to_ns")
	want := []string{"alice  0", "bob removed " + fmt.Sprint(mustNS(hm(13))), "carol snapshot " + fmt.Sprint(mustNS(hm(14))), "dave  0"}
	if fmt.Sprint(grants) != fmt.Sprint(want) {
		t.Errorf("grants as the auditor reads them: %q, want %q", grants, want)
	}
	prot := q("protection_settings", "rule_id, action, valid_to_ns")
	wantP := []string{"1 deleted 0", "1 snapshot " + fmt.Sprint(mustNS(hm(11))), "2 created 0"}
	if fmt.Sprint(prot) != fmt.Sprint(wantP) {
		t.Errorf("protection settings: %q, want %q", prot, wantP)
	}
}
