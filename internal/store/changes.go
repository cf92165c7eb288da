package store

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// The changes and deployments tables (schemas/clickhouse/0002_changes.sql)
// keep every version written; ReplacingMergeTree(version) keeps the highest
// version of a key when it merges parts, in the background. Every read here
// asks for the newest version with FINAL. A WHERE on a FINAL query is
// applied to the rows FINAL chose, so a condition on a column outside the
// table's key (retired, or change_id over deployments) cannot pick an older
// version that matched it. (ClickHouse would move such a condition before
// FINAL only with optimize_move_to_prewhere_if_final, off by default; 18.16
// never does.)

// ChangeRow is one version of a change record (the changes table). Times
// are Unix nanoseconds, 0 when unknown; the DateTime columns are written
// from them.
type ChangeRow struct {
	ChangeID   string
	Repository string
	Commit     string   // the merge commit, or the pushed head
	Commits    []string // every commit of the record, in any role
	PRNumber   int64    // 0 when none
	PRTitle    string
	Author     string // login
	MergedBy   string // login
	MergedNs   int64
	DirectPush bool
	Unmatched  bool
	TicketKeys []string
	// Environments and Services are those of its deployments.
	Environments    []string
	Services        []string
	FirstDeployedNs int64
	LastDeployedNs  int64
	Record          string // canonical JSON
	RecordHash      string // hex SHA-256 of Record
	EventCount      uint32
	Version         uint64
	Retired         bool
	UpdatedAt       time.Time // seconds
}

// DeploymentRow is one version of a deployment (the deployments table),
// under the change it belongs to.
type DeploymentRow struct {
	Environment   string
	Service       string
	DeploymentKey string // id:<deployment id>, run:<repo>#<run id>, event:<source> <id>
	DeploymentID  string
	ChangeID      string
	Unmatched     bool
	MatchedBy     []string
	Repository    string
	Commit        string
	Digest        string
	Purl          string
	RunID         string
	RunURL        string
	Deployer      string // login
	Outcome       string // empty while in progress
	StartedNs     int64
	FinishedNs    int64
	TicketKeys    []string
	Deployment    string // canonical JSON of the record's deployment item
	RecordHash    string // of the change record version it was written with
	Version       uint64
	UpdatedAt     time.Time // seconds
}

// ChangeColumns are the columns of changes in the order InsertChanges
// writes and the reads scan.
const ChangeColumns = "change_id, repository, commit, commits, pr_number, pr_title, author, merged_by, " +
	"merged_at, merged_at_ns, direct_push, unmatched, ticket_keys, environments, services, " +
	"first_deployed_at, first_deployed_at_ns, last_deployed_at, last_deployed_at_ns, " +
	"record, record_hash, event_count, version, retired, updated_at"

// DeploymentColumns are the columns of deployments in the order
// InsertDeployments writes and the reads scan.
const DeploymentColumns = "environment, service, deployment_key, deployment_id, change_id, unmatched, matched_by, " +
	"repository, commit, digest, purl, run_id, run_url, deployer, outcome, " +
	"started_at, started_at_ns, finished_at, finished_at_ns, ticket_keys, deployment, record_hash, version, updated_at"

// dateTime is the DateTime value of a nanosecond time: whole seconds,
// clamped to the range DateTime holds (1970 to 2106); 0 stays 0.
func dateTime(ns int64) time.Time {
	s := ns / 1e9
	switch {
	case s < 0:
		s = 0
	case s > math.MaxUint32:
		s = math.MaxUint32
	}
	return time.Unix(s, 0).UTC()
}

