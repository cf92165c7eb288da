package correlate

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/cdevents"
	"github.com/google/go-cmp/cmp"
)

const conformanceDir = "../../../shared/corpus/cdevents/spec-v0.5.1/conformance"

// conformanceEvents reads the CDEvents v0.5.1 conformance examples, each
// as the data of a CloudEvent of its context.type.
func conformanceEvents(t testing.TB) map[string]*ce.Event {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(conformanceDir, "*.json"))
	if len(paths) == 0 {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no CDEvents conformance examples in %s", conformanceDir)
		}
		t.Skipf("no CDEvents conformance examples in %s", conformanceDir)
	}
	out := map[string]*ce.Event{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var d struct {
			Context struct {
				ID, Source, Type string
			}
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out[filepath.Base(p)] = &ce.Event{ID: d.Context.ID, Source: d.Context.Source, Type: d.Context.Type, Time: ceTime, DataContentType: "application/json", Data: b}
	}
	return out
}

func TestCDEventsConformanceExamples(t *testing.T) {
	evs := conformanceEvents(t)
	withFacts := map[string]Kind{}
	for name, e := range evs {
		if !cdevents.Is(e.Type) {
			t.Errorf("%s: %q is not a CDEvents type", name, e.Type)
			continue
		}
		if err := cdevents.Validate(e.Type, e.Data); err != nil {
			t.Errorf("%s: not a valid CDEvent: %v", name, err)
		}
		fs, err := Extract(e)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		for _, f := range fs {
			if err := f.Verify(); err != nil {
				t.Errorf("%s: %v", name, err)
			}
			if f.Event != (EventRef{Source: e.Source, ID: e.ID}) || f.Time.IsZero() || f.Time.Equal(ceTime) {
				t.Errorf("%s: event %v, time %v: want the CloudEvent's ref and context.timestamp", name, f.Event, f.Time)
			}
			withFacts[strings.TrimSuffix(name, ".json")] = f.Kind
		}
	}
	want := map[string]Kind{
		"service_deployed": KindDeployment, "service_upgraded": KindDeployment, "service_rolledback": KindDeployment,
		"ticket_created": KindTicketState, "ticket_updated": KindTicketState, "ticket_closed": KindTicketState,
	}
	if diff := cmp.Diff(want, withFacts); diff != "" {
		t.Errorf("examples with facts (-want +got):\n%s", diff)
	}
}

// Every mapped name is a CDEvents type name, listed once.
func TestCDEventsMappingTable(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range cdeventsMapping {
		if seen[r.Name] {
			t.Errorf("%s listed twice", r.Name)
		}
		seen[r.Name] = true
		if (r.Extract == nil) != (r.Kind == "") || r.Why == "" {
			t.Errorf("%s: kind %q, extractor %v, why %q", r.Name, r.Kind, r.Extract != nil, r.Why)
		}
	}
	for _, name := range []string{"service.deployed", "pipelinerun.finished", "ticket.closed", "approval.closed", "artifact.published"} {
		if !seen[name] {
			t.Errorf("%s is not in the table", name)
		}
	}
}

const cdTS = "2025-03-03T17:05:00Z"

func cdEvent(id, typ, subjectID, content string) *ce.Event {
	data := `{"context": {"specversion": "0.5.0", "id": "` + id + `", "source": "/argocd", "type": "` + typ + `", "timestamp": "` + cdTS + `"},` +
		` "subject": {"id": "` + subjectID + `", "source": "/argocd", "content": ` + content + `}}`
	return &ce.Event{ID: id, Source: "/argocd", Type: typ, Time: ceTime, DataContentType: "application/json", Data: []byte(data)}
}

