-- deployment_late_evidence: evidence that arrived after a deployment's
-- verdict was decided and would have changed it. The verdict itself
-- (deployment_verdicts) never changes; this table is kept beside it. A
-- row per control whose result, judged as of the deployment on the
-- record with the late evidence, differs from the decided one (or from
-- the one last noted here). Append-only; a crash between writing a row
-- and noting it in the verdicts bucket can write it twice.
--
-- The verdicts that late evidence would change, with what:
--
--   SELECT v.environment, v.service, v.deployment_key, v.verdict,
--          l.control_id, l.decided_status, l.late_status, l.late_events
--   FROM deployment_verdicts AS v FINAL
--   ANY INNER JOIN deployment_late_evidence AS l
--   USING (environment, service, deployment_key)

CREATE TABLE IF NOT EXISTS deployment_late_evidence (
    environment      String        COMMENT 'deployment_verdicts.environment',
    service          String        COMMENT 'deployment_verdicts.service',
    deployment_key   String        COMMENT 'deployment_verdicts.deployment_key',
    change_id        String        COMMENT 'the change record judged with the late evidence',
    control_id       String        COMMENT 'the control whose result the late evidence changes',
    decided_status   String        COMMENT 'its status in the decided verdict',
    late_status      String        COMMENT 'its status with the late evidence, still as of the deployment',
    late_reasons     Array(String) COMMENT 'the reasons of that status',
    late_events      Array(String) COMMENT 'the record''s events that arrived after the verdict''s arrival cutoff, each "<source> <id>"',
    arrived_by_ns    Int64         COMMENT 'the verdict''s arrival cutoff (stream time), Unix nanoseconds',
    record_hash      String        COMMENT 'changes.record_hash of the record judged with the late evidence',
    bundle_hash      String        COMMENT 'hex SHA-256 of the policy bundle that judged',
    noted_at         DateTime      COMMENT 'when the difference was noted (UTC seconds)',
    noted_at_ns      Int64         COMMENT 'noted_at in Unix nanoseconds'
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(noted_at)
ORDER BY (environment, service, deployment_key, noted_at_ns, control_id);
