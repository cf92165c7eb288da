package ci

import (
	"slices"
	"strings"
)

// NormalizeRepository returns the canonical "host/owner/name" form of a
// repository URL, the correlation key shared by every producer:
//
//	https://github.com/octo/app.git        -> github.com/octo/app
//	https://user:token@github.com/octo/app -> github.com/octo/app
//	git@github.com:octo/app.git            -> github.com/octo/app
//	ssh://git@gitlab.com:2222/g/sub/app    -> gitlab.com/g/sub/app
//	octo/app                               -> octo/app
//
// The scheme, credentials, port, query, fragment, trailing slashes and .git
// suffixes are removed and the host is lower-cased; the path keeps its case.
// Everything up to the last '@' is taken as credentials and dropped, so the
// result never contains '@' (no forge allows '@' in a repository path, and a
// credential must never reach evidence). The result is stable:
// NormalizeRepository(NormalizeRepository(s)) == NormalizeRepository(s).
func NormalizeRepository(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	scheme, rest, hasScheme := cutScheme(s)
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	var host, path string
	if hasScheme {
		if i := strings.IndexAny(rest, "?#"); i >= 0 {
			rest = rest[:i]
		}
		host, path, _ = strings.Cut(rest, "/")
		if scheme == "file" {
			host = ""
		}
		host = stripPort(host)
	} else {
		path = rest
	}

	var segs []string
	if host = asciiLower(strings.TrimSpace(host)); host != "" {
		segs = append(segs, host)
	}
	for seg := range strings.SplitSeq(path, "/") {
		if seg = strings.TrimSpace(seg); seg != "" {
			segs = append(segs, seg)
		}
	}
	// A ':' in the first segment is git's scp-like form host:path (which
	// applies when a ':' comes before any '/'). IPv6 literals are bracketed.
	for len(segs) > 0 && !strings.HasPrefix(segs[0], "[") && strings.Contains(segs[0], ":") {
		h, p, _ := strings.Cut(segs[0], ":")
		h, p = asciiLower(strings.TrimSpace(h)), strings.TrimSpace(p)
		switch {
		case h != "":
			segs[0] = h
			if p != "" {
				segs = slices.Insert(segs, 1, p)
			}
		case p != "":
			segs[0] = p
		default:
			segs = segs[1:]
		}
	}
	// Trailing ".git" may leave an empty last segment ("a/.git"), and a
	// segment may end in several (".git.git"): strip until stable.
	for len(segs) > 0 {
		last := segs[len(segs)-1]
		trimmed := strings.TrimSpace(strings.TrimSuffix(last, ".git"))
		if trimmed == last {
			break
		}
		if trimmed == "" {
			segs = segs[:len(segs)-1]
		} else {
			segs[len(segs)-1] = trimmed
		}
	}
	return strings.Join(segs, "/")
}

// cutScheme splits "scheme://rest". The scheme must be RFC 3986 shaped
// (a letter, then letters, digits, '+', '-' or '.'), so a ':' later in a
// path is not mistaken for one.
func cutScheme(s string) (scheme, rest string, ok bool) {
	scheme, rest, ok = strings.Cut(s, "://")
	if !ok || scheme == "" {
		return "", s, false
	}
	for i, c := range scheme {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return "", s, false
		}
	}
	return strings.ToLower(scheme), rest, true
}

// stripPort removes ":port" from a host, keeping IPv6 literals ("[::1]").
func stripPort(host string) string {
	if strings.HasPrefix(host, "[") {
		if i := strings.IndexByte(host, ']'); i >= 0 {
			return host[:i+1]
		}
		return host
	}
	h, _, _ := strings.Cut(host, ":")
	return h
}

// asciiLower lower-cases ASCII letters only: host names are ASCII (IDNs
// travel as punycode), and other bytes are kept exactly.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
