package ticketkeys_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/evidencepipeline/evidence/producers/ticketkeys"
)

func TestDefaultFind(t *testing.T) {
	m := ticketkeys.Default()
	for _, tc := range []struct {
		name  string
		texts []string
		want  []string
	}{
		{"title", []string{"PAY-123 Retry card captures"}, []string{"PAY-123"}},
		{"branch with slash", []string{"feature/PAY-123-fix"}, []string{"PAY-123"}},
		{"underscore after key", []string{"PAY-123_fix"}, []string{"PAY-123"}},
		{"underscore before key", []string{"feature_PAY-123"}, []string{"PAY-123"}},
		{"brackets and colon", []string{"[OPS-7] fix: (CORE-42)"}, []string{"OPS-7", "CORE-42"}},
		{"digits and underscore in project", []string{"A1B-9 and MY_PROJ-10"}, []string{"A1B-9", "MY_PROJ-10"}},
		{"servicenow", []string{"Implements CHG0031234."}, []string{"CHG0031234"}},
		{"servicenow in branch", []string{"hotfix/CHG0031234_db"}, []string{"CHG0031234"}},
		{"servicenow too short", []string{"CHG003123"}, nil},
		{"servicenow too long", []string{"CHG00312345"}, nil},
		{"both, in order", []string{"CHG0031234 for PAY-1"}, []string{"CHG0031234", "PAY-1"}},
		{"distinct across texts", []string{"PAY-1 and PAY-2", "feature/PAY-2-x", "PAY-1"}, []string{"PAY-1", "PAY-2"}},
		{"order of texts", []string{"OPS-9", "PAY-1"}, []string{"OPS-9", "PAY-1"}},
		{"adjacent keys", []string{"PAY-1,PAY-2 PAY-3"}, []string{"PAY-1", "PAY-2", "PAY-3"}},
		{"utf-8", []string{"Decode input as UTF-8"}, nil},
		{"sha-256", []string{"Use SHA-256 digests"}, nil},
		{"iso-8601", []string{"ISO-8601 timestamps"}, nil},
		{"rfc", []string{"per RFC-7231"}, nil},
		{"cve", []string{"Fix CVE-2024-3094"}, nil},
		{"pr", []string{"Revert PR-42"}, nil},
		{"gpl, tls, aes, http", []string{"GPL-3 TLS-1 AES-256 HTTP-2"}, nil},
		{"one letter project", []string{"X-1 and A1-2"}, nil},
		{"lower case is not a key in text", []string{"pay-123 fix"}, nil},
		{"glued to letters", []string{"xPAY-123 PAY-123x"}, nil},
		{"glued to digits", []string{"1PAY-123"}, nil},
		{"leading zero", []string{"PAY-0123 PAY-0"}, nil},
		{"no number", []string{"PAY- PAY"}, nil},
		{"empty", []string{""}, nil},
		{"nothing", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := m.Find(tc.texts...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Find(%q) mismatch (-want +got):\n%s", tc.texts, diff)
			}
		})
	}
}

func TestDefaultFindInBranch(t *testing.T) {
	m := ticketkeys.Default()
	for _, tc := range []struct {
		branch string
		want   []string
	}{
		{"feature/PAY-123-fix", []string{"PAY-123"}},
		{"refs/heads/feature/PAY-123-fix", []string{"PAY-123"}},
		{"PAY-123_fix", []string{"PAY-123"}},
		{"pay-123-fix", []string{"PAY-123"}},
		{"feature/pay-123-fix", []string{"PAY-123"}},
		{"feature/pay-123_fix", []string{"PAY-123"}},
		{"Pay-123-fix", []string{"PAY-123"}},
		{"hotfix/chg0031234", []string{"CHG0031234"}},
		{"feature/pay-1-and-ops-2", []string{"PAY-1"}}, // lower case only at a segment start
		{"feature/PAY-1-and-OPS-2", []string{"PAY-1", "OPS-2"}},
		{"bump-node-18", nil},
		{"renovate/deps-2024", []string{"DEPS-2024"}}, // a segment start: accepted as typed
		{"feature/utf-8-support", nil},
		{"main", nil},
		{"", nil},
	} {
		t.Run(tc.branch, func(t *testing.T) {
			got := m.FindInBranch(tc.branch)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("FindInBranch(%q) mismatch (-want +got):\n%s", tc.branch, diff)
			}
		})
	}
}

