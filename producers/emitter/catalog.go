package emitter

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"

	"github.com/evidencepipeline/evidence/producers/ci"
)

// Catalog event types the constructors below build (docs/events.md).
const (
	TypePipelineRunStarted  = "dev.evidencepipeline.pipelinerun.started.v1"
	TypePipelineRunFinished = "dev.evidencepipeline.pipelinerun.finished.v1"
	TypeArtifactBuilt       = "dev.evidencepipeline.artifact.built.v1"
	TypeTestReported        = "dev.evidencepipeline.test.reported.v1"
	TypeScanReported        = "dev.evidencepipeline.scan.reported.v1"
	TypeDeploymentStarted   = "dev.evidencepipeline.deployment.started.v1"
	TypeDeploymentFinished  = "dev.evidencepipeline.deployment.finished.v1"
	TypeAccessSnapshot      = "dev.evidencepipeline.access.snapshot.v1"
	TypeAccessReviewed      = "dev.evidencepipeline.access.reviewed.v1"
)

// Meta holds the CloudEvents attributes of an event that its data does not
// give. Only Source is required.
type Meta struct {
	// Source names the producer, a URI-reference
	// (https://github.com/acme/payments, urn:evidence:ci:jenkins:...).
	Source string
	// ID is the event id, unique per Source. Empty: derived by EventID
	// from the event's type and key facts when the data has a run id, so
	// that re-running the same step is stored once; random otherwise.
	ID string
	// Subject defaults per type: repository/commit/SHA for pipeline runs,
	// tests and scans, the digest for an artifact, the service for a
	// deployment.
	Subject string
	// Time is when the fact happened; zero means now.
	Time time.Time
	// RunAttempt is the attempt number of the run (GitHub Actions
	// GITHUB_RUN_ATTEMPT), keyed into the default id of types whose data
	// has no run_attempt field, so that a re-run attempt is stored anew.
	// 0 when the CI system has no attempts.
	RunAttempt int
}

// Identity is a person or machine account (the catalog's identity shape).
type Identity struct {
	Login string `json:"login"`
	ID    string `json:"id,omitempty"`
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	// Type is user, bot or service.
	Type string `json:"type,omitempty"`
}

// LoginIdentity returns the identity of an account known by its login
// only, as a CI system reports who triggered a run: type service for
// github-actions[bot] (the pipeline's own identity, as the GitHub webhook
// adapter reports it), bot for another login ending in [bot], user
// otherwise. A login that is an e-mail address (Azure Pipelines and
// Buildkite report the person so) is also its email, so that segregation
// of duties matches it with the person's identity in the VCS. An empty
// login gives nil.
func LoginIdentity(login string) *Identity {
	login = strings.TrimSpace(login)
	switch {
	case login == "":
		return nil
	case login == "github-actions[bot]":
		return &Identity{Login: login, Type: "service"}
	case strings.HasSuffix(login, "[bot]"):
		return &Identity{Login: login, Type: "bot"}
	}
	id := &Identity{Login: login, Type: "user"}
	if isEmail(login) {
		id.Email = login
	}
	return id
}

