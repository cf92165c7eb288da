package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"

	"github.com/evidencepipeline/evidence/internal/auth"
	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/cdevents"
	"github.com/evidencepipeline/evidence/schemas"
)

// Media types of the CloudEvents HTTP binding.
const (
	MediaStructured = "application/cloudevents+json"
	MediaBatch      = "application/cloudevents-batch+json"
)

// Problem is why one event was refused.
type Problem struct {
	// Index is the event's position in a batch (0 for a single event).
	Index   int    `json:"index"`
	ID      string `json:"id,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

// EventResult is what happened to one event.
type EventResult struct {
	Index     int    `json:"index"`
	ID        string `json:"id"`
	Source    string `json:"source"`
	Seq       uint64 `json:"seq,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	Error     string `json:"error,omitempty"`
}

// EventsResponse is the body of every answer of POST /v1/events.
type EventsResponse struct {
	// Accepted counts the events now in the stream (Stored new ones plus
	// Duplicates of events already there).
	Accepted   int    `json:"accepted"`
	Stored     int    `json:"stored"`
	Duplicates int    `json:"duplicates"`
	Error      string `json:"error,omitempty"`
	// Invalid lists the refused events of a 400; nothing was stored.
	Invalid []Problem `json:"invalid,omitempty"`
	// Events says, per event, its stream sequence, or why it was not
	// stored (503: JetStream did not acknowledge some; the others are
	// stored and listed with their sequence).
	Events []EventResult `json:"events,omitempty"`
}

func (s *Server) postEvents(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer s.receive.Since(start)
	ct := r.Header.Get("Content-Type")
	mt, _, _ := mime.ParseMediaType(ct)
	mode := ""
	switch {
	case mt == MediaBatch:
		mode = "batch"
	case mt == MediaStructured:
		mode = "structured"
	case ce.IsBinary(r.Header):
		mode = "binary"
	default:
		s.receive.Failed("media_type", 1)
		writeJSON(w, http.StatusUnsupportedMediaType, EventsResponse{Error: fmt.Sprintf(
			"unsupported content type %q: send %s, %s, or binary mode (ce-specversion, ce-id, ce-source, ce-type headers)", ct, MediaStructured, MediaBatch)})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.receive.Failed("too_large", 1)
			writeJSON(w, http.StatusRequestEntityTooLarge, EventsResponse{Error: fmt.Sprintf("body over the limit of %d bytes (split the batch)", mbe.Limit)})
			return
		}
		writeJSON(w, http.StatusBadRequest, EventsResponse{Error: "reading body: " + err.Error()})
		return
	}

	var events []*ce.Event
	var problems []Problem
	switch mode {
	case "batch":
		entries, err := ce.ParseBatch(body)
		if err != nil {
			s.receive.Failed("invalid", 1)
			writeJSON(w, http.StatusBadRequest, EventsResponse{Error: err.Error()})
			return
		}
		events = make([]*ce.Event, len(entries))
		for i, raw := range entries {
			e, err := ce.ParseJSON(raw)
			if err == nil {
				err = s.checkPosted(e)
			}
			if err != nil {
				problems = append(problems, problemsOf(i, e, raw, err)...)
				continue
			}
			events[i] = e
		}
	case "structured", "binary":
		var e *ce.Event
		if mode == "structured" {
			e, err = ce.ParseJSON(body)
		} else {
			e, err = ce.FromBinary(r.Header, body)
		}
		if err == nil {
			err = s.checkPosted(e)
			var fe *ce.Error
			if mode == "binary" && errors.As(err, &fe) && ce.IsAttribute(fe.Field) {
				fe.Field = "ce-" + fe.Field // the attribute came in its header
			}
		}
		if err != nil {
			problems = problemsOf(0, e, body, err)
		}
		events = []*ce.Event{e}
	}
	s.receive.Received(len(events))
	if len(problems) > 0 {
		s.receive.Failed("invalid", countIndexes(problems))
		msg := problems[0].Field + ": " + problems[0].Message
		if len(problems) > 1 {
			msg = fmt.Sprintf("the event is invalid (%d problems)", len(problems))
		}
		if len(events) > 1 {
			msg = fmt.Sprintf("%d of %d events are invalid; nothing was stored", countIndexes(problems), len(events))
		}
		writeJSON(w, http.StatusBadRequest, EventsResponse{Error: msg, Invalid: problems})
		return
	}

	if id, _ := auth.FromContext(r.Context()); id.Job != nil {
		if problems := bindJob(events, id.Job); len(problems) > 0 {
			s.receive.Failed("forbidden", countIndexes(problems))
			msg := "the CI job token does not speak for this evidence: " + problems[0].Field + ": " + problems[0].Message
			if len(events) > 1 {
				msg = fmt.Sprintf("%d of %d events are not the CI job token's run's evidence; nothing was stored", countIndexes(problems), len(events))
			}
			writeJSON(w, http.StatusForbidden, EventsResponse{Error: msg, Invalid: problems})
			return
		}
	}

	res, err := s.cfg.Publisher.Publish(r.Context(), events)
	var tle *bus.TooLargeError
	if errors.As(err, &tle) {
		s.receive.Failed("too_large", len(events))
		writeJSON(w, http.StatusRequestEntityTooLarge, EventsResponse{Error: tle.Error() + "; nothing was stored"})
		return
	}
	out := EventsResponse{Events: make([]EventResult, len(events))}
	failed := 0
	for i, e := range events {
		er := EventResult{Index: i, ID: e.ID, Source: e.Source}
		switch {
		case i >= len(res):
		case res[i].Err != nil:
			er.Error = res[i].Err.Error()
			failed++
		case res[i].Seq == 0:
			er.Error = "no acknowledgement"
			failed++
		default:
			er.Seq, er.Duplicate = res[i].Seq, res[i].Duplicate
			out.Accepted++
			if er.Duplicate {
				out.Duplicates++
			} else {
				out.Stored++
			}
		}
		out.Events[i] = er
	}
	s.receive.Written(out.Stored)
	if err != nil || failed > 0 {
		s.receive.Failed("unavailable", len(events)-out.Accepted)
		out.Error = fmt.Sprintf("%d of %d events were not stored (the event stream did not acknowledge them); the events list says which were stored; retrying the whole request is safe", len(events)-out.Accepted, len(events))
		if err != nil {
			out.Error += ": " + err.Error()
		}
		writeJSON(w, http.StatusServiceUnavailable, out)
		return
	}
	writeJSON(w, http.StatusAccepted, out)
}

