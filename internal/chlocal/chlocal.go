// Package chlocal runs a local ClickHouse server from the installed
// clickhouse-server binary (Debian's package, 18.16, or a current release's
// single "clickhouse" binary) with a generated configuration in a directory
// of ours. The test helpers start one per test package; the quick start
// starts one for the developer when none is running.
package chlocal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"
)

// ErrNoBinary means no ClickHouse server binary is installed.
var ErrNoBinary = errors.New("no clickhouse-server binary found (install it: apt-get install -y clickhouse-server clickhouse-client)")

// Server is a ClickHouse server process with its own directory and ports.
type Server struct {
	Dir      string
	TCPPort  int
	HTTPPort int

	bin  []string
	cmd  *exec.Cmd
	done chan struct{}

	// Cluster is set when the server is a replica of a cluster.
	Cluster *Cluster
	// InterserverPort is the port replicas fetch parts from each other on
	// (cluster only).
	InterserverPort int

	auditorPassword  string
	mu               sync.Mutex // guards auditorDatabases and users.xml
	auditorDatabases []string
	usersMtime       time.Time // of the last users.xml written
}

// Config is what NewWith needs.
type Config struct {
	// Dir holds the configuration, data and logs; created if needed.
	Dir string
	// TCPPort and HTTPPort are the native and HTTP ports; 0 picks a free
	// one.
	TCPPort, HTTPPort int
	// AuditorPassword is the auditor user's password. Empty: the one in
	// Dir/auditor.password, else a random one written there (mode 0600).
	AuditorPassword string
	// AuditorDatabases are the databases the auditor may read; none:
	// DefaultAuditorDatabase.
	AuditorDatabases []string
	// Cluster, when set, makes the server one replica of a one-shard
	// ClickHouse cluster coordinated by ZooKeeper.
	Cluster *Cluster
}

// Cluster is a server's place in a ClickHouse cluster of one shard.
type Cluster struct {
	// Name is the cluster's name in remote_servers (what ON CLUSTER and
	// Distributed name).
	Name string
	// Shard and Replica are this server's {shard} and {replica} macros.
	Shard, Replica string
	// Replicas are the native addresses (host:port) of every replica of
	// the shard, this server's included.
	Replicas []string
	// ZooKeeper are the ZooKeeper servers' addresses (host:port).
	ZooKeeper []string
	// InterserverPort is the port replicas fetch parts on; 0 picks a free
	// one.
	InterserverPort int
}

type hostPort struct {
	Host string
	Port string
}

func splitAddrs(addrs []string) ([]hostPort, error) {
	var out []hostPort
	for _, a := range addrs {
		h, p, err := net.SplitHostPort(a)
		if err != nil || h == "" || p == "" {
			return nil, fmt.Errorf("address %q: want host:port", a)
		}
		if strings.ContainsAny(h, "<>&'\"") {
			return nil, fmt.Errorf("address %q: the host has a character not allowed in a host name", a)
		}
		if _, err := strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("address %q: the port is not a number", a)
		}
		out = append(out, hostPort{h, p})
	}
	return out, nil
}

// clusterView is what the configuration template reads of a cluster.
type clusterView struct {
	*Cluster
	ReplicaAddrs, ZooKeeperAddrs []hostPort
}

// Binary finds the server binary: clickhouse-server (Debian) or the single
// clickhouse binary of current releases, run as "clickhouse server".
func Binary() ([]string, error) {
	for _, p := range []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server"} {
		if path, err := exec.LookPath(p); err == nil {
			return []string{path}, nil
		}
	}
	if path, err := exec.LookPath("clickhouse"); err == nil {
		return []string{path, "server"}, nil
	}
	return nil, ErrNoBinary
}

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// New prepares a server in dir (created if needed) on the given ports; a
// port of 0 picks a free one. It writes the configuration but does not
// start the server.
//
// The auditor user gets the password in dir/auditor.password (a new
// random one when there is none) and may read the database "evidence";
// NewWith chooses otherwise.
func New(dir string, tcpPort, httpPort int) (*Server, error) {
	return NewWith(Config{Dir: dir, TCPPort: tcpPort, HTTPPort: httpPort})
}