func TestCDEventsServiceDeployed(t *testing.T) {
	for _, typ := range []string{"dev.cdevents.service.deployed.0.3.0", "dev.cdevents.service.deployed.0.2.0", "dev.cdevents.service.rolledback.0.3.0"} {
		e := cdEvent("cd-1", typ, "payments", `{"environment": {"id": "production", "source": "/k8s/prod"}, "artifactId": "`+purl1+`"}`)
		fs, err := Extract(e)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		want := &Fact{
			Kind: KindDeployment,
			Keys: []Key{
				ArtifactKey(purl1), ArtifactKey(digest1),
				deployKey("production/payments/" + digest1), EnvKey("production"), ServiceKey("payments"),
			},
			Time:  at(cdTS),
			Event: EventRef{Source: "/argocd", ID: "cd-1"},
			Deployment: &DeploymentFact{
				Phase: "finished", Environment: "production", Service: "payments",
				Digest: digest1, Purl: purl1, FinishedAt: at(cdTS), Outcome: "success",
			},
		}
		want.seal()
		if len(fs) != 1 {
			t.Fatalf("%s: %d facts", typ, len(fs))
		}
		if diff := cmp.Diff(want, &fs[0]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", typ, diff)
		}
	}

	// A purl that is not OCI states no digest: keyed by the purl only.
	const npm = "pkg:npm/payments-ui@1.4.2"
	fs, err := Extract(cdEvent("cd-2", "dev.cdevents.service.upgraded.0.3.0", "payments-ui", `{"environment": {"id": "staging"}, "artifactId": "`+npm+`"}`))
	if err != nil || len(fs) != 1 {
		t.Fatalf("%v, %d facts", err, len(fs))
	}
	d := fs[0].Deployment
	if d.Digest != "" || d.Purl != npm || !slices.Contains(fs[0].Keys, ArtifactKey(npm)) || !slices.Contains(fs[0].Keys, deployKey("staging/payments-ui/"+npm)) {
		t.Errorf("fact %+v, deployment %+v", fs[0], d)
	}
}

