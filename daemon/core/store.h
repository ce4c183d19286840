// Store: the node's key-value map. Keys and values are arbitrary bytes.
// Every key keeps the winning write's value, version clock and origin;
// deletes leave a tombstone so that a delayed, older write can never bring
// a deleted key back.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"

namespace kvd::core {

struct StoreEntry {
  // True if the write this entry holds is one of those `clock` includes.
  bool CoveredBy(const VectorClock& clock) const { return version[origin] <= clock[origin]; }

  std::string value;
  VectorClock version;
  uint32_t origin = 0;
  bool tombstone = false;
};

// Lets the map be searched with a string_view, without building a string.
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view key) const { return std::hash<std::string_view>{}(key); }
};

class Store {
 public:
  using Map = std::unordered_map<std::string, StoreEntry, KeyHash, std::equal_to<>>;

  using Entry = StoreEntry;

  // Applies a write under the convergence order: it replaces the current
  // entry only if it supersedes it. Returns true if it did.
  bool Apply(const Write& write);
  // The same for an entry of another store (installing a state transfer).
  bool Apply(std::string_view key, const Entry& entry);

  // The entry for `key`, tombstones included; nullptr if there is none.
  const Entry* Find(std::string_view key) const;

  // Tombstone collection. A tombstone may go once (1) every node has
  // applied it, and then (2) this node has applied every write that was
  // concurrent with it. Writes concurrent with a tombstone T were issued at
  // a node q before q applied T, so their q-sequence numbers are at most
  // q's own count in the first acknowledgement from q that includes T.
  // `all_applied` is the entry-wise minimum of every node's clock (1),
  // `issued_bound` holds each node's own entry from its latest known clock
  // (taken when (1) first holds), `applied` is this node's clock (2).
  // Any later write to the key then follows T causally and would win over
  // it anyway, so dropping T changes no outcome. Scans tombstones in the
  // order they were made and stops at the first that must stay, so the cost
  // is amortised O(1) per tombstone. Returns the number collected.
  size_t CollectTombstones(const VectorClock& all_applied, const VectorClock& issued_bound,
                           const VectorClock& applied);

  // Keys with a live (non-tombstone) value.
  size_t live_keys() const { return entries_.size() - tombstones_; }
  size_t tombstones() const { return tombstones_; }
  const Map& entries() const { return entries_; }

 private:
  struct PendingTombstone {
    std::string key;
    uint32_t origin;
    uint64_t seq;
    bool stable = false;       // Condition (1) seen.
    VectorClock issued_bound;  // Valid once stable.
  };

  bool Apply(std::string_view key, std::string_view value, const VectorClock& version,
             uint32_t origin, bool is_delete);

  Map entries_;
  std::deque<PendingTombstone> pending_tombstones_;
  size_t tombstones_ = 0;
};

}  // namespace kvd::core
