package report

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/evidencepipeline/evidence/internal/store"
)

// Access is the user-access report of a period (issue 17, docs/access.md):
// who held a permission on each repository at any instant of the period,
// with the events that granted and ended it. It reads the newest version
// of each repository's access record in access_grants.
type Access struct {
	From string `json:"from"`
	To   string `json:"to"`
	// Permissions are the permissions reported (write, maintain, admin by
	// default).
	Permissions []string `json:"permissions"`
	// Repositories are the repositories reported, sorted: those named, or
	// the production repositories the access stage judged for a quarter
	// overlapping the period, or (all) every repository with a grant. A
	// repository without any line is still listed: nobody held the
	// permissions there.
	Repositories []string     `json:"repositories"`
	Selection    string       `json:"selection"` // named, production or all
	Lines        []AccessLine `json:"lines"`
}

// AccessLine is one period of one principal's permission on a repository.
type AccessLine struct {
	Repository         string `json:"repository"`
	PrincipalKind      string `json:"principal_kind"`
	PrincipalLogin     string `json:"principal_login"`
	PrincipalID        string `json:"principal_id,omitempty"`
	Permission         string `json:"permission"`
	PlatformPermission string `json:"platform_permission,omitempty"`
	// HeldFrom is when it was granted (or the snapshot that first showed
	// it); HeldTo when it ended, empty while still held.
	HeldFrom   string `json:"held_from"`
	HeldTo     string `json:"held_to,omitempty"`
	Action     string `json:"action"`
	GrantedBy  string `json:"granted_by,omitempty"`
	Approver   string `json:"approver,omitempty"`
	Ticket     string `json:"ticket,omitempty"`
	GrantEvent string `json:"grant_event"`
	EndAction  string `json:"end_action,omitempty"`
	EndedBy    string `json:"ended_by,omitempty"`
	EndEvent   string `json:"end_event,omitempty"`
}

// AccessQuery chooses what the access report covers.
type AccessQuery struct {
	From, To     time.Time // [From, To)
	Repositories []string  // named repositories; empty: the production ones
	All          bool      // every repository with a grant
	Permissions  []string  // empty: write, maintain, admin
}

// AccessPermissions are the repository permissions a query may name.
var AccessPermissions = []string{"read", "triage", "write", "maintain", "admin"}

// LoadAccess reads the access report.
func LoadAccess(ctx context.Context, st *store.Store, q AccessQuery) (Access, error) {
	if !q.From.Before(q.To) {
		return Access{}, fmt.Errorf("the period is empty: --from %s is not before --to %s", stamp(q.From), stamp(q.To))
	}
	perms := q.Permissions
	if len(perms) == 0 {
		perms = []string{"write", "maintain", "admin"}
	}
	for _, p := range perms {
		if !slices.Contains(AccessPermissions, p) {
			return Access{}, fmt.Errorf("permission %q: want one of %s", p, strings.Join(AccessPermissions, ", "))
		}
	}
	a := Access{From: stamp(q.From), To: stamp(q.To), Permissions: perms, Lines: []AccessLine{}}
	var err error
	switch {
	case len(q.Repositories) > 0:
		a.Selection = "named"
		for _, r := range q.Repositories {
			a.Repositories = append(a.Repositories, strings.ToLower(strings.TrimSpace(r)))
		}
	case q.All:
		a.Selection = "all"
	default:
		a.Selection = "production"
		if a.Repositories, err = judgedRepositories(ctx, st, q.From, q.To); err != nil {
			return a, err
		}
	}
	// The newest version of each repository's record (its rows are written
	// again with the same version at every interval: FINAL keeps one),
	// periods overlapping [From, To).
	rows, err := st.Conn().Query(ctx, `SELECT repository, principal_kind, principal_login, principal_id, permission,
		platform_permission, valid_from_ns, valid_to_ns, action, granted_by, approver, ticket, grant_event, end_action,
		ended_by, end_event
		FROM access_grants FINAL
		WHERE (repository, version) IN (SELECT repository, max(version) FROM access_grants GROUP BY repository)
		  AND NOT startsWith(repository, 'org:')
		  AND valid_from_ns < ? AND (valid_to_ns = 0 OR valid_to_ns > ?)
		ORDER BY repository, principal_kind, principal_login, valid_from_ns, grant_event`, q.To.UnixNano(), q.From.UnixNano())
	if err != nil {
		return a, fmt.Errorf("access_grants: %w", err)
	}
	defer rows.Close()
	seen := map[string]bool{}
	for _, r := range a.Repositories {
		seen[r] = true
	}
	for rows.Next() {
		var l AccessLine
		var fromNS, toNS int64
		if err := rows.Scan(&l.Repository, &l.PrincipalKind, &l.PrincipalLogin, &l.PrincipalID, &l.Permission, &l.PlatformPermission,
			&fromNS, &toNS, &l.Action, &l.GrantedBy, &l.Approver, &l.Ticket, &l.GrantEvent, &l.EndAction, &l.EndedBy, &l.EndEvent); err != nil {
			return a, fmt.Errorf("access_grants: %w", err)
		}
		if !slices.Contains(perms, l.Permission) {
			continue
		}
		if a.Selection != "all" && !seen[l.Repository] {
			continue
		}
		if a.Selection == "all" && !seen[l.Repository] {
			seen[l.Repository] = true
			a.Repositories = append(a.Repositories, l.Repository)
		}
		l.HeldFrom = stamp(time.Unix(0, fromNS))
		if toNS != 0 {
			l.HeldTo = stamp(time.Unix(0, toNS))
		}
		a.Lines = append(a.Lines, l)
	}
	if err := rows.Err(); err != nil {
		return a, fmt.Errorf("access_grants: %w", err)
	}
	slices.Sort(a.Repositories)
	a.Repositories = slices.Compact(a.Repositories)
	if a.Repositories == nil {
		a.Repositories = []string{}
	}
	return a, nil
}

