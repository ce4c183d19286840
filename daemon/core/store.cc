#include "daemon/core/store.h"

#include "daemon/core/planted_bug.h"

namespace kvd::core {

bool Store::Apply(const Write& write) {
  auto [it, inserted] = entries_.try_emplace(write.key);
  Entry& entry = it->second;
  if (!inserted) {
    bool wins = Supersedes(write.clock.Sum(), write.origin, entry.version.Sum(), entry.origin);
    // Planted bug (tests only): the last write to arrive wins.
    if constexpr (kPlantedBug == PlantedBug::kTieBreakByArrival) wins = true;
    if (!wins) return false;
    if (entry.tombstone) --tombstones_;
  }
  entry.value = write.value;
  entry.version = write.clock;
  entry.origin = write.origin;
  entry.tombstone = write.is_delete;
  if (write.is_delete) {
    entry.value.clear();
    ++tombstones_;
    pending_tombstones_.push_back({write.key, write.origin, write.seq(), false, {}});
  }
  return true;
}

const Store::Entry* Store::Find(std::string_view key) const {
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : &it->second;
}

size_t Store::CollectTombstones(const VectorClock& all_applied, const VectorClock& issued_bound,
                                const VectorClock& applied) {
  size_t collected = 0;
  while (!pending_tombstones_.empty()) {
    PendingTombstone& pending = pending_tombstones_.front();
    auto it = entries_.find(pending.key);
    bool current = it != entries_.end() && it->second.tombstone &&
                   it->second.origin == pending.origin &&
                   it->second.version[pending.origin] == pending.seq;
    if (!current) {  // Overwritten since: nothing to collect.
      pending_tombstones_.pop_front();
      continue;
    }
    if (!pending.stable) {
      if (!all_applied.Dominates(it->second.version)) break;
      pending.stable = true;
      pending.issued_bound = issued_bound;
    }
    if (!applied.Dominates(pending.issued_bound)) break;
    entries_.erase(it);
    --tombstones_;
    ++collected;
    pending_tombstones_.pop_front();
  }
  return collected;
}

}  // namespace kvd::core
