-- The archive: every accepted CloudEvent, once, in JetStream stream order,
-- hash-chained. Rows are never updated; evidence verify recomputes the chain.
-- Portable SQL: runs on ClickHouse 18.16 (Debian) and current releases.
CREATE TABLE IF NOT EXISTS events (
    stream_seq      UInt64,
    event_id        String,
    source          String,
    type            String,
    subject         String,
    event_time      DateTime,
    event_time_ns   Int64,
    received_at     DateTime,
    received_ns     Int64,
    datacontenttype String,
    dataschema      String,
    extensions      String,
    data            String,
    data_base64     UInt8,
    prev_hash       String,
    hash            String
) ENGINE = MergeTree()
PARTITION BY toYYYYMM(received_at)
ORDER BY stream_seq
