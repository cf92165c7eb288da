package correlate

// CDEvents (cdevents.dev, spec 0.4 and 0.5, and the 0.6 draft approval
// events): the CloudEvent's data is the CDEvent,
// {"context": {...}, "subject": {"id", "source", "content": {...}}}.
// A CDEvent gives a fact of a catalog kind only when what it states is
// enough to form that kind's correlation keys; it never invents a commit,
// a repository or a change number.

import (
	"net/url"
	"strings"
	"time"

	"github.com/evidencepipeline/evidence/internal/ce"
	"github.com/evidencepipeline/evidence/producers/cdevents"
)

// cdeventsMapping is the mapping of CDEvents event types (subject.predicate,
// any event version) to facts. Extract is nil for the types that give no
// fact; Why says why. A type absent from the table (a future CDEvents type)
// gives no fact either.
var cdeventsMapping = []struct {
	Name    string // subject.predicate
	Kind    Kind   // the kind of the fact, "" for none
	Extract func(*Extractor, *ce.Event, cdevents.EventType) (*Fact, error)
	Why     string
}{
	// Deployments: environment.id, the service (subject.id), the artifact
	// (artifactId, a purl); keyed by the purl (and by the digest an OCI
	// purl's version states), so they reach the change whose commit built
	// that artifact (matched_by artifact).
	{"service.deployed", KindDeployment, (*Extractor).cdDeployment, "deployment finished, outcome success"},
	{"service.upgraded", KindDeployment, (*Extractor).cdDeployment, "deployment finished, outcome success"},
	{"service.rolledback", KindDeployment, (*Extractor).cdDeployment, "deployment finished, outcome success: the artifact rolled back to is what runs"},

	// Tickets: keyed by subject.id, the ticket's id.
	{"ticket.created", KindTicketState, (*Extractor).cdTicket, "ticket.state, action created"},
	{"ticket.updated", KindTicketState, (*Extractor).cdTicket, "ticket.state, action updated: fields only, no status change (CDEvents states no status)"},
	{"ticket.closed", KindTicketState, (*Extractor).cdTicket, "ticket.state, action transitioned to status closed (reason: the resolution)"},

	// Stated, but not enough to form the keys of the catalog's kind.
	{"change.merged", "", nil, "no merge commit (content is the repository only): a change.merged fact is keyed by repository@merge commit"},
	{"change.reviewed", "", nil, "no reviewer, decision or head commit"},
	{"change.created", "", nil, "no head commit, author or change number in a repository"},
	{"change.updated", "", nil, "no head commit"},
	{"change.abandoned", "", nil, "no repository@number key"},
	{"artifact.packaged", "", nil, "no commit or repository (change {id, source} is not a commit): an artifact fact is keyed by the commit that built it"},
	{"artifact.published", "", nil, "no commit or repository"},
	{"artifact.signed", "", nil, "no commit or repository"},
	{"artifact.downloaded", "", nil, "not evidence of a change"},
	{"artifact.deleted", "", nil, "not evidence of a change"},
	{"build.finished", "", nil, "artifactId only: no commit, repository or run"},
	{"build.queued", "", nil, "no commit"},
	{"build.started", "", nil, "no commit"},
	{"pipelinerun.finished", "", nil, "pipelineName, uri and outcome: no repository or commit, so no run key"},
	{"pipelinerun.queued", "", nil, "no repository or commit"},
	{"pipelinerun.started", "", nil, "no repository or commit"},
	{"taskrun.finished", "", nil, "no repository or commit"},
	{"taskrun.started", "", nil, "no repository or commit"},
	{"testsuiterun.finished", "", nil, "outcome and environment: no repository or commit, so no test key"},
	{"testcaserun.finished", "", nil, "outcome and environment: no repository or commit"},
	{"testsuiterun.queued", "", nil, "not a result"},
	{"testsuiterun.started", "", nil, "not a result"},
	{"testcaserun.queued", "", nil, "not a result"},
	{"testcaserun.started", "", nil, "not a result"},
	{"testcaserun.skipped", "", nil, "not a result"},
	{"testoutput.published", "", nil, "no repository or commit"},
	{"service.published", "", nil, "not a deployment of an artifact"},
	{"service.removed", "", nil, "not a deployment of an artifact"},
	{"incident.detected", "", nil, "no catalog kind for incidents"},
	{"incident.reported", "", nil, "no catalog kind for incidents"},
	{"incident.resolved", "", nil, "no catalog kind for incidents"},
	{"environment.created", "", nil, "env: keys hold exceptions only"},
	{"environment.modified", "", nil, "env: keys hold exceptions only"},
	{"environment.deleted", "", nil, "env: keys hold exceptions only"},
	{"repository.created", "", nil, "repo: keys hold exceptions only"},
	{"repository.modified", "", nil, "repo: keys hold exceptions only"},
	{"repository.deleted", "", nil, "repo: keys hold exceptions only"},
	{"branch.created", "", nil, "no commit"},
	{"branch.deleted", "", nil, "no commit"},
	{"approval.created", "", nil, "draft (0.6.0-draft): approves a target URL, not a ticket key or a change"},
	{"approval.updated", "", nil, "draft (0.6.0-draft): approves a target URL, not a ticket key or a change"},
	{"approval.closed", "", nil, "draft (0.6.0-draft): approves a target URL, not a ticket key or a change"},
}

