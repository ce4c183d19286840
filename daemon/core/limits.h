// Every bound in the core, in one place. The daemon's config may lower (or,
// where it says so, raise) the ones users need to tune; the core never grows
// a queue past the value its Config carries.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kvd::core {

// Cluster size. A vector clock has one entry per node.
inline constexpr size_t kNodesMax = 64;

// Default key and value caps (bytes). Keys must also be non-empty.
inline constexpr size_t kKeyBytesMaxDefault = 1024;
inline constexpr size_t kValueBytesMaxDefault = 1024 * 1024;

// Remote writes waiting for their causal dependencies. At the bound a new
// write is refused and the link it came on is resynchronised (see
// CausalBuffer::Insert), so memory stays bounded and nothing is lost.
inline constexpr size_t kBufferWritesMaxDefault = 100000;

// Client requests parked until the node's clock reaches their context.
inline constexpr size_t kParkedRequestsMaxDefault = 10000;

// How long a request may wait for its context before TIMEOUT.
inline constexpr uint64_t kContextWaitMsDefault = 1000;

// A write of a third origin that a peer still lacks this long after it was
// applied here is forwarded to that peer (heals a cut link between two
// other nodes).
inline constexpr uint64_t kForwardAfterMsDefault = 2000;

// A receiver acknowledges its clock at most this often per link.
inline constexpr uint64_t kAckIntervalMsDefault = 20;

// Writes in one replication batch to one peer.
inline constexpr size_t kBatchWritesMaxDefault = 1024;

// The replication log's bound. Past it, the peers holding its front back
// are detached and later catch up by state transfer (ReplicationLog).
inline constexpr size_t kLogBytesMaxDefault = 256 * 1024 * 1024;

// Bytes of keys and values of a state transfer handed to the shell per
// Ready, so one transfer neither stalls the loop nor floods the socket.
inline constexpr size_t kTransferBytesPerReadyDefault = 4 * 1024 * 1024;

}  // namespace kvd::core