func flag(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// strs is a never-nil copy of ss, for Array(String) columns.
func strs(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// appendColumns appends one slice per column to the batch.
func appendColumns(b driver.Batch, table string, cols []any) error {
	for i, c := range cols {
		if err := b.Column(i).Append(c); err != nil {
			return fmt.Errorf("insert into %s: column %d: %w", table, i, err)
		}
	}
	return nil
}

// InsertChanges writes rows to changes as one INSERT (one block). Writing
// a version again is harmless: the table keeps one row per version.
func (s *Store) InsertChanges(ctx context.Context, rows []ChangeRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO changes ("+ChangeColumns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into changes: %w", err)
	}
	defer b.Close()
	n := len(rows)
	var (
		id, repo, commit, title, author, mergedBy = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		record, hash                              = make([]string, n), make([]string, n)
		commits, tickets, envs, services          = make([][]string, n), make([][]string, n), make([][]string, n), make([][]string, n)
		pr, mergedNs, firstNs, lastNs             = make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
		mergedAt, firstAt, lastAt, updated        = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		direct, unmatched, retired                = make([]uint8, n), make([]uint8, n), make([]uint8, n)
		events                                    = make([]uint32, n)
		version                                   = make([]uint64, n)
	)
	for i, r := range rows {
		id[i], repo[i], commit[i], commits[i] = r.ChangeID, r.Repository, r.Commit, strs(r.Commits)
		pr[i], title[i], author[i], mergedBy[i] = r.PRNumber, r.PRTitle, r.Author, r.MergedBy
		mergedAt[i], mergedNs[i] = dateTime(r.MergedNs), r.MergedNs
		direct[i], unmatched[i] = flag(r.DirectPush), flag(r.Unmatched)
		tickets[i], envs[i], services[i] = strs(r.TicketKeys), strs(r.Environments), strs(r.Services)
		firstAt[i], firstNs[i], lastAt[i], lastNs[i] = dateTime(r.FirstDeployedNs), r.FirstDeployedNs, dateTime(r.LastDeployedNs), r.LastDeployedNs
		record[i], hash[i], events[i], version[i] = r.Record, r.RecordHash, r.EventCount, r.Version
		retired[i], updated[i] = flag(r.Retired), r.UpdatedAt.UTC().Truncate(time.Second)
	}
	cols := []any{id, repo, commit, commits, pr, title, author, mergedBy, mergedAt, mergedNs, direct, unmatched,
		tickets, envs, services, firstAt, firstNs, lastAt, lastNs, record, hash, events, version, retired, updated}
	if err := appendColumns(b, "changes", cols); err != nil {
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into changes: %w", n, err)
	}
	return nil
}

// InsertDeployments writes rows to deployments as one INSERT (one block).
func (s *Store) InsertDeployments(ctx context.Context, rows []DeploymentRow) error {
	if len(rows) == 0 {
		return nil
	}
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO deployments ("+DeploymentColumns+")")
	if err != nil {
		return fmt.Errorf("prepare insert into deployments: %w", err)
	}
	defer b.Close()
	n := len(rows)
	var (
		env, svc, key, depID, change = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		repo, commit, digest, purl   = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		runID, runURL, deployer, out = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		dep, hash                    = make([]string, n), make([]string, n)
		matchedBy, tickets           = make([][]string, n), make([][]string, n)
		unmatched                    = make([]uint8, n)
		startedAt, finishedAt, upd   = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		startedNs, finishedNs        = make([]int64, n), make([]int64, n)
		version                      = make([]uint64, n)
	)
	for i, r := range rows {
		env[i], svc[i], key[i], depID[i], change[i] = r.Environment, r.Service, r.DeploymentKey, r.DeploymentID, r.ChangeID
		unmatched[i], matchedBy[i] = flag(r.Unmatched), strs(r.MatchedBy)
		repo[i], commit[i], digest[i], purl[i] = r.Repository, r.Commit, r.Digest, r.Purl
		runID[i], runURL[i], deployer[i], out[i] = r.RunID, r.RunURL, r.Deployer, r.Outcome
		startedAt[i], startedNs[i], finishedAt[i], finishedNs[i] = dateTime(r.StartedNs), r.StartedNs, dateTime(r.FinishedNs), r.FinishedNs
		tickets[i], dep[i], hash[i], version[i], upd[i] = strs(r.TicketKeys), r.Deployment, r.RecordHash, r.Version, r.UpdatedAt.UTC().Truncate(time.Second)
	}
	cols := []any{env, svc, key, depID, change, unmatched, matchedBy, repo, commit, digest, purl, runID, runURL, deployer, out,
		startedAt, startedNs, finishedAt, finishedNs, tickets, dep, hash, version, upd}
	if err := appendColumns(b, "deployments", cols); err != nil {
		return err
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("insert %d rows into deployments: %w", n, err)
	}
	return nil
}

// LatestChange is the newest version of the change record id, and whether
// one was ever written. A record the correlator no longer derives is
// returned with Retired set (and its last content).
func (s *Store) LatestChange(ctx context.Context, id string) (ChangeRow, bool, error) {
	rows, err := s.LatestChanges(ctx, []string{id})
	if err != nil || len(rows) == 0 {
		return ChangeRow{}, false, err
	}
	return rows[0], true, nil
}

// LatestChanges is the newest version of each of the change records ids
// that was ever written, retired ones included, sorted by ID.
func (s *Store) LatestChanges(ctx context.Context, ids []string) ([]ChangeRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	// change_id is the table's key: the primary index narrows the read.
	q := "SELECT " + ChangeColumns + " FROM changes FINAL WHERE change_id IN ? ORDER BY change_id"
	set := clickhouse.GroupSet{Value: make([]any, len(ids))}
	for i, id := range ids {
		set.Value[i] = id
	}
	return s.queryChanges(ctx, "read latest changes", q, set)
}

// ChangesByCommit is the newest version of every live (not retired) change
// record of repository repo that holds commit in any role (merge commit,
// head, reviewed, pushed, deployed, built), sorted by ID. An abbreviated
// commit (7 hex digits or more) matches as a prefix; an empty commit lists
// every record of the repository; a shorter one matches nothing.
func (s *Store) ChangesByCommit(ctx context.Context, repo, commit string) ([]ChangeRow, error) {
	commit = strings.ToLower(commit)
	if commit != "" && len(commit) < 7 {
		return nil, nil
	}
	q := "SELECT " + ChangeColumns + " FROM changes FINAL WHERE repository = ? AND retired = 0"
	args := []any{repo}
	if commit != "" {
		q += " AND arrayExists(c -> substring(c, 1, ?) = ?, commits)"
		args = append(args, len(commit), commit)
	}
	q += " ORDER BY change_id"
	return s.queryChanges(ctx, "read changes by commit", q, args...)
}

func (s *Store) queryChanges(ctx context.Context, what, q string, args ...any) ([]ChangeRow, error) {
	rows, err := s.conn.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer rows.Close()
	var out []ChangeRow
	for rows.Next() {
		var r ChangeRow
		var mergedAt, firstAt, lastAt time.Time
		var direct, unmatched, retired uint8
		if err := rows.Scan(&r.ChangeID, &r.Repository, &r.Commit, &r.Commits, &r.PRNumber, &r.PRTitle, &r.Author, &r.MergedBy,
			&mergedAt, &r.MergedNs, &direct, &unmatched, &r.TicketKeys, &r.Environments, &r.Services,
			&firstAt, &r.FirstDeployedNs, &lastAt, &r.LastDeployedNs,
			&r.Record, &r.RecordHash, &r.EventCount, &r.Version, &retired, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		r.DirectPush, r.Unmatched, r.Retired = direct == 1, unmatched == 1, retired == 1
		r.UpdatedAt = r.UpdatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return out, nil
}

// DeploymentsOf is the newest version of every deployment that belongs to
// the change record changeID, by start time (then environment, service and
// key). A deployment written under an unmatched record and later under its
// change is listed under the change only.
func (s *Store) DeploymentsOf(ctx context.Context, changeID string) ([]DeploymentRow, error) {
	// The IN narrows the read to the keys of the deployments ever written
	// under changeID (key columns: every version of those keys is kept);
	// change_id is then compared on the version FINAL chose.
	q := "SELECT " + DeploymentColumns + " FROM deployments FINAL" +
		" WHERE (environment, service, deployment_key) IN" +
		" (SELECT environment, service, deployment_key FROM deployments WHERE change_id = ?)" +
		" AND change_id = ?" +
		" ORDER BY started_at_ns, environment, service, deployment_key"
	rows, err := s.conn.Query(ctx, q, changeID, changeID)
	if err != nil {
		return nil, fmt.Errorf("read deployments of %s: %w", changeID, err)
	}
	defer rows.Close()
	var out []DeploymentRow
	for rows.Next() {
		var r DeploymentRow
		var startedAt, finishedAt time.Time
		var unmatched uint8
		if err := rows.Scan(&r.Environment, &r.Service, &r.DeploymentKey, &r.DeploymentID, &r.ChangeID, &unmatched, &r.MatchedBy,
			&r.Repository, &r.Commit, &r.Digest, &r.Purl, &r.RunID, &r.RunURL, &r.Deployer, &r.Outcome,
			&startedAt, &r.StartedNs, &finishedAt, &r.FinishedNs, &r.TicketKeys, &r.Deployment, &r.RecordHash, &r.Version, &r.UpdatedAt); err != nil {
			return nil, fmt.Errorf("read deployments of %s: %w", changeID, err)
		}
		r.Unmatched = unmatched == 1
		r.UpdatedAt = r.UpdatedAt.UTC()
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deployments of %s: %w", changeID, err)
	}
	return out, nil
}