var cdeventsExtractors = func() map[string]func(*Extractor, *ce.Event, cdevents.EventType) (*Fact, error) {
	m := map[string]func(*Extractor, *ce.Event, cdevents.EventType) (*Fact, error){}
	for _, r := range cdeventsMapping {
		if r.Extract != nil {
			m[r.Name] = r.Extract
		}
	}
	return m
}()

// cdevent extracts the fact of a CDEvents event (cdevents.Is(e.Type)):
// none when its type is mapped to none.
func (x *Extractor) cdevent(e *ce.Event) ([]Fact, error) {
	t, ok := cdevents.ParseType(e.Type)
	if !ok {
		return nil, nil
	}
	fn := cdeventsExtractors[t.Name()]
	if fn == nil {
		return nil, nil
	}
	if e.DataBase64 || len(e.Data) == 0 {
		return nil, &ce.Error{Field: "data", Message: "required: the CDEvent, a JSON object {context, subject}"}
	}
	f, err := fn(x, e, t)
	if err != nil || f == nil {
		return nil, err
	}
	f.Event = EventRef{Source: e.Source, ID: e.ID}
	if f.Time.IsZero() {
		f.Time = e.Time
	}
	f.seal()
	return []Fact{*f}, nil
}

// cdEnvelope is a CDEvent with the content of its type.
type cdEnvelope[C any] struct {
	Context *struct {
		Timestamp string `json:"timestamp"`
	} `json:"context"`
	Subject *struct {
		ID      string `json:"id"`
		Source  string `json:"source"`
		Content *C     `json:"content"`
	} `json:"subject"`
}

// read decodes the CDEvent and checks its envelope: context.timestamp
// (the fact's time), subject.id and subject.content.
func (d *cdEnvelope[C]) read(e *ce.Event, c *check) (*C, string) {
	if err := decode(e, d); err != nil {
		c.err = err
		return nil, ""
	}
	if d.Context == nil {
		c.fail("context", "required field is missing")
	} else {
		c.time("context/timestamp", c.required("context/timestamp", d.Context.Timestamp))
	}
	if d.Subject == nil {
		c.fail("subject", "required field is missing")
		return nil, ""
	}
	id := c.required("subject/id", d.Subject.ID)
	if d.Subject.Content == nil {
		c.fail("subject/content", "required field is missing")
		return nil, id
	}
	return d.Subject.Content, id
}

// timestamp is context.timestamp, the time of the fact.
func (d *cdEnvelope[C]) timestamp(c *check) time.Time {
	if d.Context == nil {
		return time.Time{}
	}
	return c.time("context/timestamp", d.Context.Timestamp)
}

