package live

import (
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/internal/store"
)

// Ranges are the trend's periods: the last 30 and 90 days (today
// included) and the current calendar quarter, in UTC days.
var Ranges = []string{"30d", "90d", "quarter"}

const nsPerDay = int64(24 * time.Hour)

// trendRange is the first day of a range ending today (UTC) and its
// number of days.
func trendRange(name string, now time.Time) (time.Time, int, error) {
	today := now.UTC().Truncate(24 * time.Hour)
	switch name {
	case "", "30d":
		return today.AddDate(0, 0, -29), 30, nil
	case "90d":
		return today.AddDate(0, 0, -89), 90, nil
	case "quarter":
		q := time.Date(today.Year(), time.Month((int(today.Month())-1)/3*3+1), 1, 0, 0, 0, 0, time.UTC)
		return q, int(today.Sub(q)/(24*time.Hour)) + 1, nil
	}
	return time.Time{}, 0, fmt.Errorf("unknown trend range %q: want one of %s", name, strings.Join(Ranges, ", "))
}

// ControlCount is how many deployments of a day failed one control.
type ControlCount struct {
	Control string `json:"control"`
	Count   int    `json:"count"`
}

// TrendDay is one UTC day of production deployments and their verdicts at
// the moment of deployment (deployment_verdicts).
type TrendDay struct {
	Day         string `json:"day"` // 2006-01-02
	Deployments int    `json:"deployments"`
	Passing     int    `json:"passing"`
	Failing     int    `json:"failing"`
	Pending     int    `json:"pending"`
	// Share is the percentage passing every control; -1 with none.
	Share float64 `json:"share"`
	// Failures counts the failing deployments by control (a deployment
	// failing two controls counts under each), by control id.
	Failures []ControlCount `json:"failures"`
}

// Trend is the posture per day over a range.
type Trend struct {
	Available bool       `json:"available"`
	Error     string     `json:"error,omitempty"`
	Range     string     `json:"range"`
	From      string     `json:"from"`
	To        string     `json:"to"`
	Days      []TrendDay `json:"days"`
	// Controls are the controls failing on some day of the range, sorted.
	Controls []string `json:"controls"`
	// The range's deployments by service and by team (most failing
	// first), and its failing deployments by control.
	Services  []Breakdown `json:"services"`
	Teams     []Breakdown `json:"teams"`
	ByControl []Breakdown `json:"by_control"`
}

// Breakdown is one row of a breakdown: the range's production deployments
// of a service, a team or failing a control, and the filtered list of
// changes it links to.
type Breakdown struct {
	Name        string `json:"name"`
	Deployments int    `json:"deployments"`
	Passing     int    `json:"passing"`
	Failing     int    `json:"failing"`
	Link        string `json:"link"`
}

// ShareText is the share passing every control for people.
func (b Breakdown) ShareText() string {
	if b.Deployments == 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(b.Passing)/float64(b.Deployments))
}

