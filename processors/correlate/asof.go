package correlate

// Records in stream terms: when the events behind a record arrived, and a
// record as it stood at an arrival cutoff.
//
// Each fact carries the arrival of its event in the stream (Fact.Arrived,
// the JetStream message timestamp; zero when unknown: stored by an
// earlier version). The evaluation decides a production deployment's
// verdict on the record derived from the facts that had arrived by the
// deployment's first arrival plus a delay: a cutoff in stream time, so a
// backfill, a replay or a lagging stage gives the record live delivery
// would have given. [ArrivalReader] is what it asks.

import (
	"context"
	"slices"
	"strings"
	"time"
)

// Arrivals are when the events behind a record arrived in the stream,
// each the earliest arrival of its facts; an event of unknown arrival is
// absent.
type Arrivals map[EventRef]time.Time

// First is the earliest known arrival of the events; zero when none is
// known.
func (a Arrivals) First(events []EventRef) time.Time {
	var out time.Time
	for _, e := range events {
		if t, ok := a[e]; ok && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

// After lists the events that arrived after cutoff, sorted.
func (a Arrivals) After(cutoff time.Time) []EventRef {
	var out []EventRef
	for e, t := range a {
		if t.After(cutoff) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, compareRefs)
	return out
}

// ArrivalReader derives records in stream terms. KVReader and
// StateReader implement it.
type ArrivalReader interface {
	// ChangeArrivals is Change, with the arrivals of the events behind
	// the record.
	ChangeArrivals(ctx context.Context, id string) (Record, Arrivals, bool, error)
	// DeploymentAsOf derives, from only the facts that arrived by cutoff
	// (a fact of unknown arrival counts as arrived), the record holding
	// deployment d of record id (d as Change gives it, found by its
	// events), and d as it stood then. ok is false when no fact of d had
	// arrived by cutoff, or id derives no record.
	DeploymentAsOf(ctx context.Context, id string, d Deployment, cutoff time.Time) (rec Record, dep Deployment, ok bool, err error)
}

// EventRefs are the events behind the record (every item's), sorted.
func (r Record) EventRefs() []EventRef {
	var out []EventRef
	add := func(evs []EventRef) { out = append(out, evs...) }
	if pr := r.PullRequest; pr != nil {
		add(pr.Events)
		for _, h := range pr.Heads {
			add(h.Events)
		}
		for _, rv := range pr.Reviews {
			add(rv.Events)
		}
	}
	for _, p := range r.Pushes {
		add(p.Events)
	}
	for _, t := range r.Tickets {
		for _, s := range t.History {
			add(s.Events)
		}
		for _, a := range t.Approvals {
			add(a.Events)
		}
		for _, a := range t.Rejections {
			add(a.Events)
		}
	}
	for _, x := range r.Runs {
		add(x.Events)
	}
	for _, x := range r.Artifacts {
		add(x.Events)
	}
	for _, x := range r.Tests {
		add(x.Events)
	}
	for _, x := range r.Scans {
		add(x.Events)
	}
	for _, x := range r.Deployments {
		add(x.Events)
	}
	for _, x := range r.Exceptions {
		add(x.Events)
	}
	return sortRefs(out)
}

// arrivalsOf are the arrivals of the record's events, from the facts of st.
func arrivalsOf(st *State, rec Record) Arrivals {
	evs := rec.EventRefs()
	out := Arrivals{}
	for _, f := range st.facts {
		if f.Arrived.IsZero() {
			continue
		}
		if _, ok := slices.BinarySearchFunc(evs, f.Event, compareRefs); !ok {
			continue
		}
		if t, ok := out[f.Event]; !ok || f.Arrived.Before(t) {
			out[f.Event] = f.Arrived
		}
	}
	return out
}

// deploymentFacts are st's deployment facts of d's events that arrived by
// cutoff.
func deploymentFacts(st *State, d Deployment, cutoff time.Time) []Fact {
	var out []Fact
	for _, f := range st.facts {
		if f.Kind == KindDeployment && !f.Arrived.After(cutoff) && slices.Contains(d.Events, f.Event) {
			out = append(out, *f)
		}
	}
	slices.SortFunc(out, func(a, b Fact) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// arrivedBy wraps an entry loader: only the facts that arrived by cutoff.
func arrivedBy(cutoff time.Time, load func(ctx context.Context, keys []Key) ([]Entry, error)) func(ctx context.Context, keys []Key) ([]Entry, error) {
	return func(ctx context.Context, keys []Key) ([]Entry, error) {
		es, err := load(ctx, keys)
		for i := range es {
			es[i].Facts = slices.DeleteFunc(slices.Clone(es[i].Facts), func(f Fact) bool { return f.Arrived.After(cutoff) })
		}
		return es, err
	}
}

// deploymentAsOf finds, in the view of the facts arrived by cutoff
// (loaded through l), the record holding the deployment whose facts
// (arrived by cutoff) are seeds; id is preferred when several do.
func deploymentAsOf(ctx context.Context, l *lazy, id string, seeds []Fact) (Record, Deployment, bool, error) {
	if len(seeds) == 0 {
		return Record{}, Deployment{}, false, nil
	}
	res, err := l.affected(ctx, seeds)
	if err != nil {
		return Record{}, Deployment{}, false, err
	}
	recs, _, err := l.records(ctx, res.ids)
	if err != nil {
		return Record{}, Deployment{}, false, err
	}
	var found []struct {
		r Record
		d Deployment
	}
	for _, r := range recs {
		for _, d := range r.Deployments {
			if slices.ContainsFunc(seeds, func(f Fact) bool { return slices.Contains(d.Events, f.Event) }) {
				found = append(found, struct {
					r Record
					d Deployment
				}{r, d})
				break
			}
		}
	}
	if len(found) == 0 {
		return Record{}, Deployment{}, false, nil
	}
	for _, f := range found {
		if f.r.ID == id {
			return f.r, f.d, true, nil
		}
	}
	return found[0].r, found[0].d, true, nil // recs are sorted by ID
}

// ChangeArrivals implements ArrivalReader.
func (r KVReader) ChangeArrivals(ctx context.Context, id string) (Record, Arrivals, bool, error) {
	l := r.KV.lazy()
	rec, ok, err := l.record(ctx, id)
	if err != nil || !ok {
		return Record{}, nil, false, err
	}
	return rec, arrivalsOf(l.st, rec), true, nil
}

// DeploymentAsOf implements ArrivalReader.
func (r KVReader) DeploymentAsOf(ctx context.Context, id string, d Deployment, cutoff time.Time) (Record, Deployment, bool, error) {
	l := r.KV.lazy()
	if _, ok, err := l.record(ctx, id); err != nil || !ok {
		return Record{}, Deployment{}, false, err
	}
	return deploymentAsOf(ctx, newLazy(arrivedBy(cutoff, r.KV.entries)), id, deploymentFacts(l.st, d, cutoff))
}

// ChangeArrivals implements ArrivalReader.
func (r StateReader) ChangeArrivals(_ context.Context, id string) (Record, Arrivals, bool, error) {
	rec, ok := r.State.Record(id)
	if !ok {
		return Record{}, nil, false, nil
	}
	return rec, arrivalsOf(r.State, rec), true, nil
}

// DeploymentAsOf implements ArrivalReader.
func (r StateReader) DeploymentAsOf(ctx context.Context, id string, d Deployment, cutoff time.Time) (Record, Deployment, bool, error) {
	if _, ok := r.State.Record(id); !ok {
		return Record{}, Deployment{}, false, nil
	}
	load := func(_ context.Context, keys []Key) ([]Entry, error) {
		out := make([]Entry, len(keys))
		for i, k := range keys {
			out[i] = r.State.Entry(k)
		}
		return out, nil
	}
	return deploymentAsOf(ctx, newLazy(arrivedBy(cutoff, load)), id, deploymentFacts(r.State, d, cutoff))
}

var (
	_ ArrivalReader = KVReader{}
	_ ArrivalReader = StateReader{}
)
