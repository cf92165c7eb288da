package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/metrics"
	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/access"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

// AccessLeaseBucket holds the access stage's lease: with several replicas
// one consumes the access events and judges the AC controls at a time (two
// would append the same results); another takes over when it stops.
const AccessLeaseBucket = "EVIDENCE_ACCESS_LEASE"

// maxAccessQuarters bounds how far back a repository's quarters are
// judged: its first access evidence, or 12 quarters before now.
const maxAccessQuarters = 12

// accessJudge writes the access records to ClickHouse and judges the AC
// controls on the production repositories. What it wrote is remembered per
// subject (the record's version) and per result (status and reasons), so
// a sweep writes only what changed; after a restart it reads the results
// in force back from control_results.
type accessJudge struct {
	d      *Daemon
	kv     *access.KVStore
	engine *evaluate.AccessEngine
	params evaluate.AccessParams

	mu    sync.Mutex
	dirty map[string]bool
	all   bool // a ticket's facts changed: every record may name it

	written map[string]uint64            // subject -> version of its rows in ClickHouse
	results map[string]map[string]string // repository -> change_id/control_id -> fingerprint in force
	wake    chan struct{}
}

func (d *Daemon) accessParams() evaluate.AccessParams {
	return evaluate.AccessParams{RequiredReviews: d.cfg.AccessRequiredReviews, ProtectedBranches: d.cfg.ProtectedBranches,
		ReviewDeadline: d.cfg.AccessReviewDeadline}
}