// readBreakdowns groups the range's verdicts by service (and through
// service_teams, or the repository's owner, by team); the controls come
// from the days' failures.
func readBreakdowns(ctx context.Context, st *store.Store, fromNs, toNs int64, t *Trend) error {
	teamOf := map[string]string{}
	rows, err := st.Conn().Query(ctx, "SELECT service, team FROM service_teams FINAL")
	if err != nil {
		return fmt.Errorf("read service_teams: %w", err)
	}
	for rows.Next() {
		var s, tm string
		if err := rows.Scan(&s, &tm); err != nil {
			rows.Close()
			return fmt.Errorf("read service_teams: %w", err)
		}
		teamOf[s] = tm
	}
	rows.Close()
	rows, err = st.Conn().Query(ctx, `SELECT service, repository, count(), countIf(verdict = 'pass'), countIf(verdict = 'fail')
FROM deployment_verdicts FINAL WHERE deployed_at_ns >= ? AND deployed_at_ns < ? GROUP BY service, repository`, fromNs, toNs)
	if err != nil {
		return fmt.Errorf("read deployment_verdicts by service: %w", err)
	}
	defer rows.Close()
	svc, team := map[string]*Breakdown{}, map[string]*Breakdown{}
	add := func(m map[string]*Breakdown, name, link string, n, p, f uint64) {
		b := m[name]
		if b == nil {
			b = &Breakdown{Name: name, Link: link}
			m[name] = b
		}
		b.Deployments += int(n)
		b.Passing += int(p)
		b.Failing += int(f)
	}
	for rows.Next() {
		var s, repo string
		var n, p, f uint64
		if err := rows.Scan(&s, &repo, &n, &p, &f); err != nil {
			return fmt.Errorf("read deployment_verdicts by service: %w", err)
		}
		add(svc, s, "/live/changes?"+Filter{Service: s}.Query(), n, p, f)
		tm, ok := teamOf[s]
		if !ok {
			tm = ownerOf(repo)
		}
		add(team, tm, "/live/changes?"+Filter{Team: tm}.Query(), n, p, f)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read deployment_verdicts by service: %w", err)
	}
	t.Services, t.Teams = sortBreakdown(svc), sortBreakdown(team)
	ctl := map[string]*Breakdown{}
	for _, d := range t.Days {
		for _, f := range d.Failures {
			add(ctl, f.Control, "/live/changes?"+Filter{Control: f.Control}.Query(), uint64(f.Count), 0, uint64(f.Count))
		}
	}
	t.ByControl = sortBreakdown(ctl)
	return nil
}

