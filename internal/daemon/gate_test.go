package daemon_test

import (
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
)

type gateAnswer struct {
	Decision string `json:"decision"`
	Controls []struct {
		ID     string   `json:"id"`
		Status string   `json:"status"`
		Reason []string `json:"reasons"`
	} `json:"controls"`
}

// TestGateEndToEnd: the evidence of a compliant change is posted to
// evidenced without its ticket approval: the gate denies naming CM-1; once
// the approval is posted, the gate allows. The answer comes from the live
// correlation state, with ClickHouse not even reachable.
func TestGateEndToEnd(t *testing.T) {
	raw, err := os.ReadFile("../cli/testdata/gate/compliant.events.json")
	if err != nil {
		t.Fatal(err)
	}
	entries, err := ce.ParseBatch(raw)
	if err != nil {
		t.Fatal(err)
	}
	var approval string
	var rest []string
	var repo, commit string
	for _, r := range entries {
		e, err := ce.ParseJSON(r)
		if err != nil {
			t.Fatal(err)
		}
		switch e.Type {
		case "dev.evidencepipeline.ticket.approved.v1":
			approval = string(r)
			continue
		case "dev.evidencepipeline.change.merged.v1":
			var d struct {
				Repository  string `json:"repository"`
				MergeCommit string `json:"merge_commit"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				t.Fatal(err)
			}
			repo, commit = d.Repository, d.MergeCommit
		}
		rest = append(rest, string(r))
	}
	if approval == "" || repo == "" {
		t.Fatal("fixture lacks the ticket approval or the merge")
	}
	d := startDaemon(t, filepath.Join(t.TempDir(), "data"), "clickhouse://127.0.0.1:1/none")
	base := "http://" + d.Addr()
	if code, r := post(t, base, http.Header{"Content-Type": {api.MediaBatch}}, "["+strings.Join(rest, ",")+"]"); code != 202 {
		t.Fatalf("post: %d %+v", code, r)
	}
	gate := func() (gateAnswer, error) {
		resp, err := http.Get(base + "/v1/gate?env=production&repo=" + url.QueryEscape(repo) + "&commit=" + commit)
		if err != nil {
			return gateAnswer{}, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		var a gateAnswer
		if err := json.Unmarshal(b, &a); err != nil {
			return a, fmt.Errorf("%d %s", resp.StatusCode, b)
		}
		return a, nil
	}
	status := func(a gateAnswer, id string) string {
		for _, c := range a.Controls {
			if c.ID == id {
				return c.Status
			}
		}
		return ""
	}
	var a gateAnswer
	deadline := time.Now().Add(30 * time.Second)
	for { // the stage correlates asynchronously
		a, err = gate()
		if err == nil && status(a, "CM-2") == "pass" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the change was not correlated in time: %+v %v", a, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if a.Decision != "deny" || status(a, "CM-1") == "pass" {
		t.Fatalf("without the ticket approval: %+v; want deny with CM-1 not passing", a)
	}
	for _, c := range a.Controls {
		if c.ID != "CM-1" && c.Status != "pass" {
			t.Fatalf("%s is %s (%v): only CM-1 should stop this change", c.ID, c.Status, c.Reason)
		}
	}
	if code, r := post(t, base, http.Header{"Content-Type": {api.MediaStructured}}, approval); code != 202 {
		t.Fatalf("post approval: %d %+v", code, r)
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		a, err = gate()
		if err == nil && a.Decision == "allow" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the approval: %+v %v; want allow", a, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
