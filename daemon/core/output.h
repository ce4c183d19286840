// Output: what the replica asks its shell to do, drained once per loop turn
// by Replica::Ready (the shape of etcd raft's Ready). The shell must
//   1. make `records` durable (in order), then
//   2. send `replies` and `messages` and act on `resync_peers`,
// and keep successive Outputs in order. A reply or message never leaves
// before the records of its own and every earlier Output are durable, so
// nothing acknowledged to a client or a peer can be lost in a crash.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/core/causal_buffer.h"
#include "daemon/core/record.h"
#include "daemon/core/status.h"
#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"

namespace kvd::core {

struct Reply {
  uint64_t token = 0;  // The caller's, from the request.
  Code code = Code::kOk;
  std::string message;  // Why, for errors.
  bool found = false;
  std::string value;
  // Put/delete: the write's clock. Get: the version read (all zeros if the
  // key was never written or its tombstone was collected). Clients merge it
  // into their session context.
  VectorClock version;
};

enum class PeerMessageType : uint8_t {
  kHelloAck,    // On the link from the peer: our clock, right after its hello.
  kWriteBatch,  // On the link to the peer.
  kAck,         // On the link from the peer: our clock.
  // On the link to the peer, when our log no longer holds what it lacks:
  // begin (our clock), chunks of store entries (as their winning writes),
  // end. The write batches that follow start past that clock.
  kTransferBegin,
  kTransferChunk,
  kTransferEnd,
};

struct PeerMessage {
  uint32_t peer = 0;
  PeerMessageType type = PeerMessageType::kAck;
  VectorClock clock;          // kHelloAck, kAck, kTransferBegin.
  std::string cluster_id;     // kHelloAck, kAck: ours (empty: none yet).
  std::vector<Write> writes;  // kWriteBatch, kTransferChunk.
};

// Things worth a log line. The shell decides which levels to print.
struct Event {
  enum class Kind : uint8_t {
    kApplied,            // A write took effect here (local or delivered).
    kBuffered,           // A remote write waits; `waiting_for` is its first gap.
    kDuplicate,          // A remote write already applied or buffered: dropped.
    kBufferFull,         // Refused: the link from `peer` must resynchronise.
    kRecovering,         // A peer knows more of our own writes than we have.
    kRecovered,          // We have our own writes back: writes accepted again.
    kTransferSending,    // To `peer`: `seq` entries; our log lacks what it needs.
    kTransferInstalled,  // From `peer`: `seq` entries installed.
    kTransferRefused,    // From `peer`: another transfer is under way.
    kLogDetached,        // `peer` fell `seq` bytes behind: the log no longer waits.
    kIdentityRecorded,   // This node is now a member of cluster `key`.
  };
  Kind kind;
  // kApplied: it waited in the causal buffer until now.
  bool from_buffer = false;
  // kApplied: how many buffered writes it released (applied right after).
  uint32_t released = 0;
  uint32_t peer = 0;  // Where it came from, for remote writes.
  uint32_t origin = 0;
  uint64_t seq = 0;
  std::string key;
  MissingRange waiting_for{};
};

struct Output {
  std::vector<Record> records;
  std::vector<Reply> replies;
  std::vector<PeerMessage> messages;
  // Close the link from each of these peers: the peer reconnects and
  // resends, from our clock, what we had to refuse.
  std::vector<uint32_t> resync_peers;
  // Close our link to each of these peers and redial: the replication log
  // stopped waiting for them, and the new link catches them up by state
  // transfer.
  std::vector<uint32_t> restart_links;
  std::vector<Event> events;

  void Clear() {
    records.clear();
    replies.clear();
    messages.clear();
    resync_peers.clear();
    restart_links.clear();
    events.clear();
  }
  bool empty() const {
    return records.empty() && replies.empty() && messages.empty() && resync_peers.empty() &&
           restart_links.empty() && events.empty();
  }
};

}  // namespace kvd::core
