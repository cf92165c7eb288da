package live

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// errNoStore: ClickHouse is not connected (yet, or any more).
var errNoStore = errors.New("ClickHouse is not connected")

// Window is the production deployments of one period and their verdicts
// at the moment of deployment (deployment_verdicts).
type Window struct {
	Label       string `json:"label"`
	Deployments int    `json:"deployments"`
	Passing     int    `json:"passing"`
	Failing     int    `json:"failing"`
	Pending     int    `json:"pending"`
	// Share is the percentage of deployments that passed every control;
	// -1 when there were none.
	Share float64 `json:"share"`
}

// ShareText is Share for people ("–" when there were no deployments).
func (w Window) ShareText() string {
	if w.Share < 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", w.Share)
}

// ControlState is a control's current result on a change: its newest row
// in control_results.
type ControlState struct {
	Change      string    `json:"change"`
	Repository  string    `json:"repository"`
	Control     string    `json:"control"`
	Title       string    `json:"title"`
	Severity    string    `json:"severity"`
	Status      string    `json:"status"`
	Reasons     []string  `json:"reasons"`
	Exception   string    `json:"exception,omitempty"`
	Deadline    time.Time `json:"deadline,omitzero"`
	EvaluatedAt time.Time `json:"evaluated_at"`
}

// Posture is the summary at the top of the page.
type Posture struct {
	// Available is false when ClickHouse could not be read; Error says why.
	Available bool     `json:"available"`
	Error     string   `json:"error,omitempty"`
	Windows   []Window `json:"windows"`
	// OpenViolations counts the controls failing now, over FailingChanges
	// changes; Violations lists the newest of them.
	OpenViolations int            `json:"open_violations"`
	FailingChanges int            `json:"failing_changes"`
	Violations     []ControlState `json:"violations"`
	// PendingControls counts the controls pending now; Pending lists them
	// by deadline, soonest first.
	PendingControls int            `json:"pending_controls"`
	Pending         []ControlState `json:"pending"`
	// The access findings (docs/access.md), apart from the changes'
	// violations above: AccessFindings counts the access controls (AC-1..
	// AC-4, judged per production repository per quarter, subject
	// access:<repository>@<YYYY>-Qn) failing now, over AccessSubjects
	// repository quarters; AccessPending the pending ones. Access lists
	// the failing ones, newest first, then the pending ones by deadline
	// (up to 25 in all). None of them counts among the open violations,
	// the pending controls or the deployments' posture.
	AccessFindings int            `json:"access_findings"`
	AccessSubjects int            `json:"access_subjects"`
	AccessPending  int            `json:"access_pending"`
	Access         []ControlState `json:"access"`
	// Unmatched counts the production deployments that match no change
	// (CM-8) as they stand now.
	Unmatched int `json:"unmatched_deployments"`
	// LateVerdicts counts the production deployments whose decided verdict
	// has late evidence that would change it (deployment_late_evidence:
	// the newest note of a control differs from its decided status); Late
	// lists the most recently noted of them. The verdicts stand.
	LateVerdicts int           `json:"late_verdicts"`
	Late         []LateVerdict `json:"late"`
	AsOf         time.Time     `json:"as_of"`
	// Attention is read with the summary (/live/api/attention gives it,
	// with the times left counted when asked).
	Attention Attention `json:"-"`
}

// LateVerdict is a decided deployment verdict and the late evidence that
// would change it, as last noted.
type LateVerdict struct {
	Environment   string    `json:"environment"`
	Service       string    `json:"service"`
	DeploymentKey string    `json:"deployment_key"`
	Change        string    `json:"change"`
	Verdict       string    `json:"verdict"` // as decided (deployment_verdicts); it stands
	DeployedAt    time.Time `json:"deployed_at,omitzero"`
	Controls      []string  `json:"controls"` // sorted
	Decided       []string  `json:"decided"`  // each control's decided status
	LateStatus    []string  `json:"late_status"`
	// Events counts the record's events that arrived after the verdict's
	// cutoff, as of the newest note.
	Events  int       `json:"events"`
	NotedAt time.Time `json:"noted_at"`
}

// Changes is the controls as "CM-1 pending→pass", one per control.
func (l LateVerdict) Changes() []string {
	out := make([]string, len(l.Controls))
	for i, c := range l.Controls {
		out[i] = c + " " + l.Decided[i] + "→" + l.LateStatus[i]
	}
	return out
}

