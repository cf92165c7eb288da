// Package replay re-evaluates recorded history under another policy
// bundle (evidence policy replay, docs/policies.md) and reports, change by
// change, which controls would have another status. It only reads
// ClickHouse (changes, control_results), so it works as the read-only
// auditor user, and it never writes: what was recorded stays as it was.
//
// For each change deployed in the period (changes FINAL, retired = 0, a
// deployment between from and to), the verdict recorded is the newest
// control_results row of each control evaluated before the end of the
// period (none: a backfill, judged after the period; then its newest rows
// whenever evaluated). The change's current record (changes.record) is
// judged by the new bundle as of the newest of those rows' evaluated_at
// (as of the end of the period, or now if earlier, when nothing was
// recorded), with the built-in controls' params given (evidenced's flags;
// the defaults unless told), and each control's status is compared with
// the recorded one.
//
// Then each production deployment verdict of the period
// (deployment_verdicts FINAL, deployed in [from, to)) is judged as the
// evaluation stage decided it: on the record as it stood at the
// deployment's first arrival in the stream plus the verdict delay
// (Options.VerdictDelay, evidenced's --verdict-delay), rebuilt from the
// archived events (events, with their JetStream arrival received_ns), as
// of the deployment, on its own artifact; and compared with the verdict
// and each control's recorded status.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/internal/verify"
	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/correlate/chsink"
	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
)

// Report is what a replay found.
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// BundleHash is the hash of the bundle replayed; RecordedBundles the
	// hashes of the bundles that decided the recorded results compared.
	BundleHash      string   `json:"bundle_hash"`
	RecordedBundles []string `json:"recorded_bundles"`
	// Changes is the number of changes replayed; Differing of those with
	// a difference.
	Changes   int `json:"changes"`
	Differing int `json:"differing"`
	// ControlsDiffering counts the (change, control) pairs whose replayed
	// status differs from the recorded one.
	ControlsDiffering int `json:"controls_differing"`
	// NewControls are the bundle's controls with no recorded result for
	// any change replayed; RemovedControls have recorded results but are
	// not in the bundle.
	NewControls     []string `json:"new_controls"`
	RemovedControls []string `json:"removed_controls"`
	// Diffs are the changes with a difference, by change id.
	Diffs []ChangeDiff `json:"diffs"`
	// Verdicts is the number of production deployment verdicts
	// (deployment_verdicts) of the period replayed as the evaluation stage
	// decided them; VerdictsDiffering of those whose replayed verdict or
	// a control's status differs, listed in VerdictDiffs by deployment
	// time. VerdictDelay is the verdict delay replayed.
	Verdicts          int           `json:"verdicts"`
	VerdictsDiffering int           `json:"verdicts_differing"`
	VerdictDelay      string        `json:"verdict_delay"`
	VerdictDiffs      []VerdictDiff `json:"verdict_diffs"`
}

// ChangeDiff is what differs for one change.
type ChangeDiff struct {
	Change     string    `json:"change"`
	Repository string    `json:"repository"`
	AsOf       time.Time `json:"as_of"` // the time the change was judged as of
	RecordHash string    `json:"record_hash"`
	// RecordChanged: the recorded results judged another version of the
	// record (new evidence arrived since), so a difference may come from
	// the evidence rather than from the policies.
	RecordChanged bool          `json:"record_changed"`
	Controls      []ControlDiff `json:"controls"`
}

// ControlDiff is one control whose replayed status differs from the
// recorded one (Recorded is empty when nothing was recorded for it).
type ControlDiff struct {
	Control         string          `json:"control"`
	Title           string          `json:"title"`
	Recorded        policies.Status `json:"recorded"`
	Replayed        policies.Status `json:"replayed"`
	RecordedReasons []string        `json:"recorded_reasons"`
	Reasons         []string        `json:"reasons"`
	RecordedBundle  string          `json:"recorded_bundle,omitempty"`
}

// recorded is the newest recorded result of one control on one change.
type recorded struct {
	status      string
	reasons     []string
	bundle      string
	recordHash  string
	evaluatedNs int64
}

type change struct {
	id, repository, record, recordHash string
}

