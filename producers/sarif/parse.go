package sarif

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Parse summarizes the SARIF 2.1.0 log read from r.
func Parse(r io.Reader) (*Summary, error) {
	s, err := parse(r, MaxInputSize)
	if err != nil {
		return nil, fmt.Errorf("sarif: %w", err)
	}
	return s, nil
}

// parse does the work of Parse, reading at most limit bytes and returning
// errors without the package prefix.
func parse(r io.Reader, limit int64) (*Summary, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, ErrTooLarge
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // byte order mark
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, ErrEmpty
	}
	var log sarifLog
	if err := json.Unmarshal(data, &log); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("%w: %w", ErrNotJSON, err)
		}
		return nil, fmt.Errorf("%w: %w", ErrNotSARIF, err)
	}
	switch {
	case log.Version == nil:
		return nil, fmt.Errorf("%w: no version, want 2.1.0", ErrVersion)
	case *log.Version != "2.1.0":
		return nil, fmt.Errorf("%w: version %q, want 2.1.0", ErrVersion, truncate(*log.Version, 40))
	case len(log.Runs) == 0:
		return nil, ErrNoRuns
	}
	return summarize(log.Runs), nil
}

// counted is a result that counts.
type counted struct {
	run  *run
	res  *result
	rule *rule
	sev  string
}

// summarize counts results and picks the findings.
func summarize(runs []run) *Summary {
	s := &Summary{BySeverity: make(map[string]int, 5)}
	for _, sev := range severities() {
		s.BySeverity[sev] = 0
	}
	// The findings listed are the MaxFindings most severe, in log order
	// within a severity; only they get their message and location built.
	var all []counted
	seen := make(map[string]bool)
	for i := range runs {
		run := &runs[i]
		if name := run.Tool.Driver.Name; name != "" && !seen[name] {
			seen[name] = true
			s.Tools = append(s.Tools, name)
		}
		rules := newRuleIndex(&run.Tool)
		for j := range run.Results {
			res := &run.Results[j]
			switch {
			case res.Kind == "pass" || res.Kind == "notApplicable" || res.BaselineState == "absent":
				continue
			case suppressed(res):
				s.Suppressed++
				continue
			}
			r := rules.lookup(res)
			sev := severityOf(res, r)
			s.Results++
			s.BySeverity[sev]++
			all = append(all, counted{run: run, res: res, rule: r, sev: sev})
		}
	}
	slices.SortStableFunc(all, func(a, b counted) int {
		ra, _ := rank(a.sev)
		rb, _ := rank(b.sev)
		return rb - ra
	})
	for _, c := range all[:min(len(all), MaxFindings)] {
		s.Findings = append(s.Findings, Finding{
			Tool:     c.run.Tool.Driver.Name,
			RuleID:   ruleID(c.res, c.rule),
			Severity: c.sev,
			Message:  messageOf(c.res, c.rule),
			Location: locationOf(c.res),
		})
	}
	return s
}

// suppressed reports whether a result is suppressed: it has suppressions
// and every one is accepted (status absent or "accepted").
func suppressed(res *result) bool {
	if len(res.Suppressions) == 0 {
		return false
	}
	for _, sup := range res.Suppressions {
		if sup.Status != "" && sup.Status != "accepted" {
			return false
		}
	}
	return true
}

// ruleIndex finds the rule of a result among a run's tool components.
type ruleIndex struct {
	tool   *tool
	byID   map[string]*rule      // built on first use
	byName map[string]*component // extensions by name, built on first use
}

func newRuleIndex(t *tool) *ruleIndex { return &ruleIndex{tool: t} }

