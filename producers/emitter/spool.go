package emitter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
)

// Spool is a directory of sends that could not be delivered, kept until
// Flush delivers them. Each Put writes one file (a JSON array of the
// events of one send), named by the time it was spooled and the first
// event's id so that names sort in spooling order. Files are written
// atomically (a temporary file renamed into place) with mode 0600.
//
// Flush sends the files in order and deletes each once evidenced answered
// 2xx (an event already stored counts: it is there). On unavailability it
// stops and keeps that file and every later one, in order. A file
// evidenced refuses (4xx) is moved to Dir/refused/ with the reason beside
// it in NAME.reason, so nothing is dropped silently.
type Spool struct {
	// Dir is the spool directory; Put creates it (mode 0700).
	Dir string
	// OnFlush, when set, is told what Flush did with each file it tried.
	OnFlush func(FlushedFile)
}

// FlushedFile is what Flush did with one spool file.
type FlushedFile struct {
	// Name is the file's base name.
	Name string
	// Events is the number of events in the file (0 when unreadable).
	Events int
	// State is FlushSent, FlushRefused or FlushKept.
	State string
	// Result is evidenced's answer when sent.
	Result *Result
	// Err is why the file was refused or kept.
	Err error
}

// States of a FlushedFile.
const (
	FlushSent    = "sent"
	FlushRefused = "refused"
	FlushKept    = "kept"
)

// RefusedDir is the subdirectory of a spool that holds refused files.
const RefusedDir = "refused"

// ErrNoEvents is returned by Put without events.
var ErrNoEvents = errors.New("emitter: no events to spool")

// Put writes the events, one send, to a new spool file and returns its
// path.
func (s Spool) Put(events ...event.Event) (string, error) {
	if len(events) == 0 {
		return "", ErrNoEvents
	}
	if s.Dir == "" {
		return "", errors.New("emitter: spool directory not set")
	}
	body, err := json.MarshalIndent(events, "", "  ")
	if err != nil {
		return "", fmt.Errorf("emitter: spool: encode events: %w", err)
	}
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return "", fmt.Errorf("emitter: spool: %w", err)
	}
	name := time.Now().UTC().Format("20060102T150405.000000000Z") + "-" + safeName(events[0].ID()) + ".json"
	path := filepath.Join(s.Dir, name)
	if err := writeAtomic(path, append(body, '\n')); err != nil {
		return "", fmt.Errorf("emitter: spool: %w", err)
	}
	return path, nil
}

// Pending lists the paths of the spooled files, in sending order.
func (s Spool) Pending() ([]string, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("emitter: spool: %w", err)
	}
	var out []string
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			out = append(out, filepath.Join(s.Dir, n))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Refused lists the paths of the files moved to Dir/refused/, sorted.
func (s Spool) Refused() ([]string, error) {
	return Spool{Dir: filepath.Join(s.Dir, RefusedDir)}.Pending()
}

// Flush sends the spooled files in order through c. sent and failed count
// files: delivered (and deleted), and refused (and moved to Dir/refused/).
// err is non-nil when Flush stopped early, leaving files in the spool:
// evidenced unavailable (wrapping ErrUnavailable), the context done, or
// the spool unreadable.
func (s Spool) Flush(ctx context.Context, c *Client) (sent, failed int, err error) {
	files, err := s.Pending()
	if err != nil {
		return 0, 0, err
	}
	for _, path := range files {
		if err := ctx.Err(); err != nil {
			return sent, failed, err
		}
		f := FlushedFile{Name: filepath.Base(path)}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // another flush sent it
		}
		if err != nil {
			return sent, failed, fmt.Errorf("emitter: spool: %w", err)
		}
		var events []event.Event
		if uerr := json.Unmarshal(b, &events); uerr != nil || len(events) == 0 {
			if uerr == nil {
				uerr = ErrNoEvents
			}
			f.State, f.Err = FlushRefused, fmt.Errorf("unreadable spool file: %w", uerr)
			if err := s.refuse(path, f.Err); err != nil {
				return sent, failed, err
			}
			failed++
			s.tell(f)
			continue
		}
		f.Events = len(events)
		res, serr := c.Send(ctx, events...)
		var refused *RefusedError
		switch {
		case serr == nil:
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return sent, failed, fmt.Errorf("emitter: spool: sent %s but could not delete it: %w", f.Name, err)
			}
			sent++
			f.State, f.Result = FlushSent, res
			s.tell(f)
		case errors.As(serr, &refused):
			if err := s.refuse(path, serr); err != nil {
				return sent, failed, err
			}
			failed++
			f.State, f.Err = FlushRefused, serr
			s.tell(f)
		default:
			f.State, f.Err = FlushKept, serr
			s.tell(f)
			return sent, failed, serr
		}
	}
	return sent, failed, nil
}

func (s Spool) tell(f FlushedFile) {
	if s.OnFlush != nil {
		s.OnFlush(f)
	}
}

// refuse moves a file to Dir/refused/ after writing its reason beside it.
func (s Spool) refuse(path string, reason error) error {
	dir := filepath.Join(s.Dir, RefusedDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("emitter: spool: %w", err)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err := writeAtomic(dst+".reason", []byte(reason.Error()+"\n")); err != nil {
		return fmt.Errorf("emitter: spool: %w", err)
	}
	if err := os.Rename(path, dst); err != nil {
		return fmt.Errorf("emitter: spool: move refused file: %w", err)
	}
	return nil
}

// writeAtomic writes a file through a temporary one in the same directory,
// synced and renamed into place, so a reader never sees a partial file.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename: nothing to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable where the platform allows
		d.Close()
	}
	return nil
}

// safeName keeps the characters of an id that are safe in a file name.
func safeName(id string) string {
	var b strings.Builder
	for _, r := range id {
		if b.Len() >= 64 {
			break
		}
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "event"
	}
	return b.String()
}
