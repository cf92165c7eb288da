package junit

import (
	"math"
	"strconv"
	"strings"
	"time"
)

// count parses a count attribute; anything but a non-negative 32-bit
// integer counts as 0, so that sums cannot overflow.
func count(s string) int {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int(n)
}

// seconds parses a time attribute, 0 when it is unusable.
func seconds(s string) time.Duration {
	d, _ := parseSeconds(s)
	return d
}

// parseSeconds parses a time attribute in seconds ("1.5"). Some Surefire
// versions format with the locale: "1,234.5" (grouping) and "0,5" (decimal
// comma) are read as 1234.5 and 0.5. Negative, non-finite and absurd values
// are refused.
func parseSeconds(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if strings.Contains(s, ".") {
		s = strings.ReplaceAll(s, ",", "")
	} else {
		s = strings.ReplaceAll(s, ",", ".")
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f < 0 || f > float64(math.MaxInt64)/float64(time.Second) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// addDuration adds without overflowing.
func addDuration(a, b time.Duration) time.Duration {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
