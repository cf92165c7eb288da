package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// TestDeployVerdictsThroughEvidenced runs every identity case (the deploy
// step of each CI system, as each documents its environment, manual
// triggers by the author, a laptop) through a real evidenced with
// ClickHouse: the change's events are posted to /v1/events, `evidence
// emit deploy` sends the deployment from the case's environment, and the
// production deployment's verdict the daemon decides (deployment_verdicts)
// must be the hand-worked one of the case (identityCases): CM-3 and CM-7
// as the case says, every other control passing, the deployer recorded.
func TestDeployVerdictsThroughEvidenced(t *testing.T) {
	batch, err := os.ReadFile("testdata/gate/compliant.events.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range identityCases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // each case has its own evidenced and database
			ctx := context.Background()
			chURL := testenv.DatabaseURL(t)
			args := []string{"--verdict-delay", "0s"}
			if tc.strict {
				args = append(args, "--manual-trigger-by-author", "fail")
			}
			d := evidenced.Start(t, chURL, args...)
			server := "http://" + d.Addr()
			resp, err := http.Post(server+"/v1/events", "application/cloudevents-batch+json", bytes.NewReader(batch))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode/100 != 2 {
				t.Fatalf("post the change's events: %s", resp.Status)
			}
			st := testenv.StoreAt(t, chURL)
			// The change record holds its events before the deploy is sent,
			// so that the deploy's arrival (the verdict's cutoff, delay 0s)
			// comes after them.
			testenv.Eventually(t, 60*time.Second, func() error {
				var n uint64
				if err := st.Conn().QueryRow(ctx, "SELECT count() FROM changes FINAL WHERE change_id = ?", identityChange).Scan(&n); err != nil || n != 1 {
					return fmt.Errorf("change %s not in ClickHouse yet (%v)", identityChange, err)
				}
				return nil
			})
			emit := append([]string{"emit", "deploy", "--env", "production", "--service", "payments", "--digest", identityDigest,
				"--time", identityDeployAt, "--id", "verdict-" + strings.ReplaceAll(t.Name(), " ", "-")}, tc.args...)
			sent := run(t, with(tc.env, "EVIDENCE_SERVER", server, "EVIDENCE_SPOOL_DIR", t.TempDir()), "", emit...)
			if sent.code != 0 || !strings.HasPrefix(sent.stdout, "stored: ") {
				t.Fatalf("emit deploy: %+v", sent)
			}
			var v store.DeploymentVerdictRow
			testenv.Eventually(t, 60*time.Second, func() error {
				rows, err := st.DeploymentVerdictsOf(ctx, identityChange)
				if err != nil || len(rows) != 1 {
					return fmt.Errorf("%d verdicts of %s (%v), want 1", len(rows), identityChange, err)
				}
				v = rows[0]
				return nil
			})
			var results []struct {
				Control string
				Status  evaluate.Status
				Reasons []string
			}
			if err := json.Unmarshal([]byte(v.Results), &results); err != nil {
				t.Fatal(err)
			}
			if len(results) != 8 {
				t.Fatalf("%d results, want the 8 built-in controls: %s", len(results), v.Results)
			}
			overall := evaluate.Pass
			for _, x := range results {
				want, why := evaluate.Pass, ""
				switch x.Control {
				case "CM-3":
					want, why = tc.cm3, tc.why3
				case "CM-7":
					want, why = tc.cm7, tc.why7
				}
				if want == evaluate.Fail {
					overall = evaluate.Fail
				}
				if x.Status != want {
					t.Errorf("%s %s, want %s: %q", x.Control, x.Status, want, x.Reasons)
				}
				if why != "" && !strings.Contains(strings.Join(x.Reasons, "\n"), why) {
					t.Errorf("%s reasons %q, want one containing %q", x.Control, x.Reasons, why)
				}
			}
			if v.Verdict != string(overall) || v.Deployer != tc.deployer {
				t.Errorf("verdict %s by %s, want %s by %s", v.Verdict, v.Deployer, overall, tc.deployer)
			}
		})
	}
}