// Run replays the changes deployed in [from, to) under bundle b with the
// built-in controls' params p (zero fields take the defaults), reading st;
// now bounds the as-of time of changes without recorded results. The
// deployment verdicts of the period are replayed with the default verdict
// delay (RunOptions).
func Run(ctx context.Context, st *store.Store, b *policies.Bundle, p policies.Params, from, to, now time.Time) (*Report, error) {
	return RunOptions(ctx, st, b, p, from, to, now, Options{VerdictDelay: DefaultVerdictDelay})
}

// RunOptions is Run with options: the changes, then the production
// deployment verdicts of the period (deployed in [from, to)), each judged
// as the evaluation stage decides it — on the record as it stood at the
// deployment's arrival in the stream plus opts.VerdictDelay, rebuilt from
// the archived events (events.received_ns), as of the deployment, on its
// own artifact — and compared with deployment_verdicts.
func RunOptions(ctx context.Context, st *store.Store, b *policies.Bundle, p policies.Params, from, to, now time.Time, opts Options) (*Report, error) {
	if !from.Before(to) {
		return nil, fmt.Errorf("the period is empty: from %s is not before to %s", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339))
	}
	changes, err := readChanges(ctx, st, from, to)
	if err != nil {
		return nil, err
	}
	results, err := readResults(ctx, st, from, to)
	if err != nil {
		return nil, err
	}
	pj, err := json.Marshal(p.WithDefaults().Input())
	if err != nil {
		return nil, err
	}
	params, err := policies.ParseJSON(pj)
	if err != nil {
		return nil, err
	}
	rep := &Report{From: from.UTC(), To: to.UTC(), BundleHash: b.Hash(), RecordedBundles: []string{},
		NewControls: []string{}, RemovedControls: []string{}, Diffs: []ChangeDiff{},
		VerdictDelay: opts.VerdictDelay.String(), VerdictDiffs: []VerdictDiff{}}
	inBundle := map[string]bool{}
	for _, c := range b.Controls() {
		inBundle[c.ID] = true
	}
	recordedControls, bundles := map[string]bool{}, map[string]bool{}
	for _, ch := range changes {
		rec := results[ch.id]
		asOf := to.Add(-time.Nanosecond)
		if now.Before(asOf) {
			asOf = now
		}
		var newest int64
		recordChanged := false
		for id, r := range rec {
			recordedControls[id] = true
			bundles[r.bundle] = true
			newest = max(newest, r.evaluatedNs)
			if r.recordHash != ch.recordHash {
				recordChanged = true
			}
		}
		if newest > 0 {
			asOf = time.Unix(0, newest).UTC()
		}
		norm, err := policies.NormalizeRecord([]byte(ch.record))
		if err != nil {
			return nil, fmt.Errorf("change %s: %w", ch.id, err)
		}
		rv, err := policies.ParseJSON(norm)
		if err != nil {
			return nil, fmt.Errorf("change %s: %w", ch.id, err)
		}
		xs, err := policies.Exceptions([]byte(ch.record))
		if err != nil {
			return nil, fmt.Errorf("change %s: %w", ch.id, err)
		}
		outs, err := b.Eval(ctx, policies.Input(rv, asOf, params), xs, asOf)
		if err != nil {
			return nil, fmt.Errorf("change %s as of %s: %w", ch.id, asOf.Format(time.RFC3339Nano), err)
		}
		rep.Changes++
		d := ChangeDiff{Change: ch.id, Repository: ch.repository, AsOf: asOf, RecordHash: ch.recordHash, RecordChanged: recordChanged}
		for _, o := range outs {
			r, ok := rec[o.Control.ID]
			if ok && r.status == string(o.Status) {
				continue
			}
			cd := ControlDiff{Control: o.Control.ID, Title: o.Control.Title, Replayed: o.Status,
				RecordedReasons: []string{}, Reasons: o.Reasons}
			if ok {
				cd.Recorded, cd.RecordedReasons, cd.RecordedBundle = policies.Status(r.status), r.reasons, r.bundle
				rep.ControlsDiffering++
			}
			d.Controls = append(d.Controls, cd)
		}
		if len(d.Controls) > 0 {
			rep.Differing++
			rep.Diffs = append(rep.Diffs, d)
		}
	}
	for _, c := range b.Controls() {
		if !recordedControls[c.ID] {
			rep.NewControls = append(rep.NewControls, c.ID)
		}
	}
	for id := range recordedControls {
		if !inBundle[id] {
			rep.RemovedControls = append(rep.RemovedControls, id)
		}
	}
	slices.Sort(rep.RemovedControls)
	for h := range bundles {
		rep.RecordedBundles = append(rep.RecordedBundles, h)
	}
	slices.Sort(rep.RecordedBundles)
	if err := replayVerdicts(ctx, st, b, params, from, to, opts, rep); err != nil {
		return nil, err
	}
	return rep, nil
}

