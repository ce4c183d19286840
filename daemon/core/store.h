// Store: the node's key-value map. Keys and values are arbitrary bytes.
// Every key keeps the winning write's value, version clock and origin;
// deletes leave a tombstone so that a delayed, older write can never bring
// a deleted key back.
//
// Memory layout (the store is most of a node's memory, and the hash lookup
// was a quarter of a put's time with std::unordered_map):
//   - each key is one heap block, a StoreEntry: a 16-byte header, the
//     version clock's counters, the key bytes, the value bytes. A 3-node
//     entry with a 13-byte key and a 100-byte value is 153 bytes, one
//     allocation instead of four (map node, key, value, clock);
//   - the table is open addressing with linear probing over 8-byte slots:
//     the entry pointer with 16 bits of the key's hash in its unused top
//     bits (user-space pointers on x86-64 and arm64 Linux are below 2^48;
//     allocation checks it). A lookup touches one slot line and the entry,
//     and a key is compared only when its tag matches (1 in 65,536 for
//     another key). Growing and deleting rehash the keys they move.
//
// Freezing (for snapshots): Freeze() copies only the slot array and hands
// out a FrozenStore that another thread may read while this one goes on
// changing the store. Blocks the frozen view can see are never written or
// freed while it lives: a write to such a key gets a new block, and the old
// one is retired into the view, freed with it. So a snapshot costs the loop
// one memcpy of the table (~16 bytes per key), not an encode of every key.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/core/limits.h"
#include "daemon/core/page_memory.h"
#include "daemon/core/vector_clock.h"
#include "daemon/core/write.h"

namespace kvd::core {

// One key's winning write. Lives in a block the store owns: a pointer to
// one stays valid until the store next changes (a write to the same key may
// move it, a collection may free it).
class StoreEntry {
 public:
  std::string_view key() const { return {bytes() + clock_size_ * sizeof(uint64_t), key_size_}; }
  // Empty for tombstones.
  std::string_view value() const {
    return {bytes() + clock_size_ * sizeof(uint64_t) + key_size_, value_size_};
  }
  std::span<const uint64_t> version_counts() const { return {counts(), clock_size_}; }
  VectorClock version() const { return VectorClock(version_counts()); }
  uint64_t version_sum() const;
  uint32_t origin() const { return origin_; }
  bool tombstone() const { return tombstone_; }
  // True if the write this entry holds is one of those `clock` includes.
  bool CoveredBy(const VectorClock& clock) const { return counts()[origin_] <= clock[origin_]; }

 private:
  friend class Store;
  StoreEntry() = default;
  static size_t BlockBytes(size_t clock_size, size_t key_size, size_t value_size) {
    return sizeof(StoreEntry) + clock_size * sizeof(uint64_t) + key_size + value_size;
  }
  const char* bytes() const { return reinterpret_cast<const char*>(this + 1); }
  char* bytes() { return reinterpret_cast<char*>(this + 1); }
  const uint64_t* counts() const { return reinterpret_cast<const uint64_t*>(this + 1); }
  uint64_t* counts() { return reinterpret_cast<uint64_t*>(this + 1); }

  uint32_t key_size_ = 0;
  uint32_t value_size_ = 0;
  // The store's generation when the block was made: blocks older than the
  // live freeze are shared with it (see Store::Freeze).
  uint32_t generation_ = 0;
  uint8_t origin_ = 0;
  uint8_t clock_size_ = 0;
  bool tombstone_ = false;
  // Followed by: uint64_t counts[clock_size_], key bytes, value bytes.
};
static_assert(sizeof(StoreEntry) == 16, "the header stays one 16-byte line");
static_assert(kNodesMax <= 255, "origin and clock size fit a byte");

class FrozenStore;
class FreezeBuffer;

class Store {
 public:
  using Entry = StoreEntry;

  Store() = default;
  Store(Store&& other) noexcept;
  Store& operator=(Store&& other) noexcept;
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;
  ~Store();

  // Applies a write under the convergence order: it replaces the current
  // entry only if it supersedes it. Returns true if it did.
  bool Apply(const Write& write);
  // The same for an entry of another store (installing a state transfer).
  bool Apply(const Entry& entry);

