package store

import (
	"context"
	"fmt"
	"time"
)

// The control_results and deployment_verdicts tables
// (schemas/clickhouse/0003_controls.sql): what the evaluation stage
// decided. control_results is append-only; deployment_verdicts holds one
// verdict per production deployment, decided once.

// ControlResultRow is one control's verdict on one change (control_results).
// Times are Unix nanoseconds; the DateTime columns are written from them.
type ControlResultRow struct {
	ChangeID     string
	ControlID    string
	ControlTitle string
	Severity     string
	Status       string // pass, fail, pending, waived
	Reasons      []string
	Evidence     []string // "<source> <id>"
	ExceptionID  string
	DeadlineNs   int64 // 0 when none
	Repository   string
	Environments []string
	Services     []string
	RecordHash   string
	BundleHash   string
	Trigger      string // update, deadline, bundle
	EvaluatedNs  int64
}

// ControlResultColumns are control_results' columns, in the order
// InsertControlResults writes them.
const ControlResultColumns = "change_id, control_id, control_title, severity, status, reasons, evidence, exception_id, " +
	"deadline, deadline_ns, repository, environments, services, record_hash, bundle_hash, trigger, evaluated_at, evaluated_at_ns"

// InsertControlResults appends rows to control_results as one INSERT.
func (s *Store) InsertControlResults(ctx context.Context, rows []ControlResultRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO control_results ("+ControlResultColumns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into control_results: %w", err)
	}
	defer b.Close()
	n := len(rows)
	var (
		change, control, title, sev, status = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		reasons, evidence, envs, svcs       = make([][]string, n), make([][]string, n), make([][]string, n), make([][]string, n)
		exc, repo, rhash, bhash, trig       = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		deadline, evaluated                 = make([]time.Time, n), make([]time.Time, n)
		deadlineNs, evaluatedNs             = make([]int64, n), make([]int64, n)
	)
	for i, r := range rows {
		change[i], control[i], title[i], sev[i], status[i] = r.ChangeID, r.ControlID, r.ControlTitle, r.Severity, r.Status
		reasons[i], evidence[i], exc[i] = strs(r.Reasons), strs(r.Evidence), r.ExceptionID
		deadline[i], deadlineNs[i] = dateTime(r.DeadlineNs), r.DeadlineNs
		repo[i], envs[i], svcs[i] = r.Repository, strs(r.Environments), strs(r.Services)
		rhash[i], bhash[i], trig[i] = r.RecordHash, r.BundleHash, r.Trigger
		evaluated[i], evaluatedNs[i] = dateTime(r.EvaluatedNs), r.EvaluatedNs
	}
	cols := []any{change, control, title, sev, status, reasons, evidence, exc, deadline, deadlineNs,
		repo, envs, svcs, rhash, bhash, trig, evaluated, evaluatedNs}
	if err := appendColumns(b, "control_results", cols); err != nil {
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into control_results: %w", n, err)
	}
	return nil
}

// DeploymentVerdictRow is the verdict in force at the moment of one
// production deployment (deployment_verdicts).
type DeploymentVerdictRow struct {
	Environment   string
	Service       string
	DeploymentKey string
	DeploymentID  string
	ChangeID      string
	Repository    string
	Commit        string
	Deployer      string
	DeployedNs    int64
	Verdict       string // pass, fail, pending
	Failing       []string
	Pending       []string
	Waived        []string
	Results       string // JSON
	RecordHash    string
	BundleHash    string
	DecidedAt     time.Time
}

// DeploymentVerdictColumns are deployment_verdicts' columns, in the order
// InsertDeploymentVerdicts writes them.
const DeploymentVerdictColumns = "environment, service, deployment_key, deployment_id, change_id, repository, commit, deployer, " +
	"deployed_at, deployed_at_ns, verdict, failing, pending, waived, results, record_hash, bundle_hash, decided_at"

