package ce

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// The bounds of what the door accepts (docs/api.md, "Input rules"). Each
// one keeps an accepted event inside what a later stage can hold exactly:
// the type becomes a NATS subject (NATS closes a connection whose
// protocol line passes 4 KiB), the attributes become ClickHouse columns,
// correlation keys and KV entries, and time becomes a DateTime column
// and a count of nanoseconds that evidence verify hashes again.
const (
	// MaxTypeLen bounds type, in bytes.
	MaxTypeLen = 256
	// MaxIDLen bounds id, in bytes.
	MaxIDLen = 1024
	// MaxURILen bounds source, subject and dataschema, in bytes.
	MaxURILen = 2048
	// MaxContentTypeLen bounds datacontenttype, in bytes.
	MaxContentTypeLen = 256
	// MaxExtNameLen bounds an extension attribute's name. CloudEvents
	// says names SHOULD NOT exceed 20 characters; SDKs send longer ones.
	MaxExtNameLen = 64
	// MaxExtValueLen bounds an extension attribute's value, in bytes of
	// its JSON text.
	MaxExtValueLen = 4096
)

// The event times the archive holds exactly: ClickHouse's DateTime column
// runs from 1970 to 2106, and 0 nanoseconds means "no time". Times are
// whole seconds from MinTime to MaxTime inclusive, with up to nine
// fractional digits.
var (
	MinTime = time.Date(1970, 1, 1, 0, 0, 1, 0, time.UTC)
	MaxTime = time.Date(2105, 12, 31, 23, 59, 59, 999999999, time.UTC)
)

// checkLen refuses a value longer than max bytes, or not valid UTF-8 (an
// attribute given in an HTTP header, or built by a translator, has not
// passed the JSON scanner).
func checkLen(field, v string, max int) *Error {
	if len(v) > max {
		return fieldErr(field, "too long: %d bytes, at most %d", len(v), max)
	}
	if !utf8.ValidString(v) {
		return fieldErr(field, "not valid UTF-8 (an attribute is a Unicode string; send é as UTF-8 bytes, percent-encoded in a ce- header)")
	}
	return nil
}

// ParseTime parses an event time strictly as RFC 3339 (upper-case T and
// Z, a time offset, at most nine fractional digits, no leap second) within
// MinTime and MaxTime. time.Parse alone would take a comma for the
// decimal point and drop digits past the ninth: the time kept would not
// be the time sent.
func ParseTime(s string) (time.Time, error) {
	if !rfc3339Shape(s) {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 timestamp (2006-01-02T15:04:05Z, up to 9 fractional digits, Z or ±hh:mm), got %q", s)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("must be an RFC 3339 timestamp, got %q", s)
	}
	t = t.UTC()
	if err := checkTime(t); err != nil {
		return time.Time{}, err
	}
	return t, nil
}

func checkTime(t time.Time) error {
	if t.Before(MinTime) || t.After(MaxTime) {
		return fmt.Errorf("%s is outside the times the archive holds exactly: %s to %s", t.Format(time.RFC3339Nano), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339Nano))
	}
	return nil
}

// rfc3339Shape reports whether s is date "T" time ["." 1-9 digits]
// ("Z" | sign hh ":" mm), digit for digit.
func rfc3339Shape(s string) bool {
	const head = "dddd-dd-ddTdd:dd:dd"
	if len(s) < len(head)+1 {
		return false
	}
	for i := 0; i < len(head); i++ {
		c := s[i]
		if head[i] == 'd' {
			if c < '0' || c > '9' {
				return false
			}
		} else if c != head[i] {
			return false
		}
	}
	rest := s[len(head):]
	if rest[0] == '.' {
		n := 1
		for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
			n++
		}
		if n == 1 || n > 10 {
			return false
		}
		rest = rest[n:]
	}
	switch {
	case rest == "Z":
		return true
	case len(rest) == 6 && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		for _, i := range []int{1, 2, 4, 5} {
			if rest[i] < '0' || rest[i] > '9' {
				return false
			}
		}
		return true
	}
	return false
}