// sortBreakdown orders rows by failing deployments, most first, then name.
func sortBreakdown(m map[string]*Breakdown) []Breakdown {
	out := make([]Breakdown, 0, len(m))
	for _, b := range m {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b Breakdown) int {
		if a.Failing != b.Failing {
			return b.Failing - a.Failing
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}

// trend reads the posture per day of the named range.
func (h *Handler) trend(ctx context.Context, name string) (Trend, error) {
	from, n, err := trendRange(name, h.cfg.Now())
	if err != nil {
		return Trend{}, err
	}
	if name == "" {
		name = "30d"
	}
	t := Trend{Range: name, From: from.Format(time.DateOnly), To: from.AddDate(0, 0, n-1).Format(time.DateOnly), Days: make([]TrendDay, n), Controls: []string{},
		Services: []Breakdown{}, Teams: []Breakdown{}, ByControl: []Breakdown{}}
	for i := range t.Days {
		t.Days[i] = TrendDay{Day: from.AddDate(0, 0, i).Format(time.DateOnly), Share: -1, Failures: []ControlCount{}}
	}
	st := h.cfg.Store()
	if st == nil {
		t.Error = errNoStore.Error()
		return t, nil
	}
	if err := readTrend(ctx, st, from.UnixNano(), n, &t); err != nil {
		t.Error = err.Error()
		return t, nil
	}
	if err := readBreakdowns(ctx, st, from.UnixNano(), from.UnixNano()+int64(n)*nsPerDay, &t); err != nil {
		t.Error = err.Error()
		return t, nil
	}
	t.Available = true
	return t, nil
}

// readTrend fills the days from deployment_verdicts: one grouped count
// per day, and the failing controls unrolled per day. Days are integer
// divisions of the nanosecond timestamps (UTC), which every ClickHouse
// release reads alike.
func readTrend(ctx context.Context, st *store.Store, fromNs int64, n int, t *Trend) error {
	first := fromNs / nsPerDay
	to := fromNs + int64(n)*nsPerDay
	conn := st.Conn()
	rows, err := conn.Query(ctx, `SELECT intDiv(deployed_at_ns, 86400000000000) AS d, count(), countIf(verdict = 'pass'), countIf(verdict = 'fail'), countIf(verdict = 'pending')
FROM deployment_verdicts FINAL WHERE deployed_at_ns >= ? AND deployed_at_ns < ? GROUP BY d`, fromNs, to)
	if err != nil {
		return fmt.Errorf("read deployment_verdicts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var d int64
		var total, pass, fail, pend uint64
		if err := rows.Scan(&d, &total, &pass, &fail, &pend); err != nil {
			return fmt.Errorf("read deployment_verdicts: %w", err)
		}
		i := d - first
		if i < 0 || i >= int64(n) {
			continue
		}
		day := &t.Days[i]
		day.Deployments, day.Passing, day.Failing, day.Pending = int(total), int(pass), int(fail), int(pend)
		if total > 0 {
			day.Share = 100 * float64(pass) / float64(total)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read deployment_verdicts: %w", err)
	}
	rows.Close()

	crow, err := conn.Query(ctx, `SELECT intDiv(deployed_at_ns, 86400000000000) AS d, c, count()
FROM (SELECT deployed_at_ns, failing FROM deployment_verdicts FINAL WHERE deployed_at_ns >= ? AND deployed_at_ns < ? AND verdict = 'fail')
ARRAY JOIN failing AS c GROUP BY d, c ORDER BY d, c`, fromNs, to)
	if err != nil {
		return fmt.Errorf("read deployment_verdicts failures: %w", err)
	}
	defer crow.Close()
	seen := map[string]bool{}
	for crow.Next() {
		var d int64
		var c string
		var k uint64
		if err := crow.Scan(&d, &c, &k); err != nil {
			return fmt.Errorf("read deployment_verdicts failures: %w", err)
		}
		i := d - first
		if i < 0 || i >= int64(n) {
			continue
		}
		t.Days[i].Failures = append(t.Days[i].Failures, ControlCount{Control: c, Count: int(k)})
		if !seen[c] {
			seen[c] = true
			t.Controls = append(t.Controls, c)
		}
	}
	if err := crow.Err(); err != nil {
		return fmt.Errorf("read deployment_verdicts failures: %w", err)
	}
	slices.Sort(t.Controls)
	return nil
}

// palette colours the controls in the chart; each colour has its label
// beside it in the legend and in every bar's title.
var palette = []string{"#b42318", "#a15c00", "#5b4bb7", "#0e7490", "#9d174d", "#4d7c0f", "#1d4ed8", "#7c2d12", "#374151"}

func colourOf(controls []string, c string) string {
	i := slices.Index(controls, c)
	if i < 0 {
		i = len(palette) - 1
	}
	return palette[i%len(palette)]
}

// Chart geometry, in the SVG's own units (it scales to its box).
const (
	chartW, shareH, gapH, failH, padL, padB = 900.0, 120.0, 18.0, 90.0, 40.0, 18.0
)

// trendSVG draws the trend: the share per day as a line (0–100 %, a point
// per day with deployments) above the failing deployments per day,
// stacked by control. Drawn server-side: no script, no library.
func trendSVG(t Trend) template.HTML {
	var b strings.Builder
	n := len(t.Days)
	height := shareH + gapH + failH + padB
	// 10 units above the 100 % line for its label.
	fmt.Fprintf(&b, `<svg id="trend-chart" viewBox="0 -10 %.0f %.0f" role="img" aria-labelledby="trend-title" focusable="false">`, chartW, height+10)
	step := (chartW - padL) / float64(n)
	maxFail := 1
	for _, d := range t.Days {
		s := 0
		for _, f := range d.Failures {
			s += f.Count
		}
		maxFail = max(maxFail, s)
	}
	fmt.Fprintf(&b, `<title id="trend-title">Share of production deployments passing every control per day, %s to %s, and failing deployments by control</title>`, t.From, t.To)
	// Axes and grid.
	for _, pct := range []int{0, 50, 100} {
		y := shareH - shareH*float64(pct)/100
		fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e3e6eb"/><text x="%.0f" y="%.1f" font-size="10" text-anchor="end" fill="#6b7280">%d%%</text>`, padL, chartW, y, y, padL-4, y+3, pct)
	}
	base := shareH + gapH + failH
	fmt.Fprintf(&b, `<line x1="%.0f" x2="%.0f" y1="%.1f" y2="%.1f" stroke="#e3e6eb"/><text x="%.0f" y="%.1f" font-size="10" text-anchor="end" fill="#6b7280">%d</text>`, padL, chartW, base, base, padL-4, base, 0)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" font-size="10" text-anchor="end" fill="#6b7280">%d</text>`, padL-4, shareH+gapH+8, maxFail)
	var line []string
	for i, d := range t.Days {
		x := padL + step*float64(i) + step/2
		fmt.Fprintf(&b, `<g class="day" data-day="%s" data-deployments="%d" data-passing="%d" data-failing="%d" data-pending="%d" data-share="%s" data-failures="%s">`,
			d.Day, d.Deployments, d.Passing, d.Failing, d.Pending, shareAttr(d.Share), template.HTMLEscapeString(failuresAttr(d.Failures)))
		fmt.Fprintf(&b, `<title>%s: %s</title>`, d.Day, template.HTMLEscapeString(dayText(d)))
		// A transparent column makes the whole day hoverable.
		fmt.Fprintf(&b, `<rect x="%.1f" y="0" width="%.1f" height="%.0f" fill="transparent"/>`, padL+step*float64(i), step, base)
		y := base
		for _, f := range d.Failures {
			h := failH * float64(f.Count) / float64(maxFail)
			y -= h
			fmt.Fprintf(&b, `<rect class="fail-bar" data-control="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`,
				template.HTMLEscapeString(f.Control), padL+step*float64(i)+step*0.15, y, step*0.7, h, colourOf(t.Controls, f.Control))
		}
		if d.Share >= 0 {
			py := shareH - shareH*d.Share/100
			line = append(line, fmt.Sprintf("%.1f,%.1f", x, py))
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="#137a3a"/>`, x, py)
		}
		if i == 0 || i == n-1 || ((n > 31 && i%14 == 0 || n <= 31 && i%7 == 0) && n-1-i >= n/10) {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" font-size="10" text-anchor="middle" fill="#6b7280">%s</text>`, x, height-4, d.Day[5:])
		}
		b.WriteString(`</g>`)
	}
	if len(line) > 1 {
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="#137a3a" stroke-width="1.5"/>`, strings.Join(line, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func shareAttr(s float64) string {
	if s < 0 {
		return ""
	}
	return fmt.Sprintf("%.2f", s)
}

func failuresAttr(fs []ControlCount) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = fmt.Sprintf("%s:%d", f.Control, f.Count)
	}
	return strings.Join(parts, " ")
}

func dayText(d TrendDay) string {
	if d.Deployments == 0 {
		return "no production deployments"
	}
	s := fmt.Sprintf("%s passing (%d of %d; %d failed, %d pending)", shareAttr(d.Share)+"%", d.Passing, d.Deployments, d.Failing, d.Pending)
	if len(d.Failures) > 0 {
		s += "; failing: " + failuresAttr(d.Failures)
	}
	return s
}

// legend is the controls with their colours, the label beside each.
type legendItem struct {
	Control, Colour string
}

func legend(t Trend) []legendItem {
	out := make([]legendItem, len(t.Controls))
	for i, c := range t.Controls {
		out[i] = legendItem{c, colourOf(t.Controls, c)}
	}
	return out
}

// trendData is what the trend template renders.
func trendData(t Trend) map[string]any {
	return map[string]any{"Trend": t, "Chart": trendSVG(t), "Legend": legend(t), "Ranges": Ranges}
}

func (h *Handler) trendFragment(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	t, err := h.trend(ctx, r.URL.Query().Get("range"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h.render(w, http.StatusOK, "trend", trendData(t))
}

func (h *Handler) trendJSON(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	t, err := h.trend(ctx, r.URL.Query().Get("range"))
	if err != nil {
		p := problem.New(problem.InvalidParameter, err.Error())
		p.Errors = []problem.FieldError{{Field: "range", Detail: err.Error()}}
		problem.Write(w, r, p)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	code := http.StatusOK
	if !t.Available {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(t)
}
