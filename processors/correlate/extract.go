package correlate

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/cdevents"
	"github.com/evidencepipeline/evidence/producers/ticketkeys"
)

// Catalog event types (docs/events.md).
const (
	TypeArtifactBuilt       = "dev.evidencepipeline.artifact.built.v1"
	TypeChangeClosed        = "dev.evidencepipeline.change.closed.v1"
	TypeChangeMerged        = "dev.evidencepipeline.change.merged.v1"
	TypeChangeOpened        = "dev.evidencepipeline.change.opened.v1"
	TypeChangeUpdated       = "dev.evidencepipeline.change.updated.v1"
	TypeDeploymentFinished  = "dev.evidencepipeline.deployment.finished.v1"
	TypeDeploymentStarted   = "dev.evidencepipeline.deployment.started.v1"
	TypeExceptionGranted    = "dev.evidencepipeline.exception.granted.v1"
	TypeExceptionRequested  = "dev.evidencepipeline.exception.requested.v1"
	TypePipelineRunFinished = "dev.evidencepipeline.pipelinerun.finished.v1"
	TypePipelineRunStarted  = "dev.evidencepipeline.pipelinerun.started.v1"
	TypeReviewSubmitted     = "dev.evidencepipeline.review.submitted.v1"
	TypeScanReported        = "dev.evidencepipeline.scan.reported.v1"
	TypeTestReported        = "dev.evidencepipeline.test.reported.v1"
	TypeTicketApproved      = "dev.evidencepipeline.ticket.approved.v1"
	TypeTicketCreated       = "dev.evidencepipeline.ticket.created.v1"
	TypeTicketRejected      = "dev.evidencepipeline.ticket.rejected.v1"
	TypeTicketTransitioned  = "dev.evidencepipeline.ticket.transitioned.v1"
	TypeWebhookReceived     = "dev.evidencepipeline.webhook.received.v1"

	// The access types (issue 17) give no change-record facts: they are
	// archived and read by the access record, not correlated into changes.
	TypeAccessBypass            = "dev.evidencepipeline.access.bypass.v1"
	TypeAccessGrantChanged      = "dev.evidencepipeline.access.grant.changed.v1"
	TypeAccessProtectionChanged = "dev.evidencepipeline.access.protection.changed.v1"
	TypeAccessRepositoryChanged = "dev.evidencepipeline.access.repository.changed.v1"
	TypeAccessReviewed          = "dev.evidencepipeline.access.reviewed.v1"
	TypeAccessSnapshot          = "dev.evidencepipeline.access.snapshot.v1"
)

// factless are the catalog types Extract accepts without facts and
// without error (never dead-lettered).
var factless = map[string]bool{
	TypeAccessBypass: true, TypeAccessGrantChanged: true, TypeAccessProtectionChanged: true,
	TypeAccessRepositoryChanged: true, TypeAccessReviewed: true, TypeAccessSnapshot: true,
}

// Factless reports whether a catalog type is accepted without facts.
func Factless(eventType string) bool { return factless[eventType] }

// Extractor turns events into facts. Tickets finds ticket keys in change
// titles, branch names and commit messages, beyond the keys the producer
// gave; nil finds none.
type Extractor struct {
	Tickets *ticketkeys.Matcher
}

var defaultExtractor = Extractor{Tickets: ticketkeys.Default()}

// Extract is Extractor.Extract with the default ticket pattern (Jira keys
// and ServiceNow change numbers).
func Extract(e *ce.Event) ([]Fact, error) { return defaultExtractor.Extract(e) }

// Extract returns the facts of one event. A CDEvents event
// (cdevents.Is) gives the fact its type maps to (cdevents.go), or none
// when what it states cannot form that fact's keys. An event of another
// type outside the catalog gives no facts and no error (future types are
// archived but not correlated), and so does a raw webhook that is not a
// push to a default branch. Data that cannot be read is an error
// (*ce.Error) naming the field at fault, e.g. "data/change/number".
func (x Extractor) Extract(e *ce.Event) ([]Fact, error) {
	if cdevents.Is(e.Type) {
		return x.cdevent(e)
	}
	fn, ok := extractors[e.Type]
	if !ok {
		return nil, nil
	}
	if e.DataBase64 || len(e.Data) == 0 {
		return nil, &ce.Error{Field: "data", Message: "required: a JSON object with the " + e.Type + " fields"}
	}
	f, err := fn(&x, e)
	if err != nil || f == nil {
		return nil, err
	}
	f.Event = EventRef{Source: e.Source, ID: e.ID}
	if f.Time.IsZero() {
		f.Time = e.Time
	}
	f.seal()
	return []Fact{*f}, nil
}

