package report

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/evidencepipeline/evidence/internal/store"
)

// Trace is the full evidence of one change: its record, its deployments,
// every control result ever stored for it and those in force, the verdict
// of each deployment at its moment, and the raw archived events behind
// them.
type Trace struct {
	ChangeID string `json:"change_id"`
	// Change is the stored row's columns (changes FINAL).
	Change TraceChange `json:"change"`
	// Record is the change record as stored (canonical JSON); RecordIntact
	// says whether its SHA-256 is the stored record_hash.
	Record       json.RawMessage   `json:"record"`
	RecordIntact bool              `json:"record_intact"`
	Deployments  []TraceDeployment `json:"deployments"`
	InForce      []TraceResult     `json:"results_in_force"`
	Results      []TraceResult     `json:"results_history"`
	Verdicts     []TraceVerdict    `json:"deployment_verdicts"`
	Events       []TraceEvent      `json:"events"`
	// MissingEvents are events the record or a result names that the
	// archive does not hold, as "<source> <id>".
	MissingEvents []string `json:"missing_events"`
}

// TraceChange is the columns of a change row.
type TraceChange struct {
	Repository      string   `json:"repository"`
	Commit          string   `json:"commit"`
	PRNumber        int64    `json:"pr_number"`
	PRTitle         string   `json:"pr_title"`
	Author          string   `json:"author"`
	MergedBy        string   `json:"merged_by"`
	MergedAt        string   `json:"merged_at"`
	DirectPush      bool     `json:"direct_push"`
	Unmatched       bool     `json:"unmatched"`
	TicketKeys      []string `json:"ticket_keys"`
	Environments    []string `json:"environments"`
	Services        []string `json:"services"`
	FirstDeployedAt string   `json:"first_deployed_at"`
	LastDeployedAt  string   `json:"last_deployed_at"`
	RecordHash      string   `json:"record_hash"`
	EventCount      uint32   `json:"event_count"`
	Retired         bool     `json:"retired"`
}

// TraceDeployment is a deployment of the change (deployments FINAL).
type TraceDeployment struct {
	Environment   string   `json:"environment"`
	Service       string   `json:"service"`
	DeploymentKey string   `json:"deployment_key"`
	DeploymentID  string   `json:"deployment_id"`
	MatchedBy     []string `json:"matched_by"`
	Commit        string   `json:"commit"`
	Digest        string   `json:"digest"`
	Deployer      string   `json:"deployer"`
	Outcome       string   `json:"outcome"`
	StartedAt     string   `json:"started_at"`
	FinishedAt    string   `json:"finished_at"`
	RunURL        string   `json:"run_url"`
}

// TraceResult is one control_results row.
type TraceResult struct {
	Control     string   `json:"control"`
	Title       string   `json:"title"`
	Severity    string   `json:"severity"`
	Status      string   `json:"status"`
	Reasons     []string `json:"reasons"`
	Evidence    []string `json:"evidence"`
	Exception   string   `json:"exception,omitempty"`
	Deadline    string   `json:"deadline,omitempty"`
	Trigger     string   `json:"trigger"`
	RecordHash  string   `json:"record_hash"`
	BundleHash  string   `json:"bundle_hash"`
	EvaluatedAt string   `json:"evaluated_at"`
}

// TraceVerdict is the verdict at one deployment (deployment_verdicts).
type TraceVerdict struct {
	Environment   string          `json:"environment"`
	Service       string          `json:"service"`
	DeploymentKey string          `json:"deployment_key"`
	DeploymentID  string          `json:"deployment_id"`
	DeployedAt    string          `json:"deployed_at"`
	Deployer      string          `json:"deployer"`
	Verdict       string          `json:"verdict"`
	Failing       []string        `json:"failing"`
	Pending       []string        `json:"pending"`
	Waived        []string        `json:"waived"`
	RecordHash    string          `json:"record_hash"`
	BundleHash    string          `json:"bundle_hash"`
	DecidedAt     string          `json:"decided_at"`
	Results       json.RawMessage `json:"results"`
	// Late is the late evidence noted beside the verdict
	// (deployment_late_evidence), oldest first: controls whose result
	// evidence that arrived after the decision would change. The verdict
	// above stands as decided.
	Late []TraceLate `json:"late_evidence"`
	// LateNote says, when there is late evidence, that the verdict stands.
	LateNote string `json:"late_evidence_note,omitempty"`
}