func TestCDEventsTicket(t *testing.T) {
	content := `{"summary": "Rotate keys", "ticketType": "task", "creator": "alice", "uri": "https://jira.example/browse/PAY-7", "resolution": "completed", "updatedBy": "bob"}`
	fs, err := Extract(cdEvent("t-1", "dev.cdevents.ticket.closed.0.2.0", "pay-7", content))
	if err != nil || len(fs) != 1 {
		t.Fatalf("%v, %d facts", err, len(fs))
	}
	want := &Fact{
		Kind: KindTicketState, Keys: []Key{TicketKey("PAY-7")}, Time: at(cdTS), Event: EventRef{Source: "/argocd", ID: "t-1"},
		Ticket: &TicketFact{
			Key: "PAY-7", System: "other", Action: "transitioned", Status: "closed", RawType: "task", Summary: "Rotate keys",
			URL: "https://jira.example/browse/PAY-7", RequestedBy: &Identity{Login: "alice"}, By: &Identity{Login: "bob"}, Reason: "completed",
		},
	}
	want.seal()
	if diff := cmp.Diff(want, &fs[0]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// What a CDEvent states is not enough for these facts: no fact, no error.
func TestCDEventsNoFact(t *testing.T) {
	for _, e := range []*ce.Event{
		cdEvent("p-1", "dev.cdevents.pipelinerun.finished.0.3.0", "run-1", `{"pipelineName": "release", "uri": "https://ci.example/run/1", "outcome": "success"}`),
		cdEvent("p-2", "dev.cdevents.pipelinerun.finished.0.2.0", "run-1", `{"pipelineName": "release", "url": "https://ci.example/run/1", "outcome": "error"}`),
		cdEvent("a-1", "dev.cdevents.artifact.published.0.3.0", purl1, `{"user": "bot"}`),
		cdEvent("a-2", "dev.cdevents.artifact.packaged.0.3.0", purl1, `{"change": {"id": "42", "source": "github.com/acme/payments"}}`),
		cdEvent("b-1", "dev.cdevents.build.finished.0.3.0", "build-1", `{"artifactId": "`+purl1+`"}`),
		cdEvent("c-1", "dev.cdevents.change.merged.0.3.0", "42", `{"repository": {"id": "acme/payments", "source": "https://github.com"}}`),
		cdEvent("c-2", "dev.cdevents.change.reviewed.0.3.0", "42", `{"repository": {"id": "acme/payments"}}`),
		cdEvent("s-1", "dev.cdevents.testsuiterun.finished.0.3.0", "ts-1", `{"outcome": "failure", "environment": {"id": "ci"}}`),
		cdEvent("i-1", "dev.cdevents.incident.detected.0.3.0", "inc-1", `{"environment": {"id": "production"}}`),
		cdEvent("x-1", "dev.cdevents.service.exploded.0.1.0", "payments", `{}`),
	} {
		fs, err := Extract(e)
		if err != nil || len(fs) != 0 {
			t.Errorf("%s: %d facts, %v; want none", e.Type, len(fs), err)
		}
	}
}

func TestCDEventsMalformed(t *testing.T) {
	for _, tt := range []struct {
		e     *ce.Event
		field string
	}{
		{cdEvent("m-1", "dev.cdevents.service.deployed.0.3.0", "payments", `{"environment": {"id": 7}, "artifactId": "`+purl1+`"}`), "data/subject/content/environment/id"},
		{cdEvent("m-2", "dev.cdevents.service.deployed.0.3.0", "payments", `{"environment": "production"}`), "data/subject/content/environment"},
		{cdEvent("m-3", "dev.cdevents.service.deployed.0.3.0", "payments", `{"environment": {"source": "x"}}`), "data/subject/content/environment/id"},
		{cdEvent("m-4", "dev.cdevents.service.deployed.0.3.0", "payments", `{"artifactId": "`+purl1+`"}`), "data/subject/content/environment"},
		{cdEvent("m-5", "dev.cdevents.service.upgraded.0.3.0", "payments", `{"environment": {"id": "prod"}, "artifactId": "ghcr.io/acme/payments:1"}`), "data/subject/content/artifactId"},
		{cdEvent("m-6", "dev.cdevents.service.deployed.0.3.0", "", `{"environment": {"id": "prod"}}`), "data/subject/id"},
		{cdEvent("m-7", "dev.cdevents.service.deployed.0.3.0", "payments", `[]`), "data/subject/content"},
		{cdEvent("m-8", "dev.cdevents.ticket.created.0.2.0", "PAY-1", `{"summary": 3}`), "data/subject/content/summary"},
		{&ce.Event{ID: "m-9", Source: "/x", Type: "dev.cdevents.service.deployed.0.3.0", Data: []byte(`{"context": {"timestamp": "yesterday"}, "subject": {"id": "p", "content": {"environment": {"id": "prod"}}}}`)}, "data/context/timestamp"},
		{&ce.Event{ID: "m-10", Source: "/x", Type: "dev.cdevents.service.deployed.0.3.0", Data: []byte(`{"subject": {"id": "p", "content": {"environment": {"id": "prod"}}}}`)}, "data/context"},
		{&ce.Event{ID: "m-11", Source: "/x", Type: "dev.cdevents.ticket.updated.0.2.0", Data: []byte(`"ticket"`)}, "data"},
		{&ce.Event{ID: "m-12", Source: "/x", Type: "dev.cdevents.ticket.updated.0.2.0"}, "data"},
	} {
		fs, err := Extract(tt.e)
		var fe *ce.Error
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s %s: facts %d, error %v; want an error at %s", tt.e.ID, tt.e.Type, len(fs), err, tt.field)
		}
	}
}

// A merged change, an artifact built from its merge commit, and a CDEvents
// service.deployed of that artifact's purl: the deployment is the
// change's (matched_by artifact), in any order.
func TestCDEventsDeploymentLinksToChange(t *testing.T) {
	const npm = "pkg:npm/%40acme/payments@1.4.2"
	catalog := func(id, typ, data string) *ce.Event {
		return &ce.Event{ID: id, Source: "https://github.com/acme/payments", Type: typ, Time: ceTime, DataContentType: "application/json", Data: []byte(data)}
	}
	events := []*ce.Event{
		catalog("1", TypeChangeMerged, `{"repository": "`+repo+`", "change": {"number": 42}, "target_branch": "main", "head_commit": "`+head1+`", "merge_commit": "`+mergeC+`", "commits": ["`+head1+`"], "merged_at": "2025-03-03T16:30:00Z"}`),
		catalog("2", TypeArtifactBuilt, `{"digest": "`+digest1+`", "purl": "`+npm+`", "name": "payments", "repository": "`+repo+`", "commit": "`+mergeC+`", "run_id": "77", "built_at": "2025-03-03T16:36:40Z"}`),
		cdEvent("cd-1", "dev.cdevents.service.deployed.0.3.0", "payments", `{"environment": {"id": "production"}, "artifactId": "`+npm+`"}`),
	}
	var first []byte
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {2, 0, 1, 2}} {
		var evs []*ce.Event
		for _, i := range order {
			evs = append(evs, events[i])
		}
		rs := stateOf(t, evs).Records()
		r := only(t, rs)
		if r.ID != repo+"@"+mergeC || r.Unmatched {
			t.Fatalf("record %s, unmatched %v", r.ID, r.Unmatched)
		}
		if len(r.Deployments) != 1 {
			t.Fatalf("deployments %+v", r.Deployments)
		}
		d := r.Deployments[0]
		if d.Environment != "production" || d.Service != "payments" || d.Purl != npm ||
			!slices.Equal(d.MatchedBy, []string{"artifact"}) || !slices.Contains(d.Events, EventRef{Source: "/argocd", ID: "cd-1"}) {
			t.Errorf("deployment %+v", d)
		}
		b := encodeRecords(t, rs)
		if first == nil {
			first = b
		} else if string(b) != string(first) {
			t.Error("another order of the events gives other records")
		}
	}

	// Before the build, the CDEvents deployment is unmatched at once.
	rs := stateOf(t, []*ce.Event{events[0], events[2]}).Records()
	if len(rs) != 2 || !rs[1].Unmatched && !rs[0].Unmatched {
		t.Errorf("without the build: %d records, want the change and an unmatched deployment", len(rs))
	}
}

