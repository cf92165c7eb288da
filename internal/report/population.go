package report

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
)

// Verdicts of a population row.
const (
	NotJudged    = "not judged"    // no verdict was decided at deployment (deployment_verdicts has no row)
	NotEvaluated = "not evaluated" // no control result is stored for the change
)

// Period is the population's scope: deployments to Environment whose time
// (start, else finish) is in [From, To).
type Period struct {
	Environment string
	From, To    time.Time
}

// Validate names what is wrong with the period.
func (p Period) Validate() error {
	switch {
	case p.Environment == "":
		return fmt.Errorf("--env is empty")
	case p.From.IsZero() || p.To.IsZero():
		return fmt.Errorf("--from and --to are both required")
	case !p.From.Before(p.To):
		return fmt.Errorf("--from %s is not before --to %s", stamp(p.From), stamp(p.To))
	}
	return nil
}

// Row is one deployment of the population, numbered from 1 in population
// order, with its verdicts as the report shows them.
type Row struct {
	N int
	store.PopulationRow
	// VerdictAtDeployment is Verdict, or NotJudged.
	VerdictAtDeployment string
	// VerdictNow is the verdict of the results in force: fail when a
	// control fails, pending when none fails and one is pending, pass
	// when every control passed or was waived, NotEvaluated when none is
	// stored.
	VerdictNow                        string
	FailingNow, PendingNow, WaivedNow []string
	// Late is the late evidence of the deployment: the controls whose
	// result at deployment evidence that arrived after the decision
	// would change, by control; empty when there is none. The verdict at
	// deployment stands.
	Late []LateChange
}

// LateChange is one control of a deployment's verdict that late evidence
// would change: from its decided status to its status with the late
// evidence.
type LateChange struct {
	Control string `json:"control"`
	Decided string `json:"decided_status"`
	Late    string `json:"late_status"`
}

// String is "CM-1 pending->pass".
func (l LateChange) String() string { return l.Control + " " + l.Decided + "->" + l.Late }

// lateCell is the late_evidence cell: "CM-1 pending->pass; CM-2 fail->pass",
// empty when there is none.
func lateCell(ls []LateChange) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.String()
	}
	return joinSep(parts, "; ")
}

// Key is the row's stable key, which the sample's scores hash:
// <environment>/<service>/<deployment_key>.
func (r Row) Key() string { return r.Environment + "/" + r.Service + "/" + r.DeploymentKey }

func newRow(n int, p store.PopulationRow) Row {
	r := Row{N: n, PopulationRow: p, VerdictAtDeployment: p.Verdict}
	if r.VerdictAtDeployment == "" {
		r.VerdictAtDeployment = NotJudged
	}
	r.FailingNow, r.PendingNow, r.WaivedNow = []string{}, []string{}, []string{}
	for i, c := range p.NowControls {
		switch p.NowStatuses[i] {
		case "fail":
			r.FailingNow = append(r.FailingNow, c)
		case "pending":
			r.PendingNow = append(r.PendingNow, c)
		case "waived":
			r.WaivedNow = append(r.WaivedNow, c)
		}
	}
	switch {
	case len(p.NowControls) == 0:
		r.VerdictNow = NotEvaluated
	case len(r.FailingNow) > 0:
		r.VerdictNow = "fail"
	case len(r.PendingNow) > 0:
		r.VerdictNow = "pending"
	default:
		r.VerdictNow = "pass"
	}
	r.Late = []LateChange{}
	if len(p.LateDecided) == len(p.LateControls) && len(p.LateStatuses) == len(p.LateControls) {
		for i, c := range p.LateControls {
			r.Late = append(r.Late, LateChange{Control: c, Decided: p.LateDecided[i], Late: p.LateStatuses[i]})
		}
	}
	slices.SortFunc(r.Late, func(a, b LateChange) int { return compareControlIDs(a.Control, b.Control) })
	for _, s := range []*[]string{&r.Failing, &r.Pending, &r.Waived, &r.TicketKeys} {
		if *s == nil {
			*s = []string{}
		}
	}
	return r
}

// EachRow calls fn with every row of the population, streaming.
func EachRow(ctx context.Context, st *store.Store, p Period, fn func(Row) error) error {
	if err := p.Validate(); err != nil {
		return err
	}
	n := 0
	return st.Population(ctx, p.Environment, p.From.UnixNano(), p.To.UnixNano(), func(pr store.PopulationRow) error {
		n++
		return fn(newRow(n, pr))
	})
}

// Rows is the whole population in memory (the sample and the package need
// it; the population report streams).
func Rows(ctx context.Context, st *store.Store, p Period, progress func(int)) ([]Row, error) {
	var out []Row
	err := EachRow(ctx, st, p, func(r Row) error {
		out = append(out, r)
		if progress != nil && r.N%1000 == 0 {
			progress(r.N)
		}
		return nil
	})
	return out, err
}

// Columns are the population's columns, in order (docs/reports.md). The
// sample adds rank and score; LateColumn comes after them all.
var Columns = []string{
	"row", "deployed_at", "environment", "service", "deployment_key", "deployment_id", "deployer", "outcome",
	"change_id", "unmatched", "repository", "commit", "pr_number", "pr_title", "author", "merged_by", "direct_push",
	"tickets", "verdict_at_deployment", "failing_at_deployment", "pending_at_deployment", "waived_at_deployment",
	"verdict_now", "failing_now", "pending_now", "waived_now", "judged_record_hash", "bundle_hash", "deployed_commit", "run_url",
}

