package correlate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/internal/testenv"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

func TestMain(m *testing.M) { testenv.Main(m) }

var validKVKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// TestKVKey checks that the KV key encoding is one-to-one, gives valid KV
// keys, and keeps the parts that filters use.
func TestKVKey(t *testing.T) {
	keys := []correlate.Key{
		correlate.CommitKey("github.com/acme/payments", "c0ffee1234567890abcdef1234567890abcdef12"),
		correlate.ChangeKey("gitlab.acme.example/platform/api", 42),
		correlate.RunKey("github.com/acme/payments", "payments/main/123#4@x"),
		correlate.TicketKey("CHG0031234"),
		correlate.ArtifactKey("sha256:" + strings.Repeat("ab", 32)),
		correlate.ArtifactKey("pkg:oci/payments@sha256:abc?repository_url=ghcr.io/acme"),
		correlate.ExceptionKey("EXC-1"),
		correlate.EnvKey("production"), correlate.ServiceKey("payments"), correlate.RepoKey("github.com/acme/ledger"),
		"deploy:production/payments/sha256:abc",
		"deploy:prod/eu/payments/github.com/acme/payments@c0ffee", // an environment with '/'
		"deployment:production/payments/id:payments-production-17",
		"commit:@", "commit:repo@", "change:#", "deploy://", "ticket:", // empty parts
		"commit:no-separator", "Weird:Kind", "nokind", "", "ticket:ÄÖ Ü.*>", "x:y:z",
	}
	seen := map[string]correlate.Key{}
	for _, k := range keys {
		kk, err := correlate.KVKey(k)
		if err != nil {
			t.Fatalf("KVKey(%q): %v", k, err)
		}
		if !validKVKey.MatchString(kk) || strings.Contains(kk, "..") || strings.HasSuffix(kk, ".") {
			t.Errorf("KVKey(%q) = %q: not a valid KV key", k, kk)
		}
		if prev, ok := seen[kk]; ok {
			t.Errorf("KVKey(%q) = KVKey(%q) = %q", k, prev, kk)
		}
		seen[kk] = k
		back, err := correlate.ParseKVKey(kk)
		if err != nil || back != k {
			t.Errorf("ParseKVKey(KVKey(%q)) = %q, %v", k, back, err)
		}
	}
	if kk, _ := correlate.KVKey(correlate.CommitKey("r", "s")); kk != "commit.cg.cw" {
		t.Errorf("commit key encodes as %q, want commit.<repo>.<sha>", kk)
	}
	for _, bad := range []string{"", "commit", "commit.cg", "commit.cg.cw.cw", "_.!!", "UP.cg"} {
		if k, err := correlate.ParseKVKey(bad); err == nil {
			t.Errorf("ParseKVKey(%q) = %q, want an error", bad, k)
		}
	}
	long := correlate.ArtifactKey("pkg:generic/" + strings.Repeat("x", 2000))
	if _, err := correlate.KVKey(long); !errors.Is(err, correlate.ErrKeyTooLong) || !strings.Contains(err.Error(), "pkg:generic/xxx") {
		t.Errorf("a 2 KB key: %v, want ErrKeyTooLong naming the key", err)
	}
	// Random keys round-trip.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []rune("ab:@#/._-=*> é")
	for range 2000 {
		n := rng.IntN(20)
		var b strings.Builder
		for range n {
			b.WriteRune(alphabet[rng.IntN(len(alphabet))])
		}
		k := correlate.Key(b.String())
		kk, err := correlate.KVKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := correlate.ParseKVKey(kk); err != nil || back != k || !validKVKey.MatchString(kk) {
			t.Fatalf("%q -> %q -> %q, %v", k, kk, back, err)
		}
	}
}

// facts extracts the facts of events.
func facts(t testing.TB, events []*ce.Event) []correlate.Fact {
	t.Helper()
	var out []correlate.Fact
	for _, e := range events {
		fs, err := correlate.Extract(e)
		if err != nil {
			t.Fatalf("%s %s: %v", e.Type, e.ID, err)
		}
		out = append(out, fs...)
	}
	return out
}