// isEmail reports whether s looks like one e-mail address: a local part,
// one @, and a domain with a dot, without spaces.
func isEmail(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	return ok && local != "" && strings.Contains(domain, ".") && !strings.ContainsAny(domain, "@") &&
		!strings.ContainsAny(s, " \t\n<>") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// PipelineIdentity returns the identity of a pipeline itself, the
// deploying identity of a deploy step in CI: login ci.PipelineLogin
// (SYSTEM:PIPELINE, e.g. github-actions:release), the pipeline's name as
// its name, type service. The person who triggered the run is not the
// deployer: it goes to Deployment.TriggeredBy. nil without a system.
func PipelineIdentity(system, pipeline string) *Identity {
	login := ci.PipelineLogin(system, pipeline)
	if login == "" {
		return nil
	}
	id := &Identity{Login: login, Type: "service"}
	if n := strings.TrimSpace(pipeline); n != "" && len(n) <= 512 {
		id.Name = n
	}
	return id
}

// Change is a pull or merge request (GitLab: the iid).
type Change struct {
	Number int    `json:"number"`
	URL    string `json:"url,omitempty"`
}

// PipelineRun is the data of pipelinerun.started and pipelinerun.finished.
// Outcome and FinishedAt belong to finished only.
type PipelineRun struct {
	Repository string    `json:"repository"`
	Commit     string    `json:"commit"`
	Branch     string    `json:"branch,omitempty"`
	Tag        string    `json:"tag,omitempty"`
	RunID      string    `json:"run_id"`
	RunAttempt int       `json:"run_attempt,omitempty"`
	RunURL     string    `json:"run_url,omitempty"`
	Pipeline   string    `json:"pipeline,omitempty"`
	System     string    `json:"system,omitempty"`
	Actor      *Identity `json:"actor,omitempty"`
	// Trigger is push, pull_request, tag, schedule, manual, api, pipeline
	// or other.
	Trigger   string    `json:"trigger,omitempty"`
	Change    *Change   `json:"change,omitempty"`
	StartedAt time.Time `json:"started_at,omitzero"`
	// Outcome is success, failure, cancelled or error.
	Outcome    string    `json:"outcome,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Artifact is the data of artifact.built.
type Artifact struct {
	Digest         string    `json:"digest"`
	Name           string    `json:"name"`
	Purl           string    `json:"purl,omitempty"`
	Tags           []string  `json:"tags,omitempty"`
	Repository     string    `json:"repository"`
	Commit         string    `json:"commit"`
	RunID          string    `json:"run_id"`
	RunURL         string    `json:"run_url,omitempty"`
	Pipeline       string    `json:"pipeline,omitempty"`
	System         string    `json:"system,omitempty"`
	Builder        *Identity `json:"builder,omitempty"`
	BuiltAt        time.Time `json:"built_at,omitzero"`
	AttestationURL string    `json:"attestation_url,omitempty"`
}

// TestReport is the data of test.reported. Outcome is passed only when
// Failed and Errors are 0.
type TestReport struct {
	Repository      string        `json:"repository"`
	Commit          string        `json:"commit"`
	RunID           string        `json:"run_id,omitempty"`
	RunURL          string        `json:"run_url,omitempty"`
	Pipeline        string        `json:"pipeline,omitempty"`
	System          string        `json:"system,omitempty"`
	Suite           string        `json:"suite"`
	Tests           int           `json:"tests"`
	Passed          int           `json:"passed"`
	Failed          int           `json:"failed"`
	Errors          int           `json:"errors"`
	Skipped         int           `json:"skipped"`
	Outcome         string        `json:"outcome"`
	DurationSeconds float64       `json:"duration_seconds,omitempty"`
	ReportFormat    string        `json:"report_format,omitempty"`
	Failures        []TestFailure `json:"failures,omitempty"`
	FinishedAt      time.Time     `json:"finished_at,omitzero"`
}

// TestFailure is one failed test of a TestReport.
type TestFailure struct {
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

// ScanReport is the data of scan.reported.
type ScanReport struct {
	Repository  string `json:"repository"`
	Commit      string `json:"commit"`
	RunID       string `json:"run_id,omitempty"`
	RunURL      string `json:"run_url,omitempty"`
	Pipeline    string `json:"pipeline,omitempty"`
	System      string `json:"system,omitempty"`
	Tool        string `json:"tool"`
	ToolVersion string `json:"tool_version,omitempty"`
	// Category is sast, dependency, secrets, container, dast or other.
	Category string   `json:"category"`
	Findings Findings `json:"findings"`
	// Outcome is passed or failed.
	Outcome      string    `json:"outcome,omitempty"`
	ReportFormat string    `json:"report_format,omitempty"`
	ReportURL    string    `json:"report_url,omitempty"`
	Target       string    `json:"target,omitempty"`
	Digest       string    `json:"digest,omitempty"`
	FinishedAt   time.Time `json:"finished_at,omitzero"`
}

// Findings counts open findings by severity.
type Findings struct {
	Critical int `json:"critical"`
	High     int `json:"high"`
	Medium   int `json:"medium"`
	Low      int `json:"low"`
	None     int `json:"none"`
}

// Deployment is the data of deployment.started and deployment.finished.
// Outcome and FinishedAt belong to finished only. Commit or Digest says
// what was deployed.
type Deployment struct {
	DeploymentID string `json:"deployment_id,omitempty"`
	Environment  string `json:"environment"`
	Service      string `json:"service"`
	Digest       string `json:"digest,omitempty"`
	Artifact     string `json:"artifact,omitempty"`
	Purl         string `json:"purl,omitempty"`
	Repository   string `json:"repository,omitempty"`
	Commit       string `json:"commit,omitempty"`
	RunID        string `json:"run_id,omitempty"`
	RunURL       string `json:"run_url,omitempty"`
	Pipeline     string `json:"pipeline,omitempty"`
	System       string `json:"system,omitempty"`
	// Deployer is who or what deployed: in CI the pipeline
	// (PipelineIdentity), outside CI the person.
	Deployer *Identity `json:"deployer,omitempty"`
	// TriggeredBy is who triggered the run that deployed, kept beside
	// the pipeline deployer (CM-3 compares it with the change's author
	// when the run was started on demand).
	TriggeredBy *Identity `json:"triggered_by,omitempty"`
	// Trigger is how the deploying job came to run: push, pull_request,
	// tag, schedule, manual, api, pipeline or other ("" when unknown).
	Trigger    string    `json:"trigger,omitempty"`
	TicketKeys []string  `json:"ticket_keys,omitempty"`
	Change     *Change   `json:"change,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	// Outcome is success, failure or cancelled.
	Outcome    string    `json:"outcome,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// PipelineRunStarted builds a pipelinerun.started event. Its default id
// is keyed on the run and the pipeline name.
func PipelineRunStarted(m Meta, d PipelineRun) (event.Event, error) {
	const t = TypePipelineRunStarted
	if err := required(t, "repository", d.Repository, "commit", d.Commit, "run_id", d.RunID); err != nil {
		return event.Event{}, err
	}
	if d.Outcome != "" || !d.FinishedAt.IsZero() {
		return event.Event{}, fmt.Errorf("emitter: %s: outcome and finished_at belong to %s", t, TypePipelineRunFinished)
	}
	return build(t, m, commitSubject(d.Repository, d.Commit), d.RunID,
		runKey(d.Repository, d.Commit, d.RunID, attempt(d.RunAttempt, m), d.Pipeline), d)
}

// PipelineRunFinished builds a pipelinerun.finished event. Its default id
// is keyed on the run, the pipeline name and the outcome.
func PipelineRunFinished(m Meta, d PipelineRun) (event.Event, error) {
	const t = TypePipelineRunFinished
	if err := required(t, "repository", d.Repository, "commit", d.Commit, "run_id", d.RunID); err != nil {
		return event.Event{}, err
	}
	if err := oneOf(t, "outcome", d.Outcome, "success", "failure", "cancelled", "error"); err != nil {
		return event.Event{}, err
	}
	return build(t, m, commitSubject(d.Repository, d.Commit), d.RunID,
		runKey(d.Repository, d.Commit, d.RunID, attempt(d.RunAttempt, m), d.Pipeline, d.Outcome), d)
}

// ArtifactBuilt builds an artifact.built event. Its default id is keyed
// on the run, the name and the digest.
func ArtifactBuilt(m Meta, d Artifact) (event.Event, error) {
	const t = TypeArtifactBuilt
	if err := required(t, "digest", d.Digest, "name", d.Name, "repository", d.Repository, "commit", d.Commit, "run_id", d.RunID); err != nil {
		return event.Event{}, err
	}
	return build(t, m, d.Digest, d.RunID, runKey(d.Repository, d.Commit, d.RunID, m.RunAttempt, d.Name, d.Digest), d)
}

// TestReported builds a test.reported event. Its default id is keyed on
// the run, the suite and the counts.
func TestReported(m Meta, d TestReport) (event.Event, error) {
	const t = TypeTestReported
	if err := required(t, "repository", d.Repository, "commit", d.Commit, "suite", d.Suite); err != nil {
		return event.Event{}, err
	}
	if err := oneOf(t, "outcome", d.Outcome, "passed", "failed"); err != nil {
		return event.Event{}, err
	}
	if d.Outcome == "passed" && d.Failed+d.Errors > 0 {
		return event.Event{}, fmt.Errorf("emitter: %s: outcome passed with %d failed and %d errors", t, d.Failed, d.Errors)
	}
	return build(t, m, commitSubject(d.Repository, d.Commit), d.RunID,
		runKey(d.Repository, d.Commit, d.RunID, m.RunAttempt, d.Suite, ints(d.Tests, d.Passed, d.Failed, d.Errors, d.Skipped), d.Outcome), d)
}

// ScanReported builds a scan.reported event. Its default id is keyed on
// the run, the tool, the category, what was scanned and the counts.
func ScanReported(m Meta, d ScanReport) (event.Event, error) {
	const t = TypeScanReported
	if err := required(t, "repository", d.Repository, "commit", d.Commit, "tool", d.Tool); err != nil {
		return event.Event{}, err
	}
	if err := oneOf(t, "category", d.Category, "sast", "dependency", "secrets", "container", "dast", "other"); err != nil {
		return event.Event{}, err
	}
	if d.Outcome != "" {
		if err := oneOf(t, "outcome", d.Outcome, "passed", "failed"); err != nil {
			return event.Event{}, err
		}
	}
	f := d.Findings
	return build(t, m, commitSubject(d.Repository, d.Commit), d.RunID,
		runKey(d.Repository, d.Commit, d.RunID, m.RunAttempt, d.Tool, d.Category, d.Target, d.Digest,
			ints(f.Critical, f.High, f.Medium, f.Low, f.None), d.Outcome), d)
}

// DeploymentStarted builds a deployment.started event. Its default id is
// keyed on the run, the environment, the service and what is deployed.
func DeploymentStarted(m Meta, d Deployment) (event.Event, error) {
	const t = TypeDeploymentStarted
	if err := deployment(t, d); err != nil {
		return event.Event{}, err
	}
	if d.Outcome != "" || !d.FinishedAt.IsZero() {
		return event.Event{}, fmt.Errorf("emitter: %s: outcome and finished_at belong to %s", t, TypeDeploymentFinished)
	}
	return build(t, m, d.Service, d.RunID,
		runKey(d.Repository, d.Commit, d.RunID, m.RunAttempt, d.Environment, d.Service, d.Digest, d.DeploymentID), d)
}

// DeploymentFinished builds a deployment.finished event. Its default id is
// keyed on the run, the environment, the service, what was deployed and
// the outcome.
func DeploymentFinished(m Meta, d Deployment) (event.Event, error) {
	const t = TypeDeploymentFinished
	if err := deployment(t, d); err != nil {
		return event.Event{}, err
	}
	if err := oneOf(t, "outcome", d.Outcome, "success", "failure", "cancelled"); err != nil {
		return event.Event{}, err
	}
	return build(t, m, d.Service, d.RunID,
		runKey(d.Repository, d.Commit, d.RunID, m.RunAttempt, d.Environment, d.Service, d.Digest, d.DeploymentID, d.Outcome), d)
}

func deployment(t string, d Deployment) error {
	if err := required(t, "environment", d.Environment, "service", d.Service); err != nil {
		return err
	}
	if d.Commit == "" && d.Digest == "" {
		return fmt.Errorf("emitter: %s: commit or digest is required (what was deployed)", t)
	}
	if d.Trigger != "" {
		return oneOf(t, "trigger", d.Trigger, "push", "pull_request", "tag", "schedule", "manual", "api", "pipeline", "other")
	}
	return nil
}

// EventID derives an event id from the event type and key facts: the
// lower-case hex SHA-256 of the type and each part, each written as its
// length in decimal, a colon and its bytes (so that no two lists of parts
// give the same input). The constructors use it with the parts
// repository, commit, run id, run attempt and the type's own key facts
// (see each constructor), so the same step of the same run attempt gives
// the same id, which evidenced stores once, while a re-run attempt or
// different facts give a new one.
func EventID(eventType string, parts ...string) string {
	h := sha256.New()
	for _, p := range append([]string{eventType}, parts...) {
		fmt.Fprintf(h, "%d:%s", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// attempt is the data's run attempt, or else the Meta's.
func attempt(data int, m Meta) int {
	if data > 0 {
		return data
	}
	return m.RunAttempt
}

// runKey lists the parts of an id: the run's, then the type's own.
func runKey(repository, commit, runID string, attempt int, own ...string) []string {
	a := ""
	if attempt > 0 {
		a = strconv.Itoa(attempt)
	}
	return append([]string{repository, commit, runID, a}, own...)
}

// ints joins counts for a key.
func ints(n ...int) string {
	s := make([]string, len(n))
	for i, v := range n {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func commitSubject(repository, commit string) string {
	return repository + "/commit/" + commit
}

// build makes the event; key is used for the default id when runID is set.
func build(t string, m Meta, subject, runID string, key []string, data any) (event.Event, error) {
	if strings.TrimSpace(m.Source) == "" {
		return event.Event{}, fmt.Errorf("emitter: %s: source is required", t)
	}
	e := event.New()
	e.SetType(t)
	e.SetSource(m.Source)
	switch {
	case m.ID != "":
		e.SetID(m.ID)
	case runID != "":
		e.SetID(EventID(t, key...))
	default:
		e.SetID(rand.Text())
	}
	if m.Subject != "" {
		subject = m.Subject
	}
	e.SetSubject(subject)
	at := m.Time
	if at.IsZero() {
		at = time.Now()
	}
	e.SetTime(at.UTC())
	if err := e.SetData(event.ApplicationJSON, data); err != nil {
		return event.Event{}, fmt.Errorf("emitter: %s: encode data: %w", t, err)
	}
	if err := e.Validate(); err != nil {
		return event.Event{}, fmt.Errorf("emitter: %s: %w", t, err)
	}
	return e, nil
}

// required checks name/value pairs for empty values.
func required(t string, pairs ...string) error {
	var missing []string
	for i := 0; i+1 < len(pairs); i += 2 {
		if strings.TrimSpace(pairs[i+1]) == "" {
			missing = append(missing, pairs[i])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("emitter: %s: %s required", t, strings.Join(missing, ", "))
}

func oneOf(t, field, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	if v == "" {
		return fmt.Errorf("emitter: %s: %s required (%s)", t, field, strings.Join(allowed, ", "))
	}
	return fmt.Errorf("emitter: %s: %s %q: want %s", t, field, v, strings.Join(allowed, ", "))
}
