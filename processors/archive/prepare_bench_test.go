package archive

import (
	"fmt"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// BenchmarkPrepare is the archive's own work per event, without JetStream
// or ClickHouse: parse the stored event, build its row, chain it.
func BenchmarkPrepare(b *testing.B) {
	msg := fmt.Appendf(nil, `{"specversion":"1.0","id":"bench-%08d","source":"https://ci.example/acme/payments","type":"dev.evidencepipeline.pipelinerun.finished.v1","subject":"run/%d","time":"2026-11-25T10:00:00Z","data":{"repository":"github.com/acme/payments","commit":"%040x","run_id":"%d","run_url":"https://ci.example/acme/payments/runs/%d","pipeline":"build-and-deploy","system":"github-actions","outcome":"success","started_at":"2026-11-25T09:58:00Z","finished_at":"2026-11-25T10:00:00Z","notes":"%0600d"}}`, 1, 1, 1, 1, 1, 1)
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	a := &Archive{}
	prev := ""
	for i := 0; i < b.N; i++ {
		e, err := ce.ParseJSON(msg)
		if err != nil {
			b.Fatal(err)
		}
		rows := a.chain(prev, []pending{{row: rowFromEvent(e, uint64(i+1), 1), event: e}})
		prev = rows[0].Hash
	}
}
