package evaluate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/processors/access"
	"github.com/evidencepipeline/evidence/processors/evaluate/policies"
	accesspack "github.com/evidencepipeline/evidence/processors/evaluate/policies/access"
)

// AccessParams are the access controls' parameters (flags of evidenced).
type AccessParams struct {
	// RequiredReviews is the least number of approving reviews a
	// protected branch's rule must require (AC-1).
	RequiredReviews int
	// ProtectedBranches are the branches that must be protected (AC-1)
	// and whose bypasses fail (AC-2); the CM-7 list.
	ProtectedBranches []string
	// ReviewDeadline: how long after a period's end its access review may
	// still be signed off (AC-4 pending), before it fails.
	ReviewDeadline time.Duration
}

// AccessPeriod is a period over which a repository's access is judged:
// [From, To), labelled (2026-Q4).
type AccessPeriod struct {
	Label    string
	From, To time.Time
}

// Quarters are the calendar quarters (UTC) from the one holding from to
// the one holding now.
func Quarters(from, now time.Time) []AccessPeriod {
	from, now = from.UTC(), now.UTC()
	start := time.Date(from.Year(), time.Month((int(from.Month())-1)/3*3+1), 1, 0, 0, 0, 0, time.UTC)
	var out []AccessPeriod
	for t := start; !t.After(now); t = t.AddDate(0, 3, 0) {
		out = append(out, AccessPeriod{Label: fmt.Sprintf("%d-Q%d", t.Year(), (int(t.Month())-1)/3+1), From: t, To: t.AddDate(0, 3, 0)})
	}
	return out
}

// AccessEngine judges access records against the built-in AC pack.
type AccessEngine struct{ pack *accesspack.Pack }

// NewAccessEngine compiles the built-in access pack.
func NewAccessEngine(ctx context.Context) (*AccessEngine, error) {
	p, err := accesspack.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("access controls: %w", err)
	}
	return &AccessEngine{pack: p}, nil
}

// BundleHash is the access pack's hash, stored with every result.
func (e *AccessEngine) BundleHash() string { return e.pack.Hash() }

// Controls lists AC-1..AC-4.
func (e *AccessEngine) Controls() []Control { return e.pack.Controls() }

// AccessSubject is the control_results.change_id of a repository's
// results for a period: "access:<repository>@<label>".
func AccessSubject(repository string, p AccessPeriod) string {
	return "access:" + repository + "@" + p.Label
}

// Judge judges one repository's access record over one period as of now
// (the part of the period after now is not judged yet).
func (e *AccessEngine) Judge(ctx context.Context, r access.Record, params AccessParams, p AccessPeriod, now time.Time) ([]Result, error) {
	branches := make([]string, len(params.ProtectedBranches))
	for i, b := range params.ProtectedBranches {
		branches[i] = strings.ToLower(b)
	}
	to := p.To
	if now.Before(to) {
		to = now
	}
	in := map[string]any{
		"record": r,
		"period": map[string]any{"label": p.Label, "from_ns": p.From.UnixNano(), "to_ns": to.UnixNano(), "end_ns": p.To.UnixNano()},
		"now_ns": now.UnixNano(),
		"params": map[string]any{"required_reviews": params.RequiredReviews, "protected_branches": branches,
			"review_deadline_ns": params.ReviewDeadline.Nanoseconds()},
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	v, err := policies.ValueOf(b)
	if err != nil {
		return nil, fmt.Errorf("access input of %s: %w", r.Subject, err)
	}
	var xs []policies.Exception
	for _, x := range r.Exceptions {
		px := policies.Exception{ID: x.ID, Control: x.Control, Status: x.Status, Reason: x.Reason,
			GrantedAt: x.GrantedAt, ExpiresAt: x.ExpiresAt, Events: x.Events}
		if x.RequestedBy != nil {
			px.RequestedBy = &policies.Identity{Login: x.RequestedBy.Login, Email: x.RequestedBy.Email}
		}
		if x.Approver != nil {
			px.Approver = &policies.Identity{Login: x.Approver.Login, Email: x.Approver.Email}
		}
		xs = append(xs, px)
	}
	out, err := e.pack.Eval(ctx, v, xs, now)
	if err != nil {
		return nil, fmt.Errorf("access controls of %s: %w", r.Subject, err)
	}
	_, hash := r.Version()
	res := make([]Result, len(out))
	for i, o := range out {
		res[i] = Result{Change: AccessSubject(r.Subject, p), RecordHash: hash, Control: o.Control, Status: o.Status,
			Reasons: o.Reasons, Evidence: o.Evidence, Deadline: o.Deadline, Exception: o.Exception,
			BundleHash: e.pack.Hash(), EvaluatedAt: now.UTC()}
	}
	return res, nil
}
