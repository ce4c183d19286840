#include "daemon/core/replication_log.h"

#include <algorithm>

#include "daemon/core/assert.h"

namespace kvd::core {

ReplicationLog::ReplicationLog(size_t node_count, uint32_t self, size_t bytes_max)
    : self_(self), bytes_max_(bytes_max), dropped_(node_count) {
  KV_ASSERT(self < node_count);
  KV_ASSERT(bytes_max > 0);
  peers_.resize(node_count);
  for (auto& peer : peers_) {
    peer.acked = VectorClock(node_count);
    peer.sent = VectorClock(node_count);
  }
}

void ReplicationLog::Append(const Write& write, uint64_t now_ms) {
  KV_ASSERT(entries_.empty() || entries_.back().applied_ms <= now_ms);
  // With no peers nobody acknowledges: nothing needs keeping, so the write
  // is dropped as it comes, without a copy (its value would be a heap
  // allocation and a cache miss per put on a one-node cluster).
  if (peers_.size() == 1) {
    KV_ASSERT(entries_.empty());
    dropped_.Set(write.origin, write.seq());
    ++begin_index_;
    return;
  }
  entries_.push_back({write, now_ms});
  bytes_ += EntryBytes(write);
}

void ReplicationLog::SetDropped(const VectorClock& clock) {
  KV_ASSERT(entries_.empty());
  dropped_ = clock;
}

std::vector<uint32_t> ReplicationLog::DetachLaggards() {
  KV_ASSERT(over_limit());
  std::vector<uint32_t> stopped;
  // Peers are detached a front entry at a time until the log fits: a peer
  // only a little behind keeps its stream when dropping the laggards'
  // share is enough.
  while (over_limit() && !entries_.empty()) {
    const Write& front = entries_.front().write;
    for (uint32_t p = 0; p < peers_.size(); ++p) {
      if (!HoldsBack(p, front)) continue;
      peers_[p].detached = true;
      if (peers_[p].streaming) {
        peers_[p].streaming = false;
        stopped.push_back(p);
      }
    }
    Truncate();
  }
  return stopped;
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
      if (HoldsBack(p, write)) return dropped;
    }
    dropped_.Set(write.origin, write.seq());
    bytes_ -= EntryBytes(write);
    entries_.pop_front();
    ++begin_index_;
    ++dropped;
  }
  return dropped;
}

void ReplicationLog::StartStream(uint32_t peer, const VectorClock& clock, uint64_t peer_writes_here,
                                 const VectorClock* transferred) {
  KV_ASSERT(peer != self_ && peer < peers_.size());
  PeerState& state = peers_[peer];
  // The peer has exactly `clock`: anything sent on an earlier link and not
  // in it was lost with that link and must go again. Even what it once
  // acknowledged: a peer that lost its disk (or, with fsync=no, the tail of
  // its log) comes back with less, and the log must keep what it lacks.
  state.acked = clock;
  state.sent = clock;
  if (transferred) state.sent.Merge(*transferred);
  state.streaming = true;
  state.detached = false;
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
  state.forward_cursor = std::max(state.forward_cursor, begin_index_);
  state.direct_cursor = std::max(state.direct_cursor, begin_index_);
  // Two cursors, each amortised O(1) per entry: one for writes that go at
  // once (ours, and p's own that p lost), one for third origins, which wait
  // until forward_after_ms old. The batch merges them by index so that
  // what is sent is in log order, a causal order: a receiver with a small
  // buffer is never handed a write before one it depends on that we send
  // in the same batch.
  auto next_direct = [&]() -> uint64_t {
    for (; state.direct_cursor < end_index(); ++state.direct_cursor) {
      const Write& write = at(state.direct_cursor).write;
      bool direct =
          write.origin == self_ || (write.origin == peer && write.seq() <= state.recover_to);
      if (direct && Lacks(state, write)) break;
    }
    return state.direct_cursor;
  };
  auto next_forward = [&]() -> uint64_t {
    for (; state.forward_cursor < end_index(); ++state.forward_cursor) {
      const Entry& entry = at(state.forward_cursor);
      const Write& write = entry.write;
      if (write.origin == self_ || write.origin == peer || !Lacks(state, write)) continue;
      // Entries are in application order, so every later one is younger.
      if (now_ms - entry.applied_ms < forward_after_ms) return end_index();
      break;
    }
    return state.forward_cursor;
  };
  for (size_t taken = 0; taken < max; ++taken) {
    uint64_t direct = next_direct();
    uint64_t forward = next_forward();
    uint64_t index = std::min(direct, forward);
    if (index >= end_index()) break;
    const Write& write = at(index).write;
    state.sent.Set(write.origin, write.seq());
    out->push_back(write);
    if (index == direct) {
      ++state.direct_cursor;
    } else {
      ++state.forward_cursor;
    }
  }
}

}  // namespace kvd::core
