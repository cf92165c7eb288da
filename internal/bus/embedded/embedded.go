// Package embedded runs the NATS server with JetStream inside evidenced
// (and the tests): the only package of the module that imports the NATS
// server, so that the stages and the CLI, which use the bus through the
// client (internal/bus), do not link the server.
package embedded

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// Server is an in-process NATS server with JetStream.
type Server struct {
	Server *server.Server
	users  *Users
}

// Config configures the embedded server.
type Config struct {
	// StoreDir is the JetStream file store directory.
	StoreDir string
	// Listen is host:port for NATS clients; empty: no listener, in-process
	// connections only. Port -1 picks a random port (tests).
	Listen string
	// Users, when set, are the only clients the server accepts, each
	// with its role's permissions; the in-process connection is
	// evidenced's user.
	Users *Users
	Log   *slog.Logger
}

// Start starts a NATS server with JetStream in this process and
// waits until it is ready.
func Start(c Config) (*Server, error) {
	opts := &server.Options{
		ServerName: "evidenced-embedded",
		JetStream:  true,
		StoreDir:   c.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Webhook payloads are kept whole as evidence: allow up to 32 MiB.
		MaxPayload: 32 << 20,
	}
	if c.Listen == "" {
		opts.DontListen = true
	} else {
		host, port, err := splitHostPort(c.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", c.Listen, err)
		}
		opts.Host, opts.Port = host, port
	}
	if c.Users != nil {
		opts.Users = c.Users.ServerUsers()
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(30 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	if c.Log != nil {
		c.Log.Info("embedded NATS started", "store_dir", c.StoreDir, "client_url", clientURL(s, c.Listen))
	}
	return &Server{Server: s, users: c.Users}, nil
}

func clientURL(s *server.Server, listen string) string {
	if listen == "" {
		return "(in-process only)"
	}
	return s.ClientURL()
}

// Connect opens a client connection to the embedded server.
func (e *Server) Connect(name string) (*nats.Conn, error) {
	opts := []nats.Option{nats.InProcessServer(e.Server), nats.Name(name), nats.MaxReconnects(-1)}
	if e.users != nil {
		opts = append(opts, nats.UserInfo(UserEvidenced, e.users.Password(UserEvidenced)))
	}
	return nats.Connect("", opts...)
}

// Shutdown stops the server and waits for it to end.
func (e *Server) Shutdown() {
	e.Server.Shutdown()
	e.Server.WaitForShutdown()
}

func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < -1 || p > 65535 {
		return "", 0, fmt.Errorf("bad port %q", port)
	}
	return host, p, nil
}
