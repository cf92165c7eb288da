package junit

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Limits that keep a summary small whatever the report's size.
const (
	// MaxInputSize is the largest report read, in bytes (256 MiB).
	MaxInputSize = 256 << 20
	// MaxFailures is the most failed or errored cases a Summary lists; the
	// rest are counted in Summary.OmittedFailures.
	MaxFailures = 50
	// MaxMessageSize is the longest failure message kept, in bytes.
	MaxMessageSize = 500
	// maxSuiteDepth bounds the nesting of suites.
	maxSuiteDepth = 1000
)

// Errors returned, wrapped, by Parse, ParseFile and ParseFiles.
var (
	// ErrEmpty is returned for an input with nothing but white space.
	ErrEmpty = errors.New("empty report")
	// ErrNotXML is returned for an input that is not well-formed XML.
	ErrNotXML = errors.New("not well-formed XML")
	// ErrNotJUnit is returned for XML whose root element is neither
	// <testsuites> nor <testsuite>.
	ErrNotJUnit = errors.New("not a JUnit report")
	// ErrTooLarge is returned for an input larger than MaxInputSize.
	ErrTooLarge = errors.New("report larger than 256 MiB")
)

// Kinds of Case.
const (
	KindFailure = "failure" // an assertion failed
	KindError   = "error"   // the test could not run to completion
)

// Summary totals one or more reports.
type Summary struct {
	// Suites are the suites that hold cases (or counts), in document order.
	Suites []Suite
	// Tests is Passed + Failed + Errors + Skipped.
	Tests, Passed, Failed, Errors, Skipped int
	// Duration is the sum of the suites' durations.
	Duration time.Duration
	// OmittedFailures counts the failed or errored cases left out of
	// Suites[].Failures because MaxFailures were already listed.
	OmittedFailures int
}

// Suite is one test suite.
type Suite struct {
	Name                           string
	Tests, Failed, Errors, Skipped int
	// Duration is the suite's time attribute, or the sum of its cases'
	// times when it has none.
	Duration time.Duration
	// Failures are the suite's failed and errored cases, within the
	// summary's MaxFailures.
	Failures []Case
}

// Passed returns the number of the suite's tests that passed.
func (s Suite) Passed() int { return s.Tests - s.Failed - s.Errors - s.Skipped }

// Case is a failed or errored test case.
type Case struct {
	Name      string
	Classname string
	// Kind is KindFailure or KindError.
	Kind string
	// Message is the failure's message attribute, or else the start of its
	// text, or else its type; at most MaxMessageSize bytes.
	Message string
}

// ParseFile summarizes the JUnit report at path.
func ParseFile(path string) (*Summary, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("junit: %w", err)
	}
	defer f.Close()
	s, err := parse(f, MaxInputSize)
	if err != nil {
		return nil, fmt.Errorf("junit: %s: %w", path, err)
	}
	return s, nil
}

// ParseFiles summarizes the JUnit reports at paths as one: suites in the
// order of paths, totals summed, at most MaxFailures failures in all.
func ParseFiles(paths ...string) (*Summary, error) {
	if len(paths) == 0 {
		return nil, errors.New("junit: no report files given")
	}
	total := &Summary{}
	for _, p := range paths {
		s, err := ParseFile(p)
		if err != nil {
			return nil, err
		}
		total.add(s)
	}
	return total, nil
}

// add merges s into sum, keeping at most MaxFailures failures in all.
func (sum *Summary) add(s *Summary) {
	listed := 0
	for _, suite := range sum.Suites {
		listed += len(suite.Failures)
	}
	for _, suite := range s.Suites {
		if keep := max(0, MaxFailures-listed); len(suite.Failures) > keep {
			sum.OmittedFailures += len(suite.Failures) - keep
			suite.Failures = suite.Failures[:keep:keep]
		}
		if len(suite.Failures) == 0 {
			suite.Failures = nil
		}
		listed += len(suite.Failures)
		sum.addSuite(suite)
	}
	sum.OmittedFailures += s.OmittedFailures
}

// addSuite appends suite and adds its counts to the totals.
func (sum *Summary) addSuite(suite Suite) {
	sum.Suites = append(sum.Suites, suite)
	sum.Tests += suite.Tests
	sum.Passed += suite.Passed()
	sum.Failed += suite.Failed
	sum.Errors += suite.Errors
	sum.Skipped += suite.Skipped
	sum.Duration = addDuration(sum.Duration, suite.Duration)
}
