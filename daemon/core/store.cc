#include "daemon/core/store.h"

#include "daemon/core/planted_bug.h"

namespace kvd::core {

bool Store::Apply(const Write& write) {
  return Apply(write.key, write.value, write.clock, write.origin, write.is_delete);
}

bool Store::Apply(std::string_view key, const Entry& entry) {
  return Apply(key, entry.value, entry.version, entry.origin, entry.tombstone);
}

bool Store::Apply(std::string_view key, std::string_view value, const VectorClock& version,
                  uint32_t origin, bool is_delete) {
  auto it = entries_.find(key);
  bool inserted = it == entries_.end();
  if (inserted) it = entries_.emplace(std::string(key), Entry{}).first;
  Entry& entry = it->second;
  if (!inserted) {
    bool wins = Supersedes(version.Sum(), origin, entry.version.Sum(), entry.origin);
    // Planted bug (tests only): the last write to arrive wins.
    if constexpr (kPlantedBug == PlantedBug::kTieBreakByArrival) wins = true;
    if (!wins) return false;
    if (entry.tombstone) --tombstones_;
  }
  entry.value = value;
  entry.version = version;
  entry.origin = origin;
  entry.tombstone = is_delete;
  if (is_delete) {
    entry.value.clear();
    ++tombstones_;
    pending_tombstones_.push_back({std::string(key), origin, version[origin], false, {}});
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