// LateNote is what TraceVerdict.LateNote says.
const LateNote = "evidence that arrived after the decision would change these controls; the decided verdict stands, unchanged"

// TraceLate is one deployment_late_evidence row: the control, its status
// in the decided verdict and with the late evidence (judged as of the
// deployment), the late events, and when it was noted.
type TraceLate struct {
	Control    string   `json:"control"`
	Decided    string   `json:"decided_status"`
	Late       string   `json:"late_status"`
	Reasons    []string `json:"late_reasons"`
	Events     []string `json:"late_events"`
	ArrivedBy  string   `json:"arrived_by"`
	ChangeID   string   `json:"change_id"`
	RecordHash string   `json:"record_hash"`
	BundleHash string   `json:"bundle_hash"`
	NotedAt    string   `json:"noted_at"`
}

// TraceEvent is one archived event (a row of events), its data as stored.
type TraceEvent struct {
	StreamSeq       uint64          `json:"stream_seq"`
	Source          string          `json:"source"`
	ID              string          `json:"id"`
	Type            string          `json:"type"`
	Subject         string          `json:"subject,omitempty"`
	Time            string          `json:"time,omitempty"`
	ReceivedAt      string          `json:"received_at"`
	DataContentType string          `json:"datacontenttype,omitempty"`
	DataSchema      string          `json:"dataschema,omitempty"`
	Extensions      json.RawMessage `json:"extensions,omitempty"`
	// Data is the data when it is JSON; DataText when it is other text,
	// DataBase64 when it is binary.
	Data       json.RawMessage `json:"data,omitempty"`
	DataText   string          `json:"data_text,omitempty"`
	DataBase64 string          `json:"data_base64,omitempty"`
	Hash       string          `json:"hash"`
	PrevHash   string          `json:"prev_hash"`
}

// Ref is the event's "<source> <id>".
func (e TraceEvent) Ref() string { return e.Source + " " + e.ID }

// ErrNoChange is returned by LoadTraces for an id no change row has.
type ErrNoChange struct{ ID string }

func (e ErrNoChange) Error() string {
	return fmt.Sprintf("no change record %q is stored (ids are <repository>@<commit> or unmatched:...; see evidence report population)", e.ID)
}

