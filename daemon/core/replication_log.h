// ReplicationLog: every write this node has applied, whatever its origin,
// in application order (a causal order), kept until every peer has it.
//
// It also decides what to send to each peer. On a link to peer p:
//   - this node's own writes go at once;
//   - writes of p itself that p lacks go at once (p lost them: recovery);
//   - writes of a third origin go only once they are older than
//     forward_after_ms and p still lacks them. Normally their origin sends
//     them first; forwarding heals a cut link between two other nodes.
// "p lacks w" is judged from p's acknowledged clock and from what this
// node already sent on the current link.
//
// The log is bounded: past bytes_max, the peers that hold its front back
// (down, or too slow) are detached and no longer keep entries alive. A
// peer whose clock does not include dropped() cannot be served from the
// log any more and catches up by state transfer (Replica decides).
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <vector>

#include "daemon/core/limits.h"
#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"

namespace kvd::core {

class ReplicationLog {
 public:
  struct Entry {
    Write write;
    uint64_t applied_ms;
  };

  // REQUIRES: self < node_count, bytes_max > 0.
  ReplicationLog(size_t node_count, uint32_t self, size_t bytes_max = kLogBytesMaxDefault);

  // REQUIRES: now_ms never decreases between calls.
  void Append(const Write& write, uint64_t now_ms);

  // Every write the log no longer holds is one of those this clock
  // includes (the writes dropped from the front form a causal prefix).
  const VectorClock& dropped() const { return dropped_; }
  // Recovery from a snapshot. REQUIRES: the log is empty.
  void SetDropped(const VectorClock& clock);
  // This node took in state it did not apply write by write (a state
  // transfer covering `clock`): the log cannot serve those writes.
  void CoverDropped(const VectorClock& clock) { dropped_.Merge(clock); }

  // True once the log holds more than bytes_max.
  bool over_limit() const { return bytes_ > bytes_max_; }
  // Detaches every peer that lacks the front entry, then truncates.
  // Returns the peers detached that were streaming: their stream stopped
  // and their link must be restarted. REQUIRES: over_limit().
  std::vector<uint32_t> DetachLaggards();
  bool detached(uint32_t peer) const { return peers_[peer].detached; }
  size_t bytes() const { return bytes_; }

  // Merges a clock peer p reported (hello-ack or ack) and drops the prefix
  // of entries every peer has. Returns the number of entries dropped.
  size_t Acknowledge(uint32_t peer, const VectorClock& clock);
  const VectorClock& acked(uint32_t peer) const { return peers_[peer].acked; }

  // A link to peer p came up; p reported `clock`. Streaming restarts from
  // the oldest entry p lacks. `peer_writes_here` is how many of p's own
  // writes this node has applied: those beyond `clock` are p's lost writes
  // and go back to it. Writes of p that arrive later came from p, so they
  // are never echoed back.
  // `transferred`, if given, is a state this node is about to send p
  // ahead of the stream: p will have it, so the stream starts past it.
  // Streaming re-attaches a detached peer.
  void StartStream(uint32_t peer, const VectorClock& clock, uint64_t peer_writes_here,
                   const VectorClock* transferred = nullptr);
  void StopStream(uint32_t peer);
  bool streaming(uint32_t peer) const { return peers_[peer].streaming; }
  // What peer p has or was sent on the current link.
  const VectorClock& sent(uint32_t peer) const { return peers_[peer].sent; }

  // Appends to `out` the next writes (at most `max`) to send to peer p at
  // now_ms, oldest first, and records them as sent. Nothing if not streaming.
  void NextBatch(uint32_t peer, uint64_t now_ms, uint64_t forward_after_ms, size_t max,
                 std::vector<Write>* out);

  size_t size() const { return entries_.size(); }
  uint64_t begin_index() const { return begin_index_; }
  uint64_t end_index() const { return begin_index_ + entries_.size(); }
  const Entry& at(uint64_t index) const { return entries_[index - begin_index_]; }

 private:
  struct PeerState {
    VectorClock acked;  // What p has applied, as far as we know.
    VectorClock sent;   // What p has or was sent on the current link.
    bool streaming = false;
    uint64_t recover_to = 0;      // p's own writes up to here go back to p.
    uint64_t direct_cursor = 0;   // Next index to scan for own/p's writes.
    uint64_t forward_cursor = 0;  // Next index to scan for third origins.
    bool detached = false;        // Does not hold entries back (see DetachLaggards).
  };

  // What an entry costs the log's bound: its bytes plus the bookkeeping.
  static size_t EntryBytes(const Write& write) {
    return write.key.size() + write.value.size() + sizeof(Entry) + 8 * write.clock.size();
  }
  bool HoldsBack(uint32_t peer, const Write& write) const {
    return peer != self_ && !peers_[peer].detached &&
           peers_[peer].acked[write.origin] < write.seq();
  }

  bool Lacks(const PeerState& state, const Write& write) const {
    return write.seq() > state.sent[write.origin];
  }
  size_t Truncate();

  uint32_t self_;
  size_t bytes_max_;
  size_t bytes_ = 0;
  std::deque<Entry> entries_;
  uint64_t begin_index_ = 0;  // Absolute index of entries_.front().
  VectorClock dropped_;
  std::vector<PeerState> peers_;
};

}  // namespace kvd::core
