package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/evidencepipeline/evidence/internal/report"
)

// writeTraceText prints a change's trace for people: the record as
// `evidence changes show --events` prints it, then the control results in
// force and their history, the verdict at each deployment, and the raw
// archived events behind it all. Late evidence noted beside a verdict is
// listed under it; the verdict stands as decided.
func writeTraceText(w io.Writer, t report.Trace) error {
	p := &recordWriter{w: w, events: true, roles: map[string][]string{}}
	p.line(0, "Trace of %s", t.ChangeID)
	integrity := "intact (the SHA-256 of the stored record is its record_hash)"
	if !t.RecordIntact {
		integrity = "ALTERED: the SHA-256 of the stored record is not its record_hash"
	}
	p.field(2, "record hash", t.Change.RecordHash)
	p.field(2, "record", integrity)
	p.field(2, "events", fmt.Sprintf("%d behind the record", t.Change.EventCount))
	if t.Change.Retired {
		p.field(2, "FLAG", "RETIRED: the correlator no longer derives this record")
	}
	p.blank()
	var rec changeRecord
	if err := json.Unmarshal(t.Record, &rec); err != nil {
		p.line(0, "The stored record is not a change record (%v): %s", err, string(t.Record))
	} else {
		writeRecord(w, rec, true)
	}

	p.section("Control results in force", len(t.InForce))
	for _, r := range t.InForce {
		p.result(r)
	}
	p.section("Control results history (oldest first)", len(t.Results))
	for _, r := range t.Results {
		p.line(2, "%s", joinNonEmpty("  ", r.EvaluatedAt, r.Control, strings.ToUpper(r.Status), prefixed("trigger ", r.Trigger),
			prefixed("record ", shortSHA(r.RecordHash)), prefixed("bundle ", shortSHA(r.BundleHash))))
	}
	p.section("Verdicts at deployment", len(t.Verdicts))
	for _, v := range t.Verdicts {
		p.line(2, "%s/%s  %s  deployed %s  %s", v.Environment, v.Service, v.DeploymentKey, v.DeployedAt, strings.ToUpper(v.Verdict))
		p.field(4, "failing", strings.Join(v.Failing, ", "))
		p.field(4, "pending", strings.Join(v.Pending, ", "))
		p.field(4, "waived", strings.Join(v.Waived, ", "))
		p.field(4, "deployer", v.Deployer)
		p.field(4, "judged", joinNonEmpty("  ", prefixed("record ", shortSHA(v.RecordHash)), prefixed("bundle ", shortSHA(v.BundleHash)),
			prefixed("decided ", v.DecidedAt)))
		if len(v.Late) > 0 {
			p.line(4, "late evidence (arrived after the decision; the decided verdict %s stands, unchanged):", strings.ToUpper(v.Verdict))
			for _, l := range v.Late {
				p.line(6, "%s  %s -> %s  noted %s", l.Control, strings.ToUpper(l.Decided), strings.ToUpper(l.Late), l.NotedAt)
				for _, reason := range l.Reasons {
					p.field(8, "reason", reason)
				}
				for _, e := range l.Events {
					p.field(8, "late event", e)
				}
				p.field(8, "judged", joinNonEmpty("  ", prefixed("record ", shortSHA(l.RecordHash)),
					prefixed("bundle ", shortSHA(l.BundleHash)), prefixed("cutoff ", l.ArrivedBy)))
			}
		}
	}
	p.section("Raw events (the archive's rows, in stream order)", len(t.Events))
	for _, e := range t.Events {
		p.line(2, "#%d  %s  %s", e.StreamSeq, e.Type, e.Ref())
		p.field(4, "time", e.Time)
		p.field(4, "received", e.ReceivedAt)
		p.field(4, "subject", e.Subject)
		p.field(4, "hash", e.Hash)
		switch {
		case len(e.Data) > 0:
			var b bytes.Buffer
			if json.Indent(&b, e.Data, strings.Repeat(" ", 6), "  ") == nil {
				p.line(4, "data")
				p.line(6, "%s", b.String())
			}
		case e.DataText != "":
			p.field(4, "data", e.DataText)
		case e.DataBase64 != "":
			p.field(4, "data base64", e.DataBase64)
		}
	}
	if len(t.MissingEvents) > 0 {
		p.section("MISSING from the archive (named by the record or a result)", len(t.MissingEvents))
		for _, m := range t.MissingEvents {
			p.line(2, "%s", m)
		}
	}
	return nil
}

func (p *recordWriter) result(r report.TraceResult) {
	p.line(2, "%s  %s  %s", r.Control, strings.ToUpper(r.Status), r.Title)
	for _, reason := range r.Reasons {
		p.field(4, "reason", reason)
	}
	p.field(4, "exception", r.Exception)
	p.field(4, "deadline", r.Deadline)
	p.field(4, "evaluated", joinNonEmpty("  ", r.EvaluatedAt, prefixed("trigger ", r.Trigger)))
	for _, e := range r.Evidence {
		p.field(4, "evidence", e)
	}
}
