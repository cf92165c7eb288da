package correlate

// What pipelines report: pipelinerun.started and .finished,
// artifact.built, test.reported, scan.reported.

import (
	"fmt"
	"slices"

	"github.com/evidencepipeline/evidence/internal/ce"
)

// ---- pipelinerun.* ----

type runData struct {
	Repository string        `json:"repository"`
	Commit     string        `json:"commit"`
	Branch     string        `json:"branch"`
	Tag        string        `json:"tag"`
	RunID      string        `json:"run_id"`
	RunAttempt *int64        `json:"run_attempt"`
	RunURL     string        `json:"run_url"`
	Pipeline   string        `json:"pipeline"`
	System     string        `json:"system"`
	Actor      *identityJSON `json:"actor"`
	Trigger    string        `json:"trigger"`
	Change     *changeJSON   `json:"change"`
	StartedAt  string        `json:"started_at"`
	Outcome    string        `json:"outcome"`
	FinishedAt string        `json:"finished_at"`
}

func (x *Extractor) run(e *ce.Event) (*Fact, error) {
	var d runData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	r := &RunFact{
		Repository: c.repo("repository", d.Repository, true),
		Commit:     c.requiredSHA("commit", d.Commit),
		RunID:      c.required("run_id", d.RunID),
		Attempt:    1,
		Branch:     d.Branch,
		Tag:        d.Tag,
		URL:        d.RunURL,
		Pipeline:   d.Pipeline,
		System:     d.System,
		Actor:      c.identity("actor", d.Actor, false),
		Trigger:    d.Trigger,
		StartedAt:  c.time("started_at", d.StartedAt),
		FinishedAt: c.time("finished_at", d.FinishedAt),
	}
	jc, err := job(e)
	if err != nil {
		return nil, err
	}
	if jc != nil {
		jobPipeline(jc, &r.Repository, &r.System, &r.RunID, &r.Pipeline)
	}
	if d.RunAttempt != nil {
		if *d.RunAttempt < 1 {
			c.fail("run_attempt", "must be ≥ 1, got %d", *d.RunAttempt)
		}
		r.Attempt = int(*d.RunAttempt)
	}
	r.Change, _ = c.change("change", d.Change, false)
	f := &Fact{Kind: KindRun, Run: r}
	if e.Type == TypePipelineRunStarted {
		r.Phase = "started"
		f.Time = r.StartedAt
	} else {
		r.Phase = "finished"
		r.Outcome = c.oneOf("outcome", c.required("outcome", d.Outcome), "success", "failure", "cancelled", "error")
		f.Time = r.FinishedAt
	}
	if c.err != nil {
		return nil, c.err
	}
	f.Keys = []Key{CommitKey(r.Repository, r.Commit), RunKey(r.Repository, r.RunID), RepoKey(r.Repository)}
	if r.Change != 0 {
		f.Keys = append(f.Keys, ChangeKey(r.Repository, r.Change))
	}
	return f, nil
}

// ---- artifact.built ----

type artifactData struct {
	Digest         string        `json:"digest"`
	Name           string        `json:"name"`
	Purl           string        `json:"purl"`
	Tags           []string      `json:"tags"`
	Repository     string        `json:"repository"`
	Commit         string        `json:"commit"`
	RunID          string        `json:"run_id"`
	RunURL         string        `json:"run_url"`
	Pipeline       string        `json:"pipeline"`
	System         string        `json:"system"`
	Builder        *identityJSON `json:"builder"`
	BuiltAt        string        `json:"built_at"`
	AttestationURL string        `json:"attestation_url"`
}

func (x *Extractor) artifact(e *ce.Event) (*Fact, error) {
	var d artifactData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	a := &ArtifactFact{
		Digest:         c.digest("digest", c.required("digest", d.Digest)),
		Purl:           c.purl("purl", d.Purl),
		Name:           c.required("name", d.Name),
		Tags:           slices.Clone(d.Tags),
		Repository:     c.repo("repository", d.Repository, true),
		Commit:         c.requiredSHA("commit", d.Commit),
		RunID:          c.required("run_id", d.RunID),
		RunURL:         d.RunURL,
		Pipeline:       d.Pipeline,
		System:         d.System,
		Builder:        c.identity("builder", d.Builder, false),
		BuiltAt:        c.time("built_at", d.BuiltAt),
		AttestationURL: d.AttestationURL,
	}
	jc, err := job(e)
	if err != nil {
		return nil, err
	}
	if jc != nil {
		a.Builder = jobPipeline(jc, &a.Repository, &a.System, &a.RunID, &a.Pipeline)
	}
	if c.err != nil {
		return nil, c.err
	}
	slices.Sort(a.Tags)
	a.Tags = slices.Compact(a.Tags)
	f := &Fact{Kind: KindArtifact, Time: a.BuiltAt, Artifact: a, Keys: []Key{
		ArtifactKey(a.Digest), CommitKey(a.Repository, a.Commit), RunKey(a.Repository, a.RunID), RepoKey(a.Repository),
	}}
	if a.Purl != "" {
		f.Keys = append(f.Keys, ArtifactKey(a.Purl))
	}
	return f, nil
}

// ---- test.reported ----