// NewWith is New with the auditor's password and databases chosen.
func NewWith(c Config) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return nil, err
	}
	dbs := slices.Clone(c.AuditorDatabases)
	if len(dbs) == 0 {
		dbs = []string{DefaultAuditorDatabase}
	}
	for _, d := range dbs {
		if !validName(d) {
			return nil, fmt.Errorf("auditor database %q: only letters, digits and _ are allowed", d)
		}
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, err
	}
	pw, err := auditorPasswordFor(abs, c.AuditorPassword)
	if err != nil {
		return nil, err
	}
	if strings.ContainsAny(pw, "\x00\n\r") {
		return nil, errors.New("the auditor password has a control character (NUL or a line break)")
	}
	tcpPort, httpPort := c.TCPPort, c.HTTPPort
	for _, p := range []*int{&tcpPort, &httpPort} {
		if *p == 0 {
			if *p, err = FreePort(); err != nil {
				return nil, fmt.Errorf("pick a free port: %w", err)
			}
		}
	}
	s := &Server{Dir: abs, TCPPort: tcpPort, HTTPPort: httpPort, bin: bin, auditorPassword: pw, auditorDatabases: dbs}
	if c.Cluster != nil {
		cl := *c.Cluster
		if !validName(cl.Name) || !validName(cl.Shard) || !validName(cl.Replica) {
			return nil, fmt.Errorf("cluster %q, shard %q, replica %q: each needs letters, digits or _ only", cl.Name, cl.Shard, cl.Replica)
		}
		if len(cl.Replicas) == 0 || len(cl.ZooKeeper) == 0 {
			return nil, errors.New("a cluster needs its replicas' addresses and at least one ZooKeeper address")
		}
		if !slices.Contains(cl.Replicas, s.Addr()) {
			return nil, fmt.Errorf("the cluster's replicas (%s) do not include this server (%s)", strings.Join(cl.Replicas, ", "), s.Addr())
		}
		if cl.InterserverPort == 0 {
			if cl.InterserverPort, err = FreePort(); err != nil {
				return nil, fmt.Errorf("pick a free port: %w", err)
			}
		}
		s.Cluster, s.InterserverPort = &cl, cl.InterserverPort
	}
	if err := s.writeConfig(); err != nil {
		return nil, err
	}
	return s, nil
}

var configTmpl = template.Must(template.New("config").Parse(`<?xml version="1.0"?>
<!-- Generated by evidence's chlocal package. A local, loopback-only server. -->
<yandex>
  <logger>
    <level>warning</level>
    <log>{{.Dir}}/log/server.log</log>
    <errorlog>{{.Dir}}/log/server.err.log</errorlog>
    <size>50M</size>
    <count>2</count>
  </logger>
  <tcp_port>{{.TCPPort}}</tcp_port>
  <http_port>{{.HTTPPort}}</http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>{{.Dir}}/data/</path>
  <tmp_path>{{.Dir}}/tmp/</tmp_path>
  <user_files_path>{{.Dir}}/user_files/</user_files_path>
  <format_schema_path>{{.Dir}}/format_schemas/</format_schema_path>
  <users_config>{{.Dir}}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <mlock_executable>false</mlock_executable>
{{- with .ClusterView}}
  <!-- One replica of cluster {{.Name}}: shard {{.Shard}}, replica {{.Replica}}. -->
  <interserver_http_host>127.0.0.1</interserver_http_host>
  <interserver_http_port>{{.InterserverPort}}</interserver_http_port>
  <remote_servers>
    <{{.Name}}>
      <shard>
        <internal_replication>true</internal_replication>
{{- range .ReplicaAddrs}}
        <replica><host>{{.Host}}</host><port>{{.Port}}</port></replica>
{{- end}}
      </shard>
    </{{.Name}}>
  </remote_servers>
  <!-- Timeouts for a loaded machine (18.16 crashed in ON CLUSTER DDL when
       its ZooKeeper session was lost), yet a session short enough that a
       replica killed and restarted finds its old one expired (until then
       its tables stay read-only: "appears to be already active"). -->
  <zookeeper>
{{- range .ZooKeeperAddrs}}
    <node><host>{{.Host}}</host><port>{{.Port}}</port></node>
{{- end}}
    <session_timeout_ms>20000</session_timeout_ms>
    <operation_timeout_ms>15000</operation_timeout_ms>
  </zookeeper>
  <macros>
    <shard>{{.Shard}}</shard>
    <replica>{{.Replica}}</replica>
  </macros>
  <distributed_ddl>
    <path>/clickhouse/task_queue/ddl</path>
  </distributed_ddl>
{{- end}}
</yandex>
`))

