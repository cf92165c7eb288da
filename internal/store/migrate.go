package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Migration is one file of schemas/clickhouse.
type Migration struct {
	Version  uint32
	Name     string
	SQL      string
	Checksum string
}

// LoadMigrations reads NNNN_name.sql files from dir, sorted by version.
func LoadMigrations(dir fs.FS) ([]Migration, error) {
	names, err := fs.Glob(dir, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Migration
	seen := map[uint32]string{}
	for _, name := range names {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseUint(num, 10, 32)
		if !ok || err != nil || v == 0 {
			return nil, fmt.Errorf("migration %s: name must be NNNN_description.sql", name)
		}
		if prev, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("migration %s: version %d already used by %s", name, v, prev)
		}
		seen[uint32(v)] = name
		b, err := fs.ReadFile(dir, name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		out = append(out, Migration{Version: uint32(v), Name: name, SQL: string(b), Checksum: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

// Statements splits a migration into statements: on ";" at the end of a
// line. Comment lines ("--") are dropped.
func (m Migration) Statements() []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(m.SQL, "\n") {
		t := strings.TrimSpace(line)
		if strings.HasPrefix(t, "--") || t == "" {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSuffix(strings.TrimSpace(cur.String()), ";"))
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

const migrationsTable = `CREATE TABLE IF NOT EXISTS schema_migrations (
    version    UInt32,
    name       String,
    checksum   String,
    applied_at DateTime
) ENGINE = MergeTree()
ORDER BY version`

// Migrate applies the migrations not yet recorded in schema_migrations, in
// order, and records each. A recorded migration whose file changed since is
// an error: migrations are append-only. It returns the names applied.
func (s *Store) Migrate(ctx context.Context, migrations []Migration) ([]string, error) {
	create := migrationsTable
	if s.cluster != "" {
		create = clusterMigrationsTable(s.database, s.cluster)
	}
	if err := s.conn.Exec(ctx, create); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	if s.cluster != "" {
		if err := s.syncReplica(ctx, "schema_migrations"); err != nil {
			return nil, err
		}
	}
	applied := map[uint32]string{}
	rows, err := s.conn.Query(ctx, "SELECT version, checksum FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("read schema_migrations: %w", err)
	}
	for rows.Next() {
		var v uint32
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			rows.Close()
			return nil, err
		}
		applied[v] = sum
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var done []string
	for _, m := range migrations {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return done, fmt.Errorf("migration %s was changed after it was applied (checksum %s, recorded %s): add a new migration instead", m.Name, m.Checksum[:12], sum[:min(12, len(sum))])
			}
			continue
		}
		for i, stmt := range m.Statements() {
			stmts := []string{stmt}
			if s.cluster != "" {
				var err error
				if stmts, err = ClusterStatements(s.database, s.cluster, stmt); err != nil {
					return done, fmt.Errorf("migration %s, statement %d on cluster %s: %w", m.Name, i+1, s.cluster, err)
				}
			}
			for _, q := range stmts {
				if err := s.conn.Exec(ctx, q); err != nil {
					return done, fmt.Errorf("migration %s, statement %d: %w", m.Name, i+1, err)
				}
			}
		}
		if err := s.recordMigration(ctx, m); err != nil {
			return done, fmt.Errorf("record migration %s: %w", m.Name, err)
		}
		s.log.Info("migration applied", "migration", m.Name, "database", s.database)
		done = append(done, m.Name)
	}
	return done, nil
}

// recordMigration inserts the migration's row. Inserts go through a batch:
// an INSERT with VALUES through Exec does not complete on 18.16.
func (s *Store) recordMigration(ctx context.Context, m Migration) error {
	b, err := s.conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, checksum, applied_at)")
	if err != nil {
		return err
	}
	defer b.Close()
	if err := b.Append(m.Version, m.Name, m.Checksum, time.Now().UTC().Truncate(time.Second)); err != nil {
		return err
	}
	return b.Send()
}
