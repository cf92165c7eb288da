// Package problem is the error body of evidenced's HTTP API: RFC 9457
// problem details (media type application/problem+json), shared by the
// server, which writes them, and the CLI and the emitter, which read them.
//
// Every error answer of the API is one Problem: a stable type URI (one of
// Types, each documented under its own heading of docs/api.md), a title
// that is the same for every problem of that type, the HTTP status, a
// detail for this occurrence, and, for input that fails validation, an
// errors list naming each field at fault and why. An answer that says more
// (the receiver's 503 says which events were stored) embeds Problem in its
// own struct: its fields are the problem's extension members.
//
// The package depends on the standard library only: the producer CLI,
// which runs in every pipeline, reads these bodies.
package problem

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"
)

// MediaType is the content type of a problem document (RFC 9457, 3).
const MediaType = "application/problem+json"

// TypeBase is what every type URI starts with: the section of docs/api.md
// that documents the type, by its heading's anchor.
const TypeBase = "https://github.com/evidencepipeline/evidence/blob/main/docs/api.md#"

// Type is one kind of problem: its URI is TypeBase + Slug, its title and
// status are the same for every occurrence.
type Type struct {
	Slug   string
	Title  string
	Status int
}

// URI is the type's identifier, the problem's "type" member.
func (t Type) URI() string { return TypeBase + t.Slug }

// The problem types of the API. Their slugs are stable: clients may switch
// on them (by URI); a new kind of problem gets a new type.
var (
	NoRoute              = Type{"no-route", "No such route", http.StatusNotFound}
	MethodNotAllowed     = Type{"method-not-allowed", "Method not allowed on this route", http.StatusMethodNotAllowed}
	Unauthorized         = Type{"unauthorized", "Missing or invalid credentials", http.StatusUnauthorized}
	Forbidden            = Type{"forbidden", "The token's role does not allow this route", http.StatusForbidden}
	MisdirectedHost      = Type{"misdirected-host", "Request addressed to a host that is not loopback", http.StatusMisdirectedRequest}
	UnsupportedMediaType = Type{"unsupported-media-type", "Unsupported content type", http.StatusUnsupportedMediaType}
	BodyTooLarge         = Type{"body-too-large", "Request body too large", http.StatusRequestEntityTooLarge}
	MalformedBody        = Type{"malformed-body", "Request body cannot be read or parsed", http.StatusBadRequest}
	InvalidEvent         = Type{"invalid-event", "Invalid event", http.StatusBadRequest}
	InvalidParameter     = Type{"invalid-parameter", "Invalid or missing parameter", http.StatusBadRequest}
	NotFound             = Type{"not-found", "No such resource", http.StatusNotFound}
	EventsNotStored      = Type{"events-not-stored", "Some events were not stored", http.StatusServiceUnavailable}
	Unavailable          = Type{"unavailable", "A dependency is unavailable", http.StatusServiceUnavailable}
	Internal             = Type{"internal", "Internal error", http.StatusInternalServerError}
	WebhookNotConfigured = Type{"webhook-not-configured", "Webhook secret not configured", http.StatusUnauthorized}
	WebhookSignature     = Type{"webhook-signature", "Webhook signature refused", http.StatusUnauthorized}
	InvalidPayload       = Type{"invalid-payload", "Invalid webhook payload", http.StatusBadRequest}
	NotJobsEvidence      = Type{"not-jobs-evidence", "The CI job token does not speak for this evidence", http.StatusForbidden}
)

// Types lists every problem type, in the order docs/api.md documents them.
var Types = []Type{
	NoRoute, MethodNotAllowed, Unauthorized, Forbidden, MisdirectedHost,
	UnsupportedMediaType, BodyTooLarge, MalformedBody, InvalidEvent,
	InvalidParameter, NotFound, EventsNotStored, Unavailable, Internal,
	WebhookNotConfigured, WebhookSignature, InvalidPayload, NotJobsEvidence,
}

// Problem is an RFC 9457 problem details object. Every member is set on
// every problem the API writes but instance and errors; they are
// omitempty so that an answer type can embed Problem and serve success
// answers too (api.EventsResponse).
type Problem struct {
	// Type is the problem type's URI (Type.URI).
	Type string `json:"type,omitempty"`
	// Title is the type's short summary, the same for every occurrence.
	Title string `json:"title,omitempty"`
	// Status is the HTTP status code of the answer.
	Status int `json:"status,omitempty"`
	// Detail explains this occurrence, for a human; what to do when there
	// is something to do.
	Detail string `json:"detail,omitempty"`
	// Instance is the request's path (a URI reference naming where the
	// problem occurred).
	Instance string `json:"instance,omitempty"`
	// Errors lists, for a validation problem, each field at fault.
	Errors []FieldError `json:"errors,omitempty"`
}

// FieldError is one field at fault in a request.
type FieldError struct {
	// Field names what is wrong as the request spells it: a query
	// parameter ("repo"), a header ("ce-id"), an event attribute
	// ("source"), a path into an event's data ("data.commit"), or
	// "(event)" / "(body)" for the whole.
	Field string `json:"field"`
	// Detail says what is wrong with it.
	Detail string `json:"detail"`
}

// Document is a problem document: a *Problem, or a struct that embeds
// Problem and adds extension members.
type Document interface {
	Details() *Problem
}

// Details returns p itself; a struct embedding Problem gets it too.
func (p *Problem) Details() *Problem { return p }

// Text is the problem's detail, or its title when it has none. (Problem
// is not an error: the answer types that embed it would become errors.)
func (p *Problem) Text() string {
	if p.Detail != "" {
		return p.Detail
	}
	return p.Title
}

// New is a problem of type t with detail.
func New(t Type, detail string) *Problem {
	return &Problem{Type: t.URI(), Title: t.Title, Status: t.Status, Detail: detail}
}

// Newf is New with a formatted detail.
func Newf(t Type, format string, args ...any) *Problem {
	return New(t, fmt.Sprintf(format, args...))
}

// Is reports whether p is of type t.
func (p *Problem) Is(t Type) bool { return p != nil && p.Type == t.URI() }

// Write answers with d: status d.Details().Status, content type
// application/problem+json, and instance set to the request's path when
// r is not nil and the problem has none.
func Write(w http.ResponseWriter, r *http.Request, d Document) {
	p := d.Details()
	if p.Instance == "" && r != nil && r.URL != nil {
		p.Instance = r.URL.Path
	}
	if p.Status == 0 {
		p.Status = http.StatusInternalServerError
	}
	w.Header().Set("Content-Type", MediaType)
	w.Header().Del("Content-Length")
	w.WriteHeader(p.Status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(d) // the status is sent; a client gone away is not ours to report
}

// Parse reads a problem document from an error answer's body. It returns
// nil when the answer is not one: its content type is neither
// application/problem+json nor application/json, the body is not a JSON
// object, or it has neither a type nor a detail.
func Parse(contentType string, body []byte) *Problem {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || (mt != MediaType && mt != "application/json") {
		return nil
	}
	var p Problem
	if json.Unmarshal(body, &p) != nil || (p.Type == "" && p.Detail == "") {
		return nil
	}
	return &p
}

// Message is what a client prints for p: its detail, and each field error
// on its own line ("  field: detail").
func (p *Problem) Message() string {
	var b strings.Builder
	b.WriteString(p.Text())
	for _, e := range p.Errors {
		b.WriteString("\n  " + e.Field + ": " + e.Detail)
	}
	return b.String()
}
