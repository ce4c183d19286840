// Limits: the bounds every frame and message is checked against. The daemon
// fills one from its config (all nodes of a cluster should use the same
// values); the defaults equal kvd::core's (daemon/core/limits.h) and the
// frame cap of DESIGN §3.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvd::wire {

// A clock has at most this many entries (kvd::core::kNodesMax).
inline constexpr size_t kNodesMax = 64;

inline constexpr size_t kFrameBytesMaxDefault = 16 * 1024 * 1024;

// FlatBuffers Verifier options, tightened to what the schema can hold.
// Depth: the deepest path is Envelope > BufferReply > entries > BufferedWrite
// > missing, five levels. Tables: every table of ours takes at least 16
// bytes of a frame (a Write, a PeerStatus, a BufferedWrite take more), so a
// frame of N bytes holds at most N / 16 of them; more can only mean offsets
// shared between many references, a DAG that would make verification cost
// far more than the frame's size.
inline constexpr size_t kVerifierDepthMax = 8;
inline constexpr size_t kVerifierTableBytesMin = 16;

// A cluster identity (Hello, HelloAck, Ack) is a short token.
inline constexpr size_t kClusterIdBytesMax = 64;
// No clock entry (a count of one node's writes) can exceed this: at a
// million writes a second a node needs 285 years to get there. Anything
// larger is corrupt or hostile and is refused (a peer's clock claiming
// that many of our own writes would otherwise stop us accepting writes
// until we "recover" writes that never existed). Smaller claims are never
// refused: a node restored from an old backup or with a lost disk really is
// behind its peers, and refusing their word would make it reuse sequence
// numbers. 2^53 - 1 is also the largest integer a JSON number (a double)
// holds exactly, so `kvctl --json` prints every valid clock exactly.
// kvd::core's Validate* functions use the same bound.
inline constexpr uint64_t kSeqMax = (uint64_t{1} << 53) - 1;

// The FlatBuffers verifier handles buffers below 2 GiB only; the decoder
// treats any larger cap as this one.
inline constexpr size_t kFrameBytesMaxLimit = 1024 * 1024 * 1024;

struct Limits {
  // Nodes in the cluster list. 0 means "unknown" (a client or kvctl that
  // has not learnt it yet): clocks must then have 1..kNodesMax entries and
  // node indexes must be below kNodesMax.
  size_t cluster_size = 0;
  // Keys must be non-empty and at most this long.
  size_t key_bytes_max = 1024;
  size_t value_bytes_max = 1024 * 1024;
  // Largest accepted size-prefix value (the bytes after the 4-byte prefix).
  size_t frame_bytes_max = kFrameBytesMaxDefault;
};

}  // namespace kvd::wire
