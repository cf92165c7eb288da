-- Change records and deployments, as the correlation stage derives them.
-- Portable SQL: runs on ClickHouse 18.16 (Debian) and current releases.
--
-- Both tables keep every version written: each write of a record is a new
-- row, and ReplacingMergeTree(version) keeps the row with the highest
-- version of each key when it merges parts, in the background, at a time of
-- its choosing. Until then several versions of a key can be stored, so a
-- query must ask for the newest one: FROM changes FINAL (or argMax(col,
-- version) ... GROUP BY change_id). A plain SELECT without FINAL can count a
-- change more than once.
--
-- version is derived from the record itself, never from a clock, so the
-- newest evidence wins whatever order the versions were written in and
-- whichever replica wrote them (the package doc of
-- processors/correlate/chsink gives the reasons):
--
--   version = class << 62 | events << 32 | first 4 bytes of record_hash
--
--   class  0 an unmatched deployment's record, 1 a direct push's,
--          2 a merged pull request's. Evidence only moves things up: a
--          deployment goes from an unmatched record to a push's or a pull
--          request's, and a push found later to be a pull request's merge
--          keeps its id, now a pull request's record (class 1 to 2).
--   events the number of distinct CloudEvents behind the record: the
--          correlator's facts only grow, so a record derived from more
--          evidence has more of them.
--   hash   breaks ties between two versions derived from as many events, so
--          every replica keeps the same one.
--
-- A record the correlator no longer derives (an unmatched deployment since
-- linked, a push since found to be a merge) gets a last row with retired = 1,
-- its last content, and version class << 62 | (2^62 - 1): it outranks every
-- version of its class, so a late write of an old version cannot revive it.
--
-- The population of production changes for a period:
--
--   SELECT change_id, record_hash FROM changes FINAL
--   WHERE retired = 0 AND has(environments, 'production')
--     AND last_deployed_at >= '2026-01-01 00:00:00'
--     AND first_deployed_at < '2026-04-01 00:00:00'
--   ORDER BY change_id
--
-- A record's integrity, checked in SQL (18.16 and current releases):
--
--   SELECT change_id FROM changes WHERE record_hash != lower(hex(SHA256(record)))

-- One row per version of a change record. The newest version of each
-- change_id (FINAL) is the change as the correlator last derived it.
CREATE TABLE IF NOT EXISTS changes (
    change_id            String        COMMENT 'the record id: <repository>@<merge commit>, <repository>@<pushed head> (direct push) or unmatched:<environment>/<service>/<target>',
    repository           String        COMMENT 'the repository of the change; for an unmatched deployment, the one it names, if any',
    commit               String        COMMENT 'the merge commit, or the pushed head of a direct push; for an unmatched deployment its commit when it names exactly one',
    commits              Array(String) COMMENT 'every commit of the record in any role (merge commit, heads, reviewed, pushed, deployed, built), sorted',
    pr_number            Int64         COMMENT 'the pull or merge request number; 0 when none (direct push, unmatched deployment)',
    pr_title             String        COMMENT 'the pull request title as last stated',
    author               String        COMMENT 'login of the pull request author; of the pusher for a direct push',
    merged_by            String        COMMENT 'login of who merged the pull request; of the pusher for a direct push',
    merged_at            DateTime      COMMENT 'when the change reached its target branch: the merge, or the first push of a direct push (UTC seconds)',
    merged_at_ns         Int64         COMMENT 'merged_at in Unix nanoseconds; 0 when unknown',
    direct_push          UInt8         COMMENT '1: a push to the default branch without a pull request',
    unmatched            UInt8         COMMENT '1: deployments that match no change (control CM-8)',
    ticket_keys          Array(String) COMMENT 'the change tickets of the record, sorted',
    environments         Array(String) COMMENT 'environments of its deployments, whatever their outcome, sorted',
    services             Array(String) COMMENT 'services of its deployments, whatever their outcome, sorted',
    first_deployed_at    DateTime      COMMENT 'start of its first deployment (its finish when no start is known); 0 when never deployed',
    first_deployed_at_ns Int64         COMMENT 'first_deployed_at in Unix nanoseconds; 0 when never deployed',
    last_deployed_at     DateTime      COMMENT 'the latest time any of its deployments started or finished; 0 when never deployed',
    last_deployed_at_ns  Int64         COMMENT 'last_deployed_at in Unix nanoseconds; 0 when never deployed',
    record               String        COMMENT 'the change record, canonical JSON: the same record always gives the same bytes',
    record_hash          String        COMMENT 'hex SHA-256 of record: what control results name as their input',
    event_count          UInt32        COMMENT 'the number of distinct CloudEvents behind the record',
    version              UInt64        COMMENT 'class << 62 | event_count << 32 | first 4 bytes of record_hash; the highest wins',
    retired              UInt8         COMMENT '1: the correlator no longer derives this record (an unmatched deployment since linked to its change, a push since found to be a merge); record keeps its last content; do not count it',
    updated_at           DateTime      COMMENT 'when this version was written (writer clock, informative only)'
) ENGINE = ReplacingMergeTree(version)
ORDER BY change_id;

-- One row per deployment, under the change it belongs to. The key is the
-- environment, the service and deployment_key (id:<deployment id>, else
-- run:<repository>#<run id>, else event:<source> <id> of its only event),
-- so when an unmatched deployment is later linked to its change, the
-- newest version (FINAL) shows it under that change. Its version is the
-- version of the record it was written with: a pull request's record
-- outranks a direct push's, which outranks an unmatched deployment's.
CREATE TABLE IF NOT EXISTS deployments (
    environment         String        COMMENT 'the environment deployed to',
    service             String        COMMENT 'the service deployed',
    deployment_key      String        COMMENT 'id:<deployment id>, run:<repository>#<run id>, or event:<source> <id> of its only event',
    deployment_id       String        COMMENT 'the deployment id its events give, if any',
    change_id           String        COMMENT 'the change record it belongs to (changes.change_id); unmatched:... while it matches no change',
    unmatched           UInt8         COMMENT '1: it matches no change (control CM-8)',
    matched_by          Array(String) COMMENT 'how it matches its change: commit (it deployed a commit of the change), artifact (an artifact built from one); empty when unmatched',
    repository          String        COMMENT 'the repository its events name',
    commit              String        COMMENT 'the commit its events name',
    digest              String        COMMENT 'the artifact digest its events name',
    purl                String        COMMENT 'the artifact package URL its events name',
    run_id              String        COMMENT 'the pipeline run that deployed',
    run_url             String        COMMENT 'a link to that run',
    deployer            String        COMMENT 'login of who or what deployed',
    outcome             String        COMMENT 'the outcome of its latest finished event; empty while in progress',
    started_at          DateTime      COMMENT 'when it started (UTC seconds); 0 when unknown',
    started_at_ns       Int64         COMMENT 'started_at in Unix nanoseconds; 0 when unknown',
    finished_at         DateTime      COMMENT 'when it finished (UTC seconds); 0 while in progress',
    finished_at_ns      Int64         COMMENT 'finished_at in Unix nanoseconds; 0 while in progress',
    ticket_keys         Array(String) COMMENT 'change tickets its events name (a claim: never what matches it to a change)',
    deployment          String        COMMENT 'the deployment as the change record holds it, canonical JSON',
    record_hash         String        COMMENT 'record_hash of the change record version it was written with',
    version             UInt64        COMMENT 'the version of that change record; the highest wins',
    updated_at          DateTime      COMMENT 'when this version was written (writer clock, informative only)'
) ENGINE = ReplacingMergeTree(version)
ORDER BY (environment, service, deployment_key);
