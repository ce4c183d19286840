// Every bound of the libuv shell, with the defaults of the ones users can
// change (kvd's flags; the "Limits" table of README.md and kvd(8) list
// them). The core's bounds are in daemon/core/limits.h, the wire's frame
// caps in schema/limits.h; config.h takes its defaults from these three
// files only.
#pragma once

#include <cstddef>
#include <cstdint>

#include "schema/limits.h"

namespace kvd::io {

// --- Connections (flags) ----------------------------------------------------

// TCP connections that are not peer links (clients, and connections that
// have not said what they are yet). Beyond it a new connection gets
// Error(UNAVAILABLE) and is closed (--max-clients).
inline constexpr size_t kMaxClientsDefault = 10000;
// A connection whose first complete frame (or, with a cluster secret, its
// peer handshake) has not arrived this long after it was accepted is
// closed (--handshake-timeout-ms).
inline constexpr uint64_t kHandshakeTimeoutMsDefault = 10000;
// A client connection that sent nothing and waits for nothing this long is
// closed; 0 turns it off (--idle-timeout-ms).
inline constexpr uint64_t kIdleTimeoutMsDefault = 300000;
// A client whose unsent replies pass this is disconnected, not buffered
// without bound (--client-output-bytes-max).
inline constexpr size_t kClientOutputBytesMaxDefault = 64 * 1024 * 1024;
// Largest frame from a peer: replication batches (--max-peer-frame-bytes).
inline constexpr size_t kPeerFrameBytesMaxDefault = wire::kFrameBytesMaxDefault;
// Largest frame from a client, when not set (--max-client-frame-bytes): a
// put of the largest key and value plus this much room for the rest.
inline constexpr size_t kClientFrameBytesSlack = 64 * 1024;

// --- Fixed -----------------------------------------------------------------------

// Requests of one client connection received and not yet answered. At the
// bound the node stops reading that connection until half are answered:
// what one turn's replies can add to its output (and to the core's Output)
// stays bounded however fast the client pipelines.
inline constexpr size_t kClientRequestsInFlightMax = 1024;
// Rounds of "resume paused connections, run the replica" per loop turn,
// so a resumed connection is not left waiting for the next event.
inline constexpr int kResumeRoundsPerTurn = 4;

// Connections beyond --max-clients still accepted, up to one per peer,
// until their first frame shows whether they are a peer's (a Hello); so
// clients filling the limit cannot keep peers out.
// (The number is the cluster size minus one.)

// A peer link whose unsent output passes this is paused (its batches stay
// in the replication log) until the socket drains.
inline constexpr size_t kPeerOutputBytesPause = 8 * 1024 * 1024;
// Bytes of keys and values per replication frame, at most; never more than
// half the peer frame cap (one write larger than that goes alone).
inline constexpr size_t kBatchFrameBytesSoftMax = 4 * 1024 * 1024;
// How long shutdown waits for connections to drain their replies.
inline constexpr uint64_t kShutdownFlushMs = 2000;
// Info lines about buffered writes per second (more are counted, not shown).
inline constexpr uint64_t kWriteEventLinesPerSecond = 20;
// Lines about refused connections (over --max-clients) per second.
inline constexpr uint64_t kRefusalLinesPerSecond = 1;
// A loop turn this long (its handling, waits for a CPU included) gets a
// warning with the second's account of the loop: every client and peer of
// the node waited through it. At most one such line per second.
inline constexpr uint64_t kSlowTurnWarnNs = 100'000'000;
// The idle sweep runs at most this often (and at least every quarter of
// the idle timeout).
inline constexpr uint64_t kIdleSweepMsMax = 1000;
// File descriptors kept beyond --max-clients for peers, the admin socket,
// the write-ahead log and listeners when kvd raises its RLIMIT_NOFILE.
inline constexpr uint64_t kFdsBeyondClients = 128;

}  // namespace kvd::io
