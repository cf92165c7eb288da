package cdevents

import (
	"bytes"
	"strings"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// Problem is one reason an event's data is not a valid CDEvent: Path is a
// JSON path from the event ("data/subject/content/environment"), Message
// says what is wrong there. It has the shape and JSON names of
// ce.Problem.
type Problem struct {
	Path    string `json:"field"`
	Message string `json:"message"`
}

// ValidationError lists every problem of one event's data.
type ValidationError struct {
	Type     string // the CloudEvents type of the event
	Problems []Problem
}

// DataProblems lists the problems; the receiver reports catalog and
// CDEvents validation errors alike through it.
func (e *ValidationError) DataProblems() []ce.Problem {
	out := make([]ce.Problem, len(e.Problems))
	for i, p := range e.Problems {
		out[i] = ce.Problem(p)
	}
	return out
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Path + ": " + p.Message
	}
	return "data is not a valid CDEvent of type " + e.Type + ": " + strings.Join(parts, "; ")
}

// Validate checks the data of a CloudEvent of a CDEvents type (see Is)
// against the CDEvents schema of that type in the spec version the event
// names, and returns nil or a *ValidationError that lists every problem
// with its JSON path.
//
// The data must be a JSON object with context and subject. The spec version
// is context.specversion for 0.5.x (and 0.6.0-draft, for the draft approval
// events) and context.version for 0.4.x; any other is an "unsupported
// CDEvents spec version". context.type must equal the CloudEvents type, and
// that type must be an event of the spec version with the event version the
// spec defines for it. The rest is the schema of the type: see the package
// doc and docs/cdevents.md for what each spec version checks.
//
// A type that is not a CDEvents type gives a problem at data/context/type:
// callers decide with Is which events to validate here.
func Validate(eventType string, data []byte) error {
	c := &checker{}
	c.validate(eventType, data)
	if len(c.problems) == 0 {
		return nil
	}
	return &ValidationError{Type: eventType, Problems: c.problems}
}

const typePath = "data/context/type"

func (c *checker) validate(eventType string, data []byte) {
	t, ok := ParseType(eventType)
	if !ok {
		c.add(typePath, "the CloudEvents type %s is not a CDEvents event type (dev.cdevents.<subject>.<predicate>.<version>)", quote(eventType))
		return
	}
	if len(bytes.TrimSpace(data)) == 0 {
		c.add("data", "required: a CDEvent is the JSON data of its CloudEvent")
		return
	}
	v, err := ce.DecodeAny(data)
	if err != nil {
		c.add("data", "not valid JSON: %v", err)
		return
	}
	root, ok := v.(map[string]any)
	if !ok {
		c.add("data", "must be an object (a CDEvent: context and subject), got %s", kindOf(v))
		return
	}
	cv, present := root["context"]
	if !present {
		c.add("data/context", "required property is missing: unsupported CDEvents spec version "+
			"(the data has no CDEvents context; CDEvents 0.4 and 0.5 carry {context, subject} as the data, "+
			"earlier formats such as the Jenkins plugin's do not)")
		return
	}
	ctx, ok := cv.(map[string]any)
	if !ok {
		c.add("data/context", "must be an object, got %s", kindOf(cv))
		return
	}
	sp := c.specOf(ctx)
	if sp == nil {
		return
	}
	e := sp.events[t.Name()]
	if sp == specDraft && e == nil {
		c.add("data/context/specversion", "unsupported CDEvents spec version %s for %s: only the draft approval events are accepted with it",
			quote(sp.name), t.Name())
		return
	}
	c.checkType(sp, e, t, ctx)
	full := sp.generic
	if e != nil && e.version == t.Version {
		full = e.full
	}
	c.check(full, root, "data")
}

// specOf finds the spec version of an event from its context, or reports
// why there is none.
func (c *checker) specOf(ctx map[string]any) *spec {
	sv, hasSV, ok := stringMember(ctx, "specversion")
	if !ok {
		c.add("data/context/specversion", "must be a string, got %s", kindOf(ctx["specversion"]))
		return nil
	}
	v, hasV, ok := stringMember(ctx, "version")
	if !ok {
		c.add("data/context/version", "must be a string, got %s", kindOf(ctx["version"]))
		return nil
	}
	if sp := specFor(sv); hasSV && sp != nil && sp.field == "specversion" {
		return sp
	}
	if sp := specFor(v); hasV && sp != nil && sp.field == "version" {
		return sp
	}
	switch {
	case hasSV && specFor(sv) != nil:
		c.add("data/context/version", "required property is missing: CDEvents %s holds the spec version in context.version "+
			"(context.specversion came with 0.5), got specversion %s", specFor(sv).name, quote(sv))
	case hasV && specFor(v) != nil:
		c.add("data/context/specversion", "required property is missing: CDEvents %s holds the spec version in context.specversion "+
			"(0.5 renamed context.version), got version %s", specFor(v).name, quote(v))
	case hasSV:
		c.add("data/context/specversion", "unsupported CDEvents spec version %s: %s", quote(sv), accepted)
	case hasV:
		c.add("data/context/version", "unsupported CDEvents spec version %s: %s", quote(v), accepted)
	default:
		c.add("data/context/specversion", "required property is missing: the CDEvents spec version (%s)", accepted)
	}
	return nil
}

// stringMember reads an optional string member: ok is false when it is
// present and not a string.
func stringMember(m map[string]any, name string) (s string, present, ok bool) {
	v, present := m[name]
	if !present {
		return "", false, true
	}
	s, ok = v.(string)
	return s, true, ok
}

// checkType checks that context.type is the CloudEvents type, and that the
// type is an event of the spec version, with its version there.
func (c *checker) checkType(sp *spec, e *event, t EventType, ctx map[string]any) {
	if s, ok := ctx["type"].(string); ok && s != t.String() {
		c.add(typePath, "must equal the CloudEvents type %s, got %s", quote(t.String()), quote(s))
	}
	switch {
	case e == nil:
		if preds := sp.predicates(t.Subject); len(preds) > 0 {
			c.add(typePath, "CDEvents %s has no event %s (%s has: %s)%s",
				sp.name, t.Name(), t.Subject, strings.Join(preds, ", "), definedElsewhere(sp, t))
		} else {
			c.add(typePath, "CDEvents %s has no subject %s%s", sp.name, quote(t.Subject), definedElsewhere(sp, t))
		}
	case e.version != t.Version:
		c.add(typePath, "CDEvents %s defines %s %s, not %s%s", sp.name, t.Name(), e.version, quote(t.Version), versionElsewhere(sp, t))
	}
}

// definedElsewhere names the other spec versions that have the event.
func definedElsewhere(sp *spec, t EventType) string {
	var in []string
	for _, s := range specs {
		if s != sp && s.events[t.Name()] != nil {
			in = append(in, s.name)
		}
	}
	if len(in) == 0 {
		return ""
	}
	return " (it is an event of CDEvents " + strings.Join(in, ", ") + ")"
}

// versionElsewhere names the spec version whose version of the event the
// type carries.
func versionElsewhere(sp *spec, t EventType) string {
	for _, s := range specs {
		if e := s.events[t.Name()]; s != sp && e != nil && e.version == t.Version {
			return " (" + t.Version + " is its version in CDEvents " + s.name + ")"
		}
	}
	return ""
}