func (ix *ruleIndex) lookup(res *result) *rule {
	comp := &ix.tool.Driver
	index := res.RuleIndex
	id := res.RuleID
	if ref := res.Rule; ref != nil {
		if ref.Index != nil {
			index = ref.Index
		}
		if id == "" {
			id = ref.ID
		}
		if tc := ref.ToolComponent; tc != nil {
			switch {
			case tc.Index != nil && *tc.Index >= 0 && *tc.Index < len(ix.tool.Extensions):
				comp = &ix.tool.Extensions[*tc.Index]
			case tc.Index == nil && tc.Name != "":
				if c := ix.extension(tc.Name); c != nil {
					comp = c
				}
			}
		}
	}
	var indexed *rule
	if index != nil && *index >= 0 && *index < len(comp.Rules) {
		indexed = &comp.Rules[*index]
		// A ruleId may be hierarchical: "CA2101/1" for rule "CA2101".
		if id == "" || indexed.ID == "" || id == indexed.ID || strings.HasPrefix(id, indexed.ID+"/") {
			return indexed
		}
	}
	if id == "" {
		return indexed
	}
	if ix.byID == nil {
		ix.byID = make(map[string]*rule)
		for _, c := range append([]*component{&ix.tool.Driver}, pointers(ix.tool.Extensions)...) {
			for i := range c.Rules {
				if _, dup := ix.byID[c.Rules[i].ID]; !dup {
					ix.byID[c.Rules[i].ID] = &c.Rules[i]
				}
			}
		}
	}
	if r, ok := ix.byID[id]; ok {
		return r
	}
	return indexed
}

// extension returns the first extension with the given name, or nil.
func (ix *ruleIndex) extension(name string) *component {
	if ix.byName == nil {
		ix.byName = make(map[string]*component)
		for i := range ix.tool.Extensions {
			if _, dup := ix.byName[ix.tool.Extensions[i].Name]; !dup {
				ix.byName[ix.tool.Extensions[i].Name] = &ix.tool.Extensions[i]
			}
		}
	}
	return ix.byName[name]
}

func pointers(cs []component) []*component {
	ps := make([]*component, len(cs))
	for i := range cs {
		ps[i] = &cs[i]
	}
	return ps
}

// ruleID returns the id of a result's rule.
func ruleID(res *result, r *rule) string {
	switch {
	case res.RuleID != "":
		return truncate(res.RuleID, MaxMessageSize)
	case res.Rule != nil && res.Rule.ID != "":
		return truncate(res.Rule.ID, MaxMessageSize)
	case r != nil:
		return truncate(r.ID, MaxMessageSize)
	}
	return ""
}

// messageOf returns a result's message: its text, or the rule's message
// string it names with its arguments filled in, or the rule's short
// description.
func messageOf(res *result, r *rule) string {
	m := res.Message
	text := firstNonEmpty(m.Text, m.Markdown)
	if text == "" && m.ID != "" && r != nil {
		if ms, ok := r.MessageStrings[m.ID]; ok {
			text = firstNonEmpty(ms.Text, ms.Markdown)
		}
	}
	if text == "" && r != nil {
		text = firstNonEmpty(r.ShortDescription.Text, r.ShortDescription.Markdown)
	}
	return truncate(strings.TrimSpace(fillArguments(text, m.Arguments)), MaxMessageSize)
}

// fillArguments replaces the placeholders {0}, {1}, ... of a SARIF message
// with its arguments. The template is cut first, so a hostile log cannot
// make the message grow without bound.
func fillArguments(text string, args []string) string {
	if len(args) == 0 || !strings.Contains(text, "{") {
		return text
	}
	text = truncate(text, MaxMessageSize)
	var b strings.Builder
	for {
		open := strings.IndexByte(text, '{')
		if open < 0 {
			b.WriteString(text)
			break
		}
		closing := strings.IndexByte(text[open:], '}')
		if closing < 0 {
			b.WriteString(text)
			break
		}
		b.WriteString(text[:open])
		n, err := strconv.Atoi(text[open+1 : open+closing])
		if err == nil && n >= 0 && n < len(args) {
			b.WriteString(truncate(args[n], MaxMessageSize))
		} else {
			b.WriteString(text[open : open+closing+1])
		}
		text = text[open+closing+1:]
		if b.Len() > 2*MaxMessageSize {
			break
		}
	}
	return b.String()
}

// locationOf formats a result's first location.
func locationOf(res *result) string {
	if len(res.Locations) == 0 {
		return ""
	}
	loc := res.Locations[0]
	s := loc.PhysicalLocation.ArtifactLocation.URI
	switch {
	case s != "" && loc.PhysicalLocation.Region.StartLine > 0:
		s += ":" + strconv.Itoa(loc.PhysicalLocation.Region.StartLine)
	case s == "" && len(loc.LogicalLocations) > 0:
		s = firstNonEmpty(loc.LogicalLocations[0].FullyQualifiedName, loc.LogicalLocations[0].Name)
	}
	return truncate(s, MaxMessageSize)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
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