// The auditor: a read-only user for the evidence databases (see
// docs/auditor-guide.md). ClickHouse 18.16 has no SQL access control: its
// users.xml gives a user a profile (readonly = 1: SELECT only, and no
// setting can be changed, so readonly cannot be lifted; allow_ddl = 0) and
// the databases it may use (allow_databases). 18.16 always lets every
// user read the system database; the guide says what that exposes.
const (
	// AuditorUser is the read-only user's name.
	AuditorUser = "auditor"
	// AuditorPasswordFile is the file in the server's directory that holds
	// the auditor's password (mode 0600) when none was given.
	AuditorPasswordFile = "auditor.password"
	// AuditorPasswordEnv is the environment variable command chlocal reads
	// the auditor's password from, when set.
	AuditorPasswordEnv = "EVIDENCE_CLICKHOUSE_AUDITOR_PASSWORD"
	// DefaultAuditorDatabase is the database the auditor may read when no
	// other is named.
	DefaultAuditorDatabase = "evidence"
)

var usersTmpl = template.Must(template.New("users").Parse(`<?xml version="1.0"?>
<!-- Generated by evidence's chlocal package. The default user has no
     password and is reachable from loopback only. The auditor user reads
     the evidence databases and nothing else (docs/auditor-guide.md); its
     password is in auditor.password beside this file, unless it was given
     in EVIDENCE_CLICKHOUSE_AUDITOR_PASSWORD. -->
<yandex>
  <profiles>
    <default>
      <max_memory_usage>4000000000</max_memory_usage>
    </default>
    <readonly>
      <readonly>1</readonly>
    </readonly>
    <auditor>
      <readonly>1</readonly>
      <allow_ddl>0</allow_ddl>
      <max_memory_usage>4000000000</max_memory_usage>
    </auditor>
  </profiles>
  <users>
    <default>
      <password></password>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
    <auditor>
      <password_sha256_hex>{{.PasswordSHA256}}</password_sha256_hex>
      <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
      <profile>auditor</profile>
      <quota>default</quota>
      <allow_databases>
{{- range .Databases}}
        <database>{{.}}</database>
{{- end}}
      </allow_databases>
    </auditor>
  </users>
  <quotas>
    <default>
      <interval>
        <duration>3600</duration>
        <queries>0</queries><errors>0</errors><result_rows>0</result_rows>
        <read_rows>0</read_rows><execution_time>0</execution_time>
      </interval>
    </default>
  </quotas>
</yandex>
`))

func (s *Server) writeConfig() error {
	for _, d := range []string{"log", "data", "tmp", "user_files", "format_schemas"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return err
		}
	}
	f, err := os.Create(filepath.Join(s.Dir, "config.xml"))
	if err != nil {
		return err
	}
	var view *clusterView
	if s.Cluster != nil {
		view = &clusterView{Cluster: s.Cluster}
		var err error
		if view.ReplicaAddrs, err = splitAddrs(s.Cluster.Replicas); err != nil {
			f.Close()
			return fmt.Errorf("cluster replicas: %w", err)
		}
		if view.ZooKeeperAddrs, err = splitAddrs(s.Cluster.ZooKeeper); err != nil {
			f.Close()
			return fmt.Errorf("cluster ZooKeeper: %w", err)
		}
	}
	err = configTmpl.Execute(f, struct {
		*Server
		ClusterView *clusterView
	}{s, view})
	if err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return s.writeUsers()
}

// writeUsers writes users.xml through a temporary file and a rename, so
// the server, which reloads the file when it changes, never reads half of
// it.
func (s *Server) writeUsers() error {
	sum := sha256.Sum256([]byte(s.auditorPassword))
	var b bytes.Buffer
	err := usersTmpl.Execute(&b, struct {
		PasswordSHA256 string
		Databases      []string
	}{hex.EncodeToString(sum[:]), s.auditorDatabases})
	if err != nil {
		return err
	}
	path := filepath.Join(s.Dir, "users.xml")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b.Bytes(), 0o600); err != nil {
		return err
	}
	// The server notices a change by the file's modification time, in
	// whole seconds: a rewrite within the second of the last one would go
	// unnoticed, so each write gets a later second.
	mtime := time.Now().Truncate(time.Second)
	if !mtime.After(s.usersMtime) {
		mtime = s.usersMtime.Add(time.Second)
	}
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	s.usersMtime = mtime
	return nil
}

