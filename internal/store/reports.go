package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// The auditor's reads (evidence report, docs/reports.md): the population
// of deployments of a period with their change and verdicts, the control
// results in force, and everything known of one change. They only SELECT,
// so they work as the read-only auditor user.
//
// ClickHouse 18.16 allows one JOIN per SELECT: the population nests its
// joins, one per level, each an ANY LEFT JOIN ... USING over a subquery
// whose columns are renamed where two tables share a name.

// OpenReadOnly connects to the database of the URL without creating it
// (Open creates a missing database, which a read-only user may not do) and
// checks that the server answers and the database exists.
func OpenReadOnly(ctx context.Context, rawURL string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o, err := ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("clickhouse url: %w", err)
	}
	conn, err := open(o, o.Database, nil)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	if err := conn.Ping(ctx); err != nil {
		conn.Close()
		return nil, fmt.Errorf("clickhouse %s (database %s, user %s): %w", o.Addr, o.Database, o.User, err)
	}
	return &Store{conn: conn, database: o.Database, log: log}, nil
}

// PopulationRow is one deployment of the population: the deployment, the
// change it belongs to, the verdict decided at its moment
// (deployment_verdicts) and the results in force now (the newest
// control_results row per control of its change).
type PopulationRow struct {
	DeployedNs     int64 // the deployment's start, its finish when no start is known
	Environment    string
	Service        string
	DeploymentKey  string
	DeploymentID   string
	Deployer       string
	Outcome        string
	RunURL         string
	DeployedCommit string // the commit its events name
	ChangeID       string
	Unmatched      bool
	// The change (changes FINAL); empty when no change row is stored.
	Repository string
	Commit     string
	PRNumber   int64
	PRTitle    string
	Author     string
	MergedBy   string
	TicketKeys []string
	DirectPush bool
	// The verdict at deployment; Verdict is empty when none was decided.
	Verdict          string
	Failing          []string
	Pending          []string
	Waived           []string
	JudgedRecordHash string
	BundleHash       string
	// The results in force now, sorted by control: NowStatuses[i] is the
	// status of control NowControls[i].
	NowControls []string
	NowStatuses []string
	// Late evidence (deployment_late_evidence), sorted by control: the
	// controls whose result evidence that arrived after the decision
	// would change, as last noted, with their decided status and their
	// status with the late evidence. A control last noted back at its
	// decided status is left out. The verdict itself stands.
	LateControls []string
	LateDecided  []string
	LateStatuses []string
}

// deployedNs is a deployment's time in the deployments table, as the
// evaluation stage dates its verdict (deployment_verdicts.deployed_at_ns).
const deployedNs = "if(started_at_ns != 0, started_at_ns, finished_at_ns)"

// periodChanges is the change ids of the deployments to environment ? in
// [?, ?): three parameters.
const periodChanges = "SELECT change_id FROM deployments FINAL WHERE environment = ? AND " +
	deployedNs + " >= ? AND " + deployedNs + " < ?"