// LateColumn is the last column of the population and the sample: the
// controls late evidence would change, "CM-1 pending->pass; ..." (added
// after the others, which keep their places).
const LateColumn = "late_evidence"

// Cells are the row's values under Columns; lists are joined with " ".
// The late_evidence cell is LateCell.
func (r Row) Cells() []string {
	return []string{
		fmt.Sprint(r.N), stampNs(r.DeployedNs), r.Environment, r.Service, r.DeploymentKey, r.DeploymentID, r.Deployer, r.Outcome,
		r.ChangeID, yesNo(r.Unmatched), r.Repository, r.Commit, prNumber(r.PRNumber), r.PRTitle, r.Author, r.MergedBy, yesNo(r.DirectPush),
		join(r.TicketKeys), r.VerdictAtDeployment, join(r.Failing), join(r.Pending), join(r.Waived),
		r.VerdictNow, join(r.FailingNow), join(r.PendingNow), join(r.WaivedNow), r.JudgedRecordHash, r.BundleHash, r.DeployedCommit, r.RunURL,
	}
}

// jsonRow is a row as the JSON reports write it.
type jsonRow struct {
	Row                 int      `json:"row"`
	DeployedAt          string   `json:"deployed_at"`
	Environment         string   `json:"environment"`
	Service             string   `json:"service"`
	DeploymentKey       string   `json:"deployment_key"`
	DeploymentID        string   `json:"deployment_id"`
	Deployer            string   `json:"deployer"`
	Outcome             string   `json:"outcome"`
	ChangeID            string   `json:"change_id"`
	Unmatched           bool     `json:"unmatched"`
	Repository          string   `json:"repository"`
	Commit              string   `json:"commit"`
	PRNumber            int64    `json:"pr_number"`
	PRTitle             string   `json:"pr_title"`
	Author              string   `json:"author"`
	MergedBy            string   `json:"merged_by"`
	DirectPush          bool     `json:"direct_push"`
	Tickets             []string `json:"tickets"`
	VerdictAtDeployment string   `json:"verdict_at_deployment"`
	FailingAtDeployment []string `json:"failing_at_deployment"`
	PendingAtDeployment []string `json:"pending_at_deployment"`
	WaivedAtDeployment  []string `json:"waived_at_deployment"`
	VerdictNow          string   `json:"verdict_now"`
	FailingNow          []string `json:"failing_now"`
	PendingNow          []string `json:"pending_now"`
	WaivedNow           []string `json:"waived_now"`
	JudgedRecordHash    string   `json:"judged_record_hash"`
	BundleHash          string   `json:"bundle_hash"`
	DeployedCommit      string   `json:"deployed_commit"`
	RunURL              string   `json:"run_url"`
	// LateEvidence is the late evidence (empty when none); the verdict at
	// deployment stands.
	LateEvidence []LateChange `json:"late_evidence"`
	// Sample only.
	Rank  int    `json:"rank,omitempty"`
	Score string `json:"score,omitempty"`
}

func (r Row) json() jsonRow {
	return jsonRow{
		Row: r.N, DeployedAt: stampNs(r.DeployedNs), Environment: r.Environment, Service: r.Service, DeploymentKey: r.DeploymentKey,
		DeploymentID: r.DeploymentID, Deployer: r.Deployer, Outcome: r.Outcome, ChangeID: r.ChangeID, Unmatched: r.Unmatched,
		Repository: r.Repository, Commit: r.Commit, PRNumber: r.PRNumber, PRTitle: r.PRTitle, Author: r.Author, MergedBy: r.MergedBy,
		DirectPush: r.DirectPush, Tickets: r.TicketKeys, VerdictAtDeployment: r.VerdictAtDeployment,
		FailingAtDeployment: r.Failing, PendingAtDeployment: r.Pending, WaivedAtDeployment: r.Waived,
		VerdictNow: r.VerdictNow, FailingNow: r.FailingNow, PendingNow: r.PendingNow, WaivedNow: r.WaivedNow,
		JudgedRecordHash: r.JudgedRecordHash, BundleHash: r.BundleHash, DeployedCommit: r.DeployedCommit, RunURL: r.RunURL,
		LateEvidence: r.Late,
	}
}

// LateCell is the row's late_evidence cell: "CM-1 pending->pass; CM-2
// fail->pass", by control, or empty.
func (r Row) LateCell() string { return lateCell(r.Late) }

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func stampNs(ns int64) string {
	if ns == 0 {
		return ""
	}
	return stamp(time.Unix(0, ns))
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func prNumber(n int64) string {
	if n == 0 {
		return ""
	}
	return fmt.Sprint(n)
}

func join(ss []string) string {
	return joinSep(ss, " ")
}

func joinSep(ss []string, sep string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += sep
		}
		out += s
	}
	return out
}

// changeIDs are the distinct change ids of rows, sorted.
func changeIDs(rows []Row) []string {
	var ids []string
	seen := map[string]bool{}
	for _, r := range rows {
		if !seen[r.ChangeID] {
			seen[r.ChangeID] = true
			ids = append(ids, r.ChangeID)
		}
	}
	slices.Sort(ids)
	return ids
}