// auditorPasswordFor is the password given, else the one kept in
// dir/auditor.password, else a new random one written there (mode 0600).
func auditorPasswordFor(dir, given string) (string, error) {
	if given != "" {
		return given, nil
	}
	path := filepath.Join(dir, AuditorPasswordFile)
	if b, err := os.ReadFile(path); err == nil {
		pw := strings.TrimSpace(string(b))
		if pw == "" {
			return "", fmt.Errorf("%s is empty: delete it to have a new password generated", path)
		}
		return pw, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read the auditor password: %w", err)
	}
	raw := make([]byte, 18)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	pw := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(pw+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write the auditor password: %w", err)
	}
	return pw, nil
}

// AuditorPassword is the auditor user's password.
func (s *Server) AuditorPassword() string { return s.auditorPassword }

// AuditorDatabases are the databases the auditor may read.
func (s *Server) AuditorDatabases() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.auditorDatabases)
}

// AuditorURL is the evidence-style connection URL of the auditor user for
// a database on this server. It holds the auditor's password: print it
// only to whom may read the evidence.
func (s *Server) AuditorURL(database string) string {
	u := url.URL{Scheme: "clickhouse", User: url.UserPassword(AuditorUser, s.auditorPassword), Host: s.Addr(), Path: "/" + database}
	return u.String()
}

// AllowAuditor lets the auditor read databases too: it rewrites users.xml
// and, when the server runs, waits until the server has reloaded it (it
// checks the file every few seconds) and lets the auditor in to each of
// them, or ctx ends.
func (s *Server) AllowAuditor(ctx context.Context, databases ...string) error {
	s.mu.Lock()
	changed := false
	for _, d := range databases {
		if !validName(d) {
			s.mu.Unlock()
			return fmt.Errorf("database name %q: only letters, digits and _ are allowed", d)
		}
		if !slices.Contains(s.auditorDatabases, d) {
			s.auditorDatabases = append(s.auditorDatabases, d)
			changed = true
		}
	}
	var err error
	if changed {
		err = s.writeUsers()
	}
	running := s.cmd != nil
	s.mu.Unlock()
	if err != nil || !running {
		return err
	}
	for _, d := range databases {
		for {
			// 18.16 answers a hello naming a database the user may not use
			// by closing the connection, one that does not exist with
			// exception 81: either way, the reload is what is waited for.
			err := Hello(s.Addr(), AuditorUser, s.auditorPassword, d, time.Second)
			var ex *HelloError
			if err == nil || errors.As(err, &ex) && ex.Code == codeUnknownDatabase {
				break
			}
			if ex != nil && ex.Code != codeDatabaseAccessDenied {
				return fmt.Errorf("auditor on %s: %w", d, err)
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the server did not let the auditor in to %s after %s/users.xml was rewritten (last answer: %v): %w", d, s.Dir, err, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z') {
			return false
		}
	}
	return true
}

// Addr is the native protocol address, host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.TCPPort) }

// URL is the evidence-style connection URL for a database on this server.
func (s *Server) URL(database string) string {
	return "clickhouse://" + s.Addr() + "/" + database
}

// Start starts the server process and waits until it accepts native
// connections, or ctx ends. A server still running is left alone.
func (s *Server) Start(ctx context.Context) error {
	if s.cmd != nil {
		select {
		case <-s.done:
		default:
			return nil
		}
	}
	args := append(append([]string{}, s.bin[1:]...), "--config-file="+filepath.Join(s.Dir, "config.xml"))
	cmd := exec.Command(s.bin[0], args...)
	out, err := os.OpenFile(filepath.Join(s.Dir, "log", "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return fmt.Errorf("start %s: %w", s.bin[0], err)
	}
	s.cmd, s.done = cmd, make(chan struct{})
	done := s.done
	go func() { _ = cmd.Wait(); out.Close(); close(done) }()
	return s.waitReady(ctx)
}

func (s *Server) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-s.done:
			return fmt.Errorf("clickhouse-server exited at start; see %s", s.logTail())
		default:
		}
		if Ping(s.Addr(), time.Second) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("clickhouse-server not ready on %s after 60s; see %s", s.Addr(), s.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "log", "server.err.log"))
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return filepath.Join(s.Dir, "log") + ": " + strings.TrimSpace(string(b))
}

