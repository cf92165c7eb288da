// Package correlate turns events into facts, and facts into change records,
// whatever order the events arrive in. Its core (facts, State, derivation)
// is pure: no NATS, no ClickHouse, no clock. Around it, [KVState] keeps the
// facts in a NATS KV bucket, [Stage] consumes the event stream and sends
// changed records to a [Sink] (package chsink writes them to ClickHouse),
// and [KVReader] derives records live for the API.
//
// # Facts
//
// [Extract] reads one CloudEvent of the catalog (docs/events.md) and gives
// its fact: a [Kind] (change.opened, change.head, change.merged,
// change.closed, review, ticket.state, ticket.approval, run, artifact,
// test, scan, deployment, exception, push), the correlation keys it is
// about, its typed assertion (author, reviewer and decision on a head
// commit, merge commit and method, ticket type, status and approver, test
// counts, findings by severity, deployer and outcome, ...), its time and
// the event behind it ([EventRef]: source and id). A fact's time is the
// data's own *_at when it has one (approved_at, merged_at, finished_at,
// ...), else the CloudEvent's time; never the time it arrived, so
// "approved before deployed" is judged on when things happened. Ticket keys
// are also looked for in change titles, branch names and pushed commit
// messages ([Extractor.Tickets], the project's ticketkeys pattern by
// default). A type outside the catalog and CDEvents gives no fact; data
// that cannot be read is a *ce.Error naming the field ("data/change/number").
//
// # CDEvents
//
// A CDEvents event (0.4, 0.5; the CloudEvent's data is the CDEvent
// {context, subject{id, source, content}}) gives a fact of a catalog kind
// when what it states forms that kind's keys; the table in cdevents.go maps
// every type and says why the others give none. service.deployed,
// .upgraded and .rolledback give a finished, successful deployment of
// subject.id to content.environment.id, keyed by the artifactId purl (and
// the digest an OCI purl states), so it joins the change whose commit built
// that artifact (matched_by artifact). ticket.created, .updated and .closed
// give ticket.state facts keyed by subject.id. Changes, artifacts, builds,
// pipeline and task runs and test runs state no commit (nor repository):
// they give no fact, as a commit is never guessed. The fact's time is
// context.timestamp, its event the CloudEvent's source and id.
//
// A fact's ID is the SHA-256 of its canonical JSON, so the same event seen
// twice is one fact, and a fact read back from storage can be verified
// ([Fact.Verify]).
//
// # Keys
//
// See [Key]: commit:<repo>@<sha>, change:<repo>#<n>, ticket:<KEY>,
// run:<repo>#<run_id>, artifact:sha256:<hex> or artifact:pkg:..., and
// exception, deployment-pairing and deployment-target keys; env:, service:
// and repo: label facts for queries and hold only exceptions. (A run key
// uses '#' rather than '/' before the run id: run ids such as Jenkins'
// payments/main/123 contain '/', and so do repositories.)
//
// # State and derivation
//
// A [State] is a set of facts filed under their keys. [State.Add] and
// [State.Merge] are set union: commutative, associative, idempotent.
// Records are not stored in it: [State.Records] and [State.Record] derive
// them from the set, as a pure function of it. Derivation folds facts in
// (time, fact ID) order, never in arrival order, sorts every list it
// outputs, and reads no clock, so the same set of facts (the same events,
// in any order, with any duplicates) gives byte-identical records:
// json.Marshal of a [Record] is its canonical form. The property test
// checks exactly this over random histories, permutations and
// duplications.
//
// A change is one merged commit of one repository. Its record is derived
// by walking keys from that commit:
//
//  1. The root is a change.merged whose merge commit it is (record ID
//     <repo>@<merge commit>), or a direct push (below).
//  2. The pull request's facts (change key): opened, updated, merged,
//     closed, reviews. Its commit set is the merge commit and every commit
//     those facts name: heads over time, the heads reviews were given on,
//     the final head, the merge's commits list (the base commit is the
//     target branch's and is left out). A squash or rebase merge commit is
//     thereby linked to the head commits it came from, so a build or test
//     on a head is found; each keeps the commit it ran on, and Commits
//     lists every commit with its roles.
//  3. Runs, artifacts, tests and scans filed under any commit of the set,
//     and the runs that built its artifacts.
//  4. Deployments of a commit of the set (matched_by commit) or of an
//     artifact built from one (matched_by artifact); the started and
//     finished events of one deployment are paired by deployment_id, else
//     by environment, service and run. What a deployment deployed is its
//     artifact: one naming a commit of the set and an artifact whose
//     build is known from a commit outside it is not the set's (a
//     rollback run on the branch's head names that head and deploys an
//     earlier build; it is the earlier build's change's deployment).
//  5. Tickets: the pull request's ticket_keys, keys in its title and
//     branch, keys in a direct push's commit messages, tickets whose links
//     name the pull request or a commit of the set, and the ticket_keys of
//     its deployments, each with where it was found (found_in). A ticket
//     brings its type, status history, approvals and rejections.
//  6. Exceptions filed under any of these keys (or the services and
//     environments deployed, or the repository) whose whole scope matches.
//
// Links are transitive in this direction only: a deployment of a digest
// reaches the commit that built it, the pull request that merged that
// commit and the ticket the pull request names. A ticket does not lead to
// the other changes it covers, and an environment or service never links
// changes.
//
// # Rules
//
// Stale approvals. A review is stale when the head commit it was given on
// is not the pull request's final head (the merge's head_commit): a push
// came after it. A review is dismissed when a later dismissal names it by
// review_id, or, without one, withdraws the reviewer's approvals made
// before it (GitLab unapproval). Both are flags on the review; whether it
// counts (CM-2) is the controls' decision.
//
// Direct pushes. The adapters keep pushes as raw webhook.received events
// (GitHub push, GitLab Push Hook). A push is to the default branch when its
// ref is refs/heads/<default branch>, the default branch being the one the
// payload names (repository.default_branch, project.default_branch);
// pushes to other branches, tag pushes and branch deletions give no fact.
// A push to the default branch is a change of its own, with ID
// <repo>@<after>, pull_request null and direct_push true, unless a
// change.merged of that repository names its after commit (as merge
// commit, final head or one of its commits): that push is the merge of a
// pull request, whose record it already is. A merge can arrive after its
// push; the direct-push record then disappears, as an unmatched
// deployment's does. Known limit: a push whose head is a pull request's
// merge but which carries other commits too is not flagged.
//
// Unmatched deployments. A deployment that reaches no change (its artifact
// was built from no record's commit, or, when no build of it is known, its
// commit is in no record's commit set) is a record
// of its own at once, unmatched:<environment>/<service>/<target>, target
// being its digest, else its purl, else <repo>@<commit>, else its commit,
// so CM-8 can fail it immediately. When the evidence that links it arrives
// (the artifact's build, the merge of its commit), it is derived into the
// change instead and the unmatched record is gone. A deployment's claims
// (change number, ticket_keys) are kept but never match it to a change:
// only provenance (commit, artifact) does.
//
// Disagreeing facts. When facts disagree on a field (a title edited, a
// ticket re-typed), the latest by fact time (then fact ID) gives it; every
// fact's event stays listed.
//
// # KV layout
//
// One NATS KV entry per link key (commit, change, ticket, run, artifact,
// exception, deployment, deploy; and env, service, repo for exceptions),
// under the encoding of [KVKey], holding an [Entry]: the key and its facts
// sorted by ID. Its links are the other keys its facts are filed under
// ([Entry.Links]): the correlation graph's edges are in the facts, not
// kept beside them. A fact is written into the entry of each of its keys
// by read, [Entry.Merge] (union), and compare-and-set on the revision,
// retried on conflict: replicas and redeliveries converge because union
// is idempotent and commutative (see kv.go and stage.go).
//
// A record is derived from the entries its walk reads: load the root's
// entry into a State, ask [State.Reachable] which keys the derivation
// reads, load those not loaded yet, and repeat until none is missing; the
// record is then the one the whole State would give (the property test
// checks this). [State.Affected] gives the records a new fact may change.
// Left: splitting entries of hot keys (a standard ticket many changes
// name; KV values are limited to 1 MB by default, and a fact that would
// pass it is dead-lettered naming the key).
package correlate
