-- The transparency log over the archive (internal/tlog, docs/tamper-evidence.md):
-- an RFC 6962 Merkle tree whose leaf i is the hash of the i-th row of events
-- in stream order, stored as C2SP tlog-tiles (height 8).
-- Portable SQL: runs on ClickHouse 18.16 (Debian) and current releases.
--
-- One row per tile written. A partial tile is written again, wider, as the
-- tree grows, so a tile (level, tile_index) can have several rows: each is a
-- prefix of the widest, and a reader takes the narrowest row at least as
-- wide as it needs and keeps the first width*32 bytes.
CREATE TABLE IF NOT EXISTS log_tiles (
    level      UInt8   COMMENT 'the tile level L: its hashes are at tree height 8*L',
    tile_index UInt64  COMMENT 'the tile number N at that level',
    width      UInt16  COMMENT 'hashes in the tile, 1..256 (256: a full tile)',
    hashes     String  COMMENT 'width SHA-256 hashes of 32 bytes, left to right (the C2SP tile body)',
    tree_size  UInt64  COMMENT 'the tree size this write brought the log to',
    last_seq   UInt64  COMMENT 'the stream sequence of the leaf tree_size-1 (where the log resumes)'
) ENGINE = MergeTree()
ORDER BY (level, tile_index, width);

-- Signed checkpoints of the log: C2SP tlog-checkpoint bodies signed as C2SP
-- signed notes (ed25519, evidenced's signing key). Also published to the
-- checkpoint stream on subject evidence.checkpoints.log.
CREATE TABLE IF NOT EXISTS log_checkpoints (
    tree_size  UInt64  COMMENT 'leaves in the tree: the rows of events up to the checkpoint',
    root_hash  String  COMMENT 'the tree root, lower-case hex',
    last_seq   UInt64  COMMENT 'the stream sequence of the last leaf',
    note       String  COMMENT 'the signed note, exactly as signed (origin, size, base64 root, signatures)',
    created_at DateTime COMMENT 'when it was signed (UTC seconds)',
    created_ns Int64   COMMENT 'when it was signed, Unix nanoseconds'
) ENGINE = MergeTree()
ORDER BY (tree_size, created_ns);
