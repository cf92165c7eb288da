// Package ticketkeys finds change-ticket keys (Jira issue keys, ServiceNow
// change numbers, or keys of a configured pattern) in free text: pull
// request titles, branch names, commit messages.
//
// A [Matcher] holds one or more Go regular expressions. A pattern with a
// capture group gives its first group as the key; a pattern without one
// gives the whole match. [Matcher.Find] returns the distinct keys of
// several texts in the order they first appear. [Matcher.FindInBranch]
// also accepts lower-case keys in branch names (pay-123-fix gives PAY-123),
// where people often type them so.
//
// [Default] matches Jira keys (PAY-123: a project key of at least two
// letters, upper case, a dash and a number without leading zero) and
// ServiceNow change numbers (CHG0031234), and leaves out tokens that look
// like keys but are not tickets (UTF-8, SHA-256, ISO-8601, RFC-7231,
// CVE-2024, ...).
package ticketkeys

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Matcher finds ticket keys in text. The zero value and a nil *Matcher
// find nothing. A Matcher is safe for concurrent use.
type Matcher struct {
	rules []rule
}

type rule struct {
	re *regexp.Regexp
	// group is the submatch that holds the key: 1 when the pattern has a
	// capture group, else 0 (the whole match).
	group int
	// bounded rules require that the key is not glued to letters or
	// digits on either side (a word boundary that, unlike \b, lets '_'
	// separate a key from what follows: PAY-123_fix).
	bounded bool
	// accept, when set, vets a key the expression matched.
	accept func(key string) bool
}

// New compiles the patterns (Go regexp syntax). A pattern with a capture
// group yields group 1 as the key; otherwise the whole match is the key.
// An invalid pattern is an error that names it.
func New(patterns ...string) (*Matcher, error) {
	if len(patterns) == 0 {
		return nil, errors.New("ticketkeys: no pattern given")
	}
	m := &Matcher{}
	for _, p := range patterns {
		if strings.TrimSpace(p) == "" {
			return nil, fmt.Errorf("ticketkeys: pattern %q: empty", p)
		}
		re, err := regexp.Compile(p)
		if err != nil {
			return nil, fmt.Errorf("ticketkeys: pattern %q: %w", p, err)
		}
		g := 0
		if re.NumSubexp() > 0 {
			g = 1
		}
		m.rules = append(m.rules, rule{re: re, group: g})
	}
	return m, nil
}

// JiraPattern and ServiceNowPattern are the expressions of [Default]. The
// Default matcher adds, beyond them, word boundaries that let '_' follow a
// key, a minimum of two letters in a Jira project key, and the deny list.
const (
	JiraPattern       = `\b[A-Z][A-Z0-9_]+-[1-9][0-9]*\b`
	ServiceNowPattern = `\bCHG[0-9]{7}\b`
)

// notTickets are upper-case tokens that are written like Jira keys but
// name standards, algorithms, encodings or other things than tickets.
var notTickets = map[string]bool{
	"UTF": true, "UCS": true, "SHA": true, "MD": true, "ISO": true, "IEC": true,
	"IEEE": true, "RFC": true, "CVE": true, "CWE": true, "GPL": true, "LGPL": true,
	"AGPL": true, "AES": true, "RSA": true, "DES": true, "ECDSA": true, "TLS": true,
	"SSL": true, "HTTP": true, "HTTPS": true, "PR": true, "MR": true, "ECMA": true,
	"ES": true, "ANSI": true, "COVID": true, "WCAG": true, "PEP": true, "JSR": true,
}

var (
	jiraRE = regexp.MustCompile(`[A-Z][A-Z0-9_]+-[1-9][0-9]*`)
	snowRE = regexp.MustCompile(`CHG[0-9]{7}`)
)

// Default returns the matcher of Jira keys and ServiceNow change numbers.
func Default() *Matcher {
	return &Matcher{rules: []rule{
		{re: jiraRE, bounded: true, accept: jiraKey},
		{re: snowRE, bounded: true},
	}}
}

// jiraKey accepts a project key of at least two letters that is not a
// well-known non-ticket token.
func jiraKey(key string) bool {
	project, _, _ := strings.Cut(key, "-")
	letters := 0
	for i := 0; i < len(project); i++ {
		if c := project[i]; 'A' <= c && c <= 'Z' {
			letters++
		}
	}
	return letters >= 2 && !notTickets[project]
}

// Find returns the distinct keys found in texts, in order of first
// appearance (texts in order, positions within a text in order).
func (m *Matcher) Find(texts ...string) []string {
	if m == nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, t := range texts {
		for _, h := range m.scan(t, false) {
			if !seen[h.key] {
				seen[h.key] = true
				out = append(out, h.key)
			}
		}
	}
	return out
}

// FindInBranch returns the keys in a branch name (with or without
// refs/heads/). Besides what [Matcher.Find] finds, it accepts keys typed in
// lower case, reported in upper case, when they begin the branch name or
// one of its '/'-separated segments (pay-123-fix, feature/pay-123-fix):
// anywhere else a lower-case match is more often a version (node-18,
// deps-2024) than a ticket.
func (m *Matcher) FindInBranch(branch string) []string {
	if m == nil {
		return nil
	}
	branch = strings.TrimPrefix(branch, "refs/heads/")
	hits := m.scan(branch, false)
	hits = append(hits, m.scan(asciiUpper(branch), true)...)
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].pos < hits[j].pos })
	var out []string
	seen := map[string]bool{}
	for _, h := range hits {
		if !seen[h.key] {
			seen[h.key] = true
			out = append(out, h.key)
		}
	}
	return out
}

type hit struct {
	pos int
	key string
}

// scan returns every key of text with its byte offset, ordered by offset.
// segmentStart keeps only keys that begin text or follow a '/'.
func (m *Matcher) scan(text string, segmentStart bool) []hit {
	var hits []hit
	for _, r := range m.rules {
		for _, loc := range r.re.FindAllStringSubmatchIndex(text, -1) {
			start, end := loc[2*r.group], loc[2*r.group+1]
			if start < 0 || end <= start {
				continue
			}
			if r.bounded && (glued(text, start-1) || glued(text, end)) {
				continue
			}
			if segmentStart && start > 0 && text[start-1] != '/' {
				continue
			}
			key := text[start:end]
			if !validKey(key) || (r.accept != nil && !r.accept(key)) {
				continue
			}
			hits = append(hits, hit{pos: start, key: key})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].pos < hits[j].pos })
	return hits
}

// glued reports whether text[i] exists and is an ASCII letter or digit.
func glued(text string, i int) bool {
	if i < 0 || i >= len(text) {
		return false
	}
	c := text[i]
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

// validKey refuses keys no ticket system would show: invalid UTF-8 or
// containing white space (ticket keys are one token).
func validKey(key string) bool {
	if !utf8.ValidString(key) {
		return false
	}
	for _, c := range key {
		if unicode.IsSpace(c) || c == '\uFEFF' || unicode.IsControl(c) {
			return false
		}
	}
	return true
}

// asciiUpper upper-cases ASCII letters only, so byte offsets are kept.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