// lateVerdicts is one row per deployment with late evidence that would
// change its verdict: the newest note of each control (by noted_at_ns)
// whose late status is not the decided one, with the decided verdict.
// Aliases differ from the column names (ClickHouse would read an alias
// inside its own aggregate).
const lateVerdicts = `SELECT environment, service, deployment_key, ch, ctrls, dec, lat, nev, noted, verdict, deployed_at_ns
FROM (
  SELECT environment, service, deployment_key, argMax(change, noted_c) AS ch,
         groupArray(control_id) AS ctrls, groupArray(decided_now) AS dec, groupArray(late_now) AS lat,
         argMax(events_now, noted_c) AS nev, max(noted_c) AS noted
  FROM (
    SELECT environment, service, deployment_key, control_id, argMax(change_id, noted_at_ns) AS change,
           argMax(decided_status, noted_at_ns) AS decided_now, argMax(late_status, noted_at_ns) AS late_now,
           argMax(length(late_events), noted_at_ns) AS events_now, max(noted_at_ns) AS noted_c
    FROM deployment_late_evidence
    GROUP BY environment, service, deployment_key, control_id
    HAVING late_now != decided_now
  )
  GROUP BY environment, service, deployment_key
) ANY LEFT JOIN (
  SELECT environment, service, deployment_key, verdict, deployed_at_ns
  FROM deployment_verdicts FINAL
) USING (environment, service, deployment_key)`

// retiredChanges are the ids of the retired change records (an unmatched
// deployment since linked to its change, a push since found to be a
// merge), whose results no longer stand: the FINAL read is limited, by the
// primary key, to the records that ever had a retired version.
const retiredChanges = `SELECT change_id FROM changes FINAL
WHERE change_id IN (SELECT change_id FROM changes WHERE retired = 1) AND retired = 1`

// latestResults is the newest control_results row of every change and
// control, leaving out retired change records. Aliases differ from the
// column names: ClickHouse would otherwise read an alias inside its own
// aggregate. Callers narrow it with " AND <condition on change_id>" (by
// the primary key: change_id IN (SELECT arrayJoin(?)), not has(), which
// reads the whole table) before grouping.
const latestResults = `SELECT change_id, control_id,
	argMax(status, evaluated_at_ns) AS st,
	argMax(control_title, evaluated_at_ns) AS title,
	argMax(severity, evaluated_at_ns) AS sev,
	argMax(reasons, evaluated_at_ns) AS rs,
	argMax(exception_id, evaluated_at_ns) AS exc,
	argMax(deadline_ns, evaluated_at_ns) AS dl,
	argMax(repository, evaluated_at_ns) AS repo,
	max(evaluated_at_ns) AS at
FROM control_results
WHERE change_id NOT IN (` + retiredChanges + `)`

// openResults is the newest status, deadline, time and exception of every
// change and control that has a fail, pending or waived row (the caller
// keeps those whose newest row is one). Only a change and control with
// such a row can have one as its newest, so the grouping reads only those
// (exact, and a small part of the history: most results pass).
const openResults = `SELECT change_id, control_id, argMax(status, evaluated_at_ns) AS st, argMax(deadline_ns, evaluated_at_ns) AS dl,
	max(evaluated_at_ns) AS at, argMax(exception_id, evaluated_at_ns) AS exc
FROM control_results
WHERE (change_id, control_id) IN (SELECT change_id, control_id FROM control_results WHERE status IN ('fail', 'pending', 'waived'))
  AND change_id NOT IN (` + retiredChanges + `)
GROUP BY change_id, control_id`

const stateColumns = "change_id, control_id, st, title, sev, rs, exc, dl, repo, at"

// readPostureNow reads the summary from ClickHouse.
func (h *Handler) readPostureNow(ctx context.Context) Posture {
	now := h.cfg.Now()
	p := Posture{AsOf: now.UTC()}
	st := h.cfg.Store()
	if st == nil {
		p.Error = errNoStore.Error()
		return p
	}
	if err := h.readPosture(ctx, st, now, &p); err != nil {
		p.Error = err.Error()
		return p
	}
	p.Available = true
	return p
}

