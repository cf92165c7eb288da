package sarif

import (
	"math"
	"strconv"
	"strings"
)

// severityOf rates a result, in the order the package documentation gives.
// r is the result's rule, nil when unknown.
func severityOf(res *result, r *rule) string {
	var rp propertyBag
	if r != nil {
		rp = r.Properties
	}
	for _, p := range []propertyBag{res.Properties, rp} {
		if sev, ok := fromScore(p.str("security-severity")); ok {
			return sev
		}
	}
	for _, p := range []propertyBag{res.Properties, rp} {
		if sev, ok := fromWord(p.str("severity")); ok {
			return sev
		}
	}
	for _, p := range []propertyBag{res.Properties, rp} {
		for _, tag := range p.tags() {
			switch tag {
			case "CRITICAL", "HIGH", "MEDIUM", "LOW":
				return strings.ToLower(tag)
			}
		}
	}
	if sev, ok := fromLevel(res.Level); ok {
		return sev
	}
	for _, p := range []propertyBag{res.Properties, rp} {
		if sev, ok := fromLevel(p.problemSeverity()); ok {
			return sev
		}
	}
	if res.Kind != "" && res.Kind != "fail" {
		return None
	}
	if r != nil {
		if sev, ok := fromLevel(r.DefaultConfiguration.Level); ok {
			return sev
		}
	}
	return Medium // level "warning"
}

// fromScore rates a CVSS-like score as GitHub code scanning does.
func fromScore(s string) (string, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || math.IsNaN(f) || f < 0 {
		return "", false
	}
	switch {
	case f >= 9.0:
		return Critical, true
	case f >= 7.0:
		return High, true
	case f >= 4.0:
		return Medium, true
	case f >= 0.1:
		return Low, true
	}
	return None, true
}

// fromWord reads a severity word, or a level word.
func fromWord(s string) (string, bool) {
	switch w := strings.ToLower(strings.TrimSpace(s)); w {
	case Critical, High, Medium, Low, None:
		return w, true
	case "moderate":
		return Medium, true
	case "info", "informational":
		return None, true
	}
	return fromLevel(s)
}

// fromLevel maps a SARIF level (or CodeQL problem severity) to a severity.
func fromLevel(level string) (string, bool) {
	switch strings.ToLower(strings.TrimSpace(level)) {
	case "error":
		return High, true
	case "warning":
		return Medium, true
	case "note", "recommendation":
		return Low, true
	case "none":
		return None, true
	}
	return "", false
}
