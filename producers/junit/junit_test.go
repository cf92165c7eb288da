package junit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseFile(t *testing.T) {
	tests := []struct {
		file string
		want *Summary
	}{
		{
			file: "surefire.xml",
			want: &Summary{
				Suites: []Suite{{
					Name: "com.example.payments.PaymentServiceTest", Tests: 7, Failed: 1, Errors: 1, Skipped: 2,
					Duration: 2417 * time.Millisecond,
					Failures: []Case{
						{Name: "rejectsExpiredCard", Classname: "com.example.payments.PaymentServiceTest", Kind: KindFailure,
							Message: "expected: <DECLINED> but was: <APPROVED>"},
						{Name: "handlesGatewayTimeout", Classname: "com.example.payments.PaymentServiceTest", Kind: KindError,
							Message: "Connection refused (Connection refused)"},
					},
				}},
				Tests: 7, Passed: 3, Failed: 1, Errors: 1, Skipped: 2, Duration: 2417 * time.Millisecond,
			},
		},
		{
			file: "pytest.xml",
			want: &Summary{
				Suites: []Suite{{
					Name: "pytest", Tests: 7, Failed: 1, Errors: 1, Skipped: 2, Duration: 3142 * time.Millisecond,
					Failures: []Case{
						{Name: "test_insufficient_funds[eur]", Classname: "tests.test_ledger.TestTransfer", Kind: KindFailure,
							Message: "AssertionError: assert 10 == 0\n +  where 10 = Account(id=1).balance"},
						{Name: "test_migrations", Classname: "tests.test_db", Kind: KindError,
							Message: `failed on setup with "psycopg2.OperationalError: could not connect to server"`},
					},
				}},
				Tests: 7, Passed: 3, Failed: 1, Errors: 1, Skipped: 2, Duration: 3142 * time.Millisecond,
			},
		},
		{
			file: "go-junit-report.xml",
			want: &Summary{
				Suites: []Suite{
					{
						Name: "github.com/octo/app/ledger", Tests: 4, Failed: 1, Skipped: 1, Duration: 12 * time.Millisecond,
						Failures: []Case{{Name: "TestTransfer/insufficient_funds", Classname: "github.com/octo/app/ledger",
							Kind: KindFailure, Message: "Failed"}},
					},
					{Name: "github.com/octo/app/api", Tests: 1, Duration: 4 * time.Millisecond},
					{
						Name: "github.com/octo/app/broken", Tests: 1, Errors: 1,
						Failures: []Case{{Name: "[build failed]", Classname: "github.com/octo/app/broken",
							Kind: KindError, Message: "Build error"}},
					},
					{Name: "github.com/octo/app/internal/notests"},
				},
				Tests: 6, Passed: 3, Failed: 1, Errors: 1, Skipped: 1, Duration: 16 * time.Millisecond,
			},
		},
		{
			file: "jest-junit.xml",
			want: &Summary{
				Suites: []Suite{
					{
						Name: "Cart", Tests: 4, Failed: 1, Skipped: 1, Duration: 1200 * time.Millisecond,
						Failures: []Case{{Name: "Cart applies a discount", Classname: "Cart applies a discount", Kind: KindFailure,
							Message: "Error: expect(received).toBe(expected) // Object.is equality\n\nExpected: 90\nReceived: 100\n" +
								"    at Object.toBe (/app/src/cart.test.js:27:31)\n" +
								"    at Promise.then.completed (/app/node_modules/jest-circus/build/utils.js:298:28)"}},
					},
					{Name: "Checkout", Tests: 1, Duration: 800 * time.Millisecond},
				},
				Tests: 5, Passed: 3, Failed: 1, Skipped: 1, Duration: 2 * time.Second,
			},
		},
		{
			file: "nested.xml",
			want: &Summary{
				Suites: []Suite{
					{Name: `App\Tests\CartTest`, Tests: 2, Skipped: 1, Duration: 21 * time.Millisecond},
					{
						Name: `App\Tests\PriceTest::testRounding`, Tests: 2, Failed: 1, Duration: 41 * time.Millisecond,
						Failures: []Case{{Name: "testRounding with data set #1", Classname: "App.Tests.PriceTest", Kind: KindFailure,
							Message: "App\\Tests\\PriceTest::testRounding with data set #1 (1.005, 1.01)\n" +
								"Failed asserting that 1.0 matches expected 1.01.\n\n/app/tests/PriceTest.php:22"}},
					},
				},
				Tests: 4, Passed: 2, Failed: 1, Skipped: 1, Duration: 62 * time.Millisecond,
			},
		},
		{
			file: "attributes-only.xml",
			want: &Summary{
				Suites: []Suite{
					{Name: "legacy-integration", Tests: 10, Failed: 2, Errors: 1, Skipped: 3, Duration: 12500 * time.Millisecond},
					{
						Name: "wrong-attributes", Tests: 3, Failed: 1, Duration: 1234500 * time.Millisecond,
						Failures: []Case{{Name: "b", Classname: "wrong", Kind: KindFailure, Message: "boom"}},
					},
				},
				Tests: 13, Passed: 6, Failed: 3, Errors: 1, Skipped: 3, Duration: 1247 * time.Second,
			},
		},
		{
			file: "latin1.xml",
			want: &Summary{
				Suites: []Suite{{
					Name: "café", Tests: 1, Failed: 1,
					Failures: []Case{{Name: "crème", Classname: "menu", Kind: KindFailure, Message: "brûlée"}},
				}},
				Tests: 1, Failed: 1,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseFile(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseFile() mismatch (-want +got):\n%s", diff)
			}
			checkConsistent(t, got)
		})
	}
}

