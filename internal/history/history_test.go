package history

import (
	"bytes"
	"encoding/json"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/evidencepipeline/evidence/schemas"
)

var start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

func TestGenerateDeterministic(t *testing.T) {
	a, b := Generate(7, 400, 50, start), Generate(7, 400, 50, start)
	if len(a.Events) != len(b.Events) {
		t.Fatalf("%d events, then %d", len(a.Events), len(b.Events))
	}
	for i := range a.Events {
		if !bytes.Equal(a.Events[i].JSON, b.Events[i].JSON) {
			t.Fatalf("event %d differs:\n%s\n%s", i, a.Events[i].JSON, b.Events[i].JSON)
		}
	}
	if c := Generate(8, 400, 50, start); bytes.Equal(c.Events[0].JSON, a.Events[0].JSON) {
		t.Error("another seed gave the same first event")
	}
}

func TestGenerateShape(t *testing.T) {
	h := Generate(1, 4000, 50, start)
	if len(h.Changes) != 4000 {
		t.Fatalf("%d changes", len(h.Changes))
	}
	repos := map[string]bool{}
	kinds := map[string]int{}
	for _, c := range h.Changes {
		repos[c.Repository] = true
		kinds[c.Kind]++
	}
	if len(repos) != 50 {
		t.Errorf("%d repositories, want 50", len(repos))
	}
	for _, k := range Kinds {
		n := kinds[k.Name]
		if lo, hi := int(k.Rate*4000*0.5), int(k.Rate*4000*1.6); n < lo || n > hi {
			t.Errorf("kind %s: %d changes, want about %.0f", k.Name, n, k.Rate*4000)
		}
	}
	per := float64(len(h.Events)) / 4000
	if per < 10 || per > 13 {
		t.Errorf("%.1f events per change, want about 12", per)
	}
	ids := map[string]bool{}
	for i, e := range h.Events {
		if i > 0 && e.Time.Before(h.Events[i-1].Time) {
			t.Fatalf("event %d (%s) before event %d", i, e.Time, i-1)
		}
		if e.Time.Before(h.Start) || !e.Time.Before(h.Start.Add(Span+Tail)) {
			t.Fatalf("event %s at %s, outside %s + %s", e.ID, e.Time, h.Start, Span+Tail)
		}
		if ids[e.ID] {
			t.Fatalf("event id %s twice", e.ID)
		}
		ids[e.ID] = true
	}
}

// TestEventsValid checks every generated event against the catalog's
// schemas, as the door does.
func TestEventsValid(t *testing.T) {
	cat, err := schemas.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range Generate(3, 300, 20, start).Events {
		var ev struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(e.JSON, &ev); err != nil {
			t.Fatal(err)
		}
		if err := cat.Validate(e.Type, ev.Data); err != nil {
			t.Fatalf("event %s: %v\n%s", e.ID, err, e.JSON)
		}
	}
}

// TestJudgeKinds holds the reference judge to a table worked by hand from
// the policies (processors/evaluate/policies/cm*.rego) for each kind the
// generator injects: the controls that do not pass, and how.
func TestJudgeKinds(t *testing.T) {
	want := map[string]map[string]string{
		"":                                {},
		"ticket-approved-after-deploy":    {"CM-1": Fail},
		"ticket-approved-by-bot":          {"CM-1": Pending},
		"emergency-approved-after-deploy": {},
		"emergency-unapproved":            {"CM-1": Pending},
		"no-review":                       {"CM-2": Pending},
		"self-approval":                   {"CM-2": Pending, "CM-3": Fail},
		"review-superseded":               {"CM-2": Pending},
		"review-by-bot":                   {"CM-2": Pending},
		"review-dismissed":                {"CM-2": Pending},
		"review-stale":                    {"CM-2": Pending},
		"review-renewed":                  {},
		"ticket-approved-by-author":       {"CM-3": Fail},
		"reviewer-approves-ticket":        {"CM-3": Fail},
		"manual-trigger-by-author":        {},
		"tests-failed":                    {"CM-4": Fail},
		"tests-missing":                   {"CM-4": Pending},
		"scan-finding-high":               {"CM-5": Fail},
		"scan-missing-dependency":         {"CM-5": Pending},
		"artifact-from-pr-head":           {"CM-6": Fail},
		"artifact-built-by-person":        {"CM-6": Fail},
		"deployed-by-person":              {"CM-7": Fail},
		"deployed-by-author":              {"CM-3": Fail, "CM-7": Fail},
		"unprotected-branch":              {"CM-7": Fail},
		"unmatched": {"CM-1": Pending, "CM-2": Fail, "CM-3": Pending, "CM-4": Pending, "CM-5": Pending,
			"CM-6": Fail, "CM-7": Fail, "CM-8": Fail},
	}
	if len(want) != len(Kinds)+1 {
		t.Fatalf("the table has %d kinds, the generator %d (and compliant)", len(want), len(Kinds))
	}
	p := DefaultParams()
	seen := map[string]bool{}
	for _, c := range Generate(5, 3000, 50, start).Changes {
		w, ok := want[c.Kind]
		if !ok {
			t.Fatalf("kind %q not in the table", c.Kind)
		}
		seen[c.Kind] = true
		v := p.Judge(&c)
		exp := map[string]string{}
		status := Pass
		for _, id := range []string{"CM-1", "CM-2", "CM-3", "CM-4", "CM-5", "CM-6", "CM-7", "CM-8"} {
			exp[id] = Pass
			if s, ok := w[id]; ok {
				exp[id] = s
			}
			switch {
			case exp[id] == Fail:
				status = Fail
			case exp[id] == Pending && status == Pass:
				status = Pending
			}
		}
		if !maps.Equal(v.Controls, exp) || v.Status != status {
			t.Errorf("change %d (%s): judge %s %v, want %s %v", c.Index, c.Kind, v.Status, v.Controls, status, exp)
		}
	}
	strict := p
	strict.FailManualTriggerByAuthor = true
	for _, c := range Generate(5, 3000, 50, start).Changes {
		if got := strict.Judge(&c).Controls["CM-3"]; c.Kind == "manual-trigger-by-author" && got != Fail {
			t.Errorf("change %d (%s), manual_trigger_by_author fail: CM-3 %s, want fail", c.Index, c.Kind, got)
		}
	}
	for k := range want {
		if !seen[k] {
			t.Errorf("kind %q never generated", k)
		}
	}
	if t.Failed() {
		keys := slices.Sorted(maps.Keys(seen))
		t.Logf("kinds seen: %s", strings.Join(keys, ", "))
	}
}

// TestJudgeIndependent keeps the reference judge independent of what it
// checks: the package depends on neither the correlation, nor the
// evaluation, nor OPA.
func TestJudgeIndependent(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	forbidden := []string{
		"github.com/evidencepipeline/evidence/processors/",
		"github.com/open-policy-agent/",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("internal/history depends on %s", dep)
			}
		}
	}
}
