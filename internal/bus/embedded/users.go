package embedded

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/nats-io/nats-server/v2/server"
)

// UsersFile is the name, in the data directory, of the embedded NATS's
// users: generated at first start when the server listens for clients
// (--nats-listen), mode 0600.
const UsersFile = "nats-users"

// Roles of the embedded NATS's users.
const (
	// UserEvidenced is evidenced itself: everything, including the
	// JetStream API (creating, and nobody else deleting or purging,
	// streams).
	UserEvidenced = "evidenced"
	// UserProducer publishes events, and nothing else: only to the event
	// subjects (evidence.events.>), with the JetStream acknowledgement
	// coming back on its inbox. No checkpoint, no dead letter, no
	// JetStream API (so no stream deleted or purged, no consumer read).
	UserProducer = "producer"
)

// Users are the embedded NATS's users and their passwords.
type Users struct {
	Path      string
	passwords map[string]string
}

// Password is the password of a role's user.
func (u *Users) Password(role string) string { return u.passwords[role] }

// ServerUsers are the users as the NATS server takes them, with each
// role's permissions.
func (u *Users) ServerUsers() []*server.User {
	return []*server.User{
		{Username: UserEvidenced, Password: u.passwords[UserEvidenced]},
		{Username: UserProducer, Password: u.passwords[UserProducer], Permissions: &server.Permissions{
			Publish:   &server.SubjectPermission{Allow: []string{bus.EventSubjects}},
			Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
		}},
	}
}

// LoadOrCreateUsers reads the users file at path, or generates it (a
// random 256-bit password per role) when it does not exist. A file that
// others may read, or that lacks a role, is refused with what to do.
func LoadOrCreateUsers(path string) (u *Users, created bool, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		u = &Users{Path: path, passwords: map[string]string{}}
		var out strings.Builder
		out.WriteString("# Users of evidenced's embedded NATS (generated at first start; keep secret).\n")
		out.WriteString("# ROLE PASSWORD; connect as nats://ROLE:PASSWORD@host:port (docs/scale-out.md).\n")
		for _, role := range []string{UserEvidenced, UserProducer} {
			r := make([]byte, 32)
			if _, err := rand.Read(r); err != nil {
				return nil, false, err
			}
			u.passwords[role] = hex.EncodeToString(r)
			fmt.Fprintf(&out, "%s %s\n", role, u.passwords[role])
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("NATS users file: %w", err)
		}
		if _, err := f.WriteString(out.String()); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("NATS users file %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return nil, false, fmt.Errorf("NATS users file %s: %w", path, err)
		}
		return u, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("NATS users file: %w", err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, false, fmt.Errorf("NATS users file: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, false, fmt.Errorf("NATS users file %s has mode %04o: it holds passwords, make it 0600 (chmod 600 %s)", path, perm, path)
	}
	u = &Users{Path: path, passwords: map[string]string{}}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 || len(f[1]) < 16 {
			return nil, false, fmt.Errorf("NATS users file %s line %d: want ROLE PASSWORD (a password of 16 characters or more)", path, i+1)
		}
		u.passwords[f[0]] = f[1]
	}
	for _, role := range []string{UserEvidenced, UserProducer} {
		if u.passwords[role] == "" {
			return nil, false, fmt.Errorf("NATS users file %s has no %s user; add a line \"%s PASSWORD\", or move the file away to have it generated again", path, role, role)
		}
	}
	return u, false, nil
}
