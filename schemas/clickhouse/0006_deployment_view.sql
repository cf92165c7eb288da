-- Every deployment with the verdict in force at the moment it happened:
-- the newest version of each deployment (deployments FINAL) beside its
-- verdict (deployment_verdicts FINAL), on their common key. Portable SQL:
-- runs on ClickHouse 18.16 (Debian) and current releases.
--
-- deployments holds versions of the live change record's deployments
-- (rewritten as evidence arrives, the newest winning); the verdict at the
-- moment of the deployment is decided once and kept apart, in
-- deployment_verdicts, so that no later version can change it. This view
-- puts them side by side: verdict is empty for a deployment outside the
-- production environments, or one not judged yet.
--
--   SELECT environment, service, change_id, started_at, verdict, failing
--   FROM deployments_with_verdict
--   WHERE environment = 'production' AND started_at >= '2026-01-01 00:00:00'

CREATE VIEW IF NOT EXISTS deployments_with_verdict AS
SELECT
    environment, service, deployment_key, deployment_id, change_id, unmatched, matched_by,
    repository, commit, digest, purl, run_id, run_url, deployer, outcome,
    started_at, started_at_ns, finished_at, finished_at_ns, ticket_keys,
    verdict, failing, pending, waived, verdict_change_id, verdict_record_hash, bundle_hash, decided_at
FROM (SELECT * FROM deployments FINAL)
ANY LEFT JOIN (
    SELECT environment, service, deployment_key, verdict, failing, pending, waived,
           change_id AS verdict_change_id, record_hash AS verdict_record_hash, bundle_hash, decided_at
    FROM deployment_verdicts FINAL
) USING (environment, service, deployment_key);
