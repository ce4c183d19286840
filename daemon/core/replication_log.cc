#include "daemon/core/replication_log.h"

#include <algorithm>

#include "daemon/core/assert.h"

namespace kvd::core {

ReplicationLog::ReplicationLog(size_t node_count, uint32_t self) : self_(self) {
  KV_ASSERT(self < node_count);
  peers_.resize(node_count);
  for (auto& peer : peers_) {
    peer.acked = VectorClock(node_count);
    peer.sent = VectorClock(node_count);
  }
}

void ReplicationLog::Append(const Write& write, uint64_t now_ms) {
  KV_ASSERT(entries_.empty() || entries_.back().applied_ms <= now_ms);
  entries_.push_back({write, now_ms});
}

size_t ReplicationLog::Acknowledge(uint32_t peer, const VectorClock& clock) {
  KV_ASSERT(peer != self_ && peer < peers_.size());
  peers_[peer].acked.Merge(clock);
  peers_[peer].sent.Merge(clock);
  return Truncate();
}

size_t ReplicationLog::Truncate() {
  size_t dropped = 0;
  while (!entries_.empty()) {
    const Write& write = entries_.front().write;
    for (uint32_t p = 0; p < peers_.size(); ++p) {
      if (p != self_ && peers_[p].acked[write.origin] < write.seq()) return dropped;
    }
    entries_.pop_front();
    ++begin_index_;
    ++dropped;
  }
  return dropped;
}

void ReplicationLog::StartStream(uint32_t peer, const VectorClock& clock,
                                 uint64_t peer_writes_here) {
  KV_ASSERT(peer != self_ && peer < peers_.size());
  PeerState& state = peers_[peer];
  state.acked.Merge(clock);
  // The peer has exactly `clock`: anything sent on an earlier link and not
  // in it was lost with that link and must go again.
  state.sent = clock;
  state.streaming = true;
  state.recover_to = peer_writes_here;
  state.direct_cursor = begin_index_;
  state.forward_cursor = begin_index_;
  Truncate();
}

void ReplicationLog::StopStream(uint32_t peer) { peers_[peer].streaming = false; }

void ReplicationLog::NextBatch(uint32_t peer, uint64_t now_ms, uint64_t forward_after_ms,
                               size_t max, std::vector<Write>* out) {
  PeerState& state = peers_[peer];
  if (!state.streaming) return;
  size_t taken = 0;
  auto send = [&](const Write& write) {
    state.sent.Set(write.origin, write.seq());
    out->push_back(write);
    ++taken;
  };
  // Forwarded writes first: they are older, and the direct writes sent
  // after them may depend on them.
  state.forward_cursor = std::max(state.forward_cursor, begin_index_);
  for (; state.forward_cursor < end_index() && taken < max; ++state.forward_cursor) {
    const Entry& entry = at(state.forward_cursor);
    const Write& write = entry.write;
    if (write.origin == self_ || write.origin == peer || !Lacks(state, write)) continue;
    // Entries are in application order, so every later one is younger.
    if (now_ms - entry.applied_ms < forward_after_ms) break;
    send(write);
  }
  state.direct_cursor = std::max(state.direct_cursor, begin_index_);
  for (; state.direct_cursor < end_index() && taken < max; ++state.direct_cursor) {
    const Write& write = at(state.direct_cursor).write;
    bool direct = write.origin == self_ ||
                  (write.origin == peer && write.seq() <= state.recover_to);
    if (direct && Lacks(state, write)) send(write);
  }
}

}  // namespace kvd::core