// deployedIn is the condition on changes FINAL of the changes replayed:
// live, and with a deployment (start or finish) in [from, to).
const deployedIn = "retired = 0 AND first_deployed_at_ns > 0 AND last_deployed_at_ns >= ? AND first_deployed_at_ns < ?"

func readChanges(ctx context.Context, st *store.Store, from, to time.Time) ([]change, error) {
	rows, err := st.Conn().Query(ctx, "SELECT change_id, repository, record, record_hash FROM changes FINAL WHERE "+deployedIn+
		" ORDER BY change_id", from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read the changes deployed in the period: %w", err)
	}
	defer rows.Close()
	var out []change
	for rows.Next() {
		var c change
		if err := rows.Scan(&c.id, &c.repository, &c.record, &c.recordHash); err != nil {
			return nil, fmt.Errorf("read the changes deployed in the period: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the changes deployed in the period: %w", err)
	}
	return out, nil
}

// readResults reads the newest control_results row, evaluated before to,
// of each control of each change replayed: by change id, then control id.
// A change with no row evaluated before to (a backfill: the period's
// deployments were judged after its end) gets its newest rows, whenever
// evaluated.
func readResults(ctx context.Context, st *store.Store, from, to time.Time) (map[string]map[string]recorded, error) {
	q := "SELECT change_id, control_id, status, reasons, bundle_hash, record_hash, evaluated_at_ns FROM control_results" +
		" WHERE change_id IN (SELECT change_id FROM changes FINAL WHERE " + deployedIn + ")" +
		" ORDER BY change_id, control_id, evaluated_at_ns"
	rows, err := st.Conn().Query(ctx, q, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read the recorded control results: %w", err)
	}
	defer rows.Close()
	before, after := map[string]map[string]recorded{}, map[string]map[string]recorded{}
	for rows.Next() {
		var change, control string
		var r recorded
		if err := rows.Scan(&change, &control, &r.status, &r.reasons, &r.bundle, &r.recordHash, &r.evaluatedNs); err != nil {
			return nil, fmt.Errorf("read the recorded control results: %w", err)
		}
		m := before
		if r.evaluatedNs >= to.UnixNano() {
			m = after
		}
		if m[change] == nil {
			m[change] = map[string]recorded{}
		}
		m[change][control] = r // ordered by evaluated_at_ns: the newest wins
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the recorded control results: %w", err)
	}
	for change, rs := range after {
		if _, ok := before[change]; !ok {
			before[change] = rs
		}
	}
	return before, nil
}

// DefaultVerdictDelay is evidenced's default --verdict-delay.
const DefaultVerdictDelay = time.Minute

// Options are the settings of a replay beyond its period.
type Options struct {
	// VerdictDelay is the verdict delay of the evidenced that decided the
	// deployment verdicts replayed (its --verdict-delay): each is replayed
	// on the record as it stood at the deployment's arrival plus it.
	VerdictDelay time.Duration
}

// VerdictDiff is a production deployment whose verdict, replayed as the
// evaluation stage decided it, differs from the one recorded in
// deployment_verdicts.
type VerdictDiff struct {
	Environment   string    `json:"environment"`
	Service       string    `json:"service"`
	DeploymentKey string    `json:"deployment_key"`
	Change        string    `json:"change"`
	DeployedAt    time.Time `json:"deployed_at"`
	// ArrivedBy is the arrival cutoff replayed: the deployment's first
	// arrival in the stream (events.received_ns) plus the verdict delay.
	ArrivedBy time.Time       `json:"arrived_by"`
	Recorded  policies.Status `json:"recorded"`
	Replayed  policies.Status `json:"replayed"`
	// RecordMatches: the record rebuilt as of the cutoff is the one the
	// verdict judged (its record_hash).
	RecordMatches bool          `json:"record_matches"`
	Controls      []ControlDiff `json:"controls"`
	// Note says why the verdict could not be replayed, if it could not.
	Note string `json:"note,omitempty"`
}

// verdictRow is a deployment_verdicts row, with its results by control.
type verdictRow struct {
	env, service, key, change, verdict, results, recordHash, bundle string
	deployedNs                                                      int64
}

// replayVerdicts compares each production deployment verdict of the
// period (deployment_verdicts FINAL, deployed in [from, to)) with the
// bundle's verdict judged as the evaluation stage judges: on the record
// as it stood at the deployment's arrival plus the verdict delay (rebuilt
// from the archived events and their arrival times), as of the
// deployment, on its own artifact.
func replayVerdicts(ctx context.Context, st *store.Store, b *policies.Bundle, params ast.Value, from, to time.Time, opts Options, rep *Report) error {
	rows, err := readVerdicts(ctx, st, from, to)
	if err != nil || len(rows) == 0 {
		return err
	}
	// The verdicts are replayed a group of changes at a time, each group's
	// records rebuilt from their own events: memory is bounded by the
	// group, not by the period.
	for len(rows) > 0 {
		n, changes := 0, map[string]bool{}
		for n < len(rows) && (changes[rows[n].change] || len(changes) < replayGroup) {
			changes[rows[n].change] = true
			n++
		}
		if err := replayGroupOf(ctx, st, b, params, rows[:n], opts, rep); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func replayVerdict(ctx context.Context, reader correlate.StateReader, b *policies.Bundle, params ast.Value, row verdictRow, opts Options) (*VerdictDiff, error) {
	d := &VerdictDiff{Environment: row.env, Service: row.service, DeploymentKey: row.key, Change: row.change,
		DeployedAt: time.Unix(0, row.deployedNs).UTC(), Recorded: policies.Status(row.verdict), Controls: []ControlDiff{}}
	rec, arr, ok, err := reader.ChangeArrivals(ctx, row.change)
	if err != nil {
		return nil, err
	}
	var dep correlate.Deployment
	found := false
	if ok {
		for _, x := range rec.Deployments {
			if x.Environment == row.env && x.Service == row.service && chsink.DeploymentKey(x) == row.key {
				dep, found = x, true
				break
			}
		}
	}
	if !found {
		d.Note = "the change record and its deployment could not be rebuilt from the archived events"
		return d, nil
	}
	arrived := arr.First(dep.Events)
	if arrived.IsZero() {
		arrived = deployedAt(dep)
	}
	d.ArrivedBy = arrived.Add(opts.VerdictDelay).UTC()
	judged, jd, ok, err := reader.DeploymentAsOf(ctx, rec.ID, dep, d.ArrivedBy)
	if err != nil {
		return nil, err
	}
	if !ok {
		judged, jd = rec, dep
	}
	d.RecordMatches = judged.Hash() == row.recordHash
	at := deployedAt(jd)
	artifact := jd.Digest
	if artifact == "" {
		artifact = jd.Purl
	}
	raw := judged.Canonical()
	norm, err := policies.NormalizeRecord(raw)
	if err != nil {
		return nil, fmt.Errorf("change %s: %w", row.change, err)
	}
	rv, err := policies.ParseJSON(norm)
	if err != nil {
		return nil, fmt.Errorf("change %s: %w", row.change, err)
	}
	xs, err := policies.Exceptions(raw)
	if err != nil {
		return nil, fmt.Errorf("change %s: %w", row.change, err)
	}
	outs, err := b.Eval(ctx, policies.InputFor(rv, at, params, artifact), xs, at)
	if err != nil {
		return nil, fmt.Errorf("deployment %s as of %s: %w", row.key, at.Format(time.RFC3339Nano), err)
	}
	var recorded []struct {
		Control string   `json:"control"`
		Status  string   `json:"status"`
		Reasons []string `json:"reasons"`
	}
	if err := json.Unmarshal([]byte(row.results), &recorded); err != nil {
		return nil, fmt.Errorf("deployment %s: results: %w", row.key, err)
	}
	byControl := map[string]int{}
	for i, r := range recorded {
		byControl[r.Control] = i
	}
	d.Replayed = policies.Pass
	for _, o := range outs {
		switch {
		case o.Status == policies.Fail:
			d.Replayed = policies.Fail
		case o.Status == policies.Pending && d.Replayed != policies.Fail:
			d.Replayed = policies.Pending
		}
		i, ok := byControl[o.Control.ID]
		if ok && recorded[i].Status == string(o.Status) {
			continue
		}
		cd := ControlDiff{Control: o.Control.ID, Title: o.Control.Title, Replayed: o.Status, RecordedReasons: []string{}, Reasons: o.Reasons}
		if ok {
			cd.Recorded, cd.RecordedReasons, cd.RecordedBundle = policies.Status(recorded[i].Status), recorded[i].Reasons, row.bundle
		}
		d.Controls = append(d.Controls, cd)
	}
	if len(outs) == 0 {
		d.Replayed = policies.Fail // no results at all is not a pass (evaluate.Overall)
	}
	if len(d.Controls) == 0 && d.Replayed == d.Recorded {
		return nil, nil
	}
	return d, nil
}

// deployedAt is when a deployment happened: its start, else its finish
// (the time its verdict is as of).
func deployedAt(d correlate.Deployment) time.Time {
	if !d.StartedAt.IsZero() {
		return d.StartedAt
	}
	return d.FinishedAt
}

func readVerdicts(ctx context.Context, st *store.Store, from, to time.Time) ([]verdictRow, error) {
	rows, err := st.Conn().Query(ctx, `SELECT environment, service, deployment_key, change_id, verdict, results, record_hash, bundle_hash, deployed_at_ns
FROM deployment_verdicts FINAL WHERE deployed_at_ns >= ? AND deployed_at_ns < ?
ORDER BY deployed_at_ns, environment, service, deployment_key`, from.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read the deployment verdicts of the period: %w", err)
	}
	defer rows.Close()
	var out []verdictRow
	for rows.Next() {
		var r verdictRow
		if err := rows.Scan(&r.env, &r.service, &r.key, &r.change, &r.verdict, &r.results, &r.recordHash, &r.bundle, &r.deployedNs); err != nil {
			return nil, fmt.Errorf("read the deployment verdicts of the period: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the deployment verdicts of the period: %w", err)
	}
	return out, nil
}

// replayGroup is the number of changes whose verdicts are replayed on one
// rebuilt state.
const replayGroup = 256

// maxQueryIDs bounds the bytes of the ids bound into one query: the
// parameters are part of the query text, which ClickHouse limits
// (max_query_size, 256 KiB by default).
const maxQueryIDs = 128 << 10

// chunks splits ids into runs of at most maxBytes bytes of ids (at least
// one id each).
func chunks(ids []string, maxBytes int) [][]string {
	var out [][]string
	for len(ids) > 0 {
		n, size := 0, 0
		for n < len(ids) && (n == 0 || size+len(ids[n])+4 <= maxBytes) {
			size += len(ids[n]) + 4 // quotes and separator
			n++
		}
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	return out
}

// replayGroupOf replays the verdicts rows (of at most replayGroup changes)
// on the state rebuilt from their records' archived events.
func replayGroupOf(ctx context.Context, st *store.Store, b *policies.Bundle, params ast.Value, rows []verdictRow, opts Options, rep *Report) error {
	state, recorded, err := archivedState(ctx, st, rows)
	if err != nil {
		return err
	}
	reader := correlate.StateReader{State: state}
	for _, row := range rows {
		rep.Verdicts++
		if !recorded[row.change] {
			// The verdict was decided, the record not (yet) written: the
			// correlation stage writes records to changes after handing
			// them to evaluation, so right after a backfill it can lag.
			rep.VerdictsDiffering++
			rep.VerdictDiffs = append(rep.VerdictDiffs, VerdictDiff{Environment: row.env, Service: row.service, DeploymentKey: row.key,
				Change: row.change, DeployedAt: time.Unix(0, row.deployedNs).UTC(), Recorded: policies.Status(row.verdict), Controls: []ControlDiff{},
				Note: "changes holds no current record of this change: the correlation stage has not written it yet (replay again once it has caught up) or it was retired"})
			continue
		}
		d, err := replayVerdict(ctx, reader, b, params, row, opts)
		if err != nil {
			return err
		}
		if d != nil {
			rep.VerdictsDiffering++
			rep.VerdictDiffs = append(rep.VerdictDiffs, *d)
		}
	}
	return nil
}

// archivedState is the correlator's state of the archived events behind
// the verdicts' change records (changes.record, as they stand now), each
// fact with its event's arrival in the stream (events.received_ns, the
// JetStream timestamp the correlation stage stamps facts with), and the
// ids of the changes whose record changes holds.
func archivedState(ctx context.Context, st *store.Store, verdicts []verdictRow) (*correlate.State, map[string]bool, error) {
	ids := []string{}
	seen := map[string]bool{}
	for _, v := range verdicts {
		if !seen[v.change] {
			seen[v.change] = true
			ids = append(ids, v.change)
		}
	}
	recorded := map[string]bool{}
	refs := map[correlate.EventRef]bool{}
	eventIDs := []string{}
	for _, part := range chunks(ids, maxQueryIDs) {
		if err := readRecords(ctx, st, part, func(rec *correlate.Record) {
			recorded[rec.ID] = true
			for _, e := range rec.EventRefs() {
				if !refs[e] {
					refs[e] = true
					eventIDs = append(eventIDs, e.ID)
				}
			}
		}); err != nil {
			return nil, nil, err
		}
	}
	state := correlate.NewState()
	slices.Sort(eventIDs)
	eventIDs = slices.Compact(eventIDs) // one id may have several sources
	for _, part := range chunks(eventIDs, maxQueryIDs) {
		if err := readEvents(ctx, st, part, func(r *store.EventRow) error {
			if !refs[correlate.EventRef{Source: r.Source, ID: r.EventID}] {
				return nil
			}
			e, err := verify.EventFromRow(r)
			if err != nil {
				return fmt.Errorf("archived event %s %s: %w", r.Source, r.EventID, err)
			}
			facts, err := correlate.Extract(e)
			if err != nil {
				return fmt.Errorf("archived event %s %s: %w", r.Source, r.EventID, err)
			}
			for i := range facts {
				facts[i].Arrived = time.Unix(0, r.ReceivedNs).UTC()
			}
			state.Add(facts...)
			return nil
		}); err != nil {
			return nil, nil, err
		}
	}
	return state, recorded, nil
}

// readRecords calls fn with the current record (changes FINAL) of each of
// the changes ids that has one.
func readRecords(ctx context.Context, st *store.Store, ids []string, fn func(*correlate.Record)) error {
	rows, err := st.Conn().Query(ctx, "SELECT record FROM changes FINAL WHERE has(?, change_id)", ids)
	if err != nil {
		return fmt.Errorf("read the change records of the verdicts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var raw string
		if err := rows.Scan(&raw); err != nil {
			return fmt.Errorf("read the change records of the verdicts: %w", err)
		}
		var rec correlate.Record
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return fmt.Errorf("a change record of the verdicts: %w", err)
		}
		fn(&rec)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the change records of the verdicts: %w", err)
	}
	return nil
}

// readEvents calls fn with each archived event whose id is one of ids.
func readEvents(ctx context.Context, st *store.Store, ids []string, fn func(*store.EventRow) error) error {
	evs, err := st.Conn().Query(ctx, "SELECT "+store.EventColumns+" FROM events WHERE has(?, event_id) ORDER BY stream_seq", ids)
	if err != nil {
		return fmt.Errorf("read the archived events: %w", err)
	}
	defer evs.Close()
	for evs.Next() {
		var r store.EventRow
		var et, ra time.Time
		var data string
		var b64 uint8
		if err := evs.Scan(&r.StreamSeq, &r.EventID, &r.Source, &r.Type, &r.Subject, &et, &r.EventTimeNs,
			&ra, &r.ReceivedNs, &r.DataContentType, &r.DataSchema, &r.Extensions, &data, &b64, &r.PrevHash, &r.Hash); err != nil {
			return fmt.Errorf("read the archived events: %w", err)
		}
		r.Data, r.DataBase64 = []byte(data), b64 == 1
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := evs.Err(); err != nil {
		return fmt.Errorf("read the archived events: %w", err)
	}
	return nil
}
