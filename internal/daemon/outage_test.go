package daemon_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/api"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/archive"
)

// TestClickHouseOutage stops ClickHouse while events are posted over HTTP:
// the receiver keeps answering 202, readiness stays up (ClickHouse is not
// required), and once ClickHouse is back every event arrives, none twice.
func TestClickHouseOutage(t *testing.T) {
	ch := testenv.OwnClickHouse(t)
	chURL := ch.URL("evidence")
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), chURL)
	base := "http://" + d.Addr()
	batch := func(from, n int) string {
		var parts []string
		for i := from; i < from+n; i++ {
			parts = append(parts, fmt.Sprintf(`{"specversion":"1.0","id":"out-%05d","source":"https://ci.example","type":%q,"data":%s}`, i, runType, validData(i)))
		}
		return "[" + strings.Join(parts, ",") + "]"
	}
	postAll := func(from, to int) {
		for i := from; i < to; i += 100 {
			code, r := post(t, base, http.Header{"Content-Type": {api.MediaBatch}}, batch(i, 100))
			if code != 202 || r.Stored != 100 {
				t.Fatalf("post %d: %d %+v", i, code, r)
			}
		}
	}
	st := testenv.StoreAt(t, chURL)
	postAll(0, 1000)
	testenv.WaitForRows(t, st, 1000, 30*time.Second)

	if err := ch.Kill(); err != nil {
		t.Fatal(err)
	}
	postAll(1000, 3000) // accepted while ClickHouse is down
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/readyz = %d while only ClickHouse is down; ingestion still works", resp.StatusCode)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := ch.Start(ctx); err != nil {
		t.Fatal(err)
	}
	postAll(3000, 3500)
	testenv.WaitForRows(t, st, 3500, 60*time.Second)
	rows := testenv.ArchivedRows(t, st)
	for i, r := range rows {
		if r.StreamSeq != uint64(i+1) || r.EventID != fmt.Sprintf("out-%05d", i) {
			t.Fatalf("row %d: seq %d id %s", i, r.StreamSeq, r.EventID)
		}
	}
	if i, why := archive.VerifyChain(archive.GenesisHash, rows); i >= 0 {
		t.Fatalf("chain broken at %d: %s", i, why)
	}
}
