package junit

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Parse summarizes the JUnit report read from r.
func Parse(r io.Reader) (*Summary, error) {
	s, err := parse(r, MaxInputSize)
	if err != nil {
		return nil, fmt.Errorf("junit: %w", err)
	}
	return s, nil
}

// parse does the work of Parse, reading at most limit bytes and returning
// errors without the package prefix.
func parse(r io.Reader, limit int64) (*Summary, error) {
	lr := &limitedReader{r: r, n: limit}
	br := bufio.NewReader(lr)
	if b, _ := br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		br.Discard(3) // a UTF-8 byte order mark, which encoding/xml does not skip
	}
	p := &parser{dec: xml.NewDecoder(br)}
	p.dec.CharsetReader = charsetReader
	s, err := p.run()
	if lr.exceeded {
		return nil, ErrTooLarge
	}
	return s, err
}

// elemKind is what an open element means to the parser.
type elemKind int

const (
	kindOther  elemKind = iota // ignored, with everything inside
	kindSuite                  // <testsuites> or <testsuite>
	kindCase                   // <testcase> directly in a suite
	kindResult                 // <failure> or <error> directly in a case
)

// frame is an open element.
type frame struct {
	kind  elemKind
	suite *suiteState // kindSuite
	tc    *caseState  // kindCase, kindResult
}

// suiteState accumulates a suite while it is open.
type suiteState struct {
	index     int  // in parser.suites, reserved at the start tag for document order
	root      bool // the <testsuites> root: a container, never a suite by its attributes
	depth     int
	suite     Suite
	attrs     counts
	attrTime  time.Duration
	hasTime   bool
	cases     int           // direct <testcase> children
	children  int           // direct suite children
	caseTime  time.Duration // sum of direct cases' times
	omitted   int           // failures beyond MaxFailures
	failures  []Case
	emittable bool
}

// counts are a suite's count attributes.
type counts struct{ tests, failures, errors, skipped int }

// caseState accumulates a test case while it is open.
type caseState struct {
	name, classname string
	time            time.Duration
	kind            string // KindError, KindFailure, "skipped" or "" (passed)
	message         string
	typ             string
	text            []byte // start of the failure's text, when it has no message
}

type parser struct {
	dec      *xml.Decoder
	stack    []frame
	suites   []*suiteState // every suite, in start-tag order
	failures int           // failures listed so far, across suites
}

func (p *parser) run() (*Summary, error) {
	root, err := p.root()
	if err != nil {
		return nil, err
	}
	p.startSuite(root, true)
	for len(p.stack) > 0 {
		tok, err := p.dec.Token()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("%w: %w", ErrNotXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if err := p.start(t); err != nil {
				return nil, err
			}
		case xml.EndElement:
			p.end()
		case xml.CharData:
			if top := p.stack[len(p.stack)-1]; top.kind == kindResult {
				top.tc.addText(t)
			}
		}
	}
	sum := &Summary{}
	for _, s := range p.suites {
		if s.emittable {
			sum.addSuite(s.suite)
		}
	}
	for _, s := range p.suites {
		sum.OmittedFailures += s.omitted
	}
	return sum, nil
}

// root reads up to the root element and checks it is a JUnit one.
func (p *parser) root() (xml.StartElement, error) {
	sawMarkup := false
	for {
		tok, err := p.dec.Token()
		if errors.Is(err, io.EOF) {
			if !sawMarkup {
				return xml.StartElement{}, ErrEmpty
			}
			return xml.StartElement{}, fmt.Errorf("%w: no root element", ErrNotXML)
		}
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("%w: %w", ErrNotXML, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "testsuites", "testsuite":
				return t, nil
			}
			return xml.StartElement{}, fmt.Errorf("%w: root element is <%s>, want <testsuites> or <testsuite>",
				ErrNotJUnit, qname(t.Name))
		case xml.CharData:
			if text := bytes.TrimSpace(t); len(text) > 0 {
				return xml.StartElement{}, fmt.Errorf("%w: text %q before the root element", ErrNotXML, truncate(string(text), 20))
			}
		default:
			sawMarkup = true
		}
	}
}

// start handles a start tag inside the root.
func (p *parser) start(t xml.StartElement) error {
	parent := p.stack[len(p.stack)-1]
	name := t.Name.Local
	switch {
	case parent.kind == kindSuite && (name == "testsuite" || name == "testsuites"):
		if parent.suite.depth >= maxSuiteDepth {
			return fmt.Errorf("%w: suites nested more than %d deep", ErrNotJUnit, maxSuiteDepth)
		}
		parent.suite.children++
		p.startSuite(t, false)
	case parent.kind == kindSuite && name == "testcase":
		p.push(frame{kind: kindCase, tc: &caseState{
			name:      attr(t, "name"),
			classname: attr(t, "classname"),
			time:      seconds(attr(t, "time")),
			kind:      googletestSkipped(t),
		}})
	case parent.kind == kindCase && (name == "error" || name == "failure"):
		tc := parent.tc
		kind := KindFailure
		if name == "error" {
			kind = KindError
		}
		// One verdict per case: an error outranks a failure, which
		// outranks a skip; the first element of the winning kind speaks.
		if tc.kind != kind && tc.kind != KindError {
			tc.kind, tc.message, tc.typ, tc.text = kind, attr(t, "message"), attr(t, "type"), nil
			p.push(frame{kind: kindResult, tc: tc})
			return nil
		}
		p.push(frame{kind: kindOther})
	case parent.kind == kindCase && name == "skipped":
		if parent.tc.kind == "" {
			parent.tc.kind = "skipped"
		}
		p.push(frame{kind: kindOther})
	default:
		p.push(frame{kind: kindOther})
	}
	return nil
}

