package cdevents

import "strings"

// TypePrefix starts every CDEvents event type.
const TypePrefix = "dev.cdevents."

// EventType is a parsed CDEvents event type: the CloudEvents type
// dev.cdevents.<Subject>.<Predicate>.<Version>.
type EventType struct {
	Subject   string // "service", "pipelinerun"
	Predicate string // "deployed", "finished"
	Version   string // the event's own semantic version: "0.3.0", "0.1.0-draft"
}

// String is the CloudEvents type.
func (t EventType) String() string {
	return TypePrefix + t.Subject + "." + t.Predicate + "." + t.Version
}

// Name is subject.predicate, the event type without its version.
func (t EventType) Name() string { return t.Subject + "." + t.Predicate }

// Is reports whether a CloudEvents type is a CDEvents event type:
// dev.cdevents.<subject>.<predicate>.<semver>, where subject and predicate
// are lower-case ASCII letters and digits starting with a letter, and the
// version is major.minor.patch with an optional pre-release (-draft) and
// build metadata. It says nothing of whether the type exists in a spec
// version: Validate does.
func Is(eventType string) bool {
	_, ok := ParseType(eventType)
	return ok
}

// ParseType splits a CDEvents event type; ok is false when Is is.
func ParseType(eventType string) (t EventType, ok bool) {
	rest, found := strings.CutPrefix(eventType, TypePrefix)
	if !found {
		return EventType{}, false
	}
	subject, rest, found := strings.Cut(rest, ".")
	if !found || !isName(subject) {
		return EventType{}, false
	}
	predicate, version, found := strings.Cut(rest, ".")
	if !found || !isName(predicate) || !isSemver(version) {
		return EventType{}, false
	}
	return EventType{Subject: subject, Predicate: predicate, Version: version}, true
}

func isName(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// isSemver reports whether s is a semantic version (semver.org 2.0.0):
// MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD], numbers without leading zeros.
func isSemver(s string) bool {
	core, build, hasBuild := strings.Cut(s, "+")
	if hasBuild && !dotIdents(build, false) {
		return false
	}
	core, pre, hasPre := strings.Cut(core, "-")
	if hasPre && !dotIdents(pre, true) {
		return false
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if !isNumber(p) {
			return false
		}
	}
	return true
}

func isNumber(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// dotIdents checks dot-separated identifiers of [0-9A-Za-z-]; numeric
// pre-release identifiers must not have leading zeros.
func dotIdents(s string, pre bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		numeric := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				numeric = false
			default:
				return false
			}
		}
		if pre && numeric && !isNumber(id) {
			return false
		}
	}
	return true
}