var extractors map[string]func(*Extractor, *ce.Event) (*Fact, error)

func init() {
	extractors = map[string]func(*Extractor, *ce.Event) (*Fact, error){
		TypeArtifactBuilt:       (*Extractor).artifact,
		TypeChangeOpened:        (*Extractor).change,
		TypeChangeUpdated:       (*Extractor).change,
		TypeChangeMerged:        (*Extractor).change,
		TypeChangeClosed:        (*Extractor).change,
		TypeDeploymentStarted:   (*Extractor).deployment,
		TypeDeploymentFinished:  (*Extractor).deployment,
		TypeExceptionRequested:  (*Extractor).exception,
		TypeExceptionGranted:    (*Extractor).exception,
		TypePipelineRunStarted:  (*Extractor).run,
		TypePipelineRunFinished: (*Extractor).run,
		TypeReviewSubmitted:     (*Extractor).review,
		TypeScanReported:        (*Extractor).scan,
		TypeTestReported:        (*Extractor).test,
		TypeTicketCreated:       (*Extractor).ticket,
		TypeTicketTransitioned:  (*Extractor).ticket,
		TypeTicketApproved:      (*Extractor).ticket,
		TypeTicketRejected:      (*Extractor).ticket,
		TypeWebhookReceived:     (*Extractor).webhook,
	}
}

