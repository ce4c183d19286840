#include "daemon/core/causal_buffer.h"

#include "daemon/core/assert.h"
#include "daemon/core/planted_bug.h"

namespace kvd::core {

bool IsDeliverable(const Write& write, const VectorClock& applied) {
  if (write.seq() != applied[write.origin] + 1) return false;
  // Planted bug (tests only): ignore dependencies on other origins.
  if constexpr (kPlantedBug == PlantedBug::kDeliverWithoutDeps) return true;
  for (size_t k = 0; k < applied.size(); ++k) {
    if (k != write.origin && write.clock[k] > applied[k]) return false;
  }
  return true;
}

std::vector<MissingRange> MissingDependencies(const Write& write, const VectorClock& applied) {
  std::vector<MissingRange> missing;
  for (size_t k = 0; k < applied.size(); ++k) {
    // Of its own origin a write needs every earlier write, not itself.
    uint64_t needed = k == write.origin ? write.seq() - 1 : write.clock[k];
    if (needed > applied[k]) {
      missing.push_back({static_cast<uint32_t>(k), applied[k] + 1, needed});
    }
  }
  return missing;
}

CausalBuffer::CausalBuffer(size_t node_count, size_t writes_max)
    : queues_(node_count), writes_max_(writes_max) {}

CausalBuffer::InsertResult CausalBuffer::Insert(Write write) {
  KV_ASSERT(write.origin < queues_.size());
  auto& queue = queues_[write.origin];
  if (queue.contains(write.seq())) return InsertResult::kDuplicate;
  if (size_ >= writes_max_) return InsertResult::kFull;
  uint64_t seq = write.seq();
  queue.emplace(seq, std::move(write));
  ++size_;
  return InsertResult::kBuffered;
}

std::optional<Write> CausalBuffer::PopDeliverable(const VectorClock& applied) {
  for (auto& queue : queues_) {
    while (!queue.empty()) {
      auto head = queue.begin();
      if (head->first <= applied[head->second.origin]) {  // Applied meanwhile.
        queue.erase(head);
        --size_;
        continue;
      }
      if (!IsDeliverable(head->second, applied)) break;
      Write write = std::move(head->second);
      queue.erase(head);
      --size_;
      return write;
    }
  }
  return std::nullopt;
}

}  // namespace kvd::core