// PopulationQuery is the population's SQL; its parameters are environment,
// from and to (Unix nanoseconds, half-open), repeated for each subquery,
// and the environment again for the late evidence (see Population). The
// late evidence of a deployment is the newest row of each of its controls
// (by noted_at_ns) whose status with the late evidence is not the
// decided one.
const PopulationQuery = `SELECT deployed_ns, environment, service, deployment_key, deployment_id, deployer, outcome, run_url,
       deployed_commit, change_id, unmatched, repository, commit, pr_number, pr_title, author, merged_by, ticket_keys,
       direct_push, verdict, failing, pending, waived, judged_record_hash, bundle_hash, now_controls, now_statuses,
       late_controls, late_decided, late_statuses
FROM (
SELECT deployed_ns, environment, service, deployment_key, deployment_id, deployer, outcome, run_url,
       deployed_commit, change_id, unmatched, repository, commit, pr_number, pr_title, author, merged_by, ticket_keys,
       direct_push, verdict, failing, pending, waived, judged_record_hash, bundle_hash, now_controls, now_statuses
FROM (
  SELECT deployed_ns, environment, service, deployment_key, deployment_id, deployer, outcome, run_url, deployed_commit,
         change_id, unmatched, repository, commit, pr_number, pr_title, author, merged_by, ticket_keys, direct_push,
         verdict, failing, pending, waived, judged_record_hash, bundle_hash
  FROM (
    SELECT deployed_ns, environment, service, deployment_key, deployment_id, deployer, outcome, run_url, deployed_commit,
           change_id, unmatched, verdict, failing, pending, waived, judged_record_hash, bundle_hash
    FROM (
      SELECT ` + deployedNs + ` AS deployed_ns, environment, service, deployment_key, deployment_id, deployer, outcome,
             run_url, commit AS deployed_commit, change_id, unmatched
      FROM deployments FINAL
      WHERE environment = ? AND ` + deployedNs + ` >= ? AND ` + deployedNs + ` < ?
    ) ANY LEFT JOIN (
      SELECT environment, service, deployment_key, verdict, failing, pending, waived,
             record_hash AS judged_record_hash, bundle_hash
      FROM deployment_verdicts FINAL
      WHERE environment = ?
    ) USING (environment, service, deployment_key)
  ) ANY LEFT JOIN (
    SELECT change_id, repository, commit, pr_number, pr_title, author, merged_by, ticket_keys, direct_push
    FROM changes FINAL
    WHERE change_id IN (` + periodChanges + `)
  ) USING (change_id)
) ANY LEFT JOIN (
  SELECT change_id, groupArray(control_id) AS now_controls, groupArray(now_status) AS now_statuses
  FROM (
    SELECT change_id, control_id, argMax(status, evaluated_at_ns) AS now_status
    FROM control_results
    WHERE change_id IN (` + periodChanges + `)
    GROUP BY change_id, control_id
  )
  GROUP BY change_id
) USING (change_id)
) ANY LEFT JOIN (
  SELECT environment, service, deployment_key, groupArray(control_id) AS late_controls,
         groupArray(decided_now) AS late_decided, groupArray(late_now) AS late_statuses
  FROM (
    SELECT environment, service, deployment_key, control_id, argMax(decided_status, noted_at_ns) AS decided_now,
           argMax(late_status, noted_at_ns) AS late_now
    FROM deployment_late_evidence
    WHERE environment = ?
    GROUP BY environment, service, deployment_key, control_id
    HAVING late_now != decided_now
  )
  GROUP BY environment, service, deployment_key
) USING (environment, service, deployment_key)
ORDER BY deployed_ns, environment, service, deployment_key`

// reportBlockRows is the block size the population is read in.
const reportBlockRows = 2048

// Population calls fn with every deployment to env whose time (start,
// else finish) is in [fromNs, toNs), in a stable order: by time, then
// environment, service and deployment key. It streams: memory does not
// grow with the population. An error of fn stops it and is returned.
func (s *Store) Population(ctx context.Context, env string, fromNs, toNs int64, fn func(PopulationRow) error) error {
	// Smaller blocks than the default 65,536 rows: the driver holds a
	// block or two decoded, so this bounds the client's memory. A server
	// that refuses a setting to a readonly=1 user (current releases may)
	// is asked again with its defaults.
	args := []any{env, fromNs, toNs, env, env, fromNs, toNs, env, fromNs, toNs, env}
	small := clickhouse.Context(ctx, clickhouse.WithSettings(clickhouse.Settings{"max_block_size": reportBlockRows}))
	rows, err := s.conn.Query(small, PopulationQuery, args...)
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && ex.Code == 164 { // READONLY: cannot modify a setting in readonly mode
		rows, err = s.conn.Query(ctx, PopulationQuery, args...)
	}
	if err != nil {
		return fmt.Errorf("read the population: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r PopulationRow
		var unmatched, direct uint8
		if err := rows.Scan(&r.DeployedNs, &r.Environment, &r.Service, &r.DeploymentKey, &r.DeploymentID, &r.Deployer,
			&r.Outcome, &r.RunURL, &r.DeployedCommit, &r.ChangeID, &unmatched, &r.Repository, &r.Commit, &r.PRNumber,
			&r.PRTitle, &r.Author, &r.MergedBy, &r.TicketKeys, &direct, &r.Verdict, &r.Failing, &r.Pending, &r.Waived,
			&r.JudgedRecordHash, &r.BundleHash, &r.NowControls, &r.NowStatuses, &r.LateControls, &r.LateDecided,
			&r.LateStatuses); err != nil {
			return fmt.Errorf("read the population: %w", err)
		}
		r.Unmatched, r.DirectPush = unmatched == 1, direct == 1
		sortPairs(r.NowControls, r.NowStatuses)
		sortPairs(r.LateControls, r.LateDecided, r.LateStatuses)
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the population: %w", err)
	}
	return nil
}

// sortPairs sorts keys and each of values together by key (groupArray
// keeps no order).
func sortPairs(keys []string, values ...[]string) {
	for _, v := range values {
		if len(v) != len(keys) {
			return
		}
	}
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		if keys[a] < keys[b] {
			return -1
		}
		if keys[a] > keys[b] {
			return 1
		}
		return 0
	})
	k := slices.Clone(keys)
	vs := make([][]string, len(values))
	for j, v := range values {
		vs[j] = slices.Clone(v)
	}
	for i, from := range idx {
		keys[i] = k[from]
		for j := range values {
			values[j][i] = vs[j][from]
		}
	}
}

