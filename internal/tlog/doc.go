// Package tlog is the transparency log over the archive: an RFC 6962
// Merkle tree with one leaf per archived row, in stream order, stored as
// C2SP tlog-tiles of height 8 in the ClickHouse table log_tiles.
//
// The leaf. Leaf i is the i-th row of the events table in stream order
// (0-based). Its leaf data is the 32 bytes of the row's chain hash (the
// hex of events.hash, decoded); its leaf hash is RFC 6962's
// SHA-256(0x00 || data). The chain hash commits to the row's stream
// sequence, its arrival time, its canonical CloudEvent bytes and the hash
// of the row before it (internal/verify), so an inclusion proof of a leaf,
// with the row recomputed, proves that row's content is in the tree.
//
// The frontier. The Builder keeps, for each tile level, the hashes of the
// tile being filled (at most 256 of 32 bytes per level), so memory is
// flat in the log's size and an append costs O(log n) hashes amortised:
// one leaf hash, and a tile's 255 inner hashes each time a tile fills.
//
// Proofs are made with golang.org/x/mod/sumdb/tlog over the stored tiles
// (TileHashReader checks every tile read against the tree it proves), and
// checkpoints are C2SP tlog-checkpoint bodies signed as C2SP signed notes
// (golang.org/x/mod/sumdb/note) with evidenced's ed25519 key.
package tlog
