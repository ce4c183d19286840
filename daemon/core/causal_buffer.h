// CausalBuffer: remote writes that arrived before their causal
// dependencies, held until they can be delivered.
//
// One queue per origin, ordered by sequence number. Writes of one origin
// are delivered in sequence order, so only the head of each queue can ever
// be deliverable: finding the next deliverable write costs O(N) for N
// nodes, never a scan of the whole buffer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"

namespace kvd::core {

// Writes (origin, seq_first..seq_last) that a buffered write still waits for.
struct MissingRange {
  uint32_t origin;
  uint64_t seq_first;
  uint64_t seq_last;
};

// True if `write` can be applied at a node whose clock is `applied`: it is
// the next write of its origin and everything it depends on is applied.
bool IsDeliverable(const Write& write, const VectorClock& applied);

// The writes `write` waits for at a node whose clock is `applied`.
std::vector<MissingRange> MissingDependencies(const Write& write, const VectorClock& applied);

class CausalBuffer {
 public:
  enum class InsertResult {
    kBuffered,
    kDuplicate,  // The same (origin, seq) is already buffered.
    kFull,       // At writes_max: refused, the caller must resynchronise.
  };

  CausalBuffer(size_t node_count, size_t writes_max);

  // REQUIRES: write is neither applied nor deliverable at the caller's clock.
  InsertResult Insert(Write write);

  // Removes and returns a write deliverable at `applied`, if there is one;
  // drops queue heads that `applied` already includes. Checks queue heads
  // only. Call until it returns nothing after each delivery.
  std::optional<Write> PopDeliverable(const VectorClock& applied);

  size_t size() const { return size_; }
  size_t writes_max() const { return writes_max_; }

  // Visits buffered writes, origin by origin in sequence order, at most
  // `limit` of them.
  template <typename Visit>
  void ForEach(size_t limit, Visit visit) const {
    for (const auto& queue : queues_) {
      for (const auto& [seq, write] : queue) {
        if (limit-- == 0) return;
        visit(write);
      }
    }
  }

 private:
  std::vector<std::map<uint64_t, Write>> queues_;  // Indexed by origin.
  size_t writes_max_;
  size_t size_ = 0;
};

}  // namespace kvd::core
