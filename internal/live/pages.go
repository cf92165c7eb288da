package live

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"html/template"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/evidencepipeline/evidence/processors/correlate"
	"github.com/evidencepipeline/evidence/processors/evaluate"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "–"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"join": strings.Join,
	// shortID shortens a long id for the eye; the link and the title
	// beside it keep the full id.
	"shortID": func(s string) string {
		r := []rune(s)
		if len(r) <= 44 {
			return s
		}
		return string(r[:28]) + "…" + string(r[len(r)-12:])
	},
	"who": func(id *correlate.Identity) string {
		if id == nil || id.Login == "" {
			return "–"
		}
		return id.Login
	},
	"first": func(ss []string) string {
		if len(ss) == 0 {
			return ""
		}
		return ss[0]
	},
	"changeURL": func(id string) string { return "/live/changes/" + id },
	"breakdown": func(title, id, what string, shares bool, rows []Breakdown) map[string]any {
		return map[string]any{"Title": title, "ID": id, "What": what, "Shares": shares, "Rows": rows}
	},
}

// streamItem is a verdict as the page shows it in the stream.
type streamItem struct {
	Seq     uint64
	Verdict evaluate.Verdict
	Failing []evaluate.Result
}

func toStreamItems(items []item) []streamItem {
	out := make([]streamItem, len(items))
	for i, it := range items {
		s := streamItem{Seq: it.Seq, Verdict: it.Verdict}
		for _, r := range it.Verdict.Results {
			if r.Status == evaluate.Fail {
				s.Failing = append(s.Failing, r)
			}
		}
		out[i] = s
	}
	return out
}

func (h *Handler) render(w http.ResponseWriter, code int, name string, data any) {
	var buf bytes.Buffer
	if err := h.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		h.log.Error("live: render", "template", name, "err", err)
		http.Error(w, "live page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	if _, _, err := trendRange(r.URL.Query().Get("range"), h.cfg.Now()); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// The three parts are read side by side: the page waits for the
	// slowest, not for their sum.
	var (
		wg      sync.WaitGroup
		p       Posture
		changes []ChangeRow
		err     error
	)
	wg.Add(2)
	go func() { defer wg.Done(); p = h.posture(ctx) }()
	go func() { defer wg.Done(); changes, err = h.searchChanges(ctx, Filter{}, 20) }()
	tr, terr := h.trend(ctx, r.URL.Query().Get("range"))
	wg.Wait()
	if terr != nil {
		http.Error(w, terr.Error(), http.StatusBadRequest)
		return
	}
	h.render(w, http.StatusOK, "index.html", map[string]any{
		"TrendData":   trendData(tr),
		"Title":       "Compliance posture",
		"Posture":     p,
		"Attention":   attentionOf(p, h.cfg.Now()),
		"Stream":      toStreamItems(h.broker.recent(50)),
		"After":       h.broker.last(),
		"Changes":     changes,
		"ChangesErr":  errText(err),
		"Query":       "",
		"Production":  strings.Join(h.cfg.ProductionEnvironments, ", "),
		"Unavailable": !p.Available,
	})
}

func (h *Handler) postureFragment(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	p := h.posture(ctx)
	h.render(w, http.StatusOK, "posture", map[string]any{"Posture": p, "Attention": attentionOf(p, h.cfg.Now())})
}

func (h *Handler) postureJSON(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	p := h.posture(ctx)
	w.Header().Set("Content-Type", "application/json")
	code := http.StatusOK
	if !p.Available {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(p)
}

func (h *Handler) changes(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	v := r.URL.Query()
	f := Filter{Q: v.Get("q"), Service: v.Get("service"), Team: v.Get("team"), Control: v.Get("control")}
	changes, err := h.searchChanges(ctx, f, 200)
	h.render(w, http.StatusOK, "changes.html", map[string]any{
		"Title": "Changes", "Changes": changes, "ChangesErr": errText(err), "Query": f.Q, "Filter": f,
		"CSV": "/live/changes.csv?" + f.Query(),
	})
}

func (h *Handler) trace(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	var (
		rec    correlate.Record
		found  bool
		err    error
		source = "live state"
	)
	if h.cfg.Changes != nil {
		rec, found, err = h.cfg.Changes.Change(ctx, id)
	}
	st := h.cfg.Store()
	if !found && st != nil {
		var serr error
		rec, found, serr = recordFromStore(ctx, st, id)
		source = "ClickHouse copy"
		if err == nil {
			err = serr
		}
	}
	data := map[string]any{"Title": "Change " + id, "ID": id, "Source": source, "Query": ""}
	if !found {
		msg := "no change record " + id
		if err != nil {
			msg += " (" + err.Error() + ")"
		}
		data["Message"] = msg
		h.render(w, http.StatusNotFound, "trace.html", data)
		return
	}
	data["Record"] = rec
	if st == nil {
		data["ControlsErr"] = errNoStore.Error()
	} else {
		controls, cerr := h.controlsOf(ctx, st, id)
		verdicts, verr := h.verdictsOf(ctx, st, id)
		data["Controls"], data["Verdicts"] = controls, verdicts
		data["ControlsErr"], data["VerdictsErr"] = errText(cerr), errText(verr)
		data["Status"], _ = overall(controls)
	}
	h.render(w, http.StatusOK, "trace.html", data)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// changesCSV is the filtered list of changes as CSV (the same filters as
// /live/changes, up to 10,000 rows), for the compliance meeting.
func (h *Handler) changesCSV(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.queryCtx(r)
	defer cancel()
	v := r.URL.Query()
	f := Filter{Q: v.Get("q"), Service: v.Get("service"), Team: v.Get("team"), Control: v.Get("control")}
	changes, err := h.searchChanges(ctx, f, 10000)
	if err != nil {
		http.Error(w, "changes unavailable: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="changes.csv"`)
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"change", "status", "failing", "repository", "pr", "title", "author", "commit", "tickets", "environments", "services", "at"})
	for _, c := range changes {
		pr := ""
		if c.PR > 0 {
			pr = strconv.FormatInt(c.PR, 10)
		}
		at := ""
		if !c.At.IsZero() {
			at = c.At.Format(time.RFC3339)
		}
		_ = cw.Write([]string{c.ID, c.Status, strings.Join(c.Failing, " "), c.Repository, pr, c.Title, c.Author, c.Commit,
			strings.Join(c.Tickets, " "), strings.Join(c.Environments, " "), strings.Join(c.Services, " "), at})
	}
	cw.Flush()
}
