package correlate

// Deployments and control exceptions: deployment.started and .finished,
// exception.requested and .granted.

import (
	"github.com/evidencepipeline/evidence/internal/ce"
)

// ---- deployment.* ----

type deploymentData struct {
	DeploymentID string        `json:"deployment_id"`
	Environment  string        `json:"environment"`
	Service      string        `json:"service"`
	Digest       string        `json:"digest"`
	Artifact     string        `json:"artifact"`
	Purl         string        `json:"purl"`
	Repository   string        `json:"repository"`
	Commit       string        `json:"commit"`
	RunID        string        `json:"run_id"`
	RunURL       string        `json:"run_url"`
	Pipeline     string        `json:"pipeline"`
	System       string        `json:"system"`
	Deployer     *identityJSON `json:"deployer"`
	TriggeredBy  *identityJSON `json:"triggered_by"`
	Trigger      string        `json:"trigger"`
	TicketKeys   []string      `json:"ticket_keys"`
	Change       *changeJSON   `json:"change"`
	StartedAt    string        `json:"started_at"`
	Outcome      string        `json:"outcome"`
	FinishedAt   string        `json:"finished_at"`
}

func (x *Extractor) deployment(e *ce.Event) (*Fact, error) {
	var d deploymentData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	dp := &DeploymentFact{
		DeploymentID: d.DeploymentID,
		Environment:  c.required("environment", d.Environment),
		Service:      c.required("service", d.Service),
		Digest:       c.digest("digest", d.Digest),
		Artifact:     d.Artifact,
		Purl:         c.purl("purl", d.Purl),
		Repository:   c.repo("repository", d.Repository, false),
		Commit:       c.sha("commit", d.Commit),
		RunID:        d.RunID,
		RunURL:       d.RunURL,
		Pipeline:     d.Pipeline,
		System:       d.System,
		Deployer:     c.identity("deployer", d.Deployer, false),
		TriggeredBy:  c.identity("triggered_by", d.TriggeredBy, false),
		Trigger:      d.Trigger,
		TicketKeys:   c.ticketKeys("ticket_keys", d.TicketKeys),
		StartedAt:    c.time("started_at", d.StartedAt),
		FinishedAt:   c.time("finished_at", d.FinishedAt),
	}
	if len(dp.TicketKeys) == 0 {
		dp.TicketKeys = nil
	}
	jc, err := job(e)
	if err != nil {
		return nil, err
	}
	if jc != nil {
		dp.Deployer = jobPipeline(jc, &dp.Repository, &dp.System, &dp.RunID, &dp.Pipeline)
		if dp.TriggeredBy == nil && jc.Trigger() != "" {
			dp.TriggeredBy = &Identity{Login: jc.Trigger(), Type: "user"}
		}
	}
	dp.Change, _ = c.change("change", d.Change, false)
	f := &Fact{Kind: KindDeployment, Deployment: dp}
	if e.Type == TypeDeploymentStarted {
		dp.Phase = "started"
		f.Time = dp.StartedAt
	} else {
		dp.Phase = "finished"
		dp.Outcome = c.oneOf("outcome", c.required("outcome", d.Outcome), "success", "failure", "cancelled")
		f.Time = dp.FinishedAt
	}
	if c.err != nil {
		return nil, c.err
	}
	f.Keys = []Key{EnvKey(dp.Environment), ServiceKey(dp.Service)}
	target, _ := dp.target()
	f.Keys = append(f.Keys, deployKey(dp.Environment+"/"+dp.Service+"/"+target))
	if k := dp.pairKey(); k != "" {
		f.Keys = append(f.Keys, k)
	}
	if dp.Digest != "" {
		f.Keys = append(f.Keys, ArtifactKey(dp.Digest))
	}
	if dp.Purl != "" {
		f.Keys = append(f.Keys, ArtifactKey(dp.Purl))
	}
	if dp.Repository != "" {
		f.Keys = append(f.Keys, RepoKey(dp.Repository))
		if dp.Commit != "" {
			f.Keys = append(f.Keys, CommitKey(dp.Repository, dp.Commit))
		}
		if dp.RunID != "" {
			f.Keys = append(f.Keys, RunKey(dp.Repository, dp.RunID))
		}
		if dp.Change != 0 {
			f.Keys = append(f.Keys, ChangeKey(dp.Repository, dp.Change))
		}
	}
	for _, k := range dp.TicketKeys {
		f.Keys = append(f.Keys, TicketKey(k))
	}
	return f, nil
}