// ResultInForce is the newest control_results row of one change and
// control.
type ResultInForce struct {
	ChangeID     string
	ControlID    string
	ControlTitle string
	Severity     string
	Status       string
	Reasons      []string
	ExceptionID  string
	EvaluatedNs  int64
}

// ResultsInForce calls fn with the result in force of every control of
// every change deployed to env in [fromNs, toNs) (the changes of
// Population), by control, then change.
func (s *Store) ResultsInForce(ctx context.Context, env string, fromNs, toNs int64, fn func(ResultInForce) error) error {
	q := `SELECT change_id, control_id, argMax(control_title, evaluated_at_ns), argMax(severity, evaluated_at_ns),
       argMax(status, evaluated_at_ns), argMax(reasons, evaluated_at_ns), argMax(exception_id, evaluated_at_ns),
       max(evaluated_at_ns)
FROM control_results
WHERE change_id IN (` + periodChanges + `)
GROUP BY change_id, control_id
ORDER BY control_id, change_id`
	rows, err := s.conn.Query(ctx, q, env, fromNs, toNs)
	if err != nil {
		return fmt.Errorf("read the control results in force: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r ResultInForce
		if err := rows.Scan(&r.ChangeID, &r.ControlID, &r.ControlTitle, &r.Severity, &r.Status, &r.Reasons,
			&r.ExceptionID, &r.EvaluatedNs); err != nil {
			return fmt.Errorf("read the control results in force: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the control results in force: %w", err)
	}
	return nil
}

// ControlResultsOf is every control_results row of the change, oldest
// first (then by control).
func (s *Store) ControlResultsOf(ctx context.Context, changeID string) ([]ControlResultRow, error) {
	q := "SELECT change_id, control_id, control_title, severity, status, reasons, evidence, exception_id, deadline_ns, " +
		"repository, environments, services, record_hash, bundle_hash, trigger, evaluated_at_ns " +
		"FROM control_results WHERE change_id = ? ORDER BY evaluated_at_ns, control_id"
	rows, err := s.conn.Query(ctx, q, changeID)
	if err != nil {
		return nil, fmt.Errorf("read the control results of %s: %w", changeID, err)
	}
	defer rows.Close()
	var out []ControlResultRow
	for rows.Next() {
		var r ControlResultRow
		if err := rows.Scan(&r.ChangeID, &r.ControlID, &r.ControlTitle, &r.Severity, &r.Status, &r.Reasons, &r.Evidence,
			&r.ExceptionID, &r.DeadlineNs, &r.Repository, &r.Environments, &r.Services, &r.RecordHash, &r.BundleHash,
			&r.Trigger, &r.EvaluatedNs); err != nil {
			return nil, fmt.Errorf("read the control results of %s: %w", changeID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the control results of %s: %w", changeID, err)
	}
	return out, nil
}

// DeploymentVerdictsOf is the verdict of every deployment judged under the
// change, by deployment time (then environment, service and key).
func (s *Store) DeploymentVerdictsOf(ctx context.Context, changeID string) ([]DeploymentVerdictRow, error) {
	q := "SELECT environment, service, deployment_key, deployment_id, change_id, repository, commit, deployer, " +
		"deployed_at_ns, verdict, failing, pending, waived, results, record_hash, bundle_hash, decided_at " +
		"FROM deployment_verdicts FINAL WHERE change_id = ? ORDER BY deployed_at_ns, environment, service, deployment_key"
	rows, err := s.conn.Query(ctx, q, changeID)
	if err != nil {
		return nil, fmt.Errorf("read the deployment verdicts of %s: %w", changeID, err)
	}
	defer rows.Close()
	var out []DeploymentVerdictRow
	for rows.Next() {
		var r DeploymentVerdictRow
		if err := rows.Scan(&r.Environment, &r.Service, &r.DeploymentKey, &r.DeploymentID, &r.ChangeID, &r.Repository,
			&r.Commit, &r.Deployer, &r.DeployedNs, &r.Verdict, &r.Failing, &r.Pending, &r.Waived, &r.Results,
			&r.RecordHash, &r.BundleHash, &r.DecidedAt); err != nil {
			return nil, fmt.Errorf("read the deployment verdicts of %s: %w", changeID, err)
		}
		r.DecidedAt = r.DecidedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the deployment verdicts of %s: %w", changeID, err)
	}
	return out, nil
}

// LateEvidenceOf is every deployment_late_evidence row of the
// deployments whose verdict was decided under the change (their
// deployment_verdicts row names it), by deployment (environment, service,
// key), then oldest first, then by control. Rows stored twice (the table
// is at-least-once) are read once.
func (s *Store) LateEvidenceOf(ctx context.Context, changeID string) ([]LateEvidenceRow, error) {
	q := "SELECT DISTINCT environment, service, deployment_key, change_id, control_id, decided_status, late_status, " +
		"late_reasons, late_events, arrived_by_ns, record_hash, bundle_hash, noted_at_ns " +
		"FROM deployment_late_evidence WHERE (environment, service, deployment_key) IN " +
		"(SELECT environment, service, deployment_key FROM deployment_verdicts FINAL WHERE change_id = ?) " +
		"ORDER BY environment, service, deployment_key, noted_at_ns, control_id"
	rows, err := s.conn.Query(ctx, q, changeID)
	if err != nil {
		return nil, fmt.Errorf("read the late evidence of %s: %w", changeID, err)
	}
	defer rows.Close()
	var out []LateEvidenceRow
	for rows.Next() {
		var r LateEvidenceRow
		if err := rows.Scan(&r.Environment, &r.Service, &r.DeploymentKey, &r.ChangeID, &r.ControlID, &r.DecidedStatus,
			&r.LateStatus, &r.LateReasons, &r.LateEvents, &r.ArrivedByNs, &r.RecordHash, &r.BundleHash, &r.NotedNs); err != nil {
			return nil, fmt.Errorf("read the late evidence of %s: %w", changeID, err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the late evidence of %s: %w", changeID, err)
	}
	return out, nil
}

// EventKey names an archived event: its source and id.
type EventKey struct{ Source, ID string }

// EventsByKey is every archived row of the given events, in stream order
// (an event stored twice gives two rows). The events table is ordered by
// stream_seq, so this reads the columns event_id and source in full and
// the rest of the matching rows only.
func (s *Store) EventsByKey(ctx context.Context, keys []EventKey) ([]EventRow, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	want := make(map[EventKey]bool, len(keys))
	ids := clickhouse.GroupSet{}
	seen := map[string]bool{}
	for _, k := range keys {
		want[k] = true
		if !seen[k.ID] {
			seen[k.ID] = true
			ids.Value = append(ids.Value, k.ID)
		}
	}
	q := "SELECT " + EventColumns + " FROM events WHERE event_id IN ? ORDER BY stream_seq"
	rows, err := s.conn.Query(ctx, q, ids)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	var out []EventRow
	for rows.Next() {
		var r EventRow
		var et, ra time.Time
		var b64 uint8
		var data string
		if err := rows.Scan(&r.StreamSeq, &r.EventID, &r.Source, &r.Type, &r.Subject, &et, &r.EventTimeNs, &ra, &r.ReceivedNs,
			&r.DataContentType, &r.DataSchema, &r.Extensions, &data, &b64, &r.PrevHash, &r.Hash); err != nil {
			return nil, fmt.Errorf("read events: %w", err)
		}
		if !want[EventKey{r.Source, r.EventID}] {
			continue
		}
		r.Data, r.DataBase64 = []byte(data), b64 == 1
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	return out, nil
}