// ---- service.deployed, .upgraded, .rolledback ----

type cdServiceContent struct {
	Environment *struct {
		ID     string `json:"id"`
		Source string `json:"source"`
	} `json:"environment"`
	ArtifactID string `json:"artifactId"`
}

func (x *Extractor) cdDeployment(e *ce.Event, _ cdevents.EventType) (*Fact, error) {
	var d cdEnvelope[cdServiceContent]
	var c check
	content, service := d.read(e, &c)
	if c.err != nil {
		return nil, c.err
	}
	dp := &DeploymentFact{Phase: "finished", Outcome: "success", Service: service}
	if content.Environment == nil {
		c.fail("subject/content/environment", "required field is missing")
	} else {
		dp.Environment = c.required("subject/content/environment/id", content.Environment.ID)
	}
	dp.Purl = c.purl("subject/content/artifactId", content.ArtifactID)
	dp.Digest = ociDigest(dp.Purl)
	dp.FinishedAt = d.timestamp(&c)
	if c.err != nil {
		return nil, c.err
	}
	f := &Fact{Kind: KindDeployment, Time: dp.FinishedAt, Deployment: dp}
	target, _ := dp.target()
	f.Keys = []Key{EnvKey(dp.Environment), ServiceKey(dp.Service), deployKey(dp.Environment + "/" + dp.Service + "/" + target)}
	if dp.Digest != "" {
		f.Keys = append(f.Keys, ArtifactKey(dp.Digest))
	}
	if dp.Purl != "" {
		f.Keys = append(f.Keys, ArtifactKey(dp.Purl))
	}
	return f, nil
}

// ociDigest is the digest an OCI package URL states as its version
// (pkg:oci/name@sha256%3A<hex>), "" for any other purl.
func ociDigest(purl string) string {
	rest, ok := strings.CutPrefix(purl, "pkg:oci/")
	if !ok {
		return ""
	}
	rest, _, _ = strings.Cut(rest, "#")
	rest, _, _ = strings.Cut(rest, "?")
	i := strings.LastIndexByte(rest, '@')
	if i < 0 {
		return ""
	}
	v, err := url.PathUnescape(rest[i+1:])
	if err != nil || !digestRE.MatchString(v) {
		return ""
	}
	return v
}

// ---- ticket.created, .updated, .closed ----

type cdTicketContent struct {
	Summary    string `json:"summary"`
	TicketType string `json:"ticketType"`
	Creator    string `json:"creator"`
	UpdatedBy  string `json:"updatedBy"`
	URI        string `json:"uri"`
	Resolution string `json:"resolution"`
}

func (x *Extractor) cdTicket(e *ce.Event, t cdevents.EventType) (*Fact, error) {
	var d cdEnvelope[cdTicketContent]
	var c check
	content, id := d.read(e, &c)
	if c.err != nil {
		return nil, c.err
	}
	tf := &TicketFact{
		Key:     ticketKey(id),
		System:  "other",
		RawType: content.TicketType,
		Summary: content.Summary,
		URL:     content.URI,
	}
	if strings.ContainsAny(tf.Key, " \t\n") {
		c.fail("subject/id", "must be a ticket key (one token), got %q", id)
	}
	if content.Creator != "" {
		tf.RequestedBy = &Identity{Login: content.Creator}
	}
	if content.UpdatedBy != "" && t.Predicate != "created" {
		tf.By = &Identity{Login: content.UpdatedBy}
	}
	switch t.Predicate {
	case "created":
		tf.Action = "created"
	case "updated":
		tf.Action = "updated"
	case "closed":
		tf.Action, tf.Status, tf.Reason = "transitioned", "closed", content.Resolution
	}
	tm := d.timestamp(&c)
	if c.err != nil {
		return nil, c.err
	}
	return &Fact{Kind: KindTicketState, Time: tm, Ticket: tf, Keys: []Key{TicketKey(tf.Key)}}, nil
}