// InsertDeploymentVerdicts writes rows to deployment_verdicts as one INSERT.
func (s *Store) InsertDeploymentVerdicts(ctx context.Context, rows []DeploymentVerdictRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO deployment_verdicts ("+DeploymentVerdictColumns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into deployment_verdicts: %w", err)
	}
	defer b.Close()
	n := len(rows)
	var (
		env, svc, key, depID, change = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		repo, commit, deployer, verd = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		failing, pending, waived     = make([][]string, n), make([][]string, n), make([][]string, n)
		results, rhash, bhash        = make([]string, n), make([]string, n), make([]string, n)
		deployed, decided            = make([]time.Time, n), make([]time.Time, n)
		deployedNs                   = make([]int64, n)
	)
	for i, r := range rows {
		env[i], svc[i], key[i], depID[i], change[i] = r.Environment, r.Service, r.DeploymentKey, r.DeploymentID, r.ChangeID
		repo[i], commit[i], deployer[i], verd[i] = r.Repository, r.Commit, r.Deployer, r.Verdict
		deployed[i], deployedNs[i] = dateTime(r.DeployedNs), r.DeployedNs
		failing[i], pending[i], waived[i] = strs(r.Failing), strs(r.Pending), strs(r.Waived)
		results[i], rhash[i], bhash[i], decided[i] = r.Results, r.RecordHash, r.BundleHash, r.DecidedAt.UTC().Truncate(time.Second)
	}
	cols := []any{env, svc, key, depID, change, repo, commit, deployer, deployed, deployedNs, verd,
		failing, pending, waived, results, rhash, bhash, decided}
	if err := appendColumns(b, "deployment_verdicts", cols); err != nil {
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into deployment_verdicts: %w", n, err)
	}
	return nil
}

// LateEvidenceRow is one control of a deployment's verdict that evidence
// arrived after the decision would change (deployment_late_evidence).
type LateEvidenceRow struct {
	Environment   string
	Service       string
	DeploymentKey string
	ChangeID      string
	ControlID     string
	DecidedStatus string
	LateStatus    string
	LateReasons   []string
	LateEvents    []string
	ArrivedByNs   int64
	RecordHash    string
	BundleHash    string
	NotedNs       int64
}

// LateEvidenceColumns are deployment_late_evidence's columns, in the order
// InsertLateEvidence writes them.
const LateEvidenceColumns = "environment, service, deployment_key, change_id, control_id, decided_status, late_status, " +
	"late_reasons, late_events, arrived_by_ns, record_hash, bundle_hash, noted_at, noted_at_ns"

// InsertLateEvidence writes rows to deployment_late_evidence as one INSERT.
func (s *Store) InsertLateEvidence(ctx context.Context, rows []LateEvidenceRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO deployment_late_evidence ("+LateEvidenceColumns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into deployment_late_evidence: %w", err)
	}
	defer b.Close()
	n := len(rows)
	var (
		env, svc, key, change, control = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		decided, late, rhash, bhash    = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		reasons, events                = make([][]string, n), make([][]string, n)
		arrivedBy, notedNs             = make([]int64, n), make([]int64, n)
		noted                          = make([]time.Time, n)
	)
	for i, r := range rows {
		env[i], svc[i], key[i], change[i], control[i] = r.Environment, r.Service, r.DeploymentKey, r.ChangeID, r.ControlID
		decided[i], late[i], rhash[i], bhash[i] = r.DecidedStatus, r.LateStatus, r.RecordHash, r.BundleHash
		reasons[i], events[i] = strs(r.LateReasons), strs(r.LateEvents)
		arrivedBy[i], notedNs[i], noted[i] = r.ArrivedByNs, r.NotedNs, dateTime(r.NotedNs)
	}
	cols := []any{env, svc, key, change, control, decided, late, reasons, events, arrivedBy, rhash, bhash, noted, notedNs}
	if err := appendColumns(b, "deployment_late_evidence", cols); err != nil {
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into deployment_late_evidence: %w", n, err)
	}
	return nil
}
