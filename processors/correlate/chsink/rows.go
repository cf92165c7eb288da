package chsink

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/evidencepipeline/evidence/internal/store"
	"github.com/evidencepipeline/evidence/processors/correlate"
)

// Rows turns a record into its changes row and its deployments rows, all
// with the record's version, written at now.
func Rows(r correlate.Record, now time.Time) (store.ChangeRow, []store.DeploymentRow, error) {
	if r.ID == "" {
		return store.ChangeRow{}, nil, fmt.Errorf("record has no id")
	}
	canon, err := json.Marshal(r) // canonical: see correlate.Record
	if err != nil {
		return store.ChangeRow{}, nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	sum := sha256.Sum256(canon)
	return rows(r, canon, hex.EncodeToString(sum[:]), now)
}

// rows is Rows given the record's canonical JSON and its hash.
func rows(r correlate.Record, canon []byte, hash string, now time.Time) (store.ChangeRow, []store.DeploymentRow, error) {
	if r.ID == "" {
		return store.ChangeRow{}, nil, fmt.Errorf("record has no id")
	}
	events := EventCount(r)
	ver := version(ClassOf(r), events, hash)
	now = now.UTC().Truncate(time.Second)

	c := store.ChangeRow{
		ChangeID: r.ID, Repository: r.Repository, Commit: r.Commit,
		DirectPush: r.DirectPush, Unmatched: r.Unmatched,
		Record: string(canon), RecordHash: hash, EventCount: uint32(min(events, maxCount)),
		Version: ver, UpdatedAt: now,
	}
	for _, cm := range r.Commits {
		c.Commits = append(c.Commits, cm.SHA)
	}
	if pr := r.PullRequest; pr != nil {
		c.PRNumber, c.PRTitle = pr.Number, pr.Title
		c.Author, c.MergedBy = login(pr.Author), login(pr.MergedBy)
		c.MergedNs = nanos(pr.MergedAt)
	} else if len(r.Pushes) > 0 {
		// A direct push: the first push (by time) is when it reached the
		// default branch, and its pusher both wrote and "merged" it.
		p := r.Pushes[0]
		c.Author, c.MergedBy = login(p.Pusher), login(p.Pusher)
		c.MergedNs = nanos(p.At)
	}
	for _, t := range r.Tickets {
		c.TicketKeys = append(c.TicketKeys, t.Key)
	}

	deps := make([]store.DeploymentRow, 0, len(r.Deployments))
	for _, d := range r.Deployments {
		first, last := firstLast(d)
		if first != 0 && (c.FirstDeployedNs == 0 || first < c.FirstDeployedNs) {
			c.FirstDeployedNs = first
		}
		c.LastDeployedNs = max(c.LastDeployedNs, last)
		c.Environments = append(c.Environments, d.Environment)
		c.Services = append(c.Services, d.Service)

		dj, err := json.Marshal(d)
		if err != nil {
			return store.ChangeRow{}, nil, fmt.Errorf("record %s: deployment: %w", r.ID, err)
		}
		deps = append(deps, store.DeploymentRow{
			Environment: d.Environment, Service: d.Service, DeploymentKey: DeploymentKey(d), DeploymentID: d.DeploymentID,
			ChangeID: r.ID, Unmatched: r.Unmatched, MatchedBy: d.MatchedBy,
			Repository: d.Repository, Commit: d.Commit, Digest: d.Digest, Purl: d.Purl,
			RunID: d.RunID, RunURL: d.RunURL, Deployer: login(d.Deployer), Outcome: d.Outcome,
			StartedNs: nanos(d.StartedAt), FinishedNs: nanos(d.FinishedAt), TicketKeys: d.TicketKeys,
			Deployment: string(dj), RecordHash: hash, Version: ver, UpdatedAt: now,
		})
	}
	c.Environments = sortedSet(c.Environments)
	c.Services = sortedSet(c.Services)
	return c, deps, nil
}

// DeploymentKey identifies a deployment within its environment and service
// the way the correlator pairs its started and finished events: by its
// deployment id, else by the run that deployed (repository and run id),
// else it is one event alone.
func DeploymentKey(d correlate.Deployment) string {
	switch {
	case d.DeploymentID != "":
		return "id:" + d.DeploymentID
	case d.RunID != "":
		return "run:" + d.Repository + "#" + d.RunID
	case len(d.Events) > 0:
		return "event:" + d.Events[0].String()
	}
	// No event: not something the correlator derives; keyed by content so
	// it is at least stable.
	b, _ := json.Marshal(d)
	sum := sha256.Sum256(b)
	return "content:" + hex.EncodeToString(sum[:])
}

// firstLast is when a deployment began (its start, else its finish) and
// the latest time it has, in nanoseconds; 0 when unknown.
func firstLast(d correlate.Deployment) (first, last int64) {
	s, f := nanos(d.StartedAt), nanos(d.FinishedAt)
	first = s
	if first == 0 {
		first = f
	}
	return first, max(s, f)
}

func login(id *correlate.Identity) string {
	if id == nil {
		return ""
	}
	return id.Login
}

// nanos is t in Unix nanoseconds, 0 for the zero time, clamped to the
// range an int64 holds (years 1678 to 2262).
func nanos(t time.Time) int64 {
	switch {
	case t.IsZero():
		return 0
	case t.Year() < 1678:
		return minNanos
	case t.Year() > 2261:
		return maxNanos
	}
	return t.UnixNano()
}

const (
	minNanos = -1 << 63
	maxNanos = 1<<63 - 1
)

func sortedSet(ss []string) []string {
	slices.Sort(ss)
	return slices.Compact(ss)
}
