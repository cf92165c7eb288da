package sarif

import (
	"errors"
	"fmt"
	"strings"
)

// Limits that keep a summary small whatever the log's size.
const (
	// MaxInputSize is the largest log read, in bytes (256 MiB).
	MaxInputSize = 256 << 20
	// MaxFindings is the most findings a Summary lists.
	MaxFindings = 100
	// MaxMessageSize is the longest message or location kept, in bytes.
	MaxMessageSize = 500
)

// Severities, from the most severe: the keys of Summary.BySeverity and the
// values of Finding.Severity.
const (
	Critical = "critical"
	High     = "high"
	Medium   = "medium"
	Low      = "low"
	None     = "none" // notes and informational results
)

// Errors returned, wrapped, by Parse.
var (
	// ErrEmpty is returned for an input with nothing but white space.
	ErrEmpty = errors.New("empty log")
	// ErrNotJSON is returned for an input that is not JSON.
	ErrNotJSON = errors.New("not JSON")
	// ErrNotSARIF is returned for JSON that is not shaped like a SARIF log.
	ErrNotSARIF = errors.New("not a SARIF log")
	// ErrVersion is returned for a log whose version is not 2.1.0.
	ErrVersion = errors.New("unsupported SARIF version")
	// ErrNoRuns is returned for a log without runs.
	ErrNoRuns = errors.New("no runs in SARIF log")
	// ErrTooLarge is returned for an input larger than MaxInputSize.
	ErrTooLarge = errors.New("log larger than 256 MiB")
)

// Summary is what a SARIF log reports.
type Summary struct {
	// Tools are the names of the tools (run.tool.driver.name) that ran, in
	// order, without repeats.
	Tools []string
	// Results is the number of results counted: not suppressed, not
	// passing, not absent.
	Results int
	// Suppressed is the number of results not counted because they were
	// suppressed.
	Suppressed int
	// BySeverity counts Results by severity; it holds every severity key,
	// so its values add up to Results.
	BySeverity map[string]int
	// Findings are at most MaxFindings of the counted results, the most
	// severe first, in log order within a severity.
	Findings []Finding
}

// Finding is one counted result.
type Finding struct {
	// Tool is the name of the tool that reported it.
	Tool string
	// RuleID is the id of the rule it breaks (may be empty).
	RuleID string
	// Severity is one of Critical, High, Medium, Low, None.
	Severity string
	// Message is the result's message, at most MaxMessageSize bytes.
	Message string
	// Location is "uri:line" of its first location (or "uri", or a logical
	// location's name), at most MaxMessageSize bytes.
	Location string
}

// Above returns the number of counted results at or above the threshold
// severity. An unknown threshold counts every result, so that a gate fails
// closed; validate thresholds with ParseSeverity.
func (s *Summary) Above(threshold string) int {
	t, ok := rank(threshold)
	if !ok {
		t = 0
	}
	n := 0
	for sev, c := range s.BySeverity {
		if r, ok := rank(sev); ok && r >= t {
			n += c
		}
	}
	return n
}

// ParseSeverity returns the severity named by s, case-insensitively, or an
// error listing the valid ones.
func ParseSeverity(s string) (string, error) {
	sev := strings.ToLower(strings.TrimSpace(s))
	if _, ok := rank(sev); !ok {
		return "", fmt.Errorf("sarif: unknown severity %q: want critical, high, medium, low or none", s)
	}
	return sev, nil
}

// severities lists the severities from the least severe; the index is the
// rank.
func severities() [5]string { return [5]string{None, Low, Medium, High, Critical} }

// rank orders severities: none 0 ... critical 4.
func rank(sev string) (int, bool) {
	for i, s := range severities() {
		if s == sev {
			return i, true
		}
	}
	return 0, false
}
