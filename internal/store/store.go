// Package store is the project's access to ClickHouse: connection from an
// evidence URL, the migrations of schemas/clickhouse, and the writes and
// reads of the evidence tables.
//
// The SQL is portable: it runs on Debian's ClickHouse 18.16 (what CI uses)
// and on current releases. Batch inserts always name their columns.
package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/evidencepipeline/evidence/internal/version"
)

// Store is a connection pool to one ClickHouse database.
type Store struct {
	conn     driver.Conn
	database string
	log      *slog.Logger
	// cluster is the ClickHouse cluster the database is replicated on
	// (OpenCluster); empty on a single server.
	cluster string
}

// Options is what ParseURL gives: how to reach the server and which
// database to use.
type Options struct {
	// Addr is the server's address, host:port; with several hosts in the
	// URL (host1:9000,host2:9000), the first.
	Addr string
	// MoreAddrs are the URL's further hosts, tried in order when the ones
	// before do not answer (the replicas of a cluster).
	MoreAddrs []string
	Database  string
	User      string
	Password  string
	// Secure selects TLS (clickhouses:// or ?secure=true).
	Secure bool
}

// ParseURL reads an evidence ClickHouse URL:
// clickhouse://[user[:password]@]host[:port][,host[:port]...]/database[?secure=true].
// The port defaults to 9000 (9440 when secure), the database to "evidence".
// Several hosts (the replicas of a cluster) are tried in order: the first
// that answers is used, the next when it fails.
func ParseURL(raw string) (Options, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Options{}, fmt.Errorf("not a URL: %w", err)
	}
	var o Options
	switch u.Scheme {
	case "clickhouse", "tcp":
	case "clickhouses":
		o.Secure = true
	default:
		return Options{}, fmt.Errorf("scheme %q: use clickhouse:// (the native protocol)", u.Scheme)
	}
	if u.Query().Get("secure") == "true" {
		o.Secure = true
	}
	if u.Host == "" {
		return Options{}, errors.New("no host")
	}
	defPort := "9000"
	if o.Secure {
		defPort = "9440"
	}
	for i, hp := range strings.Split(u.Host, ",") {
		host, port := hp, ""
		if h, p, err := net.SplitHostPort(hp); err == nil {
			host, port = h, p
		} else if strings.HasPrefix(hp, "[") && strings.HasSuffix(hp, "]") {
			host = hp[1 : len(hp)-1]
		}
		if host == "" {
			return Options{}, fmt.Errorf("host %d of %q is empty", i+1, u.Host)
		}
		if port == "" {
			port = defPort
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return Options{}, fmt.Errorf("host %q: the port is not a number", hp)
		}
		if i == 0 {
			o.Addr = net.JoinHostPort(host, port)
		} else {
			o.MoreAddrs = append(o.MoreAddrs, net.JoinHostPort(host, port))
		}
	}
	o.Database = strings.Trim(u.Path, "/")
	if o.Database == "" {
		o.Database = "evidence"
	}
	if strings.ContainsAny(o.Database, "/`'\" ") {
		return Options{}, fmt.Errorf("database name %q: only letters, digits and _ are allowed", o.Database)
	}
	if u.User != nil {
		o.User = u.User.Username()
		o.Password, _ = u.User.Password()
	}
	if o.User == "" {
		o.User = "default"
	}
	return o, nil
}

// Redacted is the URL with its password hidden, for logs.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func open(o Options, database string, settings clickhouse.Settings) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     append([]string{o.Addr}, o.MoreAddrs...),
		Settings: settings,
		Auth:     clickhouse.Auth{Database: database, Username: o.User, Password: o.Password},
		// Fail fast: callers retry with their own backoff.
		DialTimeout:     5 * time.Second,
		ReadTimeout:     5 * time.Minute,
		MaxOpenConns:    8,
		MaxIdleConns:    4,
		ConnMaxLifetime: time.Hour,
		ClientInfo: clickhouse.ClientInfo{Products: []struct{ Name, Version string }{
			{Name: "evidence", Version: version.Get().Version},
		}},
	}
	if o.Secure {
		opts.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return clickhouse.Open(opts)
}

// Open connects to the database of the URL, creating the database when it
// does not exist. It does not apply migrations (see Migrate).
func Open(ctx context.Context, rawURL string, log *slog.Logger) (*Store, error) {
	return OpenCluster(ctx, rawURL, "", log)
}

// OpenCluster is Open for a database replicated on a ClickHouse cluster
// (remote_servers name cluster; empty: a single server, as Open). The
// database is created on every node of the cluster (ON CLUSTER), Migrate
// creates replicated tables under the public names' _local and
// Distributed tables with the public names over them, and every INSERT
// through a Distributed table returns only once the rows are stored
// (insert_distributed_sync = 1), so an error means a retry.
func OpenCluster(ctx context.Context, rawURL, cluster string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o, err := ParseURL(rawURL)
	if err != nil {
		return nil, fmt.Errorf("clickhouse url: %w", err)
	}
	var settings clickhouse.Settings
	create := "CREATE DATABASE IF NOT EXISTS " + o.Database
	if cluster != "" {
		if err := ValidateClusterName(cluster); err != nil {
			return nil, err
		}
		settings = clickhouse.Settings{"insert_distributed_sync": 1}
		create += " ON CLUSTER " + cluster
	}
	boot, err := open(o, "default", nil)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	err = boot.Exec(ctx, create)
	boot.Close()
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: create database %s: %w", o.Addr, o.Database, err)
	}
	conn, err := open(o, o.Database, settings)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", o.Addr, err)
	}
	return &Store{conn: conn, database: o.Database, log: log, cluster: cluster}, nil
}

// Cluster is the ClickHouse cluster the database is replicated on, empty
// on a single server.
func (s *Store) Cluster() string { return s.cluster }

// Database is the name of the database in use.
func (s *Store) Database() string { return s.database }

// Conn is the underlying connection, for queries of other packages.
func (s *Store) Conn() driver.Conn { return s.conn }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error { return s.conn.Ping(ctx) }

// Close closes the pool.
func (s *Store) Close() error { return s.conn.Close() }

// IsPermanent reports whether an error from ClickHouse is the server
// refusing the statement (an exception), which a retry will not fix, as
// opposed to the server being unreachable.
func IsPermanent(err error) bool {
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) {
		return false
	}
	switch ex.Code {
	case 202, // TOO_MANY_SIMULTANEOUS_QUERIES
		159, // TIMEOUT_EXCEEDED
		241, // MEMORY_LIMIT_EXCEEDED
		252, // TOO_MANY_PARTS
		210, // NETWORK_ERROR
		209, // SOCKET_TIMEOUT
		242, // TABLE_IS_READ_ONLY
		319, // UNKNOWN_STATUS_OF_INSERT
		425: // SYSTEM_ERROR
		return false
	}
	return true
}
