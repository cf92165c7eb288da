package cdevents

import (
	"sort"
	"strings"
)

// spec is the table of one CDEvents spec version: its event types, each
// with its event version and the schema of its subject content, and how it
// builds the whole event schema around a content (the envelope).
type spec struct {
	name    string // how messages name it: "0.5"
	release string // the release the table was taken from: "0.5.1"
	field   string // the context member that holds the spec version
	// accepts reports whether a value of that member is this spec.
	accepts func(version string) bool
	// envelope builds the schema of a whole event (data) around an event.
	envelope func(e *event) *schema
	events   map[string]*event // by subject.predicate
	generic  *schema           // an event of a type this spec lacks: envelope only
}

// event is one event type of a spec version.
type event struct {
	name    string // subject.predicate
	version string // its event version in this spec
	// content is the schema of subject.content; nil when only the envelope
	// is checked (content must be an object, any members).
	content *schema
	// subjectType is subject.type where the spec defines it.
	subjectType *schema
	// plainSources: context.source and subject.source have no format (and
	// subject.source may be empty), as in the v0.5.1 test event schemas.
	plainSources bool
	full         *schema // the whole event, built by spec.envelope
}

func (e *event) contentSchema() *schema {
	if e.content == nil {
		return openObj()
	}
	return e.content
}

// def is how the tables list events.
type def struct {
	name    string
	version string
	content *schema
}

func newSpec(s *spec, defs []def) *spec {
	s.events = make(map[string]*event, len(defs))
	for _, d := range defs {
		if _, dup := s.events[d.name]; dup {
			panic("cdevents: " + d.name + " listed twice in spec " + s.name)
		}
		s.events[d.name] = &event{name: d.name, version: d.version, content: d.content}
	}
	return s
}

// finish builds the whole-event schemas once the events are complete.
func (s *spec) finish() *spec {
	for _, e := range s.events {
		e.full = s.envelope(e)
	}
	s.generic = s.envelope(&event{})
	return s
}

// names lists the events of the spec, sorted.
func (s *spec) names() []string {
	out := make([]string, 0, len(s.events))
	for n := range s.events {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// predicates lists the predicates the spec has for a subject, sorted.
func (s *spec) predicates(subject string) []string {
	var out []string
	for _, n := range s.names() {
		if sub, pred, _ := strings.Cut(n, "."); sub == subject {
			out = append(out, pred)
		}
	}
	return out
}

// minorOf accepts x.y.N for a fixed x.y: "0.5.0", "0.5.1", "0.5.12".
func minorOf(prefix string) func(string) bool {
	return func(v string) bool {
		n, ok := strings.CutPrefix(v, prefix+".")
		return ok && isNumber(n)
	}
}

// specs are the accepted spec versions, in the order messages list them.
var specs = []*spec{specV04, specV05, specDraft}

// specFor finds the spec of a context spec version.
func specFor(version string) *spec {
	for _, s := range specs {
		if s.accepts(version) {
			return s
		}
	}
	return nil
}

// accepted names the accepted spec versions for messages.
const accepted = `accepted are 0.4.x (in context.version), 0.5.x (in context.specversion), and 0.6.0-draft for the draft approval events`