  // The entry for `key`, tombstones included; nullptr if there is none.
  const Entry* Find(std::string_view key) const;

  // Hints for a batch of lookups in a row (a peer's write batch, a read's
  // client requests): with a large store a lookup is two cache misses, the
  // slot and then the entry. Call before handling item i of n, where
  // key_at(j) is item j's key: it asks for the slot of the item 8 ahead
  // and for the entry (read through its slot, by then cached) of the one 4
  // ahead; at i == 0 also for the first items' slots. No effect on the
  // contents.
  template <typename KeyAt>
  void PrefetchForBatch(size_t i, size_t n, const KeyAt& key_at) const {
    constexpr size_t kSlotAhead = 8, kEntryAhead = 4;
    if (i == 0) {
      for (size_t j = 0; j < n && j < kSlotAhead; ++j) PrefetchSlot(key_at(j));
    }
    if (i + kSlotAhead < n) PrefetchSlot(key_at(i + kSlotAhead));
    if (i + kEntryAhead < n) PrefetchEntry(key_at(i + kEntryAhead));
  }
  void PrefetchSlot(std::string_view key) const;
  void PrefetchEntry(std::string_view key) const;

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
  size_t live_keys() const { return size_ - tombstones_; }
  size_t tombstones() const { return tombstones_; }
  // Entries, tombstones included.
  size_t size() const { return size_; }

  // Every entry, in table order (deterministic for a given history). The
  // store must not change during the iteration.
  class Iterator;
  Iterator begin() const;
  Iterator end() const;

  // A view of the store as it is now, readable from any thread for as long
  // as it lives, while this store keeps changing. Costs a copy of the slot
  // array (8 bytes a slot) into `buffer` if it holds slot_count() slots,
  // else into fresh memory. At most one freeze is live at a time. Until
  // FrozenStore::Detach, the view must be destroyed on the thread that owns
  // the store (the store may still be retiring blocks into it).
  FrozenStore Freeze(FreezeBuffer buffer);
  FrozenStore Freeze();
  // Slots in the table: what a FreezeBuffer for the next Freeze must hold.
  size_t slot_count() const { return slots_ ? mask_ + 1 : 0; }

 private:
  friend class FrozenStore;
  friend class FreezeBuffer;
  struct Slot {
    static constexpr int kTagShift = 48;
    static constexpr uint64_t kPointerMask = (uint64_t{1} << kTagShift) - 1;
    static uint64_t TagOf(uint64_t hash) { return hash >> kTagShift; }
    static Slot Of(StoreEntry* entry, uint64_t hash) {
      return {reinterpret_cast<uintptr_t>(entry) | (TagOf(hash) << kTagShift)};
    }
    StoreEntry* entry() const { return reinterpret_cast<StoreEntry*>(bits & kPointerMask); }
    uint64_t tag() const { return bits >> kTagShift; }
    bool empty() const { return bits == 0; }

    uint64_t bits = 0;  // 0: empty.
  };
  static_assert(sizeof(void*) == 8, "slots pack a tag into a 64-bit pointer");
  // Blocks a frozen view may still read: freed with the view.
  struct Retired {
    std::vector<StoreEntry*> blocks;
    ~Retired();
  };

  struct PendingTombstone {
    std::string key;
    uint32_t origin;
    uint64_t seq;
    bool stable = false;       // Condition (1) seen.
    VectorClock issued_bound;  // Valid once stable.
  };

  bool Apply(std::string_view key, std::string_view value, std::span<const uint64_t> version,
             uint32_t origin, bool is_delete);
  // The slot holding `key`, or the empty slot where it would go.
  size_t Probe(std::string_view key, uint64_t hash) const;
  void Grow();
  void Erase(size_t slot);
  void FreeAll();
  // Frees a block, or retires it if the live freeze can see it.
  void Release(StoreEntry* entry);
  bool SharedWithFreeze(const StoreEntry* entry) const {
    return entry->generation_ < generation_ && !freeze_.expired();
  }