func (h *Handler) readPosture(ctx context.Context, st *store.Store, now time.Time, p *Posture) error {
	conn := st.Conn()
	windows := []struct {
		label string
		d     time.Duration
	}{{"24 h", 24 * time.Hour}, {"7 d", 7 * 24 * time.Hour}}
	for _, win := range windows {
		from := now.Add(-win.d).UnixNano()
		var total, pass, fail, pend uint64
		row := conn.QueryRow(ctx, `SELECT count(), countIf(verdict = 'pass'), countIf(verdict = 'fail'), countIf(verdict = 'pending')
FROM deployment_verdicts FINAL WHERE deployed_at_ns >= ? AND deployed_at_ns <= ?`, from, now.UnixNano())
		if err := row.Scan(&total, &pass, &fail, &pend); err != nil {
			return fmt.Errorf("read deployment_verdicts: %w", err)
		}
		w := Window{Label: win.label, Deployments: int(total), Passing: int(pass), Failing: int(fail), Pending: int(pend), Share: -1}
		if total > 0 {
			w.Share = 100 * float64(pass) / float64(total)
		}
		p.Windows = append(p.Windows, w)
	}

	if err := h.readOpen(ctx, st, now, p); err != nil {
		return err
	}

	if err := h.readLate(ctx, st, p); err != nil {
		return err
	}

	p.Unmatched = p.Attention.UnmatchedTotal
	return nil
}

// AccessPrefix starts the subject of the access controls' results
// (evaluate.AccessSubject): a repository's quarter, not a change.
const AccessPrefix = "access:"

// openKey is a change and control whose newest result is fail or pending.
type openKey struct {
	change, control, status, exception string
	deadline, at                       int64
}