// LoadTraces loads the traces of the changes ids, in that order, reading
// the archive once for all of their events. An id with no stored change
// is an ErrNoChange.
func LoadTraces(ctx context.Context, st *store.Store, ids []string) ([]Trace, error) {
	changes, err := st.LatestChanges(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := map[string]store.ChangeRow{}
	for _, c := range changes {
		byID[c.ChangeID] = c
	}
	traces := make([]Trace, len(ids))
	refsOf := make([][]string, len(ids))
	var keys []store.EventKey
	seenKey := map[store.EventKey]bool{}
	for i, id := range ids {
		c, ok := byID[id]
		if !ok {
			return nil, ErrNoChange{id}
		}
		t, refs, err := loadTrace(ctx, st, c)
		if err != nil {
			return nil, err
		}
		traces[i], refsOf[i] = t, refs
		for _, r := range refs {
			src, evID, ok := strings.Cut(r, " ")
			if !ok {
				continue
			}
			k := store.EventKey{Source: src, ID: evID}
			if !seenKey[k] {
				seenKey[k] = true
				keys = append(keys, k)
			}
		}
	}
	rows, err := st.EventsByKey(ctx, keys)
	if err != nil {
		return nil, err
	}
	byRef := map[string][]TraceEvent{}
	for _, r := range rows {
		e := traceEvent(r)
		byRef[e.Ref()] = append(byRef[e.Ref()], e)
	}
	for i := range traces {
		t := &traces[i]
		t.Events, t.MissingEvents = []TraceEvent{}, []string{}
		for _, r := range refsOf[i] {
			es, ok := byRef[r]
			if !ok {
				t.MissingEvents = append(t.MissingEvents, r)
				continue
			}
			t.Events = append(t.Events, es...)
		}
		slices.SortFunc(t.Events, func(a, b TraceEvent) int {
			if a.StreamSeq < b.StreamSeq {
				return -1
			}
			if a.StreamSeq > b.StreamSeq {
				return 1
			}
			return 0
		})
	}
	return traces, nil
}

// loadTrace reads one change's trace but its events, and returns the
// event refs its record and results name, sorted and distinct.
func loadTrace(ctx context.Context, st *store.Store, c store.ChangeRow) (Trace, []string, error) {
	sum := sha256.Sum256([]byte(c.Record))
	t := Trace{
		ChangeID: c.ChangeID,
		Change: TraceChange{Repository: c.Repository, Commit: c.Commit, PRNumber: c.PRNumber, PRTitle: c.PRTitle,
			Author: c.Author, MergedBy: c.MergedBy, MergedAt: stampNs(c.MergedNs), DirectPush: c.DirectPush, Unmatched: c.Unmatched,
			TicketKeys: nonNil(c.TicketKeys), Environments: nonNil(c.Environments), Services: nonNil(c.Services),
			FirstDeployedAt: stampNs(c.FirstDeployedNs), LastDeployedAt: stampNs(c.LastDeployedNs),
			RecordHash: c.RecordHash, EventCount: c.EventCount, Retired: c.Retired},
		RecordIntact: hex.EncodeToString(sum[:]) == c.RecordHash,
		Deployments:  []TraceDeployment{}, InForce: []TraceResult{}, Results: []TraceResult{}, Verdicts: []TraceVerdict{},
	}
	refs := map[string]bool{}
	var rec any
	if json.Valid([]byte(c.Record)) {
		t.Record = json.RawMessage(c.Record)
		_ = json.Unmarshal(t.Record, &rec)
		collectRefs(rec, refs)
	} else {
		// Show what is stored, even when it is not JSON.
		b, _ := json.Marshal(c.Record)
		t.Record = b
	}
	deps, err := st.DeploymentsOf(ctx, c.ChangeID)
	if err != nil {
		return t, nil, err
	}
	for _, d := range deps {
		t.Deployments = append(t.Deployments, TraceDeployment{Environment: d.Environment, Service: d.Service,
			DeploymentKey: d.DeploymentKey, DeploymentID: d.DeploymentID, MatchedBy: nonNil(d.MatchedBy), Commit: d.Commit,
			Digest: d.Digest, Deployer: d.Deployer, Outcome: d.Outcome, StartedAt: stampNs(d.StartedNs),
			FinishedAt: stampNs(d.FinishedNs), RunURL: d.RunURL})
	}
	results, err := st.ControlResultsOf(ctx, c.ChangeID)
	if err != nil {
		return t, nil, err
	}
	latest := map[string]int{}
	for _, r := range results {
		tr := TraceResult{Control: r.ControlID, Title: r.ControlTitle, Severity: r.Severity, Status: r.Status,
			Reasons: nonNil(r.Reasons), Evidence: nonNil(r.Evidence), Exception: r.ExceptionID, Deadline: stampNs(r.DeadlineNs),
			Trigger: r.Trigger, RecordHash: r.RecordHash, BundleHash: r.BundleHash, EvaluatedAt: stampNs(r.EvaluatedNs)}
		t.Results = append(t.Results, tr)
		latest[r.ControlID] = len(t.Results) - 1 // rows are oldest first
		for _, e := range r.Evidence {
			refs[e] = true
		}
	}
	for _, i := range latest {
		t.InForce = append(t.InForce, t.Results[i])
	}
	slices.SortFunc(t.InForce, func(a, b TraceResult) int { return compareControlIDs(a.Control, b.Control) })
	verdicts, err := st.DeploymentVerdictsOf(ctx, c.ChangeID)
	if err != nil {
		return t, nil, err
	}
	late, err := st.LateEvidenceOf(ctx, c.ChangeID)
	if err != nil {
		return t, nil, err
	}
	lateOf := map[[3]string][]TraceLate{}
	for _, l := range late {
		k := [3]string{l.Environment, l.Service, l.DeploymentKey}
		lateOf[k] = append(lateOf[k], TraceLate{Control: l.ControlID, Decided: l.DecidedStatus, Late: l.LateStatus,
			Reasons: nonNil(l.LateReasons), Events: nonNil(l.LateEvents), ArrivedBy: stampNs(l.ArrivedByNs), ChangeID: l.ChangeID,
			RecordHash: l.RecordHash, BundleHash: l.BundleHash, NotedAt: stampNs(l.NotedNs)})
	}
	for _, v := range verdicts {
		lv := lateOf[[3]string{v.Environment, v.Service, v.DeploymentKey}]
		if lv == nil {
			lv = []TraceLate{}
		}
		note := ""
		if len(lv) > 0 {
			note = LateNote
		}
		res := json.RawMessage(v.Results)
		if !json.Valid(res) {
			res, _ = json.Marshal(v.Results)
		}
		t.Verdicts = append(t.Verdicts, TraceVerdict{Environment: v.Environment, Service: v.Service, DeploymentKey: v.DeploymentKey,
			DeploymentID: v.DeploymentID, DeployedAt: stampNs(v.DeployedNs), Deployer: v.Deployer, Verdict: v.Verdict,
			Failing: nonNil(v.Failing), Pending: nonNil(v.Pending), Waived: nonNil(v.Waived), RecordHash: v.RecordHash,
			BundleHash: v.BundleHash, DecidedAt: stamp(v.DecidedAt), Results: res, Late: lv, LateNote: note})
	}
	out := make([]string, 0, len(refs))
	for r := range refs {
		out = append(out, r)
	}
	slices.Sort(out)
	return t, out, nil
}

// collectRefs gathers every string of every "events" list of a record's
// JSON (the EventRefs, "<source> <id>").
func collectRefs(v any, into map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if l, ok := e.([]any); ok && k == "events" {
				for _, r := range l {
					if s, ok := r.(string); ok {
						into[s] = true
					}
				}
				continue
			}
			collectRefs(e, into)
		}
	case []any:
		for _, e := range x {
			collectRefs(e, into)
		}
	}
}

func traceEvent(r store.EventRow) TraceEvent {
	e := TraceEvent{StreamSeq: r.StreamSeq, Source: r.Source, ID: r.EventID, Type: r.Type, Subject: r.Subject,
		Time: stampNs(r.EventTimeNs), ReceivedAt: stampNs(r.ReceivedNs), DataContentType: r.DataContentType,
		DataSchema: r.DataSchema, Hash: r.Hash, PrevHash: r.PrevHash}
	if r.Extensions != "" && r.Extensions != "{}" && json.Valid([]byte(r.Extensions)) {
		e.Extensions = json.RawMessage(r.Extensions)
	}
	switch {
	case r.DataBase64:
		e.DataBase64 = base64.StdEncoding.EncodeToString(r.Data)
	case len(r.Data) == 0:
	case json.Valid(r.Data):
		e.Data = json.RawMessage(r.Data)
	default:
		e.DataText = string(r.Data)
	}
	return e
}

func nonNil(ss []string) []string {
	if ss == nil {
		return []string{}
	}
	return ss
}

// WriteTraceJSON writes a trace as indented JSON.
func WriteTraceJSON(w io.Writer, t Trace) error {
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
