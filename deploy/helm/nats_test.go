package helm

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// checkNATS checks the NATS chart's StatefulSet and the nats.conf it
// renders, read by the NATS server's own configuration parser with the
// environment the StatefulSet gives each node.
func checkNATS(t *testing.T, p profile, m *manifest) {
	sts := m.statefulSets["evidence-nats"]
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != p.natsNodes {
		t.Fatalf("NATS replicas %v, want %d", sts.Spec.Replicas, p.natsNodes)
	}
	pod := &sts.Spec.Template.Spec
	c := containerNamed(t, pod, "nats")
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("NATS volume claims %d, want 1 (the JetStream file store)", len(sts.Spec.VolumeClaimTemplates))
	}
	if got := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests[corev1.ResourceStorage]; got.Cmp(resource.MustParse(p.pvc)) != 0 {
		t.Errorf("JetStream volume %s, want %s", got.String(), p.pvc)
	}

	// The node's environment: its name, and the users' passwords from the
	// same Secret keys evidenced reads its own from.
	env := map[string]string{"POD_NAME": sts.Name + "-1"}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			s := e.ValueFrom.SecretKeyRef
			v, ok := testSecrets[s.Name+"/"+s.Key]
			if !ok {
				t.Fatalf("NATS variable %s from secret %s key %s, which evidenced's pods do not use", e.Name, s.Name, s.Key)
			}
			env[e.Name] = v
		case e.ValueFrom != nil:
			// POD_NAME, set above
		default:
			env[e.Name] = os.Expand(e.Value, func(k string) string { return "$(" + k + ")" })
			if e.Value == "$(POD_NAME)" {
				env[e.Name] = env["POD_NAME"]
			}
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}

	conf, ok := m.configMaps["evidence-nats-config"].Data["nats.conf"]
	if !ok {
		t.Fatalf("ConfigMap evidence-nats-config has no nats.conf: %v", keysOf(m.configMaps["evidence-nats-config"].Data))
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("the NATS server refuses the chart's nats.conf: %v\n%s", err, conf)
	}
	if opts.ServerName != sts.Name+"-1" {
		t.Errorf("server_name %q, want the pod's name %s-1", opts.ServerName, sts.Name)
	}
	if !opts.JetStream {
		t.Errorf("JetStream is not enabled")
	}
	var routes []string
	for _, r := range opts.Routes {
		routes = append(routes, r.Host)
	}
	var want []string
	for i := range p.natsNodes {
		want = append(want, fmt.Sprintf("%s-%d.%s:%d", sts.Name, i, sts.Spec.ServiceName, opts.Cluster.Port))
	}
	if !slices.Equal(routes, want) || opts.Cluster.Port == 0 {
		t.Errorf("cluster routes %v on port %d, want every node %v", routes, opts.Cluster.Port, want)
	}
	if opts.MaxPayload != 1<<20 {
		t.Errorf("max_payload %d, want 1MB (evidenced's largest event)", opts.MaxPayload)
	}

	// The users: passwords from the Secret (not from the file), the
	// producer limited to publishing events, the auditor to reading
	// checkpoints; all in one account with JetStream.
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	if got := keysOf(users); !slices.Equal(got, []string{"auditor", "evidenced", "producer"}) {
		t.Fatalf("NATS users %v, want auditor, evidenced, producer", got)
	}
	for name, u := range users {
		if want := testSecrets["evidence-nats/"+name]; u.Password != want {
			t.Errorf("user %s: the server reads password %q, the Secret holds %q", name, u.Password, want)
		}
		if u.Account == nil || u.Account.Name != "EVIDENCE" {
			t.Errorf("user %s is not in account EVIDENCE", name)
		}
	}
	if u := users["evidenced"]; u.Permissions != nil {
		t.Errorf("evidenced has limited permissions %+v: it needs the whole JetStream API", u.Permissions)
	}
	prod := users["producer"].Permissions
	if prod == nil || prod.Publish == nil || !slices.Equal(prod.Publish.Allow, []string{"evidence.events.>"}) ||
		prod.Subscribe == nil || !slices.Equal(prod.Subscribe.Allow, []string{"_INBOX.>"}) {
		t.Errorf("producer permissions %s: want publish evidence.events.> and subscribe _INBOX.> only", permString(prod))
	}
	aud := users["auditor"].Permissions
	if aud == nil || aud.Publish == nil || len(aud.Publish.Allow) != 3 || !slices.Contains(aud.Publish.Allow, "$JS.API.STREAM.INFO.EVIDENCE_CHECKPOINTS") {
		t.Errorf("auditor permissions %s: want the three EVIDENCE_CHECKPOINTS reads", permString(aud))
	}
}

// permString shows p's allowed subjects.
func permString(p *server.Permissions) string {
	if p == nil {
		return "none"
	}
	s := "publish "
	if p.Publish != nil {
		s += fmt.Sprint(p.Publish.Allow)
	}
	s += ", subscribe "
	if p.Subscribe != nil {
		s += fmt.Sprint(p.Subscribe.Allow)
	}
	return s
}
