-- Signed checkpoints of the archive's hash chain. Portable SQL: runs on
-- ClickHouse 18.16 (Debian) and current releases.
--
-- The archive signs the head of the chain every --checkpoint-every events or
-- --checkpoint-interval (when new events were archived), after the batch
-- that holds the head is stored. Each checkpoint is written here and
-- published to the JetStream stream EVIDENCE_CHECKPOINTS, which denies
-- deletes and purges: that copy is the reference if this table is tampered
-- with. Rows are never updated. evidence verify checks every checkpoint in
-- its range against the chain it recomputes (docs/tamper-evidence.md).
--
-- The signature is ed25519 over this text (each line ends with \n):
--
--   evidence-checkpoint/v1
--   stream_seq=<stream_seq>
--   event_count=<event_count>
--   head_hash=<head_hash>
--   created_ns=<created_ns>
--   key_id=<key_id>
--
-- The newest signed head:
--
--   SELECT stream_seq, event_count, head_hash, created_at, key_id
--   FROM checkpoints ORDER BY stream_seq DESC LIMIT 1

CREATE TABLE IF NOT EXISTS checkpoints (
    stream_seq  UInt64   COMMENT 'stream sequence of the head row (events.stream_seq) the checkpoint signs',
    event_count UInt64   COMMENT 'number of rows in the chain from its first row up to and including the head (dead-lettered events are not in the chain, so it can be less than stream_seq)',
    head_hash   String   COMMENT 'the head row''s hash (events.hash), lower-case hex',
    created_at  DateTime COMMENT 'when the checkpoint was made (UTC seconds)',
    created_ns  Int64    COMMENT 'created_at in Unix nanoseconds; this value is signed',
    key_id      String   COMMENT 'the signing key: first 16 hex digits of SHA-256 of its public key (PKIX DER); the public key itself is handed to auditors out of band',
    signature   String   COMMENT 'ed25519 signature of the canonical text above, lower-case hex (128 digits)'
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(created_at)
ORDER BY stream_seq;