func stateOf(t testing.TB, events []*ce.Event) *correlate.State {
	s := correlate.NewState()
	s.Add(facts(t, events)...)
	return s
}

func newKV(t testing.TB, js jetstream.JetStream, opts correlate.KVOptions) *correlate.KVState {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kv, err := correlate.NewKVState(ctx, js, opts)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

func bucketSeq(t testing.TB, js jetstream.JetStream) uint64 {
	t.Helper()
	st, err := js.Stream(context.Background(), "KV_"+correlate.DefaultBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// TestKVState merges the facts of a generated history into the bucket in
// random batches, with duplicates, and checks that every entry is the
// core's, that merging again writes nothing, and that KVReader answers
// what StateReader answers on the whole state.
func TestKVState(t *testing.T) {
	ctx := context.Background()
	env := testenv.NATS(t)
	kv := newKV(t, env.JS, correlate.KVOptions{})
	if _, err := correlate.NewKVState(ctx, env.JS, correlate.KVOptions{}); err != nil {
		t.Fatalf("binding to the existing bucket: %v", err)
	}
	events := correlate.WithExceptions(correlate.GenHistory(11, 700), 11)
	all := facts(t, events)
	whole := correlate.NewState()
	whole.Add(all...)

	rng := rand.New(rand.NewPCG(3, 4))
	order := slices.Clone(all)
	for range len(all) / 5 {
		order = append(order, all[rng.IntN(len(all))])
	}
	rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	for len(order) > 0 {
		n := min(len(order), 1+rng.IntN(60))
		if _, err := kv.Merge(ctx, order[:n]); err != nil {
			t.Fatal(err)
		}
		order = order[n:]
	}
	for _, k := range whole.Keys() {
		got, err := kv.Entry(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if !entriesEqual(got, whole.Entry(k)) {
			t.Fatalf("entry %s: %d facts, want %d", k, len(got.Facts), len(whole.Entry(k).Facts))
		}
	}

	seq := bucketSeq(t, env.JS)
	changed, err := kv.Merge(ctx, all[:200])
	if err != nil || len(changed) != 0 || bucketSeq(t, env.JS) != seq {
		t.Fatalf("merging facts already there changed %v (err %v)", changed, err)
	}
	// Load reads the entries many at a time (several requests of a
	// snapshot), keys without an entry among them.
	reads := correlate.BatchedReads(kv)
	keys := append(whole.Keys(), correlate.TicketKey("NOPE-1"), correlate.CommitKey("acme/none", strings.Repeat("0", 40)))
	loaded, err := kv.Load(ctx, keys)
	if err != nil {
		t.Fatal(err)
	}
	if want := encode(t, whole.Records()); !bytes.Equal(encode(t, loaded.Records()), want) {
		t.Fatal("the records of the loaded state differ from the core's")
	}
	if got, min := correlate.BatchedReads(kv)-reads, int64(len(keys)/256); got < max(min, 1) {
		t.Errorf("Load of %d keys sent %d batched reads, want at least %d", len(keys), got, max(min, 1))
	}
	// Read alone (a server without multi_last), the same.
	alone := newKV(t, env.JS, correlate.KVOptions{})
	correlate.NoBatchedReads(alone)
	if loaded, err = alone.Load(ctx, keys); err != nil {
		t.Fatal(err)
	}
	if want := encode(t, whole.Records()); !bytes.Equal(encode(t, loaded.Records()), want) {
		t.Fatal("the records of the state loaded key by key differ from the core's")
	}
	if n := correlate.BatchedReads(alone); n != 0 {
		t.Errorf("a KVState told to read alone sent %d batched reads", n)
	}

	// KVReader against StateReader.
	kr, sr := correlate.KVReader{KV: kv}, correlate.StateReader{State: whole}
	recs := whole.Records()
	for _, r := range recs {
		got, ok, err := kr.Change(ctx, r.ID)
		if err != nil || !ok {
			t.Fatalf("Change(%q) = %v, %v", r.ID, ok, err)
		}
		if !bytes.Equal(encode(t, got), encode(t, r)) {
			t.Fatalf("Change(%q) differs from the core's record:\n got %s\nwant %s", r.ID, encode(t, got), encode(t, r))
		}
	}
	if _, ok, err := kr.Change(ctx, "github.com/acme/payments@"+strings.Repeat("0", 40)); ok || err != nil {
		t.Fatalf("Change of an unknown commit: %v, %v", ok, err)
	}
	checked := 0
	for i, r := range recs {
		if i%4 != 0 || r.Repository == "" {
			continue
		}
		for _, c := range r.Commits {
			for _, sha := range []string{c.SHA, c.SHA[:9]} {
				got, err := kr.ChangesOf(ctx, r.Repository, sha)
				if err != nil {
					t.Fatal(err)
				}
				want, _ := sr.ChangesOf(ctx, r.Repository, sha)
				if !bytes.Equal(encode(t, got), encode(t, want)) {
					t.Fatalf("ChangesOf(%s, %s): %d records, want %d", r.Repository, sha, len(got), len(want))
				}
				checked++
			}
		}
	}
	for _, repo := range []string{"github.com/acme/payments", "gitlab.acme.example/platform/api", "github.com/nobody/nothing"} {
		got, err := kr.ChangesOf(ctx, repo, "")
		if err != nil {
			t.Fatal(err)
		}
		want, _ := sr.ChangesOf(ctx, repo, "")
		if !bytes.Equal(encode(t, got), encode(t, want)) {
			t.Fatalf("ChangesOf(%s, \"\"): %d records, want %d", repo, len(got), len(want))
		}
	}
	// By artifact, across repositories: KVReader against StateReader, and
	// every record found carries the artifact.
	digests := map[string]bool{}
	for _, r := range recs {
		for _, a := range r.Artifacts {
			if a.Digest != "" {
				digests[a.Digest] = true
			}
		}
	}
	byArtifact := 0
	for d := range digests {
		got, err := kr.ChangesOfArtifact(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := sr.ChangesOfArtifact(ctx, d)
		if len(got) == 0 || !bytes.Equal(encode(t, got), encode(t, want)) {
			t.Fatalf("ChangesOfArtifact(%s): %d records, want %d (at least one)", d, len(got), len(want))
		}
		for _, r := range got {
			if !r.Carries(d) {
				t.Fatalf("ChangesOfArtifact(%s) gave %s, which does not carry it", d, r.ID)
			}
		}
		byArtifact++
	}
	if byArtifact == 0 {
		t.Fatal("the generated history has no artifacts to look up")
	}
	if got, err := kr.ChangesOfArtifact(ctx, "sha256:"+strings.Repeat("0", 64)); err != nil || len(got) != 0 {
		t.Fatalf("an unknown artifact: %d records, %v", len(got), err)
	}
	t.Logf("%d facts, %d keys, %d records, %d commit queries, %d artifact queries", len(all), len(whole.Keys()), len(recs), checked, byArtifact)
}

func entriesEqual(a, b correlate.Entry) bool {
	return a.Key == b.Key && slices.EqualFunc(a.Facts, b.Facts, func(x, y correlate.Fact) bool { return x.ID == y.ID })
}

func encode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// approvals returns n ticket.approved events of one ticket, each its own
// fact, all filed under ticket:<key>.
func approvals(key, prefix string, n int) []*ce.Event {
	var out []*ce.Event
	at := time.Date(2025, 4, 1, 8, 0, 0, 0, time.UTC)
	for i := range n {
		data, _ := json.Marshal(map[string]any{
			"key": key, "system": "jira", "ticket_type": "standard", "status": "Scheduled",
			"approver":    map[string]any{"login": fmt.Sprintf("%s-%d", prefix, i), "type": "user"},
			"approved_at": at.Add(time.Duration(i) * time.Minute).Format(time.RFC3339), "approval_group": "CAB",
		})
		out = append(out, &ce.Event{ID: fmt.Sprintf("%s-%d", prefix, i), Source: "https://acme.atlassian.net",
			Type: correlate.TypeTicketApproved, Time: at, DataContentType: "application/json", Data: data})
	}
	return out
}

// TestKVConcurrentMerge: writers on two connections merge different facts
// into the same entry at once, one fact per Merge; compare-and-set loses
// none of them.
func TestKVConcurrentMerge(t *testing.T) {
	ctx := context.Background()
	env := testenv.NATS(t)
	nc2, err := nats.Connect(env.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	js2, err := jetstream.New(nc2)
	if err != nil {
		t.Fatal(err)
	}
	kvs := []*correlate.KVState{newKV(t, env.JS, correlate.KVOptions{}), newKV(t, js2, correlate.KVOptions{})}
	const writers, each = 4, 60
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	var all []correlate.Fact
	for w := range writers {
		fs := facts(t, approvals("CHG-HOT", fmt.Sprintf("w%d", w), each))
		all = append(all, fs...)
		wg.Go(func() {
			for _, f := range fs {
				if _, err := kvs[w%2].Merge(ctx, []correlate.Fact{f}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	e, err := kvs[0].Entry(ctx, correlate.TicketKey("CHG-HOT"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Facts) != writers*each {
		t.Fatalf("the entry holds %d facts, want %d: updates were lost", len(e.Facts), writers*each)
	}
	// Every write changed the entry once: one revision per fact.
	if seq := bucketSeq(t, env.JS); seq != uint64(writers*each) {
		t.Errorf("%d revisions written for %d facts", seq, writers*each)
	}
}

// TestKVEntryTooLarge: a fact that would grow an entry past the value size
// limit is refused, naming the key, and written to none of its entries;
// the other facts are merged.
func TestKVEntryTooLarge(t *testing.T) {
	ctx := context.Background()
	env := testenv.NATS(t)
	kv := newKV(t, env.JS, correlate.KVOptions{MaxValueSize: 8 << 10})
	hot := facts(t, approvals("CHG-BIG", "a", 40))
	// A deployment naming the hot ticket: it is refused in the ticket's
	// entry, so it must not be in its other entries either.
	dep := facts(t, []*ce.Event{{ID: "dep-1", Source: "/deploy/payments", Type: correlate.TypeDeploymentStarted,
		Time: time.Date(2025, 4, 2, 8, 0, 0, 0, time.UTC), DataContentType: "application/json",
		Data: []byte(`{"deployment_id":"d1","environment":"production","service":"payments","repository":"github.com/acme/payments",` +
			`"commit":"c0ffee1234567890abcdef1234567890abcdef12","run_url":"https://ci.acme.example/` + strings.Repeat("r", 1000) + `","ticket_keys":["CHG-BIG"],"deployer":{"login":"bot","type":"service"},"started_at":"2025-04-02T08:00:00Z"}`)}})
	_, err := kv.Merge(ctx, hot)
	var re *correlate.RefusedError
	if !errors.As(err, &re) {
		t.Fatalf("Merge of %d approvals into an 8 KiB entry: %v, want a RefusedError", len(hot), err)
	}
	_, err = kv.Merge(ctx, dep)
	var re2 *correlate.RefusedError
	if !errors.As(err, &re2) || re2.Facts[dep[0].ID] == nil {
		t.Fatalf("the deployment naming the full ticket: %v, want it refused", err)
	}
	msg := re2.Facts[dep[0].ID].Error()
	if !strings.Contains(msg, `"ticket:CHG-BIG"`) || !errors.Is(re2.Facts[dep[0].ID], correlate.ErrEntryTooLarge) {
		t.Errorf("refusal %q does not name the key", msg)
	}
	e, err := kv.Entry(ctx, correlate.TicketKey("CHG-BIG"))
	if err != nil {
		t.Fatal(err)
	}
	if len(e.Facts) == 0 || len(e.Facts)+len(re.Facts) != len(hot) {
		t.Fatalf("%d facts merged + %d refused, want %d", len(e.Facts), len(re.Facts), len(hot))
	}
	for _, f := range e.Facts {
		if re.Facts[f.ID] != nil {
			t.Fatalf("refused fact %s is in the entry", f.ID)
		}
	}
	for _, k := range dep[0].Keys {
		got, err := kv.Entry(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Facts) != 0 && k != correlate.TicketKey("CHG-BIG") {
			t.Fatalf("the refused deployment is in the entry of %s", k)
		}
	}
}