// CheckEvent is the door's one check of an event, the same for every
// mode of POST /v1/events and for the webhooks (given to their handlers):
// the event's attributes and the input rules that keep it exact and
// processable (ce.Event.Admit: CloudEvents 1.0, bounds, time range,
// strict JSON data), its data against the catalog schema or the CDEvents spec, and
// what the later stages would refuse (Config.Admit). The first problem is
// returned; a *ce.Error or a data validation error names the field.
func (s *Server) CheckEvent(e *ce.Event) error {
	if err := e.Admit(); err != nil {
		return err
	}
	if err := s.validateData(e); err != nil {
		return err
	}
	if s.cfg.Admit != nil {
		return s.cfg.Admit(e)
	}
	return nil
}

// validateData checks the data of catalog types against their JSON Schema
// and of CDEvents types against the CDEvents spec; other types' data is
// accepted as it is.
func (s *Server) validateData(e *ce.Event) error {
	catalog := s.cfg.Catalog != nil && s.cfg.Catalog.Has(e.Type)
	cde := !catalog && cdevents.Is(e.Type)
	if !catalog && !cde {
		return nil
	}
	if e.DataBase64 {
		return &ce.Error{Field: "data", Message: "events of type " + e.Type + " carry JSON data, not binary"}
	}
	if cde {
		return cdevents.Validate(e.Type, e.Data)
	}
	return s.cfg.Catalog.Validate(e.Type, e.Data)
}

func problemsOf(i int, e *ce.Event, raw []byte, err error) []Problem {
	id := ""
	if e != nil {
		id = e.ID
	} else {
		// Name the entry by its id when it has a readable one.
		var head struct {
			ID any `json:"id"`
		}
		if json.Unmarshal(raw, &head) == nil {
			if s, ok := head.ID.(string); ok {
				id = s
			}
		}
	}
	var fe *ce.Error
	var de interface{ DataProblems() []schemas.Problem } // catalog and CDEvents data
	switch {
	case errors.As(err, &de):
		ps := de.DataProblems()
		out := make([]Problem, len(ps))
		for k, p := range ps {
			out[k] = Problem{Index: i, ID: id, Field: p.Path, Message: p.Message}
		}
		return out
	case errors.As(err, &fe):
		return []Problem{{Index: i, ID: id, Field: fe.Field, Message: fe.Message}}
	default:
		return []Problem{{Index: i, ID: id, Field: "(event)", Message: err.Error()}}
	}
}

func countIndexes(ps []Problem) int {
	n, last := 0, -1
	for _, p := range ps {
		if p.Index != last {
			n++
			last = p.Index
		}
	}
	return n
}
