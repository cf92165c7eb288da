package webhook

import (
	"strings"
	"time"
)

// ParseTime parses s with the first of layouts that fits, in UTC. An
// empty s (spaces around it ignored) is the zero time. Its error is a
// FieldError naming field: s fits no layout, or its year is out of 1 to
// 9999.
func ParseTime(field, s string, layouts ...string) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range layouts {
		if t, err := time.Parse(layout, s); err == nil {
			if t = t.UTC(); t.Year() < 1 || t.Year() > 9999 {
				return time.Time{}, FieldError(field, "%q is out of range", s)
			}
			return t, nil
		}
	}
	return time.Time{}, FieldError(field, "%q is not a timestamp", s)
}

// FormatTime formats t for event data (RFC 3339 in UTC), "" for the zero
// time.
func FormatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// FirstTime is the first non-zero time of ts, the zero time when there is
// none.
func FirstTime(ts ...time.Time) time.Time {
	for _, t := range ts {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}
