// Package replay re-evaluates recorded history under another policy
// bundle (evidence policy replay, docs/policies.md) and reports, change by
// change, which controls would have another status. It only reads
// ClickHouse (changes, control_results), so it works as the read-only
// auditor user, and it never writes: what was recorded stays as it was.
//
// For each change deployed in the period (changes FINAL, retired = 0, a
// deployment between from and to), the verdict recorded is the newest
// control_results row of each control evaluated before the end of the
// period. The change's current record (changes.record) is judged by the
// new bundle as of the newest of those rows' evaluated_at (as of the end
// of the period, or now if earlier, when nothing was recorded), with the
// built-in controls' params given (evidenced's flags; the defaults unless
// told), and each
// control's status is compared with the recorded one.
package replay

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
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
// now bounds the as-of time of changes without recorded results.
func Run(ctx context.Context, st *store.Store, b *policies.Bundle, p policies.Params, from, to, now time.Time) (*Report, error) {
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
		NewControls: []string{}, RemovedControls: []string{}, Diffs: []ChangeDiff{}}
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
func readResults(ctx context.Context, st *store.Store, from, to time.Time) (map[string]map[string]recorded, error) {
	q := "SELECT change_id, control_id, status, reasons, bundle_hash, record_hash, evaluated_at_ns FROM control_results" +
		" WHERE change_id IN (SELECT change_id FROM changes FINAL WHERE " + deployedIn + ") AND evaluated_at_ns < ?" +
		" ORDER BY change_id, control_id, evaluated_at_ns"
	rows, err := st.Conn().Query(ctx, q, from.UnixNano(), to.UnixNano(), to.UnixNano())
	if err != nil {
		return nil, fmt.Errorf("read the recorded control results: %w", err)
	}
	defer rows.Close()
	out := map[string]map[string]recorded{}
	for rows.Next() {
		var change, control string
		var r recorded
		if err := rows.Scan(&change, &control, &r.status, &r.reasons, &r.bundle, &r.recordHash, &r.evaluatedNs); err != nil {
			return nil, fmt.Errorf("read the recorded control results: %w", err)
		}
		if out[change] == nil {
			out[change] = map[string]recorded{}
		}
		out[change][control] = r // ordered by evaluated_at_ns: the newest wins
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the recorded control results: %w", err)
	}
	return out, nil
}