// readOpen counts the open violations (and their changes) and the pending
// controls, and reads the 12 newest violations and the 25 pending controls
// with the soonest deadlines: one grouping over the changes and controls
// that have a fail or pending row (openResults), the counts and the order
// worked out here, then the details of the listed ones alone, read by the
// primary key.
func (h *Handler) readOpen(ctx context.Context, st *store.Store, now time.Time, p *Posture) error {
	rows, err := st.Conn().Query(ctx, openResults)
	if err != nil {
		return fmt.Errorf("read control_results: %w", err)
	}
	defer rows.Close()
	var fails, pend, waived, accFails, accPend []openKey
	failing, accFailing := map[string]bool{}, map[string]bool{}
	for rows.Next() {
		var k openKey
		if err := rows.Scan(&k.change, &k.control, &k.status, &k.deadline, &k.at, &k.exception); err != nil {
			return fmt.Errorf("read control_results: %w", err)
		}
		if strings.HasPrefix(k.change, AccessPrefix) {
			switch k.status {
			case "fail":
				accFails = append(accFails, k)
				accFailing[k.change] = true
			case "pending":
				accPend = append(accPend, k)
			}
			continue
		}
		switch k.status {
		case "fail":
			fails = append(fails, k)
			failing[k.change] = true
		case "pending":
			pend = append(pend, k)
		case "waived":
			waived = append(waived, k)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read control_results: %w", err)
	}
	p.OpenViolations, p.FailingChanges, p.PendingControls = len(fails), len(failing), len(pend)
	p.AccessFindings, p.AccessSubjects, p.AccessPending = len(accFails), len(accFailing), len(accPend)
	newestFirst := func(a, b openKey) int {
		if a.at != b.at {
			return cmp.Compare(b.at, a.at)
		}
		return cmp.Or(strings.Compare(a.change, b.change), strings.Compare(a.control, b.control))
	}
	soonestFirst := func(a, b openKey) int {
		if a.deadline != b.deadline {
			return cmp.Compare(a.deadline, b.deadline)
		}
		return cmp.Or(strings.Compare(a.change, b.change), strings.Compare(a.control, b.control))
	}
	slices.SortFunc(fails, newestFirst)
	slices.SortFunc(pend, soonestFirst)
	slices.SortFunc(accFails, newestFirst)
	slices.SortFunc(accPend, soonestFirst)
	acc := append(accFails[:min(len(accFails), 25):min(len(accFails), 25)], accPend[:min(len(accPend), max(0, 25-len(accFails)))]...)
	if p.Access, err = h.detailsOf(ctx, st, acc); err != nil {
		return err
	}
	if p.Violations, err = h.detailsOf(ctx, st, fails[:min(len(fails), 12)]); err != nil {
		return err
	}
	if p.Pending, err = h.detailsOf(ctx, st, pend[:min(len(pend), 25)]); err != nil {
		return err
	}
	if err := h.readAttention(ctx, st, pend, waived, now, &p.Attention); err != nil {
		return err
	}
	p.Attention.Available = true
	return nil
}

// detailsOf reads the current results of keys, in their order.
func (h *Handler) detailsOf(ctx context.Context, st *store.Store, keys []openKey) ([]ControlState, error) {
	out := []ControlState{}
	if len(keys) == 0 {
		return out, nil
	}
	var ids []string
	for _, k := range keys {
		if !slices.Contains(ids, k.change) {
			ids = append(ids, k.change)
		}
	}
	states, err := h.statesOf(ctx, st, inIDs, "change_id, control_id", 1000*len(ids), ids)
	if err != nil {
		return nil, err
	}
	byKey := map[[2]string]ControlState{}
	for _, s := range states {
		byKey[[2]string{s.Change, s.Control}] = s
	}
	for _, k := range keys {
		if s, ok := byKey[[2]string{k.change, k.control}]; ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// inIDs selects the changes of an []string argument by the primary key
// (has(?, change_id) would read every row; IN ? with a slice fails on
// ClickHouse 18.16).
const inIDs = "change_id IN (SELECT arrayJoin(?))"

// readLate reads the verdicts with late evidence: their count and the 12
// most recently noted.
func (h *Handler) readLate(ctx context.Context, st *store.Store, p *Posture) error {
	rows, err := st.Conn().Query(ctx, lateVerdicts+" ORDER BY noted DESC, environment, service, deployment_key")
	if err != nil {
		return fmt.Errorf("read deployment_late_evidence: %w", err)
	}
	defer rows.Close()
	p.Late = []LateVerdict{}
	for rows.Next() {
		var l LateVerdict
		var nev uint64
		var noted, deployed int64
		if err := rows.Scan(&l.Environment, &l.Service, &l.DeploymentKey, &l.Change, &l.Controls, &l.Decided, &l.LateStatus,
			&nev, &noted, &l.Verdict, &deployed); err != nil {
			return fmt.Errorf("read deployment_late_evidence: %w", err)
		}
		if !h.isProduction(l.Environment) {
			continue
		}
		p.LateVerdicts++
		if len(p.Late) == 12 {
			continue
		}
		sortLate(&l)
		l.Events, l.NotedAt = int(nev), time.Unix(0, noted).UTC()
		if deployed > 0 {
			l.DeployedAt = time.Unix(0, deployed).UTC()
		}
		p.Late = append(p.Late, l)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read deployment_late_evidence: %w", err)
	}
	return nil
}

// sortLate orders a late verdict's controls by id (groupArray keeps the
// order rows reach it in, which the server does not promise).
func sortLate(l *LateVerdict) {
	idx := make([]int, len(l.Controls))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return strings.Compare(l.Controls[a], l.Controls[b]) })
	c, d, s := make([]string, len(idx)), make([]string, len(idx)), make([]string, len(idx))
	for i, j := range idx {
		c[i], d[i], s[i] = l.Controls[j], l.Decided[j], l.LateStatus[j]
	}
	l.Controls, l.Decided, l.LateStatus = c, d, s
}

// statesOf is the current results of the changes that changeWhere (over control_results'
// columns, change_id alone) selects: the filter is applied before the
// grouping, so only those changes' rows are read (a change's rows are all
// in or all out, so the newest row per control is the same).
func (h *Handler) statesOf(ctx context.Context, st *store.Store, changeWhere, order string, limit int, args ...any) ([]ControlState, error) {
	q := "SELECT " + stateColumns + " FROM (" + latestResults + " AND " + changeWhere + " GROUP BY change_id, control_id)" +
		" ORDER BY " + order + fmt.Sprintf(" LIMIT %d", limit)
	return h.readStates(ctx, st, q, args...)
}

func (h *Handler) readStates(ctx context.Context, st *store.Store, q string, args ...any) ([]ControlState, error) {
	rows, err := st.Conn().Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read control_results: %w", err)
	}
	defer rows.Close()
	out := []ControlState{}
	for rows.Next() {
		var s ControlState
		var dl, at int64
		if err := rows.Scan(&s.Change, &s.Control, &s.Status, &s.Title, &s.Severity, &s.Reasons, &s.Exception, &dl, &s.Repository, &at); err != nil {
			return nil, fmt.Errorf("read control_results: %w", err)
		}
		if dl > 0 {
			s.Deadline = time.Unix(0, dl).UTC()
		}
		s.EvaluatedAt = time.Unix(0, at).UTC()
		out = append(out, s)
	}
	return out, rows.Err()
}