  PageArray<Slot> slots_;
  size_t mask_ = 0;  // Slot count - 1 (a power of two); 0 with no table.
  size_t size_ = 0;
  std::deque<PendingTombstone> pending_tombstones_;
  size_t tombstones_ = 0;
  // Bumped by each Freeze: blocks made before it are the frozen view's.
  uint32_t generation_ = 0;
  std::weak_ptr<Retired> freeze_;
};

class Store::Iterator {
 public:
  const StoreEntry& operator*() const { return *slot_->entry(); }
  const StoreEntry* operator->() const { return slot_->entry(); }
  Iterator& operator++() {
    ++slot_;
    SkipEmpty();
    // A walk over a large table misses the cache on every entry (the slots
    // are in order, the entries are not): ask for the one some slots ahead,
    // its first three lines (a 100-byte value's entry is 153 bytes). A
    // snapshot's encoding of 1M keys went from 351 to 201 ms
    // (BM_SnapshotEncode). Prefetching never faults, even past a block.
    if (end_ - slot_ > kPrefetchSlots) {
      const char* ahead = reinterpret_cast<const char*>(slot_[kPrefetchSlots].entry());
      __builtin_prefetch(ahead);
      __builtin_prefetch(ahead + 64);
      __builtin_prefetch(ahead + 128);
    }
    return *this;
  }
  bool operator==(const Iterator& other) const { return slot_ == other.slot_; }

 private:
  friend class Store;
  friend class FrozenStore;
  static constexpr ptrdiff_t kPrefetchSlots = 16;
  Iterator(const Slot* slot, const Slot* end) : slot_(slot), end_(end) { SkipEmpty(); }
  void SkipEmpty() {
    while (slot_ != end_ && slot_->empty()) ++slot_;
  }
  const Slot* slot_;
  const Slot* end_;
};

// Memory for a freeze's copy of the slot array, made ready ahead of the
// freeze on any thread. Fresh memory costs a page fault on first touch (per
// 4 KiB without huge pages): for 1M keys that made a freeze 10-27 ms on the
// loop instead of the 2 ms of the copy itself.
class FreezeBuffer {
 public:
  FreezeBuffer() = default;
  // A moved-from buffer is empty (capacity 0), never a capacity without
  // memory behind it.
  FreezeBuffer(FreezeBuffer&& other) noexcept
      : slots_(std::move(other.slots_)), capacity_(std::exchange(other.capacity_, 0)) {}
  FreezeBuffer& operator=(FreezeBuffer&& other) noexcept {
    slots_ = std::move(other.slots_);
    capacity_ = std::exchange(other.capacity_, 0);
    return *this;
  }
  // Room for `slots` slots, every page already touched.
  static FreezeBuffer Allocate(size_t slots);
  size_t capacity() const { return capacity_; }

 private:
  friend class Store;
  friend class FrozenStore;
  PageArray<Store::Slot> slots_;
  size_t capacity_ = 0;
};

class FrozenStore {
 public:
  FrozenStore() = default;
  size_t size() const { return size_; }
  Store::Iterator begin() const { return {slots_.get(), slots_.get() + slot_count_}; }
  Store::Iterator end() const { return {slots_.get() + slot_count_, slots_.get() + slot_count_}; }

  // Ends the freeze, on the store's thread, once the view has been read:
  // from here on the store writes in place and frees what it replaces, so
  // the view must not be read again; it may then be destroyed on any
  // thread. That lets a node free what a snapshot retired (often hundreds
  // of thousands of blocks, 10-25 ms) off its loop.
  void Detach();
  // After Detach: hands the copy's memory back for the next Freeze, so a
  // node that snapshots again and again faults it in once (on this kind of
  // VM, memory given back to the kernel and taken again costs far more
  // than the copy: see page_memory.h). The view is then empty.
  FreezeBuffer TakeBuffer();

 private:
  friend class Store;
  PageArray<Store::Slot> slots_;
  size_t slot_capacity_ = 0;  // Slots allocated (may exceed slot_count_).
  size_t slot_count_ = 0;
  size_t size_ = 0;
  std::shared_ptr<Store::Retired> retired_;  // Null once detached.
  std::unique_ptr<Store::Retired> detached_;
};

}  // namespace kvd::core
