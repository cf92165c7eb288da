-- Control results and deployment verdicts, as the evaluation stage writes
-- them. Portable SQL: runs on ClickHouse 18.16 (Debian) and current
-- releases.
--
-- control_results is append-only: a row is never updated nor replaced. A
-- change gets a row per control each time the control's verdict on it
-- changes: the record was updated with new evidence (trigger 'update'), a
-- pending control's deadline passed (trigger 'deadline'), or evidenced
-- started with another policy bundle (trigger 'bundle'). The verdict in
-- force for a change is its newest row per control:
--
--   SELECT change_id, control_id,
--          argMax(status, evaluated_at_ns) AS status
--   FROM control_results
--   GROUP BY change_id, control_id
--
-- deployment_verdicts holds the verdict in force at the moment of each
-- production deployment: the change record as it stood when the deployment
-- was correlated, judged as of the deployment's start, by the bundle then
-- loaded. It is decided once and never changes afterwards, whatever
-- evidence arrives later (control_results shows that). Its key is the key
-- of the deployment in the deployments table; a deployment judged twice
-- (a crash between deciding and writing) gives the same row twice, which
-- the ReplacingMergeTree folds.
--
-- The production deployments of a period with their verdict:
--
--   SELECT environment, service, deployment_key, change_id, verdict,
--          failing, pending
--   FROM deployment_verdicts FINAL
--   WHERE deployed_at >= '2026-01-01 00:00:00'
--     AND deployed_at <  '2026-04-01 00:00:00'
--   ORDER BY deployed_at_ns

CREATE TABLE IF NOT EXISTS control_results (
    change_id        String        COMMENT 'the change record judged (changes.change_id)',
    control_id       String        COMMENT 'the control, e.g. CM-1',
    control_title    String        COMMENT 'the control''s title in the bundle that judged',
    severity         String        COMMENT 'the control''s severity: low, medium, high, critical',
    status           String        COMMENT 'pass, fail, pending (evidence may still arrive until deadline) or waived (by exception_id)',
    reasons          Array(String) COMMENT 'why, in human-readable sentences',
    evidence         Array(String) COMMENT 'the events relied on, each as "<source> <id>" (events.source, events.event_id)',
    exception_id     String        COMMENT 'the exception that waived it; empty unless waived',
    deadline         DateTime      COMMENT 'a pending control''s deadline, after which it fails (UTC seconds); 0 otherwise',
    deadline_ns      Int64         COMMENT 'deadline in Unix nanoseconds; 0 when none',
    repository       String        COMMENT 'the change''s repository (changes.repository)',
    environments     Array(String) COMMENT 'the environments the change was deployed to when judged, sorted',
    services         Array(String) COMMENT 'the services the change was deployed as when judged, sorted',
    record_hash      String        COMMENT 'changes.record_hash of the record version judged',
    bundle_hash      String        COMMENT 'hex SHA-256 of the policy bundle that judged (evidence policy replay names it)',
    trigger          String        COMMENT 'what caused the evaluation: update (new evidence), deadline (a pending deadline passed), bundle (another policy bundle)',
    evaluated_at     DateTime      COMMENT 'the time the verdict is as of (UTC seconds)',
    evaluated_at_ns  Int64         COMMENT 'evaluated_at in Unix nanoseconds'
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(evaluated_at)
ORDER BY (change_id, control_id, evaluated_at_ns);

CREATE TABLE IF NOT EXISTS deployment_verdicts (
    environment      String        COMMENT 'the environment deployed to (deployments.environment)',
    service          String        COMMENT 'the service deployed (deployments.service)',
    deployment_key   String        COMMENT 'deployments.deployment_key',
    deployment_id    String        COMMENT 'the deployment id its events give, if any',
    change_id        String        COMMENT 'the change record it belonged to when judged; unmatched:... when it matched none',
    repository       String        COMMENT 'the change''s repository',
    commit           String        COMMENT 'the commit deployed, when its events name one',
    deployer         String        COMMENT 'login of who or what deployed',
    deployed_at      DateTime      COMMENT 'the deployment''s start (its finish when no start is known): the time the verdict is as of',
    deployed_at_ns   Int64         COMMENT 'deployed_at in Unix nanoseconds',
    verdict          String        COMMENT 'pass (every control passed or was waived), fail (one failed), pending (none failed, one was pending)',
    failing          Array(String) COMMENT 'ids of the controls that failed, sorted',
    pending          Array(String) COMMENT 'ids of the controls that were pending, sorted',
    waived           Array(String) COMMENT 'ids of the controls that were waived, sorted',
    results          String        COMMENT 'every control''s result, JSON array of {control, title, severity, status, reasons, evidence, exception, deadline}',
    record_hash      String        COMMENT 'changes.record_hash of the record version judged',
    bundle_hash      String        COMMENT 'hex SHA-256 of the policy bundle that judged',
    decided_at       DateTime      COMMENT 'when the verdict was decided (evaluator clock; informative)'
) ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(deployed_at)
ORDER BY (environment, service, deployment_key);