// ---- exception.* ----

type exceptionData struct {
	ID      string `json:"id"`
	Control string `json:"control"`
	Scope   *struct {
		Repository  string      `json:"repository"`
		Service     string      `json:"service"`
		Environment string      `json:"environment"`
		Change      *changeJSON `json:"change"`
		Commit      string      `json:"commit"`
		TicketKey   string      `json:"ticket_key"`
	} `json:"scope"`
	Reason      string        `json:"reason"`
	RequestedBy *identityJSON `json:"requested_by"`
	RequestedAt string        `json:"requested_at"`
	TicketKey   string        `json:"ticket_key"`
	Approver    *identityJSON `json:"approver"`
	GrantedAt   string        `json:"granted_at"`
	ExpiresAt   string        `json:"expires_at"`
}

func (x *Extractor) exception(e *ce.Event) (*Fact, error) {
	var d exceptionData
	if err := decode(e, &d); err != nil {
		return nil, err
	}
	var c check
	granted := e.Type == TypeExceptionGranted
	ex := &ExceptionFact{
		ID:          c.required("id", d.ID),
		Control:     c.required("control", d.Control),
		Reason:      d.Reason,
		RequestedBy: c.identity("requested_by", d.RequestedBy, !granted),
		RequestedAt: c.time("requested_at", d.RequestedAt),
		TicketKey:   ticketKey(d.TicketKey),
		Approver:    c.identity("approver", d.Approver, granted),
		ExpiresAt:   c.time("expires_at", d.ExpiresAt),
	}
	f := &Fact{Kind: KindException, Exception: ex}
	if granted {
		ex.Phase = "granted"
		ex.GrantedAt = c.requiredTime("granted_at", d.GrantedAt)
		c.required("expires_at", d.ExpiresAt)
		f.Time = ex.GrantedAt
	} else {
		ex.Phase = "requested"
		c.required("reason", d.Reason)
		f.Time = ex.RequestedAt
	}
	if s := d.Scope; s == nil {
		c.fail("scope", "required field is missing")
	} else {
		ex.Scope = ExceptionScope{
			Repository:  c.repo("scope/repository", s.Repository, false),
			Service:     s.Service,
			Environment: s.Environment,
			Commit:      c.sha("scope/commit", s.Commit),
			TicketKey:   ticketKey(s.TicketKey),
		}
		ex.Scope.Change, _ = c.change("scope/change", s.Change, false)
		if ex.Scope.Change != 0 && ex.Scope.Repository == "" {
			c.fail("scope/repository", "required when scope.change is given")
		}
	}
	if c.err != nil {
		return nil, c.err
	}
	f.Keys = []Key{ExceptionKey(ex.ID)}
	if k := scopeKey(ex.Scope); k != "" {
		f.Keys = append(f.Keys, k)
	}
	return f, nil
}

// scopeKey is the one key an exception is filed under: the most selective
// field of its scope. A scope covers a record only when every field it
// gives matches, and the record's walk visits the key of each matching
// field, so one key finds every record the exception can cover, while a
// broad key (a repository, a service) holds only the exceptions that are
// that broad; otherwise each record would read every exception of its
// repository. A scope that names nothing matchable (a commit without its
// repository) is filed under no scope key and covers no record.
func scopeKey(s ExceptionScope) Key {
	switch {
	case s.Repository != "" && s.Change != 0:
		return ChangeKey(s.Repository, s.Change)
	case s.Repository != "" && s.Commit != "":
		return CommitKey(s.Repository, s.Commit)
	case s.TicketKey != "":
		return TicketKey(s.TicketKey)
	case s.Service != "":
		return ServiceKey(s.Service)
	case s.Environment != "":
		return EnvKey(s.Environment)
	case s.Repository != "":
		return RepoKey(s.Repository)
	}
	return ""
}
