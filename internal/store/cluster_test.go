package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/schemas"
)

func TestClusterStatements(t *testing.T) {
	got, err := store.ClusterStatements("ev", "c1", "CREATE TABLE IF NOT EXISTS t (\n a String COMMENT 'x (y)''s',\n v UInt64\n) ENGINE = ReplacingMergeTree(v)\nORDER BY (a, v)")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"CREATE TABLE IF NOT EXISTS ev.t_local ON CLUSTER c1 (\n a String,\n v UInt64\n) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ev/t_local', '{replica}', v)\nORDER BY (a, v)",
		"CREATE TABLE IF NOT EXISTS ev.t ON CLUSTER c1 (\n a String COMMENT 'x (y)''s',\n v UInt64\n) ENGINE = Distributed(c1, ev, t_local, cityHash64(a, v))",
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n--\n"), strings.Join(want, "\n--\n"))
	}
	got, err = store.ClusterStatements("ev", "c1", "CREATE TABLE IF NOT EXISTS e (s UInt64) ENGINE = MergeTree()\nPARTITION BY toYYYYMM(r)\nORDER BY s")
	if err != nil || got[0] != "CREATE TABLE IF NOT EXISTS ev.e_local ON CLUSTER c1 (s UInt64) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/ev/e_local', '{replica}')\nPARTITION BY toYYYYMM(r)\nORDER BY s" ||
		got[1] != "CREATE TABLE IF NOT EXISTS ev.e ON CLUSTER c1 (s UInt64) ENGINE = Distributed(c1, ev, e_local, cityHash64(s))" {
		t.Errorf("MergeTree: %q, %v", got, err)
	}
	got, err = store.ClusterStatements("ev", "c1", "CREATE VIEW IF NOT EXISTS v AS\nSELECT a FROM (SELECT * FROM t FINAL)\nANY LEFT JOIN (SELECT a FROM u FINAL) USING (a)")
	if err != nil || len(got) != 1 || got[0] != "CREATE VIEW IF NOT EXISTS ev.v ON CLUSTER c1 AS SELECT a FROM (SELECT * FROM ev.t FINAL)\nANY LEFT JOIN (SELECT a FROM ev.u FINAL) USING (a)" {
		t.Errorf("view: %q, %v", got, err)
	}
	if _, err := store.ClusterStatements("ev", "c1", "ALTER TABLE x ADD COLUMN y String"); err == nil || !strings.Contains(err.Error(), "ALTER TABLE x") {
		t.Errorf("ALTER: err = %v, want a refusal naming it", err)
	}
}

// TestClusterMigrate applies every migration on a two-replica cluster:
// each replica holds the replicated _local tables and the Distributed
// tables under the public names, a row inserted through one replica's
// Distributed table is read through the other's, and FINAL through a
// Distributed table folds the versions of a key.
func TestClusterMigrate(t *testing.T) {
	c := testenv.ClickHouseCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ms, err := store.LoadMigrations(schemas.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenCluster(ctx, c.URL("evc"), c.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	start := time.Now()
	if _, err := st.Migrate(ctx, ms); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	t.Logf("migrations on the cluster: %s", time.Since(start))
	// Again from the other replica: nothing to apply.
	st2, err := store.OpenCluster(ctx, c.Replicas[1].URL("evc"), c.Name, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	done, err := st2.Migrate(ctx, ms)
	if err != nil || len(done) != 0 {
		t.Fatalf("second migrate from r2: applied %v, %v; want none", done, err)
	}
	for i, r := range c.Replicas {
		one, err := store.Open(ctx, r.URL("evc"), nil)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := one.Conn().Query(ctx, "SELECT name, engine FROM system.tables WHERE database = 'evc' ORDER BY name")
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for rows.Next() {
			var n, e string
			if err := rows.Scan(&n, &e); err != nil {
				t.Fatal(err)
			}
			got[n] = e
		}
		rows.Close()
		one.Close()
		for _, tbl := range []string{"events", "changes", "control_results", "deployments", "deployment_verdicts", "checkpoints", "log_tiles", "access_grants"} {
			if got[tbl] != "Distributed" || !strings.HasPrefix(got[tbl+"_local"], "Replicated") {
				t.Errorf("replica r%d: %s is %q, %s_local is %q; want Distributed over Replicated*", i+1, tbl, got[tbl], tbl, got[tbl+"_local"])
			}
		}
		if got["deployments_with_verdict"] != "View" || got["schema_migrations"] != "ReplicatedMergeTree" {
			t.Errorf("replica r%d: deployments_with_verdict %q, schema_migrations %q", i+1, got["deployments_with_verdict"], got["schema_migrations"])
		}
	}
	// Two versions of one service's team through r1, read through r2 with
	// FINAL: the newer one only.
	for i, team := range []string{"old", "new"} {
		b, err := st.Conn().PrepareBatch(ctx, "INSERT INTO service_teams (service, team, updated_at)")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Append("pay", team, time.Unix(1700000000+int64(i), 0)); err != nil {
			t.Fatal(err)
		}
		if err := b.Send(); err != nil {
			t.Fatal(err)
		}
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		var n uint64
		if err := st2.Conn().QueryRow(ctx, "SELECT count() FROM service_teams_local").Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("r2 holds %d rows, want 2", n)
		}
		return nil
	})
	var team string
	var n uint64
	if err := st2.Conn().QueryRow(ctx, "SELECT any(team), count() FROM service_teams FINAL").Scan(&team, &n); err != nil {
		t.Fatalf("FINAL through the Distributed table: %v", err)
	}
	if team != "new" || n != 1 {
		t.Errorf("service_teams FINAL through r2 = %q x%d, want \"new\" x1", team, n)
	}
	// A batch retried on the other replica after an error (the first
	// attempt stored, its answer lost) is stored once: the replicated
	// table drops the identical block. A batch that differs is stored.
	batch := make([]store.EventRow, 3)
	for i := range batch {
		batch[i] = store.EventRow{StreamSeq: uint64(i + 1), EventID: fmt.Sprintf("e%d", i+1), Source: "s", Type: "t", ReceivedNs: 1767225600e9 + int64(i), Data: []byte("{}"), PrevHash: "p", Hash: fmt.Sprintf("h%d", i+1)}
	}
	if err := st.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	if err := st2.InsertEvents(ctx, batch); err != nil {
		t.Fatal(err)
	}
	next := []store.EventRow{batch[2]}
	next[0].StreamSeq, next[0].EventID, next[0].Hash = 4, "e4", "h4"
	if err := st2.InsertEvents(ctx, next); err != nil {
		t.Fatal(err)
	}
	for i, one := range []*store.Store{st, st2} {
		testenv.Eventually(t, 60*time.Second, func() error {
			var n, seqs uint64
			if err := one.Conn().QueryRow(ctx, "SELECT count(), uniqExact(stream_seq) FROM events_local").Scan(&n, &seqs); err != nil {
				return err
			}
			if n != 4 || seqs != 4 {
				return fmt.Errorf("r%d holds %d rows of %d stream_seq, want 4 of 4 (3 once, then 1)", i+1, n, seqs)
			}
			return nil
		})
	}
	if seq, hash, err := st2.LastEvent(ctx); err != nil || seq != 4 || hash != "h4" {
		t.Errorf("LastEvent on r2 = %d %q, %v; want 4 \"h4\"", seq, hash, err)
	}
	var views uint64
	if err := st2.Conn().QueryRow(ctx, "SELECT count() FROM deployments_with_verdict").Scan(&views); err != nil {
		t.Errorf("the view over the Distributed tables: %v", err)
	}
}
