package api_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
	"github.com/evidencepipeline/evidence/schemas"
)

// TestGateArtifactThroughEvidenced is TestGateJudgesTheArtifactAskedAbout
// through a real evidenced with ClickHouse: each phase of the history is
// posted to /v1/events as one batch, and the same hand-worked questions
// (an artifact built from the pull request's head, from the merge, squash
// and rebase commits; a rollback to an earlier compliant artifact; a
// redeploy; builds outside a pipeline or a change) are asked of its
// /v1/gate, which answers once the stream is correlated. Then the
// production deployments' verdicts the daemon decided are checked, worked
// by hand: A's deployment (DA), B's (DB), the rollback deploying DA again
// (judged on A's evidence: its record holds DA's build) and the
// roll-forward deploying DB again (earlier deployments of DB do not fail
// it) all pass, every control.
func TestGateArtifactThroughEvidenced(t *testing.T) {
	ctx := context.Background()
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	chURL := testenv.DatabaseURL(t)
	d := evidenced.Start(t, chURL, "--verdict-delay", "1s")
	srv := &httptest.Server{URL: "http://" + d.Addr()} // askGate reads its URL only

	h := &history{t: t, cat: cat}
	for _, ph := range artifactPhases() {
		h.events = nil
		ph.events(h)
		var body bytes.Buffer
		body.WriteByte('[')
		for i, e := range h.events {
			if i > 0 {
				body.WriteByte(',')
			}
			body.Write(e.MarshalCanonical())
		}
		body.WriteByte(']')
		resp, err := http.Post(srv.URL+"/v1/events", "application/cloudevents-batch+json", &body)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s: post: %s", ph.name, resp.Status)
		}
		for _, row := range ph.rows {
			if row.commit != "" {
				t.Run(ph.name+"/"+row.name, func(t *testing.T) {
					checkGateRow(t, srv, "env=production&repo="+gateRepo+"&commit="+row.commit, row, true)
				})
				continue
			}
			t.Run(ph.name+"/"+row.name, func(t *testing.T) {
				checkGateRow(t, srv, "env=production&artifact="+row.artifact+"&repo="+gateRepo, row, true)
			})
		}
	}

	st := testenv.StoreAt(t, chURL)
	want := []string{
		"5103 " + recA + " pass failing[] pending[]", // A's deployment of DA
		"5203 " + recB + " pass failing[] pending[]", // B's deployment of DB
		"6001 " + recA + " pass failing[] pending[]", // the rollback to DA: A's evidence
		"6002 " + recB + " pass failing[] pending[]", // the roll-forward to DB
	}
	testenv.Eventually(t, 60*time.Second, func() error {
		rows, err := st.Conn().Query(ctx, `SELECT deployment_key, change_id, verdict, failing, pending FROM deployment_verdicts FINAL ORDER BY deployed_at_ns`)
		if err != nil {
			return err
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var key, change, verdict string
			var failing, pending []string
			if err := rows.Scan(&key, &change, &verdict, &failing, &pending); err != nil {
				return err
			}
			// The deployments name no id: their key is the service and run.
			run := key[strings.LastIndexByte(key, '#')+1:] // payments#RUN
			got = append(got, fmt.Sprintf("%s %s %s failing%v pending%v", run, change, verdict, failing, pending))
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("verdicts %q, want %q", got, want)
		}
		return nil
	})
}
