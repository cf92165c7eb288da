package sarif

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func parseFile(t *testing.T, name string) *Summary {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	checkConsistent(t, s)
	return s
}

// checkConsistent asserts the invariants every summary keeps.
func checkConsistent(t *testing.T, s *Summary) {
	t.Helper()
	sum := 0
	for sev, n := range s.BySeverity {
		if _, ok := rank(sev); !ok {
			t.Errorf("BySeverity has key %q", sev)
		}
		if n < 0 {
			t.Errorf("BySeverity[%s] = %d", sev, n)
		}
		sum += n
	}
	if len(s.BySeverity) != 5 {
		t.Errorf("BySeverity has %d keys, want 5", len(s.BySeverity))
	}
	if sum != s.Results {
		t.Errorf("BySeverity adds up to %d, Results = %d", sum, s.Results)
	}
	if s.Above(None) != s.Results {
		t.Errorf("Above(none) = %d, Results = %d", s.Above(None), s.Results)
	}
	if len(s.Findings) != min(s.Results, MaxFindings) {
		t.Errorf("%d findings for %d results", len(s.Findings), s.Results)
	}
	prev := 5
	for _, f := range s.Findings {
		r, ok := rank(f.Severity)
		if !ok || r > prev {
			t.Errorf("finding %+v out of order or unknown severity", f)
		}
		prev = r
		if len(f.Message) > MaxMessageSize || len(f.Location) > MaxMessageSize || len(f.RuleID) > MaxMessageSize {
			t.Errorf("finding field over %d bytes", MaxMessageSize)
		}
	}
}

func sev(critical, high, medium, low, none int) map[string]int {
	return map[string]int{Critical: critical, High: high, Medium: medium, Low: low, None: none}
}

