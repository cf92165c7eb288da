-- The access records (processors/access, issue 17): who held which
-- permission on a repository and the branch protection settings in force,
-- period by period. Portable SQL: runs on ClickHouse 18.16 (Debian) and
-- current releases.
--
-- Each write of a repository's access record writes every row of it with
-- the record's version:
--
--   version = events << 32 | first 4 bytes of record_hash
--
-- (events: the distinct CloudEvents behind the record; facts only grow, so
-- a record derived from more evidence outranks an older one whatever order
-- the writes arrive in). A period can vanish from a newer record (a late
-- event earlier in time that makes a grant event a no-op), so read only the
-- rows of each repository's newest version:
--
--   SELECT * FROM access_grants
--   WHERE (repository, version) IN
--         (SELECT repository, max(version) FROM access_grants GROUP BY repository)
--
-- valid_to_ns = 0: the grant is still held, the settings still in force.

CREATE TABLE IF NOT EXISTS access_grants (
    repository          String   COMMENT 'the repository (host/owner/name), or org:<host>/<org> for organisation membership',
    principal_kind      String   COMMENT 'user, team or deploy_key',
    principal_login     String   COMMENT 'user login, team slug or deploy key title',
    principal_id        String   COMMENT 'the platform''s id of the principal, when known',
    permission          String   COMMENT 'normalised: read, triage, write, maintain, admin (repository); member, admin (organisation)',
    platform_permission String   COMMENT 'the platform''s own word or level (push, 30, ...)',
    valid_from          DateTime COMMENT 'when the permission was granted, or the snapshot that first showed it (UTC seconds)',
    valid_from_ns       Int64    COMMENT 'valid_from in Unix nanoseconds',
    valid_to            DateTime COMMENT 'when it ended: removed, changed, or missing from a snapshot; 0 while held',
    valid_to_ns         Int64    COMMENT 'valid_to in Unix nanoseconds; 0 while held',
    action              String   COMMENT 'what began it: granted, changed or snapshot',
    granted_by          String   COMMENT 'login of who granted it (the event''s actor); empty for a snapshot',
    approver            String   COMMENT 'login of the approver the producer stated; empty when none (webhooks state none)',
    ticket              String   COMMENT 'the access ticket the grant named, if any',
    grant_event         String   COMMENT 'the event that began it, "<source> <id>" (events.source, events.event_id)',
    end_action          String   COMMENT 'what ended it: removed, changed, snapshot; empty while held',
    ended_by            String   COMMENT 'login of who ended it; empty for a snapshot or while held',
    end_event           String   COMMENT 'the event that ended it, "<source> <id>"; empty while held',
    record_hash         String   COMMENT 'hex SHA-256 of the access record (canonical JSON) the row was written from',
    version             UInt64   COMMENT 'events << 32 | first 4 bytes of record_hash; read the newest version of each repository',
    updated_at          DateTime COMMENT 'when this row was written (writer clock, informative only)'
) ENGINE = ReplacingMergeTree(version)
ORDER BY (repository, principal_kind, principal_login, valid_from_ns, grant_event);

CREATE TABLE IF NOT EXISTS protection_settings (
    repository                     String        COMMENT 'the repository (host/owner/name)',
    rule_kind                      String        COMMENT 'branch_protection_rule, repository_ruleset or protected_branch (GitLab)',
    rule_id                        String        COMMENT 'the platform''s id of the rule or ruleset',
    target                         String        COMMENT 'the branch or pattern protected (main, release/*, ~DEFAULT_BRANCH)',
    deleted                        UInt8         COMMENT '1: the rule was deleted over this period (no settings in force by it)',
    required_approving_review_count UInt32       COMMENT 'approving reviews required to merge; 0 when deleted',
    dismiss_stale_reviews          UInt8         COMMENT '1: a push dismisses earlier approvals',
    require_code_owner_reviews     UInt8         COMMENT '1: a code owner must approve',
    enforce_admins                 UInt8         COMMENT '1: the rule applies to administrators too',
    allow_force_pushes             UInt8         COMMENT '1: force pushes are allowed',
    allow_deletions                UInt8         COMMENT '1: the branch may be deleted',
    bypass_actors                  Array(String) COMMENT 'who may bypass the rule, sorted',
    valid_from                     DateTime      COMMENT 'when these settings came into force (UTC seconds)',
    valid_from_ns                  Int64         COMMENT 'valid_from in Unix nanoseconds',
    valid_to                       DateTime      COMMENT 'when they ended; 0 while in force',
    valid_to_ns                    Int64         COMMENT 'valid_to in Unix nanoseconds; 0 while in force',
    action                         String        COMMENT 'what began the period: created, edited, snapshot or deleted',
    changed_by                     String        COMMENT 'login of who made the change; empty for a snapshot',
    changed_fields                 Array(String) COMMENT 'the setting names the change named (edited), sorted',
    ticket                         String        COMMENT 'the change ticket the change named, if any',
    event                          String        COMMENT 'the event that began the period, "<source> <id>"',
    end_action                     String        COMMENT 'what ended it: created, edited, deleted, snapshot; empty while in force',
    ended_by                       String        COMMENT 'login of who ended it; empty for a snapshot or while in force',
    end_event                      String        COMMENT 'the event that ended it; empty while in force',
    record_hash                    String        COMMENT 'hex SHA-256 of the access record the row was written from',
    version                        UInt64        COMMENT 'events << 32 | first 4 bytes of record_hash; read the newest version of each repository',
    updated_at                     DateTime      COMMENT 'when this row was written (writer clock, informative only)'
) ENGINE = ReplacingMergeTree(version)
ORDER BY (repository, target, rule_kind, rule_id, valid_from_ns, event);
