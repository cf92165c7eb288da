package bus_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/bus"
	"github.com/evidencepipeline/evidence/internal/testenv"
)

func streamConfig(t *testing.T, js jetstream.JetStream, name string) jetstream.StreamConfig {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().Config
}

// TestNeverWeakenKeepsWhatTheOperatorSet: an operator tuned the event
// stream stronger than evidenced's flags ask (kept forever, a longer
// duplicate window, a size limit, discard of new messages, one more
// subject) and a bucket (more history, a size limit). A start of the
// daemon with its defaults keeps every one of them; what the flags ask
// beyond the stream (a longer age than the operator's) is raised.
func TestNeverWeakenKeepsWhatTheOperatorSet(t *testing.T) {
	ctx := context.Background()
	n := testenv.NATS(t) // the streams exist, as evidenced creates them
	cfg := streamConfig(t, n.JS, bus.EventStream)
	cfg.MaxAge = 0
	cfg.Duplicates = time.Hour
	cfg.MaxBytes = 1 << 30
	cfg.Discard = jetstream.DiscardNew
	cfg.Subjects = append(cfg.Subjects, "operator.extra.>")
	if _, err := n.JS.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	dlq := streamConfig(t, n.JS, bus.DLQStream)
	dlq.MaxAge = time.Hour
	if _, err := n.JS.UpdateStream(ctx, dlq); err != nil {
		t.Fatal(err)
	}
	if _, err := n.JS.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "OPS", History: 5, MaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}

	js := bus.NeverWeaken(n.JS, bus.Replication{})
	// The daemon's defaults: 30 days, a 10-minute window, no size limit,
	// discard old; the dead letters kept forever.
	if err := bus.EnsureStreams(ctx, js, bus.StreamConfig{MaxAge: 720 * time.Hour, Duplicates: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	got := streamConfig(t, n.JS, bus.EventStream)
	if got.MaxAge != 0 || got.Duplicates != time.Hour || got.MaxBytes != 1<<30 || got.Discard != jetstream.DiscardNew ||
		!got.DenyDelete || !got.DenyPurge || got.Replicas != 1 ||
		!slices.Equal(got.Subjects, []string{bus.EventSubjects, "operator.extra.>"}) {
		t.Errorf("event stream weakened: max_age %s, duplicates %s, max_bytes %d, discard %s, deny delete/purge %v/%v, replicas %d, subjects %v",
			got.MaxAge, got.Duplicates, got.MaxBytes, got.Discard, got.DenyDelete, got.DenyPurge, got.Replicas, got.Subjects)
	}
	if got := streamConfig(t, n.JS, bus.DLQStream); got.MaxAge != 0 {
		t.Errorf("dead-letter stream: max_age %s, want 0 (forever, as evidenced asks: longer than the operator's hour)", got.MaxAge)
	}

	if _, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "OPS", History: 1, MaxBytes: 1 << 10}); err != nil {
		t.Fatal(err)
	}
	kv := streamConfig(t, n.JS, "KV_OPS")
	if kv.MaxMsgsPerSubject != 5 || kv.MaxBytes != 1<<20 {
		t.Errorf("bucket weakened: history %d, max_bytes %d; want 5 and %d", kv.MaxMsgsPerSubject, kv.MaxBytes, 1<<20)
	}
}

// TestNeverWeakenRefusesWhatItCannot: asking a single server for three
// replicas says so, naming the flag; a stream whose retention or storage
// an operator made weaker is refused with what to do, not used.
func TestNeverWeakenRefusesWhatItCannot(t *testing.T) {
	ctx := context.Background()
	n := testenv.NATS(t)
	err := bus.EnsureStreams(ctx, bus.NeverWeaken(n.JS, bus.Replication{Streams: 3}), bus.StreamConfig{Duplicates: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "3 replicas asked (--stream-replicas 3)") || !strings.Contains(err.Error(), "single server, not a cluster") {
		t.Errorf("3 stream replicas on one server: %v", err)
	}
	_, err = bus.NeverWeaken(n.JS, bus.Replication{KV: 3}).CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "B"})
	if err == nil || !strings.Contains(err.Error(), "bucket B: 3 replicas asked (--kv-replicas 3)") {
		t.Errorf("3 bucket replicas on one server: %v", err)
	}
	if got := streamConfig(t, n.JS, bus.EventStream); got.Replicas != 1 {
		t.Errorf("event stream replicas %d after the refusal, want 1", got.Replicas)
	}

	// The dead letters recreated by an operator as a work queue (consumed
	// messages removed), then in memory.
	for _, tc := range []struct {
		name string
		edit func(*jetstream.StreamConfig)
		want string
	}{
		{"work queue", func(c *jetstream.StreamConfig) { c.Retention = jetstream.WorkQueuePolicy }, "has retention WorkQueue, but evidenced needs Limits"},
		{"memory", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, "is stored in memory, but evidenced needs file storage"},
	} {
		cfg := streamConfig(t, n.JS, bus.DLQStream)
		if err := n.JS.DeleteStream(ctx, bus.DLQStream); err != nil {
			t.Fatal(err)
		}
		tc.edit(&cfg)
		if _, err := n.JS.CreateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		err := bus.EnsureStreams(ctx, bus.NeverWeaken(n.JS, bus.Replication{}), bus.StreamConfig{Duplicates: time.Minute})
		if err == nil || !strings.Contains(err.Error(), "stream "+bus.DLQStream+" "+tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err := n.JS.DeleteStream(ctx, bus.DLQStream); err != nil {
			t.Fatal(err)
		}
		if err := bus.EnsureStreams(ctx, n.JS, bus.StreamConfig{Duplicates: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestNeverWeakenOnACluster: on a three-node cluster, an event stream an
// operator made R3 stays R3 when evidenced starts with the default
// --stream-replicas 1 (it used to be set back to 1), and the flag raises
// what is below it: the dead letters and a bucket from 1 to 3 replicas;
// a bucket an operator made R3 stays so with --kv-replicas 1.
func TestNeverWeakenOnACluster(t *testing.T) {
	ctx := context.Background()
	cl := testenv.NATSCluster(t, 3)
	nc, err := nats.Connect(cl.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.StreamConfig{Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	cfg := streamConfig(t, js, bus.EventStream)
	cfg.Replicas = 3
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "OPS_R3", Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "R1"}); err != nil {
		t.Fatal(err)
	}

	if err := bus.EnsureStreams(ctx, bus.NeverWeaken(js, bus.Replication{}), bus.StreamConfig{Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := bus.NeverWeaken(js, bus.Replication{}).CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "OPS_R3"}); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]int{bus.EventStream: 3, bus.DLQStream: 1, "KV_OPS_R3": 3} {
		if got := streamConfig(t, js, name).Replicas; got != want {
			t.Errorf("with the flags at 1: %s has %d replicas, want %d", name, got, want)
		}
	}

	strong := bus.NeverWeaken(js, bus.Replication{Streams: 3, KV: 3})
	if err := bus.EnsureStreams(ctx, strong, bus.StreamConfig{Duplicates: time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := strong.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "R1"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{bus.EventStream, bus.DLQStream, "KV_R1"} {
		if got := streamConfig(t, js, name).Replicas; got != 3 {
			t.Errorf("with the flags at 3: %s has %d replicas, want 3", name, got)
		}
	}
	// Four replicas on three nodes: refused, naming the flag.
	err = bus.EnsureStreams(ctx, bus.NeverWeaken(js, bus.Replication{Streams: 4}), bus.StreamConfig{Duplicates: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "4 replicas asked (--stream-replicas 4)") {
		t.Errorf("4 replicas on 3 nodes: %v", err)
	}
}
