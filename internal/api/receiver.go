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
	"github.com/evidencepipeline/evidence/internal/problem"
	"github.com/evidencepipeline/evidence/producers/cdevents"
	"github.com/evidencepipeline/evidence/schemas"
)

// Media types of the CloudEvents HTTP binding.
const (
	MediaStructured = "application/cloudevents+json"
	MediaBatch      = "application/cloudevents-batch+json"
)

// EventError is why one event was refused: an item of the errors list of
// an invalid-event problem.
type EventError struct {
	// Index is the event's position in a batch (0 for a single event).
	Index int    `json:"index"`
	ID    string `json:"id,omitempty"`
	// Field is an attribute ("source"; "ce-id" in binary mode), a path
	// into the event ("data/commit"), "(event)" for an entry that is not
	// a JSON object or "(batch)" for a body that is not an array.
	Field  string `json:"field"`
	Detail string `json:"detail"`
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

// EventsResponse is the body of every answer of POST /v1/events. An
// error answer is a problem document (the embedded Problem's members are
// set, content type application/problem+json) whose extension members
// are the counts and, on a 503, the events.
type EventsResponse struct {
	problem.Problem
	// Errors lists the refused events of an invalid-event problem (400);
	// nothing was stored. It stands for the Problem's errors list, with
	// each event's index and id.
	Errors []EventError `json:"errors,omitempty"`
	// Accepted counts the events now in the stream (Stored new ones plus
	// Duplicates of events already there).
	Accepted   int `json:"accepted"`
	Stored     int `json:"stored"`
	Duplicates int `json:"duplicates"`
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
		refuse(w, r, problem.UnsupportedMediaType, fmt.Sprintf(
			"unsupported content type %q: send %s, %s, or binary mode (ce-specversion, ce-id, ce-source, ce-type headers)", ct, MediaStructured, MediaBatch), nil)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			s.receive.Failed("too_large", 1)
			refuse(w, r, problem.BodyTooLarge, fmt.Sprintf("body over the limit of %d bytes (split the batch)", mbe.Limit), nil)
			return
		}
		refuse(w, r, problem.MalformedBody, "reading body: "+err.Error(), nil)
		return
	}

	var events []*ce.Event
	var problems []EventError
	switch mode {
	case "batch":
		entries, err := ce.ParseBatch(body)
		if err != nil {
			s.receive.Failed("invalid", 1)
			refuse(w, r, problem.MalformedBody, err.Error(), nil)
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
		msg := problems[0].Field + ": " + problems[0].Detail
		if len(problems) > 1 {
			msg = fmt.Sprintf("the event is invalid (%d problems)", len(problems))
		}
		if len(events) > 1 {
			msg = fmt.Sprintf("%d of %d events are invalid; nothing was stored", countIndexes(problems), len(events))
		}
		refuse(w, r, problem.InvalidEvent, msg, problems)
		return
	}

	if id, _ := auth.FromContext(r.Context()); id.Job != nil {
		if problems := bindJob(events, id.Job); len(problems) > 0 {
			s.receive.Failed("forbidden", countIndexes(problems))
			msg := "the CI job token does not speak for this evidence: " + problems[0].Field + ": " + problems[0].Detail
			if len(events) > 1 {
				msg = fmt.Sprintf("%d of %d events are not the CI job token's run's evidence; nothing was stored", countIndexes(problems), len(events))
			}
			refuse(w, r, problem.NotJobsEvidence, msg, problems)
			return
		}
	}

	res, err := s.cfg.Publisher.Publish(r.Context(), events)
	var tle *bus.TooLargeError
	if errors.As(err, &tle) {
		s.receive.Failed("too_large", len(events))
		refuse(w, r, problem.BodyTooLarge, tle.Error()+"; nothing was stored", nil)
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
		detail := fmt.Sprintf("%d of %d events were not stored (the event stream did not acknowledge them); the events list says which were stored; retrying the whole request is safe", len(events)-out.Accepted, len(events))
		if err != nil {
			detail += ": " + err.Error()
		}
		out.Problem = *problem.New(problem.EventsNotStored, detail)
		problem.Write(w, r, &out)
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

// refuse answers a request of which nothing was stored with a problem of
// type t (the counts are 0; errors are the invalid events').
func refuse(w http.ResponseWriter, r *http.Request, t problem.Type, detail string, errs []EventError) {
	problem.Write(w, r, &EventsResponse{Problem: *problem.New(t, detail), Errors: errs})
}

func problemsOf(i int, e *ce.Event, raw []byte, err error) []EventError {
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
		out := make([]EventError, len(ps))
		for k, p := range ps {
			out[k] = EventError{Index: i, ID: id, Field: p.Path, Detail: p.Message}
		}
		return out
	case errors.As(err, &fe):
		return []EventError{{Index: i, ID: id, Field: fe.Field, Detail: fe.Message}}
	default:
		return []EventError{{Index: i, ID: id, Field: "(event)", Detail: err.Error()}}
	}
}

func countIndexes(ps []EventError) int {
	n, last := 0, -1
	for _, p := range ps {
		if p.Index != last {
			n++
			last = p.Index
		}
	}
	return n
}