// ChangeRow is one change in the list.
type ChangeRow struct {
	ID           string    `json:"id"`
	Repository   string    `json:"repository"`
	PR           int64     `json:"pr,omitempty"`
	Title        string    `json:"title"`
	Author       string    `json:"author"`
	Commit       string    `json:"commit"`
	Tickets      []string  `json:"tickets"`
	Environments []string  `json:"environments"`
	Services     []string  `json:"services"`
	DirectPush   bool      `json:"direct_push"`
	Unmatched    bool      `json:"unmatched"`
	At           time.Time `json:"at"`
	// Status is the overall current verdict: fail, pending, pass, or empty
	// when the change has not been evaluated.
	Status  string   `json:"status"`
	Failing []string `json:"failing"`
}

// Filter narrows the list of changes; every field set must hold.
type Filter struct {
	// Q: the id, repository, title, author, commit or ticket keys contain
	// it (any case).
	Q string
	// Service: the change deployed (or is to deploy) this service.
	Service string
	// Team: one of its services belongs to the team (service_teams, or
	// the repository's owner for a service with no row there).
	Team string
	// Control: the control fails on the change now.
	Control string
}

// Query is the filter as the list's address query.
func (f Filter) Query() string {
	v := url.Values{}
	for k, s := range map[string]string{"q": f.Q, "service": f.Service, "team": f.Team, "control": f.Control} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v.Encode()
}

// Text describes the filter for people ("" when empty).
func (f Filter) Text() string {
	var parts []string
	if f.Q != "" {
		parts = append(parts, "matching “"+f.Q+"”")
	}
	if f.Service != "" {
		parts = append(parts, "of service "+f.Service)
	}
	if f.Team != "" {
		parts = append(parts, "of team "+f.Team)
	}
	if f.Control != "" {
		parts = append(parts, "failing "+f.Control)
	}
	return strings.Join(parts, ", ")
}

