package live

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// ExpiringWithin is how soon an exception's expiry must be to be listed.
const ExpiringWithin = 7 * 24 * time.Hour

// Attention is what needs someone soon: the pending controls with the
// time left to their deadlines, the exceptions in force that expire within
// a week, and the production deployments that match no change.
type Attention struct {
	Available bool   `json:"available"`
	Error     string `json:"error,omitempty"`
	// Pending: every pending control (up to 50), soonest deadline first,
	// with the time left; PendingTotal counts them all.
	Pending      []PendingControl `json:"pending"`
	PendingTotal int              `json:"pending_total"`
	// Expiring: the exceptions waiving a control's current result whose
	// expiry is within ExpiringWithin (or passed), soonest first.
	Expiring []ExpiringException `json:"expiring"`
	// Unmatched: the production deployments matching no change (CM-8),
	// newest first (up to 50); UnmatchedTotal counts them all.
	Unmatched      []UnmatchedDeployment `json:"unmatched"`
	UnmatchedTotal int                   `json:"unmatched_total"`
	// AsOf is the time the times left are counted from.
	AsOf time.Time `json:"as_of"`
}

// PendingControl is a pending control and the time left to its deadline.
type PendingControl struct {
	ControlState
	// LeftSeconds is the deadline minus AsOf, in whole seconds (negative
	// once it passed: the control fails at its next evaluation).
	LeftSeconds int64  `json:"left_seconds"`
	Left        string `json:"left"`
	NoDeadline  bool   `json:"no_deadline,omitempty"`
}

// ExpiringException is an exception in force and what it waives now.
type ExpiringException struct {
	ID          string    `json:"id"`
	Control     string    `json:"control"`
	ExpiresAt   time.Time `json:"expires_at"`
	LeftSeconds int64     `json:"left_seconds"`
	Left        string    `json:"left"`
	TicketKey   string    `json:"ticket_key,omitempty"`
	Changes     []string  `json:"changes"` // the changes whose result it waives now, sorted
}

// UnmatchedDeployment is a production deployment matching no change.
type UnmatchedDeployment struct {
	Environment   string    `json:"environment"`
	Service       string    `json:"service"`
	DeploymentKey string    `json:"deployment_key"`
	Change        string    `json:"change"` // its unmatched:… record
	Repository    string    `json:"repository"`
	Commit        string    `json:"commit"`
	Deployer      string    `json:"deployer"`
	DeployedAt    time.Time `json:"deployed_at,omitzero"`
}

// leftText is a duration for people: "2d 3h", "3h 12m", "12m", "overdue 5m".
func leftText(d time.Duration) string {
	prefix := ""
	if d < 0 {
		prefix, d = "overdue ", -d
	}
	d = d.Truncate(time.Minute)
	days, h, m := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	switch {
	case days > 0:
		return fmt.Sprintf("%s%dd %dh", prefix, days, h)
	case h > 0:
		return fmt.Sprintf("%s%dh %dm", prefix, h, m)
	default:
		return fmt.Sprintf("%s%dm", prefix, m)
	}
}

// attentionAt is the snapshot's lists with the times left counted from now.
func attentionAt(a Attention, now time.Time) Attention {
	a.AsOf = now.UTC()
	a.Pending = slices.Clone(a.Pending)
	for i := range a.Pending {
		if p := &a.Pending[i]; !p.NoDeadline {
			left := p.Deadline.Sub(now)
			p.LeftSeconds, p.Left = int64(left/time.Second), leftText(left)
		}
	}
	a.Expiring = slices.Clone(a.Expiring)
	for i := range a.Expiring {
		left := a.Expiring[i].ExpiresAt.Sub(now)
		a.Expiring[i].LeftSeconds, a.Expiring[i].Left = int64(left/time.Second), leftText(left)
	}
	return a
}

// readAttention reads the lists (with the posture summary, in its reading):
// pending from the open results, exceptions from the records of the
// changes with a waived result now, unmatched deployments by key.
func (h *Handler) readAttention(ctx context.Context, st *store.Store, pend, waived []openKey, now time.Time, a *Attention) error {
	a.PendingTotal = len(pend)
	details, err := h.detailsOf(ctx, st, pend[:min(len(pend), 50)])
	if err != nil {
		return err
	}
	a.Pending = []PendingControl{}
	for _, s := range details {
		a.Pending = append(a.Pending, PendingControl{ControlState: s, NoDeadline: s.Deadline.IsZero(), Left: "no deadline"})
	}
	if a.Expiring, err = h.expiring(ctx, st, waived, now); err != nil {
		return err
	}
	return h.unmatched(ctx, st, a)
}