// judgedRepositories are the repositories the access stage judged (AC
// results, subject access:<repository>@<YYYY>-Q<n>) for a quarter that
// overlaps [from, to): the production repositories of the period.
func judgedRepositories(ctx context.Context, st *store.Store, from, to time.Time) ([]string, error) {
	rows, err := st.Conn().Query(ctx, `SELECT DISTINCT change_id FROM control_results WHERE startsWith(change_id, 'access:')`)
	if err != nil {
		return nil, fmt.Errorf("control_results: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("control_results: %w", err)
		}
		repo, qFrom, qTo, ok := accessSubject(id)
		if ok && qFrom.Before(to) && qTo.After(from) {
			out = append(out, repo)
		}
	}
	return out, rows.Err()
}

// accessSubject reads access:<repository>@<YYYY>-Q<n> and its quarter.
func accessSubject(id string) (repo string, from, to time.Time, ok bool) {
	rest, found := strings.CutPrefix(id, "access:")
	i := strings.LastIndexByte(rest, '@')
	if !found || i <= 0 {
		return "", from, to, false
	}
	label := rest[i+1:]
	year, q, found := strings.Cut(label, "-Q")
	y, err1 := strconv.Atoi(year)
	n, err2 := strconv.Atoi(q)
	if !found || err1 != nil || err2 != nil || n < 1 || n > 4 {
		return "", from, to, false
	}
	from = time.Date(y, time.Month(3*(n-1)+1), 1, 0, 0, 0, 0, time.UTC)
	return rest[:i], from, from.AddDate(0, 3, 0), true
}

// AccessColumns are the columns of the CSV and XLSX access report.
var AccessColumns = []string{"repository", "principal_kind", "principal_login", "principal_id", "permission",
	"platform_permission", "held_from", "held_to", "action", "granted_by", "approver", "ticket", "grant_event",
	"end_action", "ended_by", "end_event"}

func (l AccessLine) cells() []string {
	return []string{l.Repository, l.PrincipalKind, l.PrincipalLogin, l.PrincipalID, l.Permission, l.PlatformPermission,
		l.HeldFrom, l.HeldTo, l.Action, l.GrantedBy, l.Approver, l.Ticket, l.GrantEvent, l.EndAction, l.EndedBy, l.EndEvent}
}

// Write writes the report in format: csv (one line per period held; a
// repository where nobody held the permissions gets a line with only its
// name), json, or xlsx (the lines, and a sheet saying what was selected).
func (a Access) Write(w io.Writer, format string) error {
	switch format {
	case "json":
		b, err := json.MarshalIndent(a, "", "  ")
		if err != nil {
			return err
		}
		_, err = w.Write(append(b, '\n'))
		return err
	case "csv":
		bw := bufio.NewWriter(w)
		cw := csv.NewWriter(bw)
		if err := cw.WriteAll(a.table()); err != nil {
			return err
		}
		return bw.Flush()
	case "xlsx":
		f := excelize.NewFile()
		defer f.Close()
		if err := f.SetSheetName("Sheet1", "access"); err != nil {
			return err
		}
		for i, row := range a.table() {
			cell, err := excelize.CoordinatesToCellName(1, i+1)
			if err != nil {
				return err
			}
			if err := f.SetSheetRow("access", cell, &row); err != nil {
				return err
			}
		}
		if _, err := f.NewSheet("about"); err != nil {
			return err
		}
		about := [][]string{{"report", "access"}, {"from", a.From}, {"to (excluded)", a.To},
			{"permissions", strings.Join(a.Permissions, ", ")}, {"repositories", a.Selection}}
		for i, row := range about {
			if err := f.SetSheetRow("about", "A"+strconv.Itoa(i+1), &row); err != nil {
				return err
			}
		}
		return f.Write(w)
	}
	return fmt.Errorf("format %q: want csv, json or xlsx", format)
}

// table is the header and the lines, repository by repository, with an
// empty line for each repository nobody held the permissions on.
func (a Access) table() [][]string {
	out := [][]string{AccessColumns}
	byRepo := map[string][]AccessLine{}
	for _, l := range a.Lines {
		byRepo[l.Repository] = append(byRepo[l.Repository], l)
	}
	for _, r := range a.Repositories {
		if len(byRepo[r]) == 0 {
			row := make([]string, len(AccessColumns))
			row[0] = r
			out = append(out, row)
		}
		for _, l := range byRepo[r] {
			out = append(out, l.cells())
		}
	}
	return out
}