// searchChanges lists the newest live change records the filter holds for,
// newest first.
func (h *Handler) searchChanges(ctx context.Context, f Filter, limit int) ([]ChangeRow, error) {
	st := h.cfg.Store()
	if st == nil {
		return nil, errNoStore
	}
	sql := `SELECT change_id, repository, pr_number, pr_title, author, commit, ticket_keys, environments, services,
	direct_push, unmatched, greatest(merged_at_ns, last_deployed_at_ns) AS at
FROM changes FINAL WHERE retired = 0`
	var args []any
	if q := strings.ToLower(strings.TrimSpace(f.Q)); q != "" {
		sql += ` AND position(lower(concat(change_id, ' ', repository, ' ', pr_title, ' ', author, ' ', commit, ' ', arrayStringConcat(ticket_keys, ' '))), ?) > 0`
		args = append(args, q)
	}
	if f.Service != "" {
		sql += ` AND has(services, ?)`
		args = append(args, f.Service)
	}
	if f.Team != "" {
		owned, mapped, err := teamServices(ctx, st, f.Team)
		if err != nil {
			return nil, err
		}
		// A service mapped to the team, or an unmapped one of a repository
		// the team owns (its second path segment).
		sql += ` AND (hasAny(services, ?) OR (splitByChar('/', repository)[2] = ? AND NOT hasAny(services, ?)))`
		args = append(args, owned, f.Team, mapped)
	}
	if f.Control != "" {
		// Only a change with a failing row of the control can fail it
		// now: the grouping reads those changes' rows of it alone.
		sql += ` AND change_id IN (SELECT change_id FROM (SELECT change_id, argMax(status, evaluated_at_ns) AS st FROM control_results
  WHERE control_id = ? AND change_id IN (SELECT change_id FROM control_results WHERE control_id = ? AND status = 'fail')
  GROUP BY change_id) WHERE st = 'fail')`
		args = append(args, f.Control, f.Control)
	}
	sql += fmt.Sprintf(" ORDER BY at DESC, change_id LIMIT %d", limit)
	rows, err := st.Conn().Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	var out []ChangeRow
	for rows.Next() {
		var c ChangeRow
		var direct, unmatched uint8
		var at int64
		if err := rows.Scan(&c.ID, &c.Repository, &c.PR, &c.Title, &c.Author, &c.Commit, &c.Tickets, &c.Environments, &c.Services, &direct, &unmatched, &at); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		c.DirectPush, c.Unmatched = direct == 1, unmatched == 1
		if at > 0 {
			c.At = time.Unix(0, at).UTC()
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, len(out))
	for i, c := range out {
		ids[i] = c.ID
	}
	states, err := h.statesOf(ctx, st, inIDs, "change_id, control_id", 100*len(ids), ids)
	if err != nil {
		return nil, err
	}
	byChange := map[string][]ControlState{}
	for _, s := range states {
		byChange[s.Change] = append(byChange[s.Change], s)
	}
	for i := range out {
		out[i].Status, out[i].Failing = overall(byChange[out[i].ID])
	}
	return out, nil
}

// overall is the verdict of a change's current results: fail when one
// fails, pending when one is pending, pass otherwise; empty when none.
func overall(ss []ControlState) (string, []string) {
	if len(ss) == 0 {
		return "", nil
	}
	status := "pass"
	failing := []string{}
	for _, s := range ss {
		switch s.Status {
		case "fail":
			status = "fail"
			failing = append(failing, s.Control)
		case "pending":
			if status != "fail" {
				status = "pending"
			}
		}
	}
	slices.Sort(failing)
	return status, failing
}

// DeploymentVerdict is a row of deployment_verdicts.
type DeploymentVerdict struct {
	Environment   string    `json:"environment"`
	Service       string    `json:"service"`
	DeploymentKey string    `json:"deployment_key"`
	Deployer      string    `json:"deployer"`
	DeployedAt    time.Time `json:"deployed_at"`
	Verdict       string    `json:"verdict"`
	Failing       []string  `json:"failing"`
	Pending       []string  `json:"pending"`
	Waived        []string  `json:"waived"`
}

// controlsOf is the current result of every control on one change.
func (h *Handler) controlsOf(ctx context.Context, st *store.Store, id string) ([]ControlState, error) {
	return h.statesOf(ctx, st, "change_id = ?", "control_id", 1000, id)
}

// verdictsOf is the verdict at each production deployment of one change.
func (h *Handler) verdictsOf(ctx context.Context, st *store.Store, id string) ([]DeploymentVerdict, error) {
	rows, err := st.Conn().Query(ctx, `SELECT environment, service, deployment_key, deployer, deployed_at_ns, verdict, failing, pending, waived
FROM deployment_verdicts FINAL WHERE change_id = ? ORDER BY deployed_at_ns, environment, service, deployment_key`, id)
	if err != nil {
		return nil, fmt.Errorf("read deployment_verdicts: %w", err)
	}
	defer rows.Close()
	var out []DeploymentVerdict
	for rows.Next() {
		var v DeploymentVerdict
		var at int64
		if err := rows.Scan(&v.Environment, &v.Service, &v.DeploymentKey, &v.Deployer, &at, &v.Verdict, &v.Failing, &v.Pending, &v.Waived); err != nil {
			return nil, fmt.Errorf("read deployment_verdicts: %w", err)
		}
		v.DeployedAt = time.Unix(0, at).UTC()
		out = append(out, v)
	}
	return out, rows.Err()
}

// recordFromStore reads a change record from ClickHouse (when the live
// state has none, or no live state is configured).
func recordFromStore(ctx context.Context, st *store.Store, id string) (correlate.Record, bool, error) {
	var raw string
	rows, err := st.Conn().Query(ctx, "SELECT record FROM changes FINAL WHERE change_id = ?", id)
	if err != nil {
		return correlate.Record{}, false, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	if !rows.Next() {
		return correlate.Record{}, false, rows.Err()
	}
	if err := rows.Scan(&raw); err != nil {
		return correlate.Record{}, false, fmt.Errorf("read changes: %w", err)
	}
	var rec correlate.Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return correlate.Record{}, false, fmt.Errorf("change %s in ClickHouse: %w", id, err)
	}
	return rec, true, nil
}

// teamServices reads service_teams: the services mapped to team, and every
// mapped service.
func teamServices(ctx context.Context, st *store.Store, team string) (owned, mapped []string, err error) {
	rows, err := st.Conn().Query(ctx, "SELECT service, team FROM service_teams FINAL")
	if err != nil {
		return nil, nil, fmt.Errorf("read service_teams: %w", err)
	}
	defer rows.Close()
	owned, mapped = []string{}, []string{}
	for rows.Next() {
		var s, t string
		if err := rows.Scan(&s, &t); err != nil {
			return nil, nil, fmt.Errorf("read service_teams: %w", err)
		}
		mapped = append(mapped, s)
		if t == team {
			owned = append(owned, s)
		}
	}
	return owned, mapped, rows.Err()
}

// ownerOf is a repository's owner, its second path segment
// (github.com/acme/payments: acme); "" when it has none.
func ownerOf(repo string) string {
	parts := strings.Split(repo, "/")
	if len(parts) < 2 {
		return ""
	}
	return parts[1]
}
