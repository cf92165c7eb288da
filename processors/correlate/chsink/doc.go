// Package chsink writes change records to ClickHouse: the changes table
// (one row per version of a record) and the deployments table (one row per
// version of each deployment, under the change it belongs to), both
// ReplacingMergeTree(version) (schemas/clickhouse/0002_changes.sql). The
// correlation stage gives it the records a batch of events changed
// ([Sink.Put]) and the ids of records that no longer exist
// ([Sink.Retire]).
//
// # Durability
//
// Put does not buffer: it writes its records as one INSERT into changes and
// one into deployments, and returns once ClickHouse has acknowledged both
// (the same guarantee as the archive's batches). The stage acknowledges its
// events to JetStream only after Put returns nil. When Put fails, some rows
// may be stored and others not; the stage retries the whole Put, which is
// harmless: a version written twice is the same row twice, and the table
// keeps one.
//
// # Versions: the newest evidence wins
//
// Each row carries a version derived from the record alone, never from a
// clock ([Version]):
//
//	version = class << 62 | events << 32 | first 4 bytes of the record hash
//
// events is the number of distinct CloudEvents behind the record
// ([EventCount]). The correlator derives a record from a set of facts that
// only grows (one fact per event, every fact's event listed in the
// record), so a version derived from more evidence has more events and
// outranks one derived from less, whatever order the two were written in,
// whichever replica wrote them and whatever their clocks say. Two
// replicas that derived the same record write the same version; two
// versions derived from as many events (two replicas that each saw
// evidence the other had not) are ordered by their hash, so every server
// keeps the same one until a version with both arrives. A writer-side
// clock would let an old version written late (a retry, a slow replica)
// win; the events' own times would let a late-arriving old event (a
// backfilled approval) lose.
//
// class is what the record is: 0 an unmatched deployment's, 1 a direct
// push's, 2 a merged pull request's. Evidence only moves a deployment up
// (from an unmatched record to the change that deployed it, from a direct
// push to the pull request that turned out to merge it), and a push's id
// becomes a pull request's record when a merge with that merge commit
// arrives (a GitHub merge is also a push). A deployment row's version is
// the version of the record it was written with, so the deployments table
// shows each deployment under its best-known change whatever the number of
// events of either record.
//
// # Retired records
//
// Records disappear: an unmatched deployment's once the evidence that
// links it arrives, a direct push's once a merge names its head. The stage
// knows which ids it no longer derives and calls [Sink.Retire]: the newest
// row of each is written again with retired = 1 and the version
// class << 62 | (2^62-1), above every version of its class ([Tombstone]). So
// the record stays in the table with its last content (auditors see it
// was unmatched, and until when: updated_at), readers that count changes
// skip it (WHERE retired = 0), and a late write of an old version cannot
// revive it. A direct push's id that later becomes a pull request's record
// is outranked by it (class 2). A merged pull request's record never
// disappears; Retire refuses to hide one and logs it.
//
// The deployments of a retired record need no row of their own: the
// record that now holds them writes them with a version of a higher class.
//
// # Known limits
//
// The first three come from the correlator's derivation, which is not
// monotone in these corner cases; the versions above assume it is.
//
//   - An unmatched record with several deployments of the same target, of
//     which only some are linked later (one names the commit, another only
//     a digest no known build produced), keeps its id with fewer events:
//     its new version ranks below the previous one, which stays newest in
//     changes (the linked deployment's row does move to its change).
//   - A direct push retired because a merge names its head: a deployment of
//     one of its other pushed commits, which the merge does not list,
//     becomes unmatched again; its deployments row stays under the retired
//     push (class 1 above 0).
//   - A deployment that names one change's commit and deploys another
//     change's build (a rollback run on main's head) is the build's
//     change's. When it arrives before that build or before the merge of
//     the build's commit, it is first the named commit's change's and
//     moves when they arrive: that record loses it, its new version may
//     rank below the previous one, which then stays newest in changes,
//     and the deployment's row stays under it unless the build's change
//     has the higher version. In the order things happen (a build, then
//     its deployments) it is never the other change's.
//     processors/correlate TestRollback.
//   - A deployment of a commit two changes hold (a head of two pull
//     requests) is in both records but has one deployments row, under the
//     one with the higher version.
package chsink