// checkConsistent asserts the invariants every summary keeps.
func checkConsistent(t *testing.T, s *Summary) {
	t.Helper()
	if s.Passed < 0 || s.Failed < 0 || s.Errors < 0 || s.Skipped < 0 || s.Duration < 0 || s.OmittedFailures < 0 {
		t.Errorf("negative count in %+v", s)
	}
	if s.Tests != s.Passed+s.Failed+s.Errors+s.Skipped {
		t.Errorf("Tests %d != Passed %d + Failed %d + Errors %d + Skipped %d", s.Tests, s.Passed, s.Failed, s.Errors, s.Skipped)
	}
	var tests, failed, errs, skipped, listed int
	for _, su := range s.Suites {
		if su.Passed() < 0 {
			t.Errorf("suite %q: Passed() = %d", su.Name, su.Passed())
		}
		tests, failed, errs, skipped = tests+su.Tests, failed+su.Failed, errs+su.Errors, skipped+su.Skipped
		listed += len(su.Failures)
		for _, c := range su.Failures {
			if len(c.Message) > MaxMessageSize {
				t.Errorf("message of %d bytes", len(c.Message))
			}
			if c.Kind != KindFailure && c.Kind != KindError {
				t.Errorf("case kind %q", c.Kind)
			}
		}
	}
	if tests != s.Tests || failed != s.Failed || errs != s.Errors || skipped != s.Skipped {
		t.Errorf("suite counts do not add up to the summary's")
	}
	if listed > MaxFailures {
		t.Errorf("%d failures listed, more than %d", listed, MaxFailures)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantErr error
		wantMsg string
	}{
		{"empty", "", ErrEmpty, "junit: empty report"},
		{"white space", " \n\t\n", ErrEmpty, "junit: empty report"},
		{"byte order mark only", "\ufeff", ErrEmpty, "junit: empty report"},
		{"prolog only", `<?xml version="1.0"?>`, ErrNotXML, "junit: not well-formed XML: no root element"},
		{"json", `{"tests": 3}`, ErrNotXML, `junit: not well-formed XML: text "{\"tests\": 3}" before the root element`},
		{"html", "<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", ErrNotJUnit,
			"junit: not a JUnit report: root element is <html>, want <testsuites> or <testsuite>"},
		{"nunit", `<test-run id="2"><test-suite/></test-run>`, ErrNotJUnit,
			"junit: not a JUnit report: root element is <test-run>, want <testsuites> or <testsuite>"},
		{"truncated", `<testsuite name="x"><testcase name="a">`, ErrNotXML, ""},
		{"mismatched tags", `<testsuite><testcase></testsuite>`, ErrNotXML, ""},
		{"unsupported encoding", `<?xml version="1.0" encoding="Shift_JIS"?><testsuite/>`, ErrNotXML, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse(strings.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse() = %+v, %v; want error %v", s, err, tt.wantErr)
			}
			if tt.wantMsg != "" && err.Error() != tt.wantMsg {
				t.Errorf("Parse() error = %q, want %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParseFileErrorNamesPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "report.xml")
	if err := os.WriteFile(path, []byte("<html/>"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(path)
	if !errors.Is(err, ErrNotJUnit) || !strings.Contains(err.Error(), path) {
		t.Errorf("ParseFile() error = %v, want ErrNotJUnit naming %s", err, path)
	}
	_, err = ParseFile(filepath.Join(t.TempDir(), "missing.xml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ParseFile(missing) error = %v, want os.ErrNotExist", err)
	}
}

func TestParseCaseVerdicts(t *testing.T) {
	const in = `<?xml version="1.0"?>
<testsuite name="verdicts" tests="99">
  <testcase name="pass"/>
  <testcase name="failure then error"><failure message="f"/><error message="e"/></testcase>
  <testcase name="error then failure"><error message="e"/><failure message="f"/></testcase>
  <testcase name="two failures"><failure message="first"/><failure message="second"/></testcase>
  <testcase name="skipped and failed"><skipped/><failure message="f"/></testcase>
  <testcase name="rerun failure"><failure message="final"/><rerunFailure message="attempt 1"/></testcase>
  <testcase name="flaky"><flakyError message="attempt 1"/></testcase>
  <testcase name="text message"><failure type="AssertionError">
      line one
      line two
  </failure></testcase>
  <testcase name="type only"><error type="java.lang.OutOfMemoryError"/></testcase>
  <testcase name="googletest disabled" status="notrun" result="suppressed"/>
  <testcase name="googletest skipped" status="run" result="skipped"><skipped message="GTEST_SKIP"/></testcase>
  <properties><testcase name="not a case"/></properties>
  <testcase name="nested ignored"><testcase name="inner"><failure/></testcase></testcase>
</testsuite>`
	got, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Summary{
		Suites: []Suite{{
			Name: "verdicts", Tests: 12, Failed: 4, Errors: 3, Skipped: 2,
			Failures: []Case{
				{Name: "failure then error", Kind: KindError, Message: "e"},
				{Name: "error then failure", Kind: KindError, Message: "e"},
				{Name: "two failures", Kind: KindFailure, Message: "first"},
				{Name: "skipped and failed", Kind: KindFailure, Message: "f"},
				{Name: "rerun failure", Kind: KindFailure, Message: "final"},
				{Name: "text message", Kind: KindFailure, Message: "line one\n      line two"},
				{Name: "type only", Kind: KindError, Message: "java.lang.OutOfMemoryError"},
			},
		}},
		Tests: 12, Passed: 3, Failed: 4, Errors: 3, Skipped: 2,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
	}
}

func TestParseAttributeFallback(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Suite
	}{
		{"pytest skips", `<testsuite name="a" tests="5" failures="1" skips="2"/>`,
			Suite{Name: "a", Tests: 5, Failed: 1, Skipped: 2}},
		{"more failures than tests", `<testsuite name="b" tests="1" failures="3" errors="1"/>`,
			Suite{Name: "b", Tests: 4, Failed: 3, Errors: 1}},
		{"garbage and negatives", `<testsuite name="c" tests="-4" failures="x" errors="99999999999" skipped="2" time="-1"/>`,
			Suite{Name: "c", Tests: 2, Skipped: 2}},
		{"decimal comma", `<testsuite name="d" tests="1" time="0,5"/>`,
			Suite{Name: "d", Tests: 1, Duration: 500 * time.Millisecond}},
		{"no attributes", `<testsuite/>`, Suite{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]Suite{tt.want}, got.Suites); diff != "" {
				t.Errorf("Suites mismatch (-want +got):\n%s", diff)
			}
			checkConsistent(t, got)
		})
	}
}

func TestParseEdgeForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want *Summary
	}{
		{
			name: "empty testsuites root",
			in:   `<testsuites name="jest tests" tests="0" failures="0" errors="0" time="0.1"></testsuites>`,
			want: &Summary{},
		},
		{
			name: "testsuites attributes are not counted",
			in:   `<testsuites tests="40" failures="3"/>`,
			want: &Summary{},
		},
		{
			name: "cases directly under testsuites",
			in:   `<testsuites name="flat"><testcase name="a"/><testcase name="b"><skipped/></testcase></testsuites>`,
			want: &Summary{Suites: []Suite{{Name: "flat", Tests: 2, Skipped: 1}}, Tests: 2, Passed: 1, Skipped: 1},
		},
		{
			name: "byte order mark and namespace",
			in:   "\ufeff<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<j:testsuite xmlns:j=\"urn:x\" name=\"ns\"><j:testcase name=\"a\"/></j:testsuite>",
			want: &Summary{Suites: []Suite{{Name: "ns", Tests: 1}}, Tests: 1, Passed: 1},
		},
		{
			name: "trailing content after the root is ignored",
			in:   `<testsuite name="t"><testcase name="a"/></testsuite><!-- end --> trailing`,
			want: &Summary{Suites: []Suite{{Name: "t", Tests: 1}}, Tests: 1, Passed: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Parse() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseLimitsFailures(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<testsuites>`)
	for s := range 3 {
		fmt.Fprintf(&b, `<testsuite name="s%d">`, s)
		for i := range 40 {
			fmt.Fprintf(&b, `<testcase name="ok%d"/>`, i)
			fmt.Fprintf(&b, `<testcase name="bad%d"><failure message="%s"/></testcase>`, i, strings.Repeat("é", 400))
		}
		b.WriteString(`</testsuite>`)
	}
	b.WriteString(`</testsuites>`)

	got, err := Parse(strings.NewReader(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, got)
	if got.Tests != 240 || got.Failed != 120 || got.Passed != 120 {
		t.Errorf("counts = %d tests, %d failed, %d passed; want 240, 120, 120", got.Tests, got.Failed, got.Passed)
	}
	if n := len(got.Suites[0].Failures) + len(got.Suites[1].Failures) + len(got.Suites[2].Failures); n != MaxFailures {
		t.Errorf("%d failures listed, want %d", n, MaxFailures)
	}
	if got.OmittedFailures != 120-MaxFailures {
		t.Errorf("OmittedFailures = %d, want %d", got.OmittedFailures, 120-MaxFailures)
	}
	if len(got.Suites[0].Failures) != 40 || len(got.Suites[1].Failures) != 10 || got.Suites[2].Failures != nil {
		t.Errorf("failures per suite = %d, %d, %d; want 40, 10, 0",
			len(got.Suites[0].Failures), len(got.Suites[1].Failures), len(got.Suites[2].Failures))
	}
	msg := got.Suites[0].Failures[0].Message
	if len(msg) != MaxMessageSize || msg != strings.Repeat("é", MaxMessageSize/2) {
		t.Errorf("message of %d bytes, want %d bytes of whole runes", len(msg), MaxMessageSize)
	}
}

func TestParseFiles(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for i := range 3 {
		var b strings.Builder
		fmt.Fprintf(&b, `<testsuite name="file%d" time="1">`, i)
		for j := range 30 {
			fmt.Fprintf(&b, `<testcase name="t%d"><error message="m"/></testcase><testcase name="p%d"/>`, j, j)
		}
		b.WriteString(`</testsuite>`)
		p := filepath.Join(dir, fmt.Sprintf("r%d.xml", i))
		if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	got, err := ParseFiles(paths...)
	if err != nil {
		t.Fatal(err)
	}
	checkConsistent(t, got)
	if len(got.Suites) != 3 || got.Suites[2].Name != "file2" {
		t.Fatalf("suites = %+v", got.Suites)
	}
	if got.Tests != 180 || got.Errors != 90 || got.Passed != 90 || got.Duration != 3*time.Second {
		t.Errorf("totals = %d tests, %d errors, %d passed, %v; want 180, 90, 90, 3s", got.Tests, got.Errors, got.Passed, got.Duration)
	}
	if len(got.Suites[0].Failures) != 30 || len(got.Suites[1].Failures) != 20 || got.Suites[2].Failures != nil {
		t.Errorf("failures per suite = %d, %d, %d; want 30, 20, 0",
			len(got.Suites[0].Failures), len(got.Suites[1].Failures), len(got.Suites[2].Failures))
	}
	if got.OmittedFailures != 40 {
		t.Errorf("OmittedFailures = %d, want 40", got.OmittedFailures)
	}

	if _, err := ParseFiles(); err == nil {
		t.Error("ParseFiles() with no paths: no error")
	}
	bad := filepath.Join(dir, "bad.xml")
	if err := os.WriteFile(bad, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseFiles(paths[0], bad); !errors.Is(err, ErrEmpty) || !strings.Contains(err.Error(), "bad.xml") {
		t.Errorf("ParseFiles(ok, empty) error = %v, want ErrEmpty naming bad.xml", err)
	}
}

// endless yields an endless stream of XML white space after a root start
// tag.
type endless struct{ started bool }

func (e *endless) Read(p []byte) (int, error) {
	if !e.started {
		e.started = true
		return copy(p, "<testsuite>"), nil
	}
	for i := range p {
		p[i] = ' '
	}
	return len(p), nil
}

func TestParseTooLarge(t *testing.T) {
	_, err := parse(&endless{}, 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("parse(endless) error = %v, want ErrTooLarge", err)
	}
	// A report of exactly the limit is read.
	in := `<testsuite name="x"><testcase name="a"/></testsuite>`
	if _, err := parse(strings.NewReader(in), int64(len(in))); err != nil {
		t.Errorf("parse() of exactly the limit: %v", err)
	}
}

func TestLimitedReaderExactSize(t *testing.T) {
	lr := &limitedReader{r: strings.NewReader("abcd"), n: 4}
	b, err := io.ReadAll(lr)
	if err != nil || string(b) != "abcd" || lr.exceeded {
		t.Errorf("ReadAll = %q, %v, exceeded %v; want all four bytes", b, err, lr.exceeded)
	}
	lr = &limitedReader{r: strings.NewReader("abcde"), n: 4}
	if _, err := io.ReadAll(lr); !errors.Is(err, errLimit) || !lr.exceeded {
		t.Errorf("ReadAll past the limit = %v, exceeded %v", err, lr.exceeded)
	}
}

func TestParseSeconds(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1.5", 1500 * time.Millisecond, true},
		{" 0.000 ", 0, true},
		{"1,234.5", 1234500 * time.Millisecond, true},
		{"0,25", 250 * time.Millisecond, true},
		{"3", 3 * time.Second, true},
		{"", 0, false},
		{"-1", 0, false},
		{"NaN", 0, false},
		{"+Inf", 0, false},
		{"1e300", 0, false},
		{"abc", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseSeconds(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseSeconds(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