func TestParseCodeQL(t *testing.T) {
	got := parseFile(t, "codeql.sarif")
	want := &Summary{
		Tools:      []string{"CodeQL"},
		Results:    4,
		BySeverity: sev(1, 1, 1, 1, 0),
		Findings: []Finding{
			{Tool: "CodeQL", RuleID: "js/hardcoded-credentials", Severity: Critical,
				Message: `The hard-coded value "hunter2" is used as [password](1).`, Location: "src/config.js:3"},
			{Tool: "CodeQL", RuleID: "js/sql-injection", Severity: High,
				Message: "This query string depends on a [user-provided value](1).", Location: "src/db/users.js:17"},
			// Level error, but a security-severity of 6.1.
			{Tool: "CodeQL", RuleID: "js/reflected-xss", Severity: Medium,
				Message: "Cross-site scripting vulnerability due to a [user-provided value](1).", Location: "src/routes/users.js:41"},
			// No level on the result: problem.severity "recommendation".
			{Tool: "CodeQL", RuleID: "js/unused-local-variable", Severity: Low,
				Message: "Unused variable tmp.", Location: "src/util.js:5"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseTrivy(t *testing.T) {
	got := parseFile(t, "trivy.sarif")
	if diff := cmp.Diff([]string{"Trivy"}, got.Tools); diff != "" {
		t.Errorf("Tools mismatch (-want +got):\n%s", diff)
	}
	if got.Results != 6 || got.Suppressed != 0 {
		t.Errorf("Results, Suppressed = %d, %d; want 6, 0", got.Results, got.Suppressed)
	}
	if diff := cmp.Diff(sev(1, 2, 1, 1, 1), got.BySeverity); diff != "" {
		t.Errorf("BySeverity mismatch (-want +got):\n%s", diff)
	}
	type short struct{ RuleID, Severity, Location string }
	var findings []short
	for _, f := range got.Findings {
		findings = append(findings, short{f.RuleID, f.Severity, f.Location})
	}
	want := []short{
		{"CVE-2024-5535", Critical, "library/alpine:1"},
		{"CVE-2023-5363", High, "library/alpine:1"},
		{"DS002", High, "Dockerfile:1"},
		{"CVE-2024-2511", Medium, "library/alpine:1"},
		{"CVE-2024-4741", Low, "library/alpine:1"},
		{"CVE-2024-9143", None, "library/alpine:1"}, // UNKNOWN: security-severity 0.0
	}
	if diff := cmp.Diff(want, findings); diff != "" {
		t.Errorf("Findings mismatch (-want +got):\n%s", diff)
	}
	if m := got.Findings[0].Message; !strings.HasPrefix(m, "Package: libssl3\nInstalled Version: 3.1.4-r5\n") {
		t.Errorf("message = %q", m)
	}
	for threshold, want := range map[string]int{Critical: 1, High: 3, Medium: 4, Low: 5, None: 6, "bogus": 6, "": 6} {
		if n := got.Above(threshold); n != want {
			t.Errorf("Above(%q) = %d, want %d", threshold, n, want)
		}
	}
}

func TestParseSemgrep(t *testing.T) {
	got := parseFile(t, "semgrep.sarif")
	want := &Summary{
		Tools:      []string{"Semgrep OSS"},
		Results:    3,
		Suppressed: 1, // nosemgrep: kind inSource, no status
		BySeverity: sev(0, 1, 1, 1, 0),
		Findings: []Finding{
			{Tool: "Semgrep OSS", RuleID: "python.django.security.injection.sql.sql-injection-using-db-cursor-execute.sql-injection-db-cursor-execute",
				Severity: High, Location: "app/views.py:58",
				Message: "Detected user input used to manually construct a SQL string. This is usually bad practice because manual construction could accidentally result in a SQL injection."},
			{Tool: "Semgrep OSS", RuleID: "python.django.security.audit.django-debug.django-debug-true",
				Severity: Medium, Location: "app/settings.py:12", Message: "Hardcoded DEBUG=True in settings."},
			{Tool: "Semgrep OSS", RuleID: "python.lang.security.deserialization.pickle.avoid-pickle",
				Severity: Low, Location: "app/util.py:4", Message: "Avoid using pickle, which is known to lead to code execution vulnerabilities."},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseGosec(t *testing.T) {
	got := parseFile(t, "gosec.sarif")
	want := &Summary{
		Tools:      []string{"gosec"},
		Results:    3,
		Suppressed: 1, // #nosec, accepted
		BySeverity: sev(0, 1, 1, 1, 0),
		Findings: []Finding{
			{Tool: "gosec", RuleID: "G101", Severity: High, Message: "Potential hardcoded credentials", Location: "internal/config/config.go:14"},
			// Level error, but gosec's own severity tag says MEDIUM.
			{Tool: "gosec", RuleID: "G304", Severity: Medium, Message: "Potential file inclusion via variable", Location: "cmd/tool/main.go:33"},
			{Tool: "gosec", RuleID: "G104", Severity: Low, Message: "Errors unhandled", Location: "cmd/tool/main.go:40"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func TestParseSemantics(t *testing.T) {
	got := parseFile(t, "semantics.sarif")
	if diff := cmp.Diff([]string{"acme-scanner", "Snyk Open Source"}, got.Tools); diff != "" {
		t.Errorf("Tools mismatch (-want +got):\n%s", diff)
	}
	if got.Results != 15 || got.Suppressed != 1 {
		t.Errorf("Results, Suppressed = %d, %d; want 15, 1", got.Results, got.Suppressed)
	}
	if diff := cmp.Diff(sev(2, 7, 3, 1, 2), got.BySeverity); diff != "" {
		t.Errorf("BySeverity mismatch (-want +got):\n%s", diff)
	}
	type short struct{ RuleID, Severity, Message string }
	var findings []short
	for _, f := range got.Findings {
		findings = append(findings, short{f.RuleID, f.Severity, f.Message})
	}
	want := []short{
		{"ACME003", Critical, "Secret AWS key found in deploy.sh ({0})."},
		{"ACME006", Critical, "unusable score, tag decides"},
		{"ACME001", High, "inherits error from defaultConfiguration"},
		{"ACME001", High, "found by id, without ruleIndex"},
		{"ACME002", High, "result score beats level"},
		{"ACME001", High, "suppression under review counts"},
		{"ACME001", High, "rejected suppression counts"},
		{"ACME001", High, "ruleIndex out of range, found by id"},
		{"SNYK-JS-LODASH-1040724", High, "This file introduces a vulnerable lodash package with a high severity vulnerability."},
		{"ACME002", Medium, "defaults to warning"},
		{"", Medium, "no rule at all"},
		{"ACME004", Medium, "severity word beats tags and level"},
		{"ACME005", Low, "nested problem.severity"},
		{"ACME002", None, "explicit none"},
		{"ACME001", None, "informational kind without level"},
	}
	if diff := cmp.Diff(want, findings); diff != "" {
		t.Errorf("Findings mismatch (-want +got):\n%s", diff)
	}
	if loc := got.Findings[0].Location; loc != "deploy::main" {
		t.Errorf("logical location = %q", loc)
	}
	if tool := got.Findings[8].Tool; tool != "Snyk Open Source" {
		t.Errorf("tool of the Snyk finding = %q", tool)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
		wantMsg string
	}{
		{"empty", "", ErrEmpty, "sarif: empty log"},
		{"white space", "\n \t", ErrEmpty, "sarif: empty log"},
		{"xml", `<?xml version="1.0"?><testsuites/>`, ErrNotJSON, ""},
		{"truncated", `{"version": "2.1.0", "runs": [`, ErrNotJSON, ""},
		{"array", `[{"version": "2.1.0"}]`, ErrNotSARIF, ""},
		{"wrong types", `{"version": "2.1.0", "runs": [{"results": [{"level": 3}]}]}`, ErrNotSARIF, ""},
		{"no version", `{"runs": [{"tool": {"driver": {"name": "x"}}}]}`, ErrVersion, "sarif: unsupported SARIF version: no version, want 2.1.0"},
		{"version 2.0.0", `{"version": "2.0.0", "runs": []}`, ErrVersion, `sarif: unsupported SARIF version: version "2.0.0", want 2.1.0`},
		{"version 1.0.0", `{"version": "1.0.0", "runLogs": []}`, ErrVersion, `sarif: unsupported SARIF version: version "1.0.0", want 2.1.0`},
		{"null", `null`, ErrVersion, ""},
		{"no runs", `{"version": "2.1.0"}`, ErrNoRuns, "sarif: no runs in SARIF log"},
		{"empty runs", `{"version": "2.1.0", "runs": []}`, ErrNoRuns, "sarif: no runs in SARIF log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(strings.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) || s != nil {
				t.Fatalf("Parse() = %+v, %v; want error %v", s, err, tt.wantErr)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("Parse() error = %q, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	in := `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "x"}}}]}`
	if _, err := parse(strings.NewReader(in), int64(len(in))); err != nil {
		t.Errorf("parse() of exactly the limit: %v", err)
	}
	if _, err := parse(strings.NewReader(in+" "), int64(len(in))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("parse() past the limit: %v, want ErrTooLarge", err)
	}
}

func TestParseNoResults(t *testing.T) {
	s, err := Parse(strings.NewReader("\ufeff" + `{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "Trivy"}}, "results": []}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &Summary{Tools: []string{"Trivy"}, BySeverity: sev(0, 0, 0, 0, 0)}
	if diff := cmp.Diff(want, s); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	if s.Above(Low) != 0 {
		t.Errorf("Above(low) = %d", s.Above(Low))
	}
}

func TestParseLimitsFindings(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "bulk"}}, "results": [`)
	for i := range 300 {
		if i > 0 {
			b.WriteString(",")
		}
		level := "note"
		if i%3 == 0 {
			level = "error"
		}
		fmt.Fprintf(&b, `{"ruleId": "R%d", "level": %q, "message": {"text": %q}, "locations": [{"physicalLocation": {"artifactLocation": {"uri": %q}}}]}`,
			i, level, strings.Repeat("ü", 600), "f"+strings.Repeat("/x", 400))
	}
	b.WriteString(`]}]}`)
	s, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, s)
	if s.Results != 300 || s.BySeverity[High] != 100 || s.BySeverity[Low] != 200 {
		t.Errorf("Results %d, high %d, low %d; want 300, 100, 200", s.Results, s.BySeverity[High], s.BySeverity[Low])
	}
	if len(s.Findings) != MaxFindings {
		t.Fatalf("%d findings, want %d", len(s.Findings), MaxFindings)
	}
	for i, f := range s.Findings {
		if f.Severity != High || f.RuleID != fmt.Sprintf("R%d", 3*i) {
			t.Fatalf("finding %d = %s %s, want high R%d", i, f.Severity, f.RuleID, 3*i)
		}
	}
	if m := s.Findings[0].Message; m != strings.Repeat("ü", MaxMessageSize/2) {
		t.Errorf("message of %d bytes not cut at %d on a rune boundary", len(m), MaxMessageSize)
	}
}

func TestFillArguments(t *testing.T) {
	tests := []struct {
		text string
		args []string
		want string
	}{
		{"no placeholders", []string{"a"}, "no placeholders"},
		{"{0} and {1}", []string{"a", "b"}, "a and b"},
		{"{1}{0}{1}", []string{"a", "b"}, "bab"},
		{"{2} missing, {x} not a number, {-1}, {", []string{"a"}, "{2} missing, {x} not a number, {-1}, {"},
		{"{0}", []string{"{0}"}, "{0}"},
		{"{0}", nil, "{0}"},
	}
	for _, tt := range tests {
		if got := fillArguments(tt.text, tt.args); got != tt.want {
			t.Errorf("fillArguments(%q, %q) = %q, want %q", tt.text, tt.args, got, tt.want)
		}
	}
	// Placeholders cannot multiply a message without bound.
	huge := fillArguments(strings.Repeat("{0}", 100000), []string{strings.Repeat("x", 100000)})
	if len(huge) > 3*MaxMessageSize {
		t.Errorf("fillArguments grew to %d bytes", len(huge))
	}
}

func TestSeverityMappings(t *testing.T) {
	scores := map[string]string{
		"10.0": Critical, "9.0": Critical, "8.9": High, "7.0": High, "6.9": Medium, "4.0": Medium,
		"3.9": Low, "0.1": Low, "0.0": None, "0.05": None, "42": Critical,
	}
	for in, want := range scores {
		if got, ok := fromScore(in); !ok || got != want {
			t.Errorf("fromScore(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"", "high", "-1", "NaN"} {
		if got, ok := fromScore(in); ok {
			t.Errorf("fromScore(%q) = %q, want no severity", in, got)
		}
	}
	words := map[string]string{
		"CRITICAL": Critical, "High": High, "moderate": Medium, "medium": Medium, "low": Low,
		"info": None, "INFORMATIONAL": None, "none": None, "error": High, "warning": Medium, "note": Low,
	}
	for in, want := range words {
		if got, ok := fromWord(in); !ok || got != want {
			t.Errorf("fromWord(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if got, ok := fromWord("unknown"); ok {
		t.Errorf("fromWord(unknown) = %q, want no severity", got)
	}
}

func TestParseSeverity(t *testing.T) {
	for in, want := range map[string]string{"HIGH": High, " critical ": Critical, "none": None, "Low": Low, "medium": Medium} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "error", "severe"} {
		if _, err := ParseSeverity(in); err == nil {
			t.Errorf("ParseSeverity(%q): no error", in)
		}
	}
}

func TestRuleLookup(t *testing.T) {
	const in = `{"version": "2.1.0", "runs": [{
		"tool": {
			"driver": {"name": "d", "rules": [{"id": "CA2101", "defaultConfiguration": {"level": "error"}}, {"id": "X", "defaultConfiguration": {"level": "note"}}]},
			"extensions": [{"name": "pack", "rules": [{"id": "X", "properties": {"security-severity": "9.9"}}]}]
		},
		"results": [
			{"ruleId": "CA2101/1", "ruleIndex": 0, "message": {"text": "hierarchical id"}},
			{"rule": {"id": "X", "index": 0, "toolComponent": {"index": 0}}, "message": {"text": "extension by index"}},
			{"rule": {"id": "X", "index": 0, "toolComponent": {"name": "pack"}}, "message": {"text": "extension by name"}},
			{"rule": {"id": "X", "index": 0, "toolComponent": {"index": 7}}, "message": {"text": "bad component index: driver, by id"}},
			{"ruleId": "X", "message": {"text": "id in driver first"}}
		]
	}]}`
	s, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range s.Findings {
		got = append(got, f.RuleID+" "+f.Severity+" "+f.Message)
	}
	want := []string{
		"X critical extension by index",
		"X critical extension by name",
		"CA2101/1 high hierarchical id",
		"X low bad component index: driver, by id",
		"X low id in driver first",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}