// changed is the stage's notification: those subjects' facts changed.
func (j *accessJudge) changed(_ context.Context, subjects []string) {
	j.mu.Lock()
	for _, s := range subjects {
		if strings.HasPrefix(s, "ticket:") {
			j.all = true
		}
		j.dirty[s] = true
	}
	j.mu.Unlock()
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// productionRepositories: --production-repos and the repositories deployed
// to a production environment (deployments, from the change records).
func (j *accessJudge) productionRepositories(ctx context.Context, st *store.Store) (map[string]bool, error) {
	out := map[string]bool{}
	for _, r := range j.d.cfg.ProductionRepos {
		out[strings.ToLower(r)] = true
	}
	envs := make([]string, len(j.d.cfg.ProductionEnvironments))
	for i, e := range j.d.cfg.ProductionEnvironments {
		envs[i] = strings.ToLower(e)
	}
	rows, err := st.Conn().Query(ctx, "SELECT DISTINCT repository FROM deployments FINAL WHERE has(?, lower(environment)) AND repository != ''", envs)
	if err != nil {
		return nil, fmt.Errorf("production repositories: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, err
		}
		out[strings.ToLower(r)] = true
	}
	return out, rows.Err()
}

// inForce reads the AC results in force of a repository back from
// control_results.
func (j *accessJudge) inForce(ctx context.Context, st *store.Store, repo string) (map[string]string, error) {
	rows, err := st.Conn().Query(ctx, "SELECT change_id, control_id, argMax(status, evaluated_at_ns), argMax(reasons, evaluated_at_ns), "+
		"argMax(exception_id, evaluated_at_ns) FROM control_results WHERE repository = ? AND change_id LIKE 'access:%' GROUP BY change_id, control_id", repo)
	if err != nil {
		return nil, fmt.Errorf("AC results of %s: %w", repo, err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var change, control, status, exc string
		var reasons []string
		if err := rows.Scan(&change, &control, &status, &reasons, &exc); err != nil {
			return nil, err
		}
		out[change+"/"+control] = fingerprint(status, reasons, exc)
	}
	return out, rows.Err()
}

func fingerprint(status string, reasons []string, exc string) string {
	return status + "\x00" + exc + "\x00" + strings.Join(reasons, "\x00")
}

// firstTime is the earliest instant the record knows of.
func firstTime(r access.Record) (time.Time, bool) {
	var ts []time.Time
	for _, g := range r.Grants {
		ts = append(ts, g.From)
	}
	for _, p := range r.Protections {
		ts = append(ts, p.From)
	}
	for _, b := range r.Bypasses {
		ts = append(ts, b.At)
	}
	for _, v := range r.Reviews {
		ts = append(ts, v.PeriodFrom)
	}
	if len(ts) == 0 {
		return time.Time{}, false
	}
	return slices.MinFunc(ts, func(a, b time.Time) int { return a.Compare(b) }), true
}

// sweep writes the records of the dirty subjects (every subject when full)
// and judges the production repositories among them, as of now.
func (j *accessJudge) sweep(ctx context.Context, full bool, now time.Time) error {
	st := j.d.Store()
	if st == nil {
		return errNoClickHouse
	}
	j.mu.Lock()
	dirty, all := j.dirty, j.all
	j.dirty, j.all = map[string]bool{}, false
	j.mu.Unlock()
	requeue := func() {
		j.mu.Lock()
		for s := range dirty {
			j.dirty[s] = true
		}
		j.all = j.all || all
		j.mu.Unlock()
	}
	prod, err := j.productionRepositories(ctx, st)
	if err != nil {
		requeue()
		return err
	}
	var subjects []string
	if full || all {
		if subjects, err = j.kv.Subjects(ctx); err != nil {
			requeue()
			return err
		}
		for r := range prod {
			subjects = append(subjects, r)
		}
	} else {
		for s := range dirty {
			subjects = append(subjects, s)
		}
	}
	slices.Sort(subjects)
	subjects = slices.Compact(subjects)
	for _, s := range subjects {
		if strings.HasPrefix(s, "ticket:") {
			continue
		}
		if err := j.one(ctx, st, s, prod[s], now); err != nil {
			requeue()
			return err
		}
	}
	return nil
}

func (j *accessJudge) one(ctx context.Context, st *store.Store, subject string, production bool, now time.Time) error {
	rec, err := j.kv.Record(ctx, subject)
	if err != nil {
		return err
	}
	version, hash := rec.Version()
	if len(rec.Events) > 0 && j.written[subject] != version {
		if err := access.Write(ctx, st.Conn(), rec); err != nil {
			return err
		}
		j.written[subject] = version
	}
	if !production || strings.HasPrefix(subject, "org:") {
		return nil
	}
	inForce, ok := j.results[subject]
	if !ok {
		if inForce, err = j.inForce(ctx, st, subject); err != nil {
			return err
		}
		j.results[subject] = inForce
	}
	first, ok := firstTime(rec)
	if !ok || first.After(now) {
		first = now
	}
	if earliest := now.AddDate(0, -3*maxAccessQuarters, 0); first.Before(earliest) {
		first = earliest
	}
	var rows []store.ControlResultRow
	next := map[string]string{}
	for _, p := range evaluate.Quarters(first, now) {
		res, err := j.engine.Judge(ctx, rec, j.params, p, now)
		if err != nil {
			return err
		}
		for _, r := range res {
			key := r.Change + "/" + r.Control.ID
			fp := fingerprint(string(r.Status), r.Reasons, r.Exception)
			next[key] = fp
			if inForce[key] == fp {
				continue
			}
			var deadline int64
			if r.Deadline != nil {
				deadline = r.Deadline.UnixNano()
			}
			trigger := evaluate.TriggerUpdate
			if _, seen := inForce[key]; seen && r.Status != evaluate.Status("pending") && strings.HasPrefix(inForce[key], "pending\x00") {
				trigger = evaluate.TriggerDeadline
			}
			rows = append(rows, store.ControlResultRow{ChangeID: r.Change, ControlID: r.Control.ID, ControlTitle: r.Control.Title,
				Severity: r.Control.Severity, Status: string(r.Status), Reasons: r.Reasons, Evidence: r.Evidence, ExceptionID: r.Exception,
				DeadlineNs: deadline, Repository: subject, RecordHash: hash, BundleHash: j.engine.BundleHash(), Trigger: trigger,
				EvaluatedNs: now.UnixNano()})
		}
	}
	if err := st.InsertControlResults(ctx, rows); err != nil {
		return err
	}
	for k, v := range next {
		inForce[k] = v
	}
	return nil
}

// runAccess runs the access stage while this replica holds the access
// lease, until ctx ends, restarting it after a failure: the stage merges
// the access events' facts into EVIDENCE_ACCESS and acknowledges them;
// the judge writes the records to ClickHouse and judges AC-1..AC-4 on the
// production repositories (at once for what changed, and every
// --access-interval for everything: time passes, deployments make
// repositories production, ClickHouse comes back).
func (d *Daemon) runAccess(ctx context.Context, engine *evaluate.AccessEngine, m *metrics.Metrics, opts Options) {
	backoff := time.Second
	for {
		err := bus.RunLeased(ctx, d.js, bus.Lease{Bucket: AccessLeaseBucket, Key: "access", TTL: d.cfg.ArchiveLeaseTTL}, d.log,
			func(ctx context.Context, _ *bus.Held) error { return d.accessHeld(ctx, engine, m, opts) })
		if ctx.Err() != nil {
			return
		}
		d.log.Error("access stage stopped; restarting", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
			backoff = min(backoff*2, 30*time.Second)
		}
	}
}

func (d *Daemon) accessHeld(ctx context.Context, engine *evaluate.AccessEngine, m *metrics.Metrics, opts Options) error {
	kv, err := access.NewKVStore(ctx, d.js)
	if err != nil {
		return err
	}
	j := &accessJudge{d: d, kv: kv, engine: engine, params: d.accessParams(), dirty: map[string]bool{},
		written: map[string]uint64{}, results: map[string]map[string]string{}, wake: make(chan struct{}, 1)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	judged := make(chan struct{})
	go func() {
		defer close(judged)
		full := time.NewTicker(d.cfg.AccessInterval)
		defer full.Stop()
		sweepAll := true // at start: catch up on everything
		for {
			var retry <-chan time.Time
			err := j.sweep(ctx, sweepAll, time.Now())
			switch {
			case ctx.Err() != nil:
				return
			case err == nil:
				sweepAll = false
				if opts.AccessSwept != nil {
					opts.AccessSwept()
				}
			default:
				if !errors.Is(err, errNoClickHouse) {
					d.log.Warn("access: writing records or judging AC controls failed; will retry", "err", err)
				}
				retry = time.After(2 * time.Second)
			}
			select {
			case <-ctx.Done():
				return
			case <-full.C:
				sweepAll = true
			case <-retry:
			case <-j.wake:
				// let a burst of events land first
				select {
				case <-ctx.Done():
					return
				case <-time.After(200 * time.Millisecond):
				}
			}
		}
	}()
	stage := access.NewStage(d.js, kv, access.StageConfig{}, d.log, m.Stage("access"), j.changed)
	err = stage.Run(ctx)
	cancel()
	<-judged
	return err
}
