package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/bus/embedded"
	"github.com/evidencepipeline/evidence/internal/chlocal"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/internal/testenv/evidenced"
	"github.com/evidencepipeline/evidence/processors/checkpoint"
)

// TestEmbeddedNATSHasUsers: an embedded NATS that listens for clients
// (--nats-listen) generates its users at first start (mode 0600) and
// accepts no one else: an anonymous client and a wrong password are
// refused. The producer's user publishes events, and is acknowledged, but
// cannot publish a checkpoint or a dead letter, nor delete or purge a
// stream: they stay as they were.
func TestEmbeddedNATSHasUsers(t *testing.T) {
	ctx := context.Background()
	port, err := chlocal.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	d := evidenced.Start(t, testenv.DatabaseURL(t), "--data-dir", dataDir, "--nats-listen", "127.0.0.1:"+strconv.Itoa(port))

	path := filepath.Join(dataDir, embedded.UsersFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatalf("no users file generated at first start: %v", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("users file mode %04o, want 0600", perm)
	}
	users, created, err := embedded.LoadOrCreateUsers(path)
	if err != nil || created {
		t.Fatalf("read the users file: created %v, %v", created, err)
	}

	for name, opts := range map[string][]nats.Option{
		"anonymous":      nil,
		"wrong password": {nats.UserInfo(embedded.UserProducer, users.Password(embedded.UserProducer)+"x")},
		"unknown user":   {nats.UserInfo("admin", users.Password(embedded.UserEvidenced))},
	} {
		nc, err := nats.Connect(url, append(opts, nats.NoReconnect())...)
		if err == nil {
			nc.Close()
			t.Errorf("%s: connected", name)
		} else if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
			t.Errorf("%s: refused with %v, want an authorization violation", name, err)
		}
	}

	nc, err := nats.Connect(url, nats.UserInfo(embedded.UserProducer, users.Password(embedded.UserProducer)), nats.NoReconnect(),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // the refusals below are expected

	if err != nil {
		t.Fatalf("producer: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ack, err := js.Publish(pctx, bus.Subject("com.example.test"),
		[]byte(`{"specversion":"1.0","id":"p-1","source":"https://ci.example/p","type":"com.example.test"}`))
	if err != nil || ack.Stream != bus.EventStream {
		t.Fatalf("producer publishing an event: %v, %+v", err, ack)
	}

	// What the producer must not do, each with a short deadline: the
	// server refuses with a permissions violation, so no answer comes.
	const forged = `{"seq":1,"count":1,"head":"forged"}`
	refused := func(what string, op func(ctx context.Context) error) {
		t.Helper()
		octx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := op(octx); err == nil {
			t.Errorf("producer could %s", what)
		}
	}
	refused("publish a checkpoint", func(ctx context.Context) error {
		_, err := js.Publish(ctx, checkpoint.Subject, []byte(forged))
		return err
	})
	refused("publish a dead letter", func(ctx context.Context) error {
		_, err := js.Publish(ctx, "evidence.dlq.archive", []byte(`x`))
		return err
	})
	for _, s := range []string{bus.EventStream, checkpoint.Stream, bus.DLQStream} {
		refused("delete stream "+s, func(ctx context.Context) error { return js.DeleteStream(ctx, s) })
	}
	refused("purge the dead letters", func(ctx context.Context) error {
		s, err := js.Stream(ctx, bus.DLQStream)
		if err != nil {
			return err
		}
		return s.Purge(ctx)
	})

	// As evidenced sees them: the streams are there; the event stream got
	// the producer's event, the dead letters nothing, and the checkpoints
	// only evidenced's own (the archive signs the event's head), not the
	// forged one.
	for _, tc := range []struct {
		stream string
		want   uint64
	}{{bus.EventStream, 1}, {bus.DLQStream, 0}} {
		s, err := d.JetStream().Stream(ctx, tc.stream)
		if err != nil {
			t.Fatalf("stream %s after the producer's attempts: %v", tc.stream, err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != tc.want {
			t.Errorf("stream %s holds %d messages, want %d", tc.stream, info.State.Msgs, tc.want)
		}
	}
	cps, err := d.JetStream().Stream(ctx, checkpoint.Stream)
	if err != nil {
		t.Fatalf("stream %s after the producer's attempts: %v", checkpoint.Stream, err)
	}
	info, err := cps.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := cps.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		if string(m.Data) == forged {
			t.Errorf("the producer's forged checkpoint is in %s at %d", checkpoint.Stream, seq)
		}
	}
}
