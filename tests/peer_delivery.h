// DeliverPeerMessage: hands a message one replica produced to the replica it
// is for, as the input kvd's shell makes of the frame carrying it. Shared by
// the core tests' hand-wired cluster and the simulator, so both drive the
// same inputs for every message type.
#pragma once

#include <cstdint>
#include <vector>

#include "daemon/core/output.h"
#include "daemon/core/replica.h"

namespace kvd::testing {

// `from` produced `message` (message.peer is `to`'s index).
inline core::Status DeliverPeerMessage(core::Replica& to, uint32_t from,
                                       const core::PeerMessage& message, uint64_t now_ms) {
  using core::PeerMessageType;
  switch (message.type) {
    case PeerMessageType::kHelloAck:
      return to.LinkToPeerUp(from, message.clock, now_ms, message.cluster_id);
    case PeerMessageType::kAck:
      return to.PeerAck(from, message.clock, now_ms, message.cluster_id);
    case PeerMessageType::kWriteBatch: {
      std::vector<core::Write> writes = message.writes;  // PeerWrites consumes them.
      return to.PeerWrites(from, writes, now_ms);
    }
    case PeerMessageType::kTransferBegin:
      return to.PeerTransferBegin(from, message.clock, now_ms);
    case PeerMessageType::kTransferChunk: {
      std::vector<core::Write> entries = message.writes;
      return to.PeerTransferChunk(from, entries, now_ms);
    }
    case PeerMessageType::kTransferEnd:
      return to.PeerTransferEnd(from, now_ms);
  }
  return core::Status::Internal("unknown peer message type");
}

}  // namespace kvd::testing
