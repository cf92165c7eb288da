package access_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/access"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func event(t *testing.T, id, typ string, data map[string]any) access.Fact {
	t.Helper()
	b, _ := json.Marshal(data)
	f, err := access.Extract(&ce.Event{ID: id, Source: "kv", Type: typ, Data: b})
	if err != nil || f == nil {
		t.Fatalf("%s: %v", id, err)
	}
	return *f
}

// TestKVConcurrentWritersAndReplay: eight writers merge 40 grants of one
// repository at once into a real JetStream bucket; every fact survives the
// compare-and-set races, the record equals the one derived in memory, and
// adding everything again changes nothing.
func TestKVConcurrentWritersAndReplay(t *testing.T) {
	js := testenv.NATS(t)
	ctx := context.Background()
	st, err := access.NewKVStore(ctx, js.JS)
	if err != nil {
		t.Fatal(err)
	}
	const repo = "github.com/acme/payments"
	var all []access.Fact
	for i := range 40 {
		all = append(all, event(t, "g"+string(rune('a'+i%26))+string(rune('a'+i/26)), access.TypeGrantChanged, map[string]any{
			"scope": "repository", "repository": repo, "action": "granted",
			"principal":  map[string]any{"kind": "user", "login": "u" + string(rune('a'+i%26)) + string(rune('a'+i/26))},
			"permission": "write", "actor": map[string]any{"login": "admin"}, "changed_at": "2026-03-01T10:00:00Z"}))
	}
	all = append(all, event(t, "p", access.TypeProtectionChanged, map[string]any{"repository": repo, "action": "created", "target": "main",
		"ticket": "CHG-1", "settings": map[string]any{"required_approving_review_count": 1}, "changed_at": "2026-03-01T09:00:00Z"}))
	all = append(all, event(t, "t", access.TypeTicketApproved, map[string]any{"key": "CHG-1", "approver": map[string]any{"login": "cab"}, "approved_at": "2026-03-01T08:00:00Z"}))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []access.Fact
			for i := w; i < len(all); i += 8 {
				mine = append(mine, all[i])
			}
			if _, err := st.Add(ctx, mine...); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	got, err := st.Record(ctx, repo)
	if err != nil {
		t.Fatal(err)
	}
	want := access.Derive(repo, all)
	if !bytes.Equal(got.Canonical(), want.Canonical()) {
		t.Fatalf("the bucket's record differs from the one derived in memory:\n%s\n%s", got.Canonical(), want.Canonical())
	}
	if len(got.Grants) != 40 || len(got.Tickets) != 1 || got.Tickets[0].By.Login != "cab" {
		t.Fatalf("grants %d, tickets %+v: want 40 grants and CHG-1 approved by cab", len(got.Grants), got.Tickets)
	}
	changed, err := st.Add(ctx, all...)
	if err != nil || changed {
		t.Fatalf("replay: changed %v, err %v; want nothing changed", changed, err)
	}
}
