package policies

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Input is the input of the controls: {record, now, now_ns, params}, from
// the record and the params as parsed values (ParseJSON). The change is
// judged as a whole: every production deployment of it, or (none yet) as
// if it were deployed now.
func Input(record ast.Value, at time.Time, params ast.Value) ast.Value {
	return InputFor(record, at, params, "")
}

// InputFor is Input judging one artifact of the change: input.artifact,
// its digest (or purl), is what the gate is asked about or what the
// deployment whose verdict is decided deployed; the controls judge its
// provenance (CM-6) and the commit it was built from (CM-4, CM-5) rather
// than the change's other artifacts and deployments. An empty artifact
// leaves input.artifact out: Input.
func InputFor(record ast.Value, at time.Time, params ast.Value, artifact string) ast.Value {
	at = at.UTC()
	items := [][2]*ast.Term{
		ast.Item(ast.InternedTerm("record"), ast.NewTerm(record)),
		ast.Item(ast.InternedTerm("now"), ast.StringTerm(at.Format(time.RFC3339Nano))),
		ast.Item(ast.InternedTerm("now_ns"), ast.NumberTerm(json.Number(strconv.FormatInt(at.UnixNano(), 10)))),
		ast.Item(ast.InternedTerm("params"), ast.NewTerm(params)),
	}
	if artifact != "" {
		items = append(items, ast.Item(ast.InternedTerm("artifact"), ast.StringTerm(artifact)))
	}
	return ast.NewObject(items...)
}

// ParseJSON parses a JSON document into a value of the input.
func ParseJSON(b []byte) (ast.Value, error) {
	return ast.ValueFromReader(bytes.NewReader(b))
}

// recordLists are the lists of a change record (correlate.Record's JSON)
// that the controls expect as lists: a null one becomes empty, so that a
// "count(...) == 0" guard is never undefined (and a control never passes
// vacuously). Paths: object members, "[]" for each item of a list.
var recordLists = [][]string{
	{"pushes"}, {"commits"}, {"tickets"}, {"runs"}, {"artifacts"}, {"tests"}, {"scans"}, {"deployments"}, {"exceptions"},
	{"pull_request", "heads"}, {"pull_request", "reviews"}, {"pull_request", "events"},
	{"tickets", "[]", "found_in"}, {"tickets", "[]", "history"}, {"tickets", "[]", "approvals"}, {"tickets", "[]", "rejections"},
	{"deployments", "[]", "matched_by"}, {"deployments", "[]", "events"},
}

// NormalizeRecord is a change record's JSON (as stored in changes.record)
// with every null list of the record an empty one: the record as
// processors/evaluate gives it to the controls.
func NormalizeRecord(record []byte) ([]byte, error) {
	d := json.NewDecoder(bytes.NewReader(record))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("change record: %w", err)
	}
	if m == nil {
		return nil, fmt.Errorf("change record: null, want an object")
	}
	for _, p := range recordLists {
		emptyLists(m, p)
	}
	return json.Marshal(m)
}

func emptyLists(v any, path []string) {
	switch x := v.(type) {
	case map[string]any:
		if len(path) == 1 {
			if val, ok := x[path[0]]; ok && val == nil {
				x[path[0]] = []any{}
			}
			return
		}
		emptyLists(x[path[0]], path[1:])
	case []any:
		if path[0] == "[]" {
			for _, it := range x {
				emptyLists(it, path[1:])
			}
		}
	}
}

// Exception is a control exception of a change record, as its JSON
// (correlate.Exception) gives it: what Waiver needs.
type Exception struct {
	ID          string    `json:"id"`
	Control     string    `json:"control"`
	Status      string    `json:"status"` // requested, granted
	Reason      string    `json:"reason,omitempty"`
	RequestedBy *Identity `json:"requested_by,omitempty"`
	Approver    *Identity `json:"approver,omitempty"`
	GrantedAt   time.Time `json:"granted_at,omitzero"`
	ExpiresAt   time.Time `json:"expires_at,omitzero"`
	Events      []string  `json:"events"` // "<source> <id>"
}

// Identity is who requested or approved an exception.
type Identity struct {
	Login string `json:"login"`
	Email string `json:"email,omitempty"`
}

// Exceptions reads the exceptions of a change record's JSON.
func Exceptions(record []byte) ([]Exception, error) {
	var r struct {
		Exceptions []Exception `json:"exceptions"`
	}
	if err := json.Unmarshal(record, &r); err != nil {
		return nil, fmt.Errorf("change record exceptions: %w", err)
	}
	return r.Exceptions, nil
}

// Waiver is the exception that waives control at t: granted, for that
// control, approved by someone other than its requester, granted by t
// and not expired at t.
func Waiver(xs []Exception, controlID string, t time.Time) *Exception {
	for i := range xs {
		x := &xs[i]
		if !strings.EqualFold(x.Control, controlID) || x.Status != "granted" || x.Approver == nil || x.Approver.Login == "" {
			continue
		}
		if x.RequestedBy != nil && samePerson(*x.RequestedBy, *x.Approver) {
			continue
		}
		if x.ExpiresAt.IsZero() || !t.Before(x.ExpiresAt) {
			continue
		}
		if !x.GrantedAt.IsZero() && t.Before(x.GrantedAt) {
			continue
		}
		return x
	}
	return nil
}

func samePerson(a, b Identity) bool {
	return a.Login != "" && strings.EqualFold(a.Login, b.Login) ||
		a.Email != "" && strings.EqualFold(a.Email, b.Email)
}