// expiring reads the records of the changes with a waived result now and
// keeps the exceptions that waive one and expire within ExpiringWithin.
func (h *Handler) expiring(ctx context.Context, st *store.Store, waived []openKey, now time.Time) ([]ExpiringException, error) {
	out := []ExpiringException{}
	if len(waived) == 0 {
		return out, nil
	}
	byChange := map[string][]openKey{}
	var ids []string
	for _, k := range waived {
		if _, ok := byChange[k.change]; !ok {
			ids = append(ids, k.change)
		}
		byChange[k.change] = append(byChange[k.change], k)
	}
	rows, err := st.Conn().Query(ctx, "SELECT change_id, record FROM changes FINAL WHERE "+inIDs+" AND retired = 0", ids)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	defer rows.Close()
	found := map[string]*ExpiringException{}
	for rows.Next() {
		var id, raw string
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, fmt.Errorf("read changes: %w", err)
		}
		var rec correlate.Record
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, fmt.Errorf("change %s in ClickHouse: %w", id, err)
		}
		for _, k := range byChange[id] {
			for _, x := range rec.Exceptions {
				if x.ID != k.exception || x.ExpiresAt.IsZero() || x.ExpiresAt.Sub(now) > ExpiringWithin {
					continue
				}
				e := found[x.ID]
				if e == nil {
					e = &ExpiringException{ID: x.ID, Control: x.Control, ExpiresAt: x.ExpiresAt.UTC(), TicketKey: x.TicketKey}
					found[x.ID] = e
				}
				if !slices.Contains(e.Changes, id) {
					e.Changes = append(e.Changes, id)
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	for _, e := range found {
		slices.Sort(e.Changes)
		out = append(out, *e)
	}
	slices.SortFunc(out, func(a, b ExpiringException) int {
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), strings.Compare(a.ID, b.ID))
	})
	return out, nil
}

// unmatched reads the deployments matching no change as they stand now:
// the FINAL read limited, by key, to the deployments that were ever
// unmatched.
func (h *Handler) unmatched(ctx context.Context, st *store.Store, a *Attention) error {
	rows, err := st.Conn().Query(ctx, `SELECT environment, service, deployment_key, change_id, repository, commit, deployer, started_at_ns, finished_at_ns
FROM deployments FINAL
WHERE (environment, service, deployment_key) IN (SELECT environment, service, deployment_key FROM deployments WHERE unmatched = 1) AND unmatched = 1`)
	if err != nil {
		return fmt.Errorf("read deployments: %w", err)
	}
	defer rows.Close()
	a.Unmatched = []UnmatchedDeployment{}
	for rows.Next() {
		var d UnmatchedDeployment
		var started, finished int64
		if err := rows.Scan(&d.Environment, &d.Service, &d.DeploymentKey, &d.Change, &d.Repository, &d.Commit, &d.Deployer, &started, &finished); err != nil {
			return fmt.Errorf("read deployments: %w", err)
		}
		if !h.isProduction(d.Environment) {
			continue
		}
		if at := cmp.Or(started, finished); at > 0 {
			d.DeployedAt = time.Unix(0, at).UTC()
		}
		a.Unmatched = append(a.Unmatched, d)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read deployments: %w", err)
	}
	a.UnmatchedTotal = len(a.Unmatched)
	slices.SortFunc(a.Unmatched, func(x, y UnmatchedDeployment) int {
		return cmp.Or(y.DeployedAt.Compare(x.DeployedAt), strings.Compare(x.DeploymentKey, y.DeploymentKey))
	})
	a.Unmatched = a.Unmatched[:min(len(a.Unmatched), 50)]
	return nil
}

// attention is the lists, from the posture's reading, times left from now.
func (h *Handler) attention(ctx context.Context) Attention {
	return attentionOf(h.posture(ctx), h.cfg.Now())
}

func attentionOf(p Posture, now time.Time) Attention {
	a := p.Attention
	if !p.Available {
		a = Attention{Error: p.Error}
	}
	return attentionAt(a, now)
}

func (h *Handler) attentionFragment(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	h.render(w, http.StatusOK, "attention", map[string]any{"Attention": h.attention(ctx)})
}

func (h *Handler) attentionJSON(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	a := h.attention(ctx)
	w.Header().Set("Content-Type", "application/json")
	code := http.StatusOK
	if !a.Available {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(a)
}
