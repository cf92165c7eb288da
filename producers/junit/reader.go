package junit

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// errLimit is what limitedReader returns past its limit; Parse reports
// ErrTooLarge.
var errLimit = errors.New("input limit reached")

// limitedReader reads at most n bytes from r and records whether r had more.
type limitedReader struct {
	r        io.Reader
	n        int64
	exceeded bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe for one more byte: exactly n bytes is not too large.
		var b [1]byte
		if n, _ := l.r.Read(b[:]); n > 0 {
			l.exceeded = true
			return 0, errLimit
		}
		return 0, io.EOF
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// charsetReader decodes the 8-bit encodings some tools still declare
// (ISO-8859-1, US-ASCII); encoding/xml handles UTF-8 itself.
func charsetReader(label string, input io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "latin-1", "l1", "us-ascii", "ascii":
		return &latin1Reader{r: input}, nil
	}
	return nil, fmt.Errorf("unsupported encoding %q: want UTF-8 or ISO-8859-1", label)
}

// latin1Reader converts ISO-8859-1 (of which US-ASCII is a subset) to UTF-8.
type latin1Reader struct {
	r       io.Reader
	in, out []byte
	pending []byte
	err     error
}

func (l *latin1Reader) Read(p []byte) (int, error) {
	for len(l.pending) == 0 {
		if l.err != nil {
			return 0, l.err
		}
		if l.in == nil {
			l.in = make([]byte, 4096)
		}
		n, err := l.r.Read(l.in)
		l.err = err
		l.out = l.out[:0]
		for _, b := range l.in[:n] {
			l.out = utf8.AppendRune(l.out, rune(b))
		}
		l.pending = l.out
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}