// Types lists the catalog types Extract reads, sorted.
func Types() []string {
	out := make([]string, 0, len(extractors))
	for t := range extractors {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

// decode unmarshals the event's data, turning decoding errors into errors
// that name the field.
func decode(e *ce.Event, v any) error {
	err := json.Unmarshal(e.Data, v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := "data"
		if te.Field != "" {
			field += "/" + strings.ReplaceAll(te.Field, ".", "/")
		}
		return &ce.Error{Field: field, Message: "must be " + jsonType(te.Type.Kind().String()) + ", got JSON " + te.Value}
	}
	return &ce.Error{Field: "data", Message: "not a JSON object: " + err.Error()}
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "int", "int64", "int32", "uint", "uint64":
		return "an integer"
	case "float64", "float32":
		return "a number"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return kind
}

// check collects the first problem found in an event's data.
type check struct{ err error }

func (c *check) fail(path, format string, args ...any) {
	if c.err == nil {
		c.err = &ce.Error{Field: "data/" + path, Message: fmt.Sprintf(format, args...)}
	}
}

func (c *check) required(path, v string) string {
	if strings.TrimSpace(v) == "" {
		c.fail(path, "required field is missing or empty")
	}
	return v
}

func (c *check) oneOf(path, v string, allowed ...string) string {
	if v != "" && !slices.Contains(allowed, v) {
		c.fail(path, "must be one of %s, got %q", strings.Join(allowed, ", "), v)
	}
	return v
}

var (
	shaRE    = regexp.MustCompile(`^[0-9a-f]{7,64}$`)
	digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// sha reads an optional commit SHA (lower-cased).
func (c *check) sha(path, v string) string {
	if v == "" {
		return ""
	}
	v = strings.ToLower(v)
	if !shaRE.MatchString(v) {
		c.fail(path, "must be a commit SHA (7 to 64 hex digits), got %q", v)
	}
	return v
}

func (c *check) requiredSHA(path, v string) string {
	if v == "" {
		c.fail(path, "required field is missing or empty")
	}
	return c.sha(path, v)
}

func (c *check) shas(path string, vs []string) []string {
	out := make([]string, 0, len(vs))
	for i, v := range vs {
		out = append(out, c.requiredSHA(fmt.Sprintf("%s/%d", path, i), v))
	}
	return out
}

func (c *check) digest(path, v string) string {
	if v != "" && !digestRE.MatchString(v) {
		c.fail(path, "must be sha256: and 64 lower-case hex digits, got %q", v)
	}
	return v
}

func (c *check) purl(path, v string) string {
	if v != "" && !strings.HasPrefix(v, "pkg:") {
		c.fail(path, "must be a package URL (pkg:...), got %q", v)
	}
	return v
}

// repo reads a repository key (host/owner/name, lower case).
func (c *check) repo(path, v string, required bool) string {
	if v == "" {
		if required {
			c.fail(path, "required field is missing or empty")
		}
		return ""
	}
	v = strings.ToLower(v)
	if strings.ContainsAny(v, "#@ ") || strings.Count(v, "/") < 2 {
		c.fail(path, "must be a repository as host/owner/name, got %q", v)
	}
	return v
}

func (c *check) time(path, v string) time.Time {
	if v == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		c.fail(path, "must be an RFC 3339 timestamp, got %q", v)
		return time.Time{}
	}
	return t.UTC()
}

func (c *check) requiredTime(path, v string) time.Time {
	if v == "" {
		c.fail(path, "required field is missing or empty")
	}
	return c.time(path, v)
}

func (c *check) count(path string, p *int64, required bool) int64 {
	switch {
	case p == nil && required:
		c.fail(path, "required field is missing")
	case p == nil:
	case *p < 0:
		c.fail(path, "must be ≥ 0, got %d", *p)
	default:
		return *p
	}
	return 0
}

// identityJSON is the catalog's identity.
type identityJSON struct {
	Login string `json:"login"`
	ID    string `json:"id"`
	Name  string `json:"name"`
	Email string `json:"email"`
	Type  string `json:"type"`
}

func (c *check) identity(path string, id *identityJSON, required bool) *Identity {
	if id == nil {
		if required {
			c.fail(path, "required field is missing")
		}
		return nil
	}
	c.required(path+"/login", id.Login)
	c.oneOf(path+"/type", id.Type, "user", "bot", "service")
	return &Identity{Login: id.Login, ID: id.ID, Name: id.Name, Email: id.Email, Type: id.Type}
}

// changeJSON is the catalog's change: {number, url}.
type changeJSON struct {
	Number *int64 `json:"number"`
	URL    string `json:"url"`
}

func (c *check) change(path string, ch *changeJSON, required bool) (int64, string) {
	switch {
	case ch == nil:
		if required {
			c.fail(path, "required field is missing")
		}
		return 0, ""
	case ch.Number == nil:
		c.fail(path+"/number", "required field is missing")
		return 0, ""
	case *ch.Number < 1:
		c.fail(path+"/number", "must be ≥ 1, got %d", *ch.Number)
		return 0, ""
	}
	return *ch.Number, ch.URL
}

// ticketKey normalizes a ticket key: trimmed, upper case (Jira keys and
// ServiceNow numbers are upper case; a key typed in lower case in a
// producer's ticket_keys still correlates).
func ticketKey(k string) string { return strings.ToUpper(strings.TrimSpace(k)) }

func (c *check) ticketKeys(path string, keys []string) []string {
	out := make([]string, 0, len(keys))
	for i, k := range keys {
		if k = ticketKey(k); k == "" || strings.ContainsAny(k, " \t\n") {
			c.fail(fmt.Sprintf("%s/%d", path, i), "must be a ticket key (one token), got %q", keys[i])
			continue
		}
		out = append(out, k)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// mentions merges ticket keys by where they were found.
type mentions map[string][]string

func (m mentions) add(where string, keys ...string) {
	for _, k := range keys {
		if k = ticketKey(k); k != "" && !slices.Contains(m[k], where) {
			m[k] = append(m[k], where)
		}
	}
}

func (m mentions) list() []Mention {
	if len(m) == 0 {
		return nil
	}
	out := make([]Mention, 0, len(m))
	for k, in := range m {
		slices.Sort(in)
		out = append(out, Mention{Key: k, In: in})
	}
	slices.SortFunc(out, func(a, b Mention) int { return strings.Compare(a.Key, b.Key) })
	return out
}
