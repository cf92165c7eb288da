package store_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/schemas"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want store.Options
		err  string
	}{
		{in: "clickhouse://127.0.0.1:9000/evidence", want: store.Options{Addr: "127.0.0.1:9000", Database: "evidence", User: "default"}},
		{in: "clickhouse://ch", want: store.Options{Addr: "ch:9000", Database: "evidence", User: "default"}},
		{in: "clickhouse://bob:s3cret@ch:9001/audit", want: store.Options{Addr: "ch:9001", Database: "audit", User: "bob", Password: "s3cret"}},
		{in: "clickhouses://ch/x", want: store.Options{Addr: "ch:9440", Database: "x", User: "default", Secure: true}},
		{in: "http://ch:8123/x", err: `scheme "http"`},
		{in: "clickhouse:///x", err: "no host"},
		{in: "clickhouse://ch/bad;name", want: store.Options{Addr: "ch:9000", Database: "bad;name", User: "default"}},
		{in: "clickhouse://ch/a b", err: "database name"},
		{in: "clickhouse://ch1:9000,ch2,ch3:9100/e", want: store.Options{Addr: "ch1:9000", MoreAddrs: []string{"ch2:9000", "ch3:9100"}, Database: "e", User: "default"}},
		{in: "clickhouse://ch1:9000,:9001/e", err: "host 2"},
		{in: "clickhouse://ch1:9000,ch2:x/e", err: "port"},
	} {
		got, err := store.ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseURL(%q) error = %v, want one containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseURL(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	if r := store.Redacted("clickhouse://bob:s3cret@ch/x"); strings.Contains(r, "s3cret") {
		t.Errorf("Redacted leaks the password: %s", r)
	}
}

func TestMigrateIsIdempotentAndAppendOnly(t *testing.T) {
	ctx := context.Background()
	url := testenv.DatabaseURL(t)
	st := testenv.StoreAt(t, url) // applies every migration once
	ms, err := store.LoadMigrations(schemas.Migrations())
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.Migrate(ctx, ms)
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 0 {
		t.Fatalf("second Migrate applied %v, want nothing", again)
	}
	var n uint64
	if err := st.Conn().QueryRow(ctx, "SELECT count() FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if int(n) != len(ms) {
		t.Fatalf("schema_migrations has %d rows, want %d", n, len(ms))
	}
	changed := append([]store.Migration{}, ms...)
	changed[0].Checksum = "0000000000000000"
	if _, err := st.Migrate(ctx, changed); err == nil || !strings.Contains(err.Error(), "changed after it was applied") {
		t.Fatalf("Migrate with an edited migration: err = %v, want a refusal", err)
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"no number": {"events.sql": {Data: []byte("SELECT 1")}},
		"duplicate": {"0001_a.sql": {Data: []byte("SELECT 1")}, "0001_b.sql": {Data: []byte("SELECT 1")}},
	} {
		if _, err := store.LoadMigrations(fsys); err == nil {
			t.Errorf("%s: LoadMigrations accepted it", name)
		}
	}
	m := store.Migration{SQL: "-- c\nCREATE TABLE a (x UInt8) ENGINE = Memory;\n\nCREATE TABLE b (x UInt8)\nENGINE = Memory;\n"}
	if got := m.Statements(); len(got) != 2 || !strings.HasPrefix(got[1], "CREATE TABLE b") {
		t.Fatalf("Statements() = %q", got)
	}
}

func TestInsertScanAndLast(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	if _, _, err := st.LastEvent(ctx); !errors.Is(err, store.ErrEmpty) {
		t.Fatalf("LastEvent on empty table: %v, want ErrEmpty", err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 123456789, time.UTC).UnixNano()
	rows := []store.EventRow{
		{StreamSeq: 1, EventID: "a", Source: "s", Type: "t", ReceivedNs: now, Extensions: "{}", Data: []byte(`{"x":1}`), Hash: "h1"},
		{StreamSeq: 2, EventID: "b", Source: "s", Type: "t", Subject: "sub", EventTimeNs: now - 5, ReceivedNs: now + 1,
			DataContentType: "application/octet-stream", Extensions: `{"e":"v"}`, Data: []byte{0, 1, 2, 255}, DataBase64: true, PrevHash: "h1", Hash: "h2"},
	}
	if err := st.InsertEvents(ctx, rows); err != nil {
		t.Fatal(err)
	}
	seq, hash, err := st.LastEvent(ctx)
	if err != nil || seq != 2 || hash != "h2" {
		t.Fatalf("LastEvent = %d, %q, %v; want 2, h2", seq, hash, err)
	}
	var got []store.EventRow
	if err := st.ScanEvents(ctx, 1, 0, func(r *store.EventRow) error {
		c := *r
		c.Data = append([]byte(nil), r.Data...)
		got = append(got, c)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("scanned %d rows", len(got))
	}
	for i := range rows {
		if string(got[i].Data) != string(rows[i].Data) || got[i].ReceivedNs != rows[i].ReceivedNs ||
			got[i].EventTimeNs != rows[i].EventTimeNs || got[i].DataBase64 != rows[i].DataBase64 ||
			got[i].Extensions != rows[i].Extensions || got[i].Subject != rows[i].Subject || got[i].PrevHash != rows[i].PrevHash {
			t.Errorf("row %d round trip: got %+v, want %+v", i, got[i], rows[i])
		}
	}
}
