package report

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Attribute sampling (docs/reports.md, "Sample size").
//
// With confidence c and tolerable deviation rate r, and no deviation
// expected, the sample size is the smallest n for which finding no
// deviation in n items would happen with probability at most 1-c if the
// population's true rate were r: (1-r)^n <= 1-c, so
//
//	n = ceil(ln(1-c) / ln(1-r))        (95%, 5% -> 59; 90%, 5% -> 45)
//
// With an expected deviation rate e > 0 it is the binomial method of the
// AICPA Audit Sampling guide's tables: the smallest n for which, with
// k = ceil(n*e) deviations allowed, P(X <= k) <= 1-c where X is
// Binomial(n, r) (95%, 5%, 1% -> 93 allowing 1; 95%, 5%, 2% -> 181
// allowing 4).

// maxSampleSize bounds the search of SampleSize: the tables mark larger
// sizes as too large to be cost-effective, and so does SampleSize.
const maxSampleSize = 5000

// SizePlan is how a sample size was decided.
type SizePlan struct {
	Size int `json:"size"`
	// Given: the size was given (--size); else computed from the rest.
	Given         bool    `json:"given"`
	Confidence    float64 `json:"confidence_percent,omitempty"`
	TolerableRate float64 `json:"tolerable_rate_percent,omitempty"`
	ExpectedRate  float64 `json:"expected_rate_percent"`
	// AllowedDeviations is k: deviations the sample may hold and still
	// support the conclusion (0 when none is expected).
	AllowedDeviations int    `json:"allowed_deviations"`
	Method            string `json:"method"`
}

// SampleSize is the attribute sample size for confidence, tolerable and
// expected deviation rates, all in percent (95, 5, 0).
func SampleSize(confidence, tolerable, expected float64) (SizePlan, error) {
	p := SizePlan{Confidence: confidence, TolerableRate: tolerable, ExpectedRate: expected}
	switch {
	case !(confidence > 0 && confidence < 100):
		return p, fmt.Errorf("confidence %v%%: want more than 0 and less than 100 (e.g. 95)", confidence)
	case !(tolerable > 0 && tolerable < 100):
		return p, fmt.Errorf("tolerable rate %v%%: want more than 0 and less than 100 (e.g. 5)", tolerable)
	case !(expected >= 0 && expected < tolerable):
		return p, fmt.Errorf("expected rate %v%%: want at least 0 and less than the tolerable rate %v%%", expected, tolerable)
	}
	c, r, e := confidence/100, tolerable/100, expected/100
	if e == 0 {
		p.Size = int(math.Ceil(math.Log(1-c)/math.Log(1-r) - 1e-9))
		p.Method = fmt.Sprintf("zero expected deviations: n = ceil(ln(1-%g)/ln(1-%g))", c, r)
		return p, nil
	}
	for n := 1; n <= maxSampleSize; n++ {
		k := int(math.Ceil(float64(n)*e - 1e-9))
		if binomialCDF(n, k, r) <= 1-c+1e-12 {
			p.Size, p.AllowedDeviations = n, k
			p.Method = fmt.Sprintf("binomial: smallest n with P(X <= ceil(n*%g)) <= %g for X ~ Binomial(n, %g)", e, 1-c, r)
			return p, nil
		}
	}
	return p, fmt.Errorf("expected rate %v%% is too close to the tolerable rate %v%%: no sample of up to %d items is enough",
		expected, tolerable, maxSampleSize)
}

// binomialCDF is P(X <= k) for X ~ Binomial(n, p), summed in log space.
func binomialCDF(n, k int, p float64) float64 {
	lgn, _ := math.Lgamma(float64(n + 1))
	sum := 0.0
	for i := 0; i <= k && i <= n; i++ {
		a, _ := math.Lgamma(float64(i + 1))
		b, _ := math.Lgamma(float64(n - i + 1))
		sum += math.Exp(lgn - a - b + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
	}
	return sum
}

// Score is a population item's random number under seed: the lowercase
// hex SHA-256 of the seed, a line feed, and the item's key. Sorting the
// items by score is a uniformly random order that anyone with the seed
// and the keys can recompute (sha256sum, Python's hashlib).
func Score(seed, key string) string {
	h := sha256.Sum256([]byte(seed + "\n" + key))
	return hex.EncodeToString(h[:])
}

// Pick is one drawn item: its index in the population (0-based), its
// rank in the draw (1 = lowest score) and its score.
type Pick struct {
	Index int    `json:"-"`
	Rank  int    `json:"rank"`
	Score string `json:"score"`
}

// Draw selects n of the items with the given keys: the n with the lowest
// Score under seed (ties, which SHA-256 makes practically impossible, by
// key). It returns them in population order. Keys must be distinct.
func Draw(seed string, keys []string, n int) ([]Pick, error) {
	if seed == "" {
		return nil, errors.New("the seed is empty")
	}
	if n < 0 {
		return nil, fmt.Errorf("sample size %d: want 0 or more", n)
	}
	type scored struct {
		i     int
		score string
	}
	all := make([]scored, len(keys))
	seen := make(map[string]bool, len(keys))
	for i, k := range keys {
		if seen[k] {
			return nil, fmt.Errorf("population key %q appears twice: keys must be distinct", k)
		}
		seen[k] = true
		all[i] = scored{i, Score(seed, k)}
	}
	slices.SortFunc(all, func(a, b scored) int {
		if c := strings.Compare(a.score, b.score); c != 0 {
			return c
		}
		return strings.Compare(keys[a.i], keys[b.i])
	})
	if n > len(all) {
		n = len(all)
	}
	out := make([]Pick, n)
	for r := range n {
		out[r] = Pick{Index: all[r].i, Rank: r + 1, Score: all[r].score}
	}
	slices.SortFunc(out, func(a, b Pick) int { return a.Index - b.Index })
	return out, nil
}