func (p *parser) push(f frame) { p.stack = append(p.stack, f) }

// startSuite opens a suite, reserving its place in document order.
func (p *parser) startSuite(t xml.StartElement, root bool) {
	depth := 0
	if len(p.stack) > 0 {
		depth = p.stack[len(p.stack)-1].suite.depth + 1
	}
	s := &suiteState{
		index: len(p.suites),
		root:  root && t.Name.Local == "testsuites",
		depth: depth,
		suite: Suite{Name: attr(t, "name")},
		attrs: counts{
			tests:    count(attr(t, "tests")),
			failures: count(attr(t, "failures")),
			errors:   count(attr(t, "errors")),
			skipped:  count(firstAttr(t, "skipped", "skips")),
		},
	}
	s.attrTime, s.hasTime = parseSeconds(attr(t, "time"))
	p.suites = append(p.suites, s)
	p.push(frame{kind: kindSuite, suite: s})
}

// end handles an end tag.
func (p *parser) end() {
	f := p.stack[len(p.stack)-1]
	p.stack = p.stack[:len(p.stack)-1]
	switch f.kind {
	case kindCase:
		p.endCase(p.stack[len(p.stack)-1].suite, f.tc)
	case kindSuite:
		f.suite.finish()
	}
}

// endCase counts a finished case in its suite.
func (p *parser) endCase(s *suiteState, tc *caseState) {
	s.cases++
	s.caseTime = addDuration(s.caseTime, tc.time)
	switch tc.kind {
	case "skipped":
		s.suite.Skipped++
		return
	case "":
		return
	case KindFailure:
		s.suite.Failed++
	case KindError:
		s.suite.Errors++
	}
	if p.failures >= MaxFailures {
		s.omitted++
		return
	}
	p.failures++
	msg := tc.message
	if strings.TrimSpace(msg) == "" {
		msg = string(tc.text)
	}
	if strings.TrimSpace(msg) == "" {
		msg = tc.typ
	}
	s.failures = append(s.failures, Case{
		Name:      tc.name,
		Classname: tc.classname,
		Kind:      tc.kind,
		Message:   truncate(strings.TrimSpace(msg), MaxMessageSize),
	})
}

// addText keeps the start of a failure's text, used when it has no message
// attribute.
func (tc *caseState) addText(b []byte) {
	if strings.TrimSpace(tc.message) != "" || len(tc.text) > MaxMessageSize+utf8.UTFMax {
		return
	}
	if len(tc.text) == 0 {
		b = bytes.TrimLeft(b, " \t\r\n")
	}
	room := MaxMessageSize + utf8.UTFMax + 1 - len(tc.text)
	tc.text = append(tc.text, b[:min(len(b), room)]...)
}

// finish settles a closed suite's counts: from its cases when it has any,
// else from its attributes when it has no child suites either.
func (s *suiteState) finish() {
	switch {
	case s.cases > 0:
		s.suite.Tests = s.cases
		s.suite.Duration = s.caseTime
		if s.hasTime && s.children == 0 {
			s.suite.Duration = s.attrTime
		}
		s.suite.Failures = s.failures
		s.emittable = true
	case s.children == 0 && !s.root:
		a := s.attrs
		s.suite.Failed, s.suite.Errors, s.suite.Skipped = a.failures, a.errors, a.skipped
		s.suite.Tests = max(a.tests, a.failures+a.errors+a.skipped)
		s.suite.Duration = s.attrTime
		s.emittable = true
	}
}

// googletestSkipped reports GoogleTest's disabled and skipped cases, which
// it marks with attributes (status="notrun", result="skipped" or
// "suppressed") rather than a <skipped> element.
func googletestSkipped(t xml.StartElement) string {
	switch {
	case attr(t, "status") == "notrun", attr(t, "result") == "skipped", attr(t, "result") == "suppressed":
		return "skipped"
	}
	return ""
}

// attr returns the value of the attribute with the given local name.
func attr(t xml.StartElement, name string) string {
	for _, a := range t.Attr {
		if a.Name.Local == name && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// firstAttr returns the first non-empty attribute among names.
func firstAttr(t xml.StartElement, names ...string) string {
	for _, n := range names {
		if v := attr(t, n); v != "" {
			return v
		}
	}
	return ""
}

// qname formats an element name as written, with its namespace if any.
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && cut > n-utf8.UTFMax && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