func TestNew(t *testing.T) {
	m, err := ticketkeys.New(`\bINC-[0-9]+\b`, `ticket #([0-9]+)`)
	if err != nil {
		t.Fatal(err)
	}
	got := m.Find("INC-7: see ticket #991 and INC-7 again")
	if diff := cmp.Diff([]string{"INC-7", "991"}, got); diff != "" {
		t.Errorf("Find mismatch (-want +got):\n%s", diff)
	}
	// A group that does not take part in the match gives no key.
	m, err = ticketkeys.New(`REF(?:-([0-9]+))?`)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Find("REF alone, REF-5"); !cmp.Equal(got, []string{"5"}) {
		t.Errorf("Find with optional group = %q, want [5]", got)
	}
	// Branches: the configured pattern, case-insensitively at a segment start.
	m, err = ticketkeys.New(`\b[A-Z]{2,}-[0-9]+\b`)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.FindInBranch("ops-12-x"); !cmp.Equal(got, []string{"OPS-12"}) {
		t.Errorf("FindInBranch = %q, want [OPS-12]", got)
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := ticketkeys.New(); err == nil {
		t.Error("New() without patterns: no error")
	}
	_, err := ticketkeys.New(`OK-[0-9]+`, `BAD-[0-9+`)
	if err == nil || !strings.Contains(err.Error(), "BAD-[0-9+") {
		t.Errorf("New with an invalid pattern: error %v does not name the pattern", err)
	}
	if _, err := ticketkeys.New(" "); err == nil {
		t.Error("New with an empty pattern: no error")
	}
}

func TestNilMatcher(t *testing.T) {
	var m *ticketkeys.Matcher
	if got := m.Find("PAY-1"); got != nil {
		t.Errorf("nil matcher found %q", got)
	}
	if got := m.FindInBranch("PAY-1"); got != nil {
		t.Errorf("nil matcher found %q in a branch", got)
	}
}

var (
	jiraKey = regexp.MustCompile(`^[A-Z][A-Z0-9_]+-[1-9][0-9]*$`)
	snowKey = regexp.MustCompile(`^CHG[0-9]{7}$`)
	denied  = regexp.MustCompile(`^(UTF|SHA|ISO|RFC|CVE|GPL|AES|TLS|HTTP|PR)-`)
)

func FuzzFind(f *testing.F) {
	for _, s := range []string{
		"PAY-123 Retry", "feature/pay-123-fix", "PAY-123_fix", "CHG0031234", "UTF-8 SHA-256 ISO-8601",
		"X-1", "xPAY-1", "refs/heads/ops-9/chg0000001", "\xff\xfePAY-1", "PAY-1\u00a0PAY-2", "",
	} {
		f.Add(s)
	}
	m := ticketkeys.Default()
	f.Fuzz(func(t *testing.T, s string) {
		check := func(what string, keys []string, inText string) {
			seen := map[string]bool{}
			for _, k := range keys {
				if !jiraKey.MatchString(k) && !snowKey.MatchString(k) {
					t.Fatalf("%s(%q) returned %q, which matches no pattern", what, s, k)
				}
				if denied.MatchString(k) {
					t.Fatalf("%s(%q) returned %q, which is on the deny list", what, s, k)
				}
				if !strings.Contains(inText, k) {
					t.Fatalf("%s(%q) returned %q, which is not in the text", what, s, k)
				}
				if seen[k] {
					t.Fatalf("%s(%q) returned %q twice", what, s, k)
				}
				seen[k] = true
			}
		}
		check("Find", m.Find(s), s)
		check("FindInBranch", m.FindInBranch(s), strings.ToUpper(s))
	})
}
