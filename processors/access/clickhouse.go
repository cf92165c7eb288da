package access

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Version is the version of a record's rows in access_grants and
// protection_settings (schemas/clickhouse/0009_access.sql): the number of
// events behind it << 32 | the first 4 bytes of its hash.
func (r Record) Version() (version uint64, hash string) {
	sum := sha256.Sum256(r.Canonical())
	return uint64(len(r.Events))<<32 | uint64(binary.BigEndian.Uint32(sum[:4])), hex.EncodeToString(sum[:])
}

func login(id *Identity) string {
	if id == nil {
		return ""
	}
	return id.Login
}

func ends(t *time.Time) (time.Time, int64) {
	if t == nil {
		return time.Unix(0, 0).UTC(), 0
	}
	return t.UTC(), t.UnixNano()
}

func b8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// Write writes every grant and protection period of the record to
// ClickHouse with the record's version (batch inserts naming their
// columns).
func Write(ctx context.Context, conn driver.Conn, r Record) error {
	version, hash := r.Version()
	now := time.Now().UTC()
	if len(r.Grants) > 0 {
		b, err := conn.PrepareBatch(ctx, `INSERT INTO access_grants (repository, principal_kind, principal_login, principal_id, permission,
			platform_permission, valid_from, valid_from_ns, valid_to, valid_to_ns, action, granted_by, approver, ticket, grant_event,
			end_action, ended_by, end_event, record_hash, version, updated_at)`)
		if err != nil {
			return fmt.Errorf("access_grants of %s: %w", r.Subject, err)
		}
		for _, g := range r.Grants {
			to, toNS := ends(g.To)
			if err := b.Append(r.Subject, g.Principal.Kind, g.Principal.Login, g.Principal.ID, g.Permission, g.PlatformPermission,
				g.From.UTC(), g.From.UnixNano(), to, toNS, g.Action, login(g.GrantedBy), login(g.Approver), g.Ticket, g.GrantEvent,
				g.EndAction, login(g.EndedBy), g.EndEvent, hash, version, now); err != nil {
				return fmt.Errorf("access_grants of %s: %w", r.Subject, err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("access_grants of %s: %w", r.Subject, err)
		}
	}
	if len(r.Protections) > 0 {
		b, err := conn.PrepareBatch(ctx, `INSERT INTO protection_settings (repository, rule_kind, rule_id, target, deleted,
			required_approving_review_count, dismiss_stale_reviews, require_code_owner_reviews, enforce_admins, allow_force_pushes,
			allow_deletions, bypass_actors, valid_from, valid_from_ns, valid_to, valid_to_ns, action, changed_by, changed_fields,
			ticket, event, end_action, ended_by, end_event, record_hash, version, updated_at)`)
		if err != nil {
			return fmt.Errorf("protection_settings of %s: %w", r.Subject, err)
		}
		for _, p := range r.Protections {
			s := Settings{BypassActors: []string{}}
			if p.Settings != nil {
				s = *p.Settings
			}
			to, toNS := ends(p.To)
			fields := p.ChangedFields
			if fields == nil {
				fields = []string{}
			}
			if err := b.Append(r.Subject, p.RuleKind, p.RuleID, p.Target, b8(p.Settings == nil),
				uint32(s.RequiredApprovingReviewCount), b8(s.DismissStaleReviews), b8(s.RequireCodeOwnerReviews), b8(s.EnforceAdmins),
				b8(s.AllowForcePushes), b8(s.AllowDeletions), s.BypassActors, p.From.UTC(), p.From.UnixNano(), to, toNS, p.Action,
				login(p.ChangedBy), fields, p.Ticket, p.Event, p.EndAction, login(p.EndedBy), p.EndEvent, hash, version, now); err != nil {
				return fmt.Errorf("protection_settings of %s: %w", r.Subject, err)
			}
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("protection_settings of %s: %w", r.Subject, err)
		}
	}
	return nil
}
