package correlate

// Change tickets: ticket.created, ticket.transitioned, ticket.approved,
// ticket.rejected.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// ---- ticket.* ----

type ticketData struct {
	Key           string        `json:"key"`
	System        string        `json:"system"`
	TicketType    string        `json:"ticket_type"`
	RawType       string        `json:"raw_type"`
	Status        string        `json:"status"`
	Summary       string        `json:"summary"`
	URL           string        `json:"url"`
	RequestedBy   *identityJSON `json:"requested_by"`
	Links         *linksJSON    `json:"links"`
	PlannedWindow *struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"planned_window"`
	CreatedAt      string        `json:"created_at"`
	PreviousStatus string        `json:"previous_status"`
	TransitionedBy *identityJSON `json:"transitioned_by"`
	TransitionedAt string        `json:"transitioned_at"`
	Approver       *identityJSON `json:"approver"`
	ApprovedAt     string        `json:"approved_at"`
	RejectedAt     string        `json:"rejected_at"`
	ApprovalGroup  string        `json:"approval_group"`
	Comment        string        `json:"comment"`
	Reason         string        `json:"reason"`
}

type linksJSON struct {
	Repositories []string `json:"repositories"`
	Commits      []string `json:"commits"`
	Changes      []struct {
		Repository string `json:"repository"`
		Number     *int64 `json:"number"`
	} `json:"changes"`
}

func (x *Extractor) ticket(e *ce.Event) (*Fact, error) {
	var d ticketData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	t := &TicketFact{
		Key:            ticketKey(c.required("key", d.Key)),
		System:         c.oneOf("system", c.required("system", d.System), "jira", "servicenow", "other"),
		Type:           c.oneOf("ticket_type", d.TicketType, "normal", "standard", "emergency"),
		RawType:        d.RawType,
		Status:         d.Status,
		PreviousStatus: d.PreviousStatus,
		Summary:        d.Summary,
		URL:            d.URL,
		RequestedBy:    c.identity("requested_by", d.RequestedBy, false),
		ApprovalGroup:  d.ApprovalGroup,
		Comment:        d.Comment,
		Reason:         d.Reason,
	}
	if strings.ContainsAny(t.Key, " \t\n") {
		c.fail("key", "must be one token, got %q", d.Key)
	}
	f := &Fact{Ticket: t}
	switch e.Type {
	case TypeTicketCreated:
		f.Kind, t.Action = KindTicketState, "created"
		f.Time = c.time("created_at", d.CreatedAt)
	case TypeTicketTransitioned:
		f.Kind, t.Action = KindTicketState, "transitioned"
		c.required("status", d.Status)
		t.By = c.identity("transitioned_by", d.TransitionedBy, false)
		f.Time = c.time("transitioned_at", d.TransitionedAt)
	case TypeTicketApproved:
		f.Kind, t.Action = KindTicketAppr, "approved"
		t.By = c.identity("approver", d.Approver, true)
		f.Time = c.requiredTime("approved_at", d.ApprovedAt)
	case TypeTicketRejected:
		f.Kind, t.Action = KindTicketAppr, "rejected"
		t.By = c.identity("approver", d.Approver, true)
		f.Time = c.requiredTime("rejected_at", d.RejectedAt)
	}
	if w := d.PlannedWindow; w != nil {
		t.PlannedWindow = &Window{Start: c.time("planned_window/start", w.Start), End: c.time("planned_window/end", w.End)}
	}
	f.Keys = []Key{TicketKey(t.Key)}
	if l := d.Links; l != nil {
		t.Links = &TicketLinks{}
		for i, r := range l.Repositories {
			r = c.repo(fmt.Sprintf("links/repositories/%d", i), r, true)
			t.Links.Repositories = append(t.Links.Repositories, r)
			f.Keys = append(f.Keys, RepoKey(r))
		}
		t.Links.Commits = c.shas("links/commits", l.Commits)
		for i, ch := range l.Changes {
			p := fmt.Sprintf("links/changes/%d", i)
			r := c.repo(p+"/repository", ch.Repository, true)
			n, _ := c.change(p, &changeJSON{Number: ch.Number}, true)
			t.Links.Changes = append(t.Links.Changes, ChangeRef{Repository: r, Number: n})
			f.Keys = append(f.Keys, ChangeKey(r, n))
		}
		slices.Sort(t.Links.Repositories)
		t.Links.Repositories = slices.Compact(t.Links.Repositories)
		slices.Sort(t.Links.Commits)
		t.Links.Commits = slices.Compact(t.Links.Commits)
		slices.SortFunc(t.Links.Changes, func(a, b ChangeRef) int {
			if c := strings.Compare(a.Repository, b.Repository); c != 0 {
				return c
			}
			return int(a.Number - b.Number)
		})
		t.Links.Changes = slices.Compact(t.Links.Changes)
		// A linked commit names no repository: it is linked in each
		// repository the ticket covers (a SHA of another repository
		// matches nothing there).
		for _, r := range t.Links.Repositories {
			for _, s := range t.Links.Commits {
				f.Keys = append(f.Keys, CommitKey(r, s))
			}
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	return f, nil
}
