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