type testData struct {
	Repository      string   `json:"repository"`
	Commit          string   `json:"commit"`
	RunID           string   `json:"run_id"`
	RunURL          string   `json:"run_url"`
	Pipeline        string   `json:"pipeline"`
	System          string   `json:"system"`
	Suite           string   `json:"suite"`
	Tests           *int64   `json:"tests"`
	Passed          *int64   `json:"passed"`
	Failed          *int64   `json:"failed"`
	Errors          *int64   `json:"errors"`
	Skipped         *int64   `json:"skipped"`
	Outcome         string   `json:"outcome"`
	DurationSeconds *float64 `json:"duration_seconds"`
	ReportFormat    string   `json:"report_format"`
	Failures        []struct {
		Name    string `json:"name"`
		Message string `json:"message"`
	} `json:"failures"`
	FinishedAt string `json:"finished_at"`
}

func (x *Extractor) test(e *ce.Event) (*Fact, error) {
	var d testData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	t := &TestFact{
		Repository:   c.repo("repository", d.Repository, true),
		Commit:       c.requiredSHA("commit", d.Commit),
		RunID:        d.RunID,
		RunURL:       d.RunURL,
		Pipeline:     d.Pipeline,
		System:       d.System,
		Suite:        c.required("suite", d.Suite),
		Outcome:      c.oneOf("outcome", c.required("outcome", d.Outcome), "passed", "failed"),
		Tests:        c.count("tests", d.Tests, true),
		Passed:       c.count("passed", d.Passed, true),
		Failed:       c.count("failed", d.Failed, true),
		Errors:       c.count("errors", d.Errors, false),
		Skipped:      c.count("skipped", d.Skipped, true),
		ReportFormat: d.ReportFormat,
		FinishedAt:   c.time("finished_at", d.FinishedAt),
	}
	if d.DurationSeconds != nil {
		if *d.DurationSeconds < 0 {
			c.fail("duration_seconds", "must be ≥ 0")
		}
		t.DurationSeconds = *d.DurationSeconds
	}
	for i, fl := range d.Failures {
		c.required(fmt.Sprintf("failures/%d/name", i), fl.Name)
		t.Failures = append(t.Failures, TestFailure{Name: fl.Name, Message: fl.Message})
	}
	if c.err != nil {
		return nil, c.err
	}
	f := &Fact{Kind: KindTest, Time: t.FinishedAt, Test: t, Keys: []Key{CommitKey(t.Repository, t.Commit), RepoKey(t.Repository)}}
	if t.RunID != "" {
		f.Keys = append(f.Keys, RunKey(t.Repository, t.RunID))
	}
	return f, nil
}

// ---- scan.reported ----

type scanData struct {
	Repository  string `json:"repository"`
	Commit      string `json:"commit"`
	RunID       string `json:"run_id"`
	RunURL      string `json:"run_url"`
	Pipeline    string `json:"pipeline"`
	System      string `json:"system"`
	Tool        string `json:"tool"`
	ToolVersion string `json:"tool_version"`
	Category    string `json:"category"`
	Findings    *struct {
		Critical *int64 `json:"critical"`
		High     *int64 `json:"high"`
		Medium   *int64 `json:"medium"`
		Low      *int64 `json:"low"`
		None     *int64 `json:"none"`
	} `json:"findings"`
	Outcome      string `json:"outcome"`
	ReportFormat string `json:"report_format"`
	ReportURL    string `json:"report_url"`
	Target       string `json:"target"`
	Digest       string `json:"digest"`
	FinishedAt   string `json:"finished_at"`
}

func (x *Extractor) scan(e *ce.Event) (*Fact, error) {
	var d scanData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	s := &ScanFact{
		Repository:   c.repo("repository", d.Repository, true),
		Commit:       c.requiredSHA("commit", d.Commit),
		RunID:        d.RunID,
		RunURL:       d.RunURL,
		Pipeline:     d.Pipeline,
		System:       d.System,
		Tool:         c.required("tool", d.Tool),
		ToolVersion:  d.ToolVersion,
		Category:     c.oneOf("category", c.required("category", d.Category), "sast", "dependency", "secrets", "container", "dast", "other"),
		Outcome:      c.oneOf("outcome", d.Outcome, "passed", "failed"),
		ReportFormat: d.ReportFormat,
		ReportURL:    d.ReportURL,
		Target:       d.Target,
		Digest:       c.digest("digest", d.Digest),
		FinishedAt:   c.time("finished_at", d.FinishedAt),
	}
	if fd := d.Findings; fd == nil {
		c.fail("findings", "required field is missing")
	} else {
		s.Findings = Findings{
			Critical: c.count("findings/critical", fd.Critical, true),
			High:     c.count("findings/high", fd.High, true),
			Medium:   c.count("findings/medium", fd.Medium, true),
			Low:      c.count("findings/low", fd.Low, true),
			None:     c.count("findings/none", fd.None, false),
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	f := &Fact{Kind: KindScan, Time: s.FinishedAt, Scan: s, Keys: []Key{CommitKey(s.Repository, s.Commit), RepoKey(s.Repository)}}
	if s.RunID != "" {
		f.Keys = append(f.Keys, RunKey(s.Repository, s.RunID))
	}
	if s.Digest != "" {
		f.Keys = append(f.Keys, ArtifactKey(s.Digest))
	}
	return f, nil
}
