package ci

import (
	"fmt"
	"strings"
)

// Field names an Info field a command may require, with the CLI flag and the
// environment variable that supply it when detection cannot.
type Field int

// Fields a command may require. Each can be given by a flag or an EVIDENCE_*
// variable.
const (
	FieldRepository Field = iota + 1 // --repo, EVIDENCE_REPO
	FieldCommit                      // --commit, EVIDENCE_COMMIT
	FieldRunID                       // --run-id, EVIDENCE_RUN_ID
	FieldActor                       // --actor, EVIDENCE_ACTOR
)

// String returns the field's name as used in messages ("repository").
func (f Field) String() string {
	switch f {
	case FieldRepository:
		return "repository"
	case FieldCommit:
		return "commit"
	case FieldRunID:
		return "run id"
	case FieldActor:
		return "actor"
	}
	return fmt.Sprintf("Field(%d)", int(f))
}

// Flag returns the CLI flag that sets the field ("--repo").
func (f Field) Flag() string {
	switch f {
	case FieldRepository:
		return "--repo"
	case FieldCommit:
		return "--commit"
	case FieldRunID:
		return "--run-id"
	case FieldActor:
		return "--actor"
	}
	return ""
}

// Env returns the environment variable that sets the field
// ("EVIDENCE_REPO").
func (f Field) Env() string {
	switch f {
	case FieldRepository:
		return "EVIDENCE_REPO"
	case FieldCommit:
		return "EVIDENCE_COMMIT"
	case FieldRunID:
		return "EVIDENCE_RUN_ID"
	case FieldActor:
		return "EVIDENCE_ACTOR"
	}
	return ""
}

// value returns the field's value in i; "" for an unknown Field, which is
// therefore always missing.
func (f Field) value(i Info) string {
	switch f {
	case FieldRepository:
		return i.Repository
	case FieldCommit:
		return i.Commit
	case FieldRunID:
		return i.RunID
	case FieldActor:
		return i.Actor
	}
	return ""
}

// Missing returns the fields among fields that are empty in i, in the order
// given.
func (i Info) Missing(fields ...Field) []Field {
	var missing []Field
	for _, f := range fields {
		if strings.TrimSpace(f.value(i)) == "" {
			missing = append(missing, f)
		}
	}
	return missing
}

// Require returns a *MissingError naming the fields among fields that are
// empty in i and how to supply them, or nil when all are known.
func (i Info) Require(fields ...Field) error {
	missing := i.Missing(fields...)
	if len(missing) == 0 {
		return nil
	}
	return &MissingError{System: i.System, Fields: missing}
}

// MissingError reports required fields that neither the CI system nor the
// caller supplied.
type MissingError struct {
	// System is the detected CI system, empty when none.
	System string
	// Fields are the missing fields, at least one.
	Fields []Field
}

// Error names each missing field with its flag and variable, for example:
//
//	unknown commit and run id (no CI system detected): pass --commit and --run-id, or set EVIDENCE_COMMIT and EVIDENCE_RUN_ID
func (e *MissingError) Error() string {
	names := make([]string, len(e.Fields))
	flags := make([]string, 0, len(e.Fields))
	envs := make([]string, 0, len(e.Fields))
	for i, f := range e.Fields {
		names[i] = f.String()
		if f.Flag() != "" {
			flags = append(flags, f.Flag())
			envs = append(envs, f.Env())
		}
	}
	system := "no CI system detected"
	if e.System != "" {
		system = e.System + " does not provide it"
		if len(e.Fields) > 1 {
			system = e.System + " does not provide them"
		}
	}
	msg := fmt.Sprintf("unknown %s (%s)", joinAnd(names), system)
	if len(flags) > 0 {
		msg += fmt.Sprintf(": pass %s, or set %s", joinAnd(flags), joinAnd(envs))
	}
	return msg
}

// joinAnd joins "a", "a and b", "a, b and c".
func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
