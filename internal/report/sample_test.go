package report_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/report"
)

// Sample sizes of the AICPA Audit Sampling guide's attribute sampling
// tables (statistical sample sizes for tests of controls; in parentheses
// the expected number of deviations).
func TestSampleSizeMatchesTheTables(t *testing.T) {
	cases := []struct {
		confidence, tolerable, expected float64
		size, allowed                   int
	}{
		// 5% risk of overreliance (95% confidence)
		{95, 5, 0, 59, 0}, {95, 2, 0, 149, 0}, {95, 3, 0, 99, 0}, {95, 4, 0, 74, 0}, {95, 6, 0, 49, 0},
		{95, 7, 0, 42, 0}, {95, 8, 0, 36, 0}, {95, 9, 0, 32, 0}, {95, 10, 0, 29, 0}, {95, 15, 0, 19, 0}, {95, 20, 0, 14, 0},
		{95, 5, 0.25, 93, 1}, {95, 5, 0.5, 93, 1}, {95, 5, 1, 93, 1}, {95, 5, 1.5, 124, 2}, {95, 5, 1.75, 153, 3},
		{95, 5, 2, 181, 4}, {95, 5, 2.5, 234, 6}, {95, 10, 1, 46, 1}, {95, 10, 2, 46, 1}, {95, 10, 2.5, 61, 2},
		{95, 2, 0.25, 236, 1},
		// 10% risk of overreliance (90% confidence)
		{90, 5, 0, 45, 0}, {90, 10, 0, 22, 0}, {90, 5, 1, 77, 1}, {90, 10, 1, 38, 1},
	}
	for _, c := range cases {
		p, err := report.SampleSize(c.confidence, c.tolerable, c.expected)
		if err != nil {
			t.Errorf("SampleSize(%v, %v, %v): %v", c.confidence, c.tolerable, c.expected, err)
			continue
		}
		if p.Size != c.size || p.AllowedDeviations != c.allowed {
			t.Errorf("SampleSize(%v%%, %v%%, %v%%) = %d (%d), want %d (%d)", c.confidence, c.tolerable, c.expected,
				p.Size, p.AllowedDeviations, c.size, c.allowed)
		}
	}
}

// The closed form for zero expected deviations is the smallest n with
// (1-r)^n <= 1-c.
func TestZeroExpectedIsTheSmallestSufficientSize(t *testing.T) {
	for _, c := range []float64{80, 90, 95, 99} {
		for _, r := range []float64{1, 2, 5, 10, 20} {
			p, err := report.SampleSize(c, r, 0)
			if err != nil {
				t.Fatal(err)
			}
			risk := func(n int) float64 { return math.Pow(1-r/100, float64(n)) }
			if risk(p.Size) > 1-c/100 || risk(p.Size-1) <= 1-c/100 {
				t.Errorf("SampleSize(%v, %v) = %d: (1-r)^n = %v, (1-r)^(n-1) = %v, limit %v", c, r, p.Size, risk(p.Size), risk(p.Size-1), 1-c/100)
			}
		}
	}
}

func TestSampleSizeRefusesNonsense(t *testing.T) {
	for _, c := range []struct {
		c, r, e float64
		want    string
	}{
		{100, 5, 0, "confidence"}, {0, 5, 0, "confidence"}, {95, 0, 0, "tolerable"}, {95, 5, 5, "expected rate"},
		{95, 5, -1, "expected rate"}, {95, 5, 4.9, "too close"},
	} {
		_, err := report.SampleSize(c.c, c.r, c.e)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("SampleSize(%v, %v, %v) = %v, want an error about %s", c.c, c.r, c.e, err, c.want)
		}
	}
}

// The score is SHA-256 of seed, a line feed and the key: what
// `printf 'seed-1\nproduction/payments/id:1' | sha256sum` prints.
func TestScoreIsSHA256OfSeedAndKey(t *testing.T) {
	got := report.Score("seed-1", "production/payments/id:1")
	if want := "1939c1ff2a473e3a942c5c943e5287ee67411021df9ed05d809b65e5326af292"; got != want {
		t.Errorf("Score = %s, want %s", got, want)
	}
}

// The sample of a fixed seed is pinned: the same ids on every run and
// platform. If this test fails the draw changed, and every sample an
// auditor drew before can no longer be re-performed.
func TestDrawIsPinned(t *testing.T) {
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("production/payments/id:%d", i+1)
	}
	picks, err := report.Draw("20260331", keys, 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range picks {
		got = append(got, fmt.Sprintf("%s#%d", keys[p.Index], p.Rank))
	}
	// Computed independently with the shell:
	//   for i in $(seq 1 200); do printf '%s %s\n' "$(printf '20260331\nproduction/payments/id:%d' $i |
	//     sha256sum | cut -c1-64)" "production/payments/id:$i"; done | sort | head -10
	want := []string{"production/payments/id:39#9", "production/payments/id:70#8", "production/payments/id:93#3",
		"production/payments/id:94#10", "production/payments/id:105#5", "production/payments/id:138#4",
		"production/payments/id:151#6", "production/payments/id:158#2", "production/payments/id:167#7",
		"production/payments/id:188#1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("draw of seed 20260331 =\n%q\nwant\n%q", got, want)
	}
	// In population order, ranks 1..10 each once, scores rising with rank.
	ranks := map[int]string{}
	for i, p := range picks {
		if i > 0 && p.Index <= picks[i-1].Index {
			t.Errorf("picks not in population order: %d after %d", p.Index, picks[i-1].Index)
		}
		ranks[p.Rank] = p.Score
		if p.Score != report.Score("20260331", keys[p.Index]) {
			t.Errorf("pick %d: score %s is not Score(seed, key)", p.Index, p.Score)
		}
	}
	for r := 2; r <= 10; r++ {
		if ranks[r] <= ranks[r-1] {
			t.Errorf("rank %d score %s not above rank %d's %s", r, ranks[r], r-1, ranks[r-1])
		}
	}
	// Every unpicked key scores above the last rank.
	picked := map[int]bool{}
	for _, p := range picks {
		picked[p.Index] = true
	}
	for i, k := range keys {
		if !picked[i] && report.Score("20260331", k) < ranks[10] {
			t.Errorf("%s scores below the 10th pick but was not drawn", k)
		}
	}
}

// Another seed draws another sample; a larger size keeps the smaller
// sample's items (the order by score does not depend on the size).
func TestDrawSeedAndSize(t *testing.T) {
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprint("k", i)
	}
	a, _ := report.Draw("1", keys, 10)
	b, _ := report.Draw("2", keys, 10)
	if reflect.DeepEqual(a, b) {
		t.Error("seeds 1 and 2 drew the same sample")
	}
	big, _ := report.Draw("1", keys, 30)
	in := map[int]bool{}
	for _, p := range big {
		in[p.Index] = true
	}
	for _, p := range a {
		if !in[p.Index] {
			t.Errorf("item %d of the 10-sample is not in the 30-sample of the same seed", p.Index)
		}
	}
	all, _ := report.Draw("1", keys[:5], 10)
	if len(all) != 5 {
		t.Errorf("a sample larger than the population has %d items, want the 5 of the population", len(all))
	}
	if _, err := report.Draw("1", []string{"a", "a"}, 1); err == nil {
		t.Error("duplicate keys were accepted")
	}
	if _, err := report.Draw("", keys, 1); err == nil {
		t.Error("an empty seed was accepted")
	}
}
