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

// Columns are the population's columns, in order (docs/reports.md).
var Columns = []string{
	"row", "deployed_at", "environment", "service", "deployment_key", "deployment_id", "deployer", "outcome",
	"change_id", "unmatched", "repository", "commit", "pr_number", "pr_title", "author", "merged_by", "direct_push",
	"tickets", "verdict_at_deployment", "failing_at_deployment", "pending_at_deployment", "waived_at_deployment",
	"verdict_now", "failing_now", "pending_now", "waived_now", "judged_record_hash", "bundle_hash", "deployed_commit", "run_url",
}

// Cells are the row's values under Columns; lists are joined with " ".
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
	}
}

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
