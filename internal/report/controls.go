package report

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/evidencepipeline/evidence/internal/store"
)

// Controls is the control summary of a period: for each control, how the
// results in force (the newest control_results row per change and
// control) stand over the changes deployed in the period.
type Controls struct {
	Environment string          `json:"environment"`
	From        string          `json:"from"`
	To          string          `json:"to"`
	Changes     int             `json:"changes"`     // distinct changes of the population
	Deployments int             `json:"deployments"` // rows of the population
	Controls    []ControlCounts `json:"controls"`
}

// ControlCounts is one control's line.
type ControlCounts struct {
	Control      string `json:"control"`
	Title        string `json:"title"`
	Severity     string `json:"severity"`
	Population   int    `json:"population"`
	Pass         int    `json:"pass"`
	Fail         int    `json:"fail"`
	Waived       int    `json:"waived"`
	Pending      int    `json:"pending"`
	NotEvaluated int    `json:"not_evaluated"`
	// Failing are the changes that fail it, by change id; Waivers the
	// changes it is waived for.
	Failing []ControlChange `json:"failing"`
	Waivers []ControlChange `json:"waivers"`
}

// ControlChange is a change under a control: why it fails, or the
// exception that waives it.
type ControlChange struct {
	Change    string   `json:"change"`
	Reasons   []string `json:"reasons,omitempty"`
	Exception string   `json:"exception,omitempty"`
}

// LoadControls summarizes the controls over the changes deployed in the
// period.
func LoadControls(ctx context.Context, st *store.Store, p Period) (Controls, error) {
	c := Controls{Environment: p.Environment, From: stamp(p.From), To: stamp(p.To), Controls: []ControlCounts{}}
	changes := map[string]bool{}
	if err := EachRow(ctx, st, p, func(r Row) error {
		c.Deployments++
		changes[r.ChangeID] = true
		return nil
	}); err != nil {
		return c, err
	}
	c.Changes = len(changes)
	byID := map[string]*ControlCounts{}
	err := st.ResultsInForce(ctx, p.Environment, p.From.UnixNano(), p.To.UnixNano(), func(r store.ResultInForce) error {
		cc := byID[r.ControlID]
		if cc == nil {
			cc = &ControlCounts{Control: r.ControlID, Failing: []ControlChange{}, Waivers: []ControlChange{}}
			byID[r.ControlID] = cc
		}
		// The newest title and severity the control was judged under.
		cc.Title, cc.Severity = r.ControlTitle, r.Severity
		switch r.Status {
		case "pass":
			cc.Pass++
		case "fail":
			cc.Fail++
			cc.Failing = append(cc.Failing, ControlChange{Change: r.ChangeID, Reasons: r.Reasons})
		case "waived":
			cc.Waived++
			cc.Waivers = append(cc.Waivers, ControlChange{Change: r.ChangeID, Exception: r.ExceptionID})
		case "pending":
			cc.Pending++
		default:
			return fmt.Errorf("control_results: change %s control %s has status %q (want pass, fail, waived or pending)",
				r.ChangeID, r.ControlID, r.Status)
		}
		return nil
	})
	if err != nil {
		return c, err
	}
	for _, cc := range byID {
		cc.Population = c.Changes
		cc.NotEvaluated = c.Changes - cc.Pass - cc.Fail - cc.Waived - cc.Pending
		c.Controls = append(c.Controls, *cc)
	}
	slices.SortFunc(c.Controls, func(a, b ControlCounts) int { return compareControlIDs(a.Control, b.Control) })
	return c, nil
}

// compareControlIDs orders CM-2 before CM-10: by prefix, then number.
func compareControlIDs(a, b string) int {
	pa, na := splitID(a)
	pb, nb := splitID(b)
	if c := strings.Compare(pa, pb); c != 0 {
		return c
	}
	if na != nb {
		return na - nb
	}
	return strings.Compare(a, b)
}

func splitID(id string) (string, int) {
	i := len(id)
	for i > 0 && id[i-1] >= '0' && id[i-1] <= '9' {
		i--
	}
	n := 0
	for _, ch := range id[i:] {
		n = n*10 + int(ch-'0')
		if n > 1e6 {
			break
		}
	}
	return id[:i], n
}

// WriteJSON writes the summary as indented JSON.
func (c Controls) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the summary for people: a table, then the failing
// changes and the waivers of each control.
func (c Controls) WriteText(w io.Writer) error {
	fmt.Fprintf(w, "Controls over the %s deployments from %s to %s (excluded): %d deployments of %d changes\n\n",
		c.Environment, c.From, c.To, c.Deployments, c.Changes)
	if len(c.Controls) == 0 {
		fmt.Fprintln(w, "No control result is stored for these changes.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "control\tpopulation\tpass\tfail\twaived\tpending\tnot evaluated\ttitle")
	for _, cc := range c.Controls {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", cc.Control, cc.Population, cc.Pass, cc.Fail, cc.Waived, cc.Pending,
			cc.NotEvaluated, cc.Title)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, cc := range c.Controls {
		if len(cc.Failing) == 0 && len(cc.Waivers) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s %s\n", cc.Control, cc.Title)
		for _, f := range cc.Failing {
			fmt.Fprintf(w, "  FAIL    %s\n", f.Change)
			for _, r := range f.Reasons {
				fmt.Fprintf(w, "          %s\n", r)
			}
		}
		for _, x := range cc.Waivers {
			fmt.Fprintf(w, "  WAIVED  %s  by exception %s\n", x.Change, x.Exception)
		}
	}
	return nil
}
