package api_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
	"github.com/evidencepipeline/evidence/internal/tlog"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

func getLog(t *testing.T, url string, v any) (int, []byte) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if v != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", url, err)
		}
	}
	return resp.StatusCode, b
}

// TestLogRoutesThroughEvidenced archives events in a real evidenced,
// fetches two signed checkpoints and proofs from /v1/log, and verifies
// them offline with the daemon's public key only.
func TestLogRoutesThroughEvidenced(t *testing.T) {
	dataDir := t.TempDir()
	d := evidenced.Start(t, testenv.DatabaseURL(t), "--data-dir", dataDir, "--checkpoint-every", "7", "--checkpoint-interval", "1h")
	base := "http://" + d.Addr()
	post := func(from, n int) {
		var evs []string
		for i := from; i < from+n; i++ {
			evs = append(evs, structured(fmt.Sprintf("log-%d", i), runData(fmt.Sprintf("%040x", i))))
		}
		resp, err := http.Post(base+"/v1/events", "application/cloudevents-batch+json", strings.NewReader("["+strings.Join(evs, ",")+"]"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("post: %s", resp.Status)
		}
	}
	key, err := verify.LoadSigningKey(dataDir + "/" + verify.PrivateKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	vkey, _ := tlog.VerifierKey(checkpoint.Origin(key), key.Public())
	waitCheckpoint := func(size int64) (tlog.Checkpoint, []byte) {
		var c tlog.Checkpoint
		var note []byte
		testenv.Eventually(t, 30*time.Second, func() error {
			code, b := getLog(t, base+"/v1/log/checkpoint", nil)
			if code != 200 {
				return fmt.Errorf("checkpoint: %d %s", code, b)
			}
			var err error
			if c, _, err = tlog.OpenCheckpoint(b, vkey); err != nil {
				return err
			}
			if c.Tree.N != size {
				return fmt.Errorf("checkpoint of %d leaves, want %d", c.Tree.N, size)
			}
			note = b
			return nil
		})
		return c, note
	}
	post(0, 7)
	old, _ := waitCheckpoint(7)
	post(7, 14)
	cur, _ := waitCheckpoint(21)

	var ip tlog.InclusionProof
	if code, b := getLog(t, base+"/v1/log/proof/inclusion?seq=3", &ip); code != 200 {
		t.Fatalf("inclusion: %d %s", code, b)
	}
	if err := tlog.VerifyInclusion(cur, ip); err != nil || ip.LeafIndex != 2 {
		t.Fatalf("inclusion of seq 3 (leaf %d): %v", ip.LeafIndex, err)
	}
	// The proof carries the archived row: its chain hash is recomputed.
	if err := tlog.VerifyRowInclusion(cur, ip); err != nil || ip.ID != "log-2" {
		t.Fatalf("inclusion of seq 3 (event %q) with its row: %v", ip.ID, err)
	}
	if err := tlog.VerifyInclusion(old, ip); err == nil {
		t.Fatal("a proof for 21 leaves verifies against the checkpoint of 7")
	}
	ip.RowHash = strings.Repeat("0", 64) // a row altered after the checkpoint
	if err := tlog.VerifyInclusion(cur, ip); err == nil {
		t.Fatal("an altered row verifies")
	}
	var cp tlog.ConsistencyProof
	if code, b := getLog(t, base+"/v1/log/proof/consistency?old=7&size=21", &cp); code != 200 {
		t.Fatalf("consistency: %d %s", code, b)
	}
	if err := tlog.VerifyConsistency(old, cur, cp); err != nil {
		t.Fatalf("consistency 7 -> 21: %v", err)
	}
	forged := old
	forged.Tree.Hash[0] ^= 1
	if err := tlog.VerifyConsistency(forged, cur, cp); err == nil || !strings.Contains(err.Error(), "rewritten") {
		t.Fatalf("a rewritten history: %v", err)
	}
	for _, q := range []string{"inclusion?seq=x", "inclusion?seq=999", "consistency?old=30&size=21", "consistency?old=1&size=999"} {
		if code, b := getLog(t, base+"/v1/log/proof/"+q, nil); code == 200 {
			t.Errorf("%s: 200 %s", q, b)
		}
	}
}
