package daemon_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// TestChangeRecordsEndToEnd posts a scenario's events to evidenced over
// HTTP, in reverse order, and finds the change record, as the pure core
// derives it from the same events, served by GET /v1/changes/{id} and
// stored in ClickHouse.
func TestChangeRecordsEndToEnd(t *testing.T) {
	raw, err := os.ReadFile("../../processors/correlate/testdata/scenarios/squash_merge/events.json")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ce.ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	want := correlate.NewState()
	for _, r := range entries {
		e, err := ce.ParseJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		fs, err := correlate.Extract(e)
		if err != nil {
			t.Fatal(err)
		}
		want.Add(fs...)
	}
	records := want.Records()
	if len(records) != 1 {
		t.Fatalf("the scenario derives %d records, want 1", len(records))
	}
	wantJSON, _ := json.Marshal(records[0])

	chURL := testenv.DatabaseURL(t)
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), chURL)
	base := "http://" + d.Addr()
	for i := len(entries) - 1; i >= 0; i-- { // any order gives the same record
		code, r := post(t, base, http.Header{"Content-Type": {api.MediaStructured}}, string(entries[i]))
		if code != 202 {
			t.Fatalf("post %d: %d %+v", i, code, r)
		}
	}
	testenv.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(base + "/v1/changes/" + url.PathEscape(records[0].ID))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET /v1/changes/%s: %d %s", records[0].ID, resp.StatusCode, b)
		}
		if string(b) != string(wantJSON) {
			return fmt.Errorf("served record differs from the core's:\n got %s\nwant %s", b, wantJSON)
		}
		return nil
	})
	st := testenv.StoreAt(t, chURL)
	testenv.Eventually(t, 30*time.Second, func() error {
		var rec string
		err := st.Conn().QueryRow(context.Background(), "SELECT record FROM changes FINAL WHERE change_id = ?", records[0].ID).Scan(&rec)
		if err != nil {
			return err
		}
		if rec != string(wantJSON) {
			return fmt.Errorf("ClickHouse holds another version of the record")
		}
		return nil
	})
}

// TestChangeRecordsAfterClickHouseOutage: change records derived while
// ClickHouse is down are served live at once and reach ClickHouse when it
// is back (through the outbox), without blocking correlation meanwhile.
func TestChangeRecordsAfterClickHouseOutage(t *testing.T) {
	raw, err := os.ReadFile("../../processors/correlate/testdata/scenarios/squash_merge/events.json")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ce.ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	ch := testenv.OwnClickHouse(t)
	chURL := ch.URL("evidence")
	st := testenv.StoreAt(t, chURL) // migrated before the daemon starts
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), chURL)
	testenv.Eventually(t, 30*time.Second, func() error {
		if d.Store() == nil {
			return fmt.Errorf("daemon not connected to ClickHouse yet")
		}
		return nil
	})
	if err := ch.Kill(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + d.Addr()
	parts := make([]string, len(entries))
	for i, e := range entries {
		parts[i] = string(e)
	}
	if code, r := post(t, base, http.Header{"Content-Type": {api.MediaBatch}}, "["+strings.Join(parts, ",")+"]"); code != 202 {
		t.Fatalf("post: %d %+v", code, r)
	}
	var id string
	testenv.Eventually(t, 30*time.Second, func() error { // served live while ClickHouse is down
		resp, err := http.Get(base + "/v1/changes?repo=github.com/acme/payments&commit=c0ffee1")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var out struct {
			Changes []struct {
				ID string `json:"id"`
			} `json:"changes"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Changes) != 1 {
			return fmt.Errorf("changes: %+v %v", out, err)
		}
		id = out.Changes[0].ID
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ch.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		var n uint64
		if err := st.Conn().QueryRow(context.Background(), "SELECT count() FROM changes FINAL WHERE change_id = ?", id).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("change %s not in ClickHouse yet", id)
		}
		return nil
	})
}