// Stop stops the server gracefully (SIGTERM), killing it after 20 seconds.
func (s *Server) Stop() error {
	return s.signal(syscall.SIGTERM, 20*time.Second)
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (s *Server) Kill() error {
	return s.signal(syscall.SIGKILL, 10*time.Second)
}

func (s *Server) signal(sig syscall.Signal, grace time.Duration) error {
	if s.cmd == nil {
		return nil
	}
	select {
	case <-s.done:
		return nil
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, sig)
	select {
	case <-s.done:
		return nil
	case <-time.After(grace):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
		return fmt.Errorf("clickhouse-server did not stop within %s; killed", grace)
	}
}

// PID is the server process id (0 before Start).
func (s *Server) PID() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Detach leaves the server running after this process exits.
func (s *Server) Detach() { s.cmd = nil }

// Ping checks that a ClickHouse server answers the native protocol hello at
// addr, without a client library: it sends a Hello packet and expects a
// Hello (0) or Exception (2) packet back.
func Ping(addr string, timeout time.Duration) error {
	err := Hello(addr, "default", "", "default", timeout)
	var ex *HelloError
	if errors.As(err, &ex) {
		return nil // it answered, if only to refuse
	}
	return err
}

// ClickHouse error codes the hello can answer with.
const (
	codeUnknownDatabase      = 81
	codeDatabaseAccessDenied = 291
)

// HelloError is the exception a server answered a hello with, e.g. code
// 291 (DATABASE_ACCESS_DENIED) or 193 (WRONG_PASSWORD).
type HelloError struct {
	Code    int32
	Name    string
	Message string
}

func (e *HelloError) Error() string {
	return fmt.Sprintf("code %d: %s", e.Code, e.Message)
}

// Hello logs in to the server at addr as user, with database as the
// current one, over the native protocol, without a client library: nil
// when the server answers with its Hello, a *HelloError when it answers
// with an exception (a wrong password: 193; a database that does not
// exist: 81), another error when it does not answer. To a database the
// user may not use, 18.16 answers by closing the connection (io.EOF).
func Hello(addr, user, password, database string, timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	var b []byte
	b = append(b, 0) // ClientHello
	b = appendString(b, "evidence-ping")
	b = appendUvarint(b, 1)     // major
	b = appendUvarint(b, 1)     // minor
	b = appendUvarint(b, 54213) // protocol revision
	b = appendString(b, database)
	b = appendString(b, user)
	b = appendString(b, password)
	if _, err := c.Write(b); err != nil {
		return err
	}
	r := &byteReader{r: c}
	kind := r.byte()
	if r.err != nil {
		return r.err
	}
	switch kind {
	case 0:
		return nil
	case 2:
		// Exception: code Int32, name, message, stack trace, has nested.
		var code [4]byte
		r.full(code[:])
		ex := &HelloError{Code: int32(binary.LittleEndian.Uint32(code[:]))}
		ex.Name, ex.Message = r.string(), r.string()
		if r.err != nil {
			return fmt.Errorf("%s answered an exception that could not be read: %w", addr, r.err)
		}
		return ex
	default:
		return fmt.Errorf("unexpected packet %d from %s", kind, addr)
	}
}

// byteReader reads the native protocol's varints and strings, keeping the
// first error.
type byteReader struct {
	r   io.Reader
	err error
}

func (b *byteReader) full(p []byte) {
	if b.err == nil {
		_, b.err = io.ReadFull(b.r, p)
	}
}

func (b *byteReader) byte() byte {
	var one [1]byte
	b.full(one[:])
	return one[0]
}

func (b *byteReader) uvarint() uint64 {
	var v uint64
	for shift := 0; shift < 64; shift += 7 {
		c := b.byte()
		if b.err != nil {
			return 0
		}
		v |= uint64(c&0x7f) << shift
		if c < 0x80 {
			return v
		}
	}
	b.err = errors.New("varint too long")
	return 0
}

func (b *byteReader) string() string {
	n := b.uvarint()
	if b.err != nil {
		return ""
	}
	if n > 1<<20 {
		b.err = fmt.Errorf("string of %d bytes", n)
		return ""
	}
	p := make([]byte, n)
	b.full(p)
	return string(p)
}

func appendUvarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendString(b []byte, s string) []byte {
	return append(appendUvarint(b, uint64(len(s))), s...)
}