// FuzzExtractCDEvents feeds arbitrary data under CDEvents types, seeded
// with the conformance examples: Extract never panics, and fails only
// with an error naming a data field.
func FuzzExtractCDEvents(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(conformanceDir, "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var d struct{ Context struct{ Type string } }
		if json.Unmarshal(b, &d) == nil {
			f.Add(d.Context.Type, string(b))
		}
	}
	f.Add("dev.cdevents.service.deployed.0.3.0", `{"context": {"timestamp": "`+cdTS+`"}, "subject": {"id": "p", "content": {"environment": {"id": "prod"}, "artifactId": "`+purl1+`"}}}`)
	f.Add("dev.cdevents.ticket.closed.0.2.0", `{"context": {"timestamp": "`+cdTS+`"}, "subject": {"id": "PAY-1", "content": {"uri": "u", "resolution": "done"}}}`)
	f.Fuzz(func(t *testing.T, typ, data string) {
		if !cdevents.Is(typ) {
			typ = "dev.cdevents.service.deployed.0.3.0"
		}
		fs, err := Extract(&ce.Event{ID: "f", Source: "/f", Type: typ, Time: ceTime, Data: []byte(data)})
		if err != nil {
			fe, ok := err.(*ce.Error)
			if !ok || (fe.Field != "data" && !strings.HasPrefix(fe.Field, "data/")) {
				t.Fatalf("error %v does not name a data field", err)
			}
			return
		}
		s := NewState()
		for _, fact := range fs {
			if err := fact.Verify(); err != nil {
				t.Fatal(err)
			}
		}
		s.Add(fs...)
		for _, r := range s.Records() {
			if _, ok := s.Record(r.ID); !ok {
				t.Fatalf("Record(%q) not found", r.ID)
			}
		}
	})
}
