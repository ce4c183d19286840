#include "daemon/core/store.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <utility>

#include "daemon/core/assert.h"
#include "daemon/core/planted_bug.h"

namespace kvd::core {
namespace {

// The table grows at 3/4 full: linear probing's unsuccessful lookups stay
// around 8 slots (2 cache lines) at the worst, 2 at the average load.
constexpr size_t kSlotsMin = 16;
bool OverLoaded(size_t entries, size_t slots) { return entries * 4 > slots * 3; }

uint64_t HashKey(std::string_view key) { return std::hash<std::string_view>{}(key); }

uint64_t SumOf(std::span<const uint64_t> counts) {
  uint64_t sum = 0;
  for (uint64_t c : counts) sum += c;
  return sum;
}

// Out of memory is not an error the store can answer: like Redis's
// zmalloc, say so and stop rather than limp on with a lost key.
void* AllocateOrDie(size_t bytes) {
  void* block = std::malloc(bytes);
  if (block == nullptr) {
    std::fprintf(stderr, "store: out of memory allocating %zu bytes\n", bytes);
    std::abort();
  }
  return block;
}

}  // namespace

uint64_t StoreEntry::version_sum() const { return SumOf(version_counts()); }

Store::Store(Store&& other) noexcept { *this = std::move(other); }

Store& Store::operator=(Store&& other) noexcept {
  if (this == &other) return *this;
  FreeAll();
  slots_ = std::move(other.slots_);
  mask_ = std::exchange(other.mask_, 0);
  size_ = std::exchange(other.size_, 0);
  pending_tombstones_ = std::move(other.pending_tombstones_);
  other.pending_tombstones_.clear();
  tombstones_ = std::exchange(other.tombstones_, 0);
  generation_ = other.generation_;
  freeze_ = std::move(other.freeze_);
  other.freeze_.reset();
  return *this;
}

Store::~Store() { FreeAll(); }

void Store::FreeAll() {
  if (slots_) {
    for (size_t i = 0; i <= mask_; ++i) {
      if (!slots_[i].empty()) Release(slots_[i].entry());
    }
  }
  slots_.reset();
  mask_ = 0;
  size_ = 0;
  tombstones_ = 0;
  pending_tombstones_.clear();
}

void Store::Release(StoreEntry* entry) {
  if (SharedWithFreeze(entry)) {
    freeze_.lock()->blocks.push_back(entry);
  } else {
    std::free(entry);
  }
}

Store::Retired::~Retired() {
  for (StoreEntry* entry : blocks) std::free(entry);
}

FreezeBuffer FreezeBuffer::Allocate(size_t slots) {
  FreezeBuffer buffer;
  buffer.slots_ = AllocatePageArray<Store::Slot>(slots);
  buffer.capacity_ = slots;
  // One write per page faults it in here rather than in Freeze's memcpy
  // (per 4 KiB, in case there are no huge pages).
  constexpr size_t kSlotsPerPage = 4096 / sizeof(Store::Slot);
  for (size_t i = 0; i < slots; i += kSlotsPerPage) buffer.slots_[i].bits = 0;
  return buffer;
}

FrozenStore Store::Freeze() { return Freeze(FreezeBuffer()); }

FrozenStore Store::Freeze(FreezeBuffer buffer) {
  KV_ASSERT(freeze_.expired());
  FrozenStore frozen;
  frozen.retired_ = std::make_shared<Retired>();
  freeze_ = frozen.retired_;
  ++generation_;
  frozen.size_ = size_;
  frozen.slot_count_ = slot_count();
  if (frozen.slot_count_ == 0) return frozen;
  if (buffer.capacity_ >= frozen.slot_count_) {
    frozen.slots_ = std::move(buffer.slots_);
    frozen.slot_capacity_ = buffer.capacity_;
  } else {
    frozen.slots_ = AllocatePageArray<Slot>(frozen.slot_count_);
    frozen.slot_capacity_ = frozen.slot_count_;
  }
  std::memcpy(frozen.slots_.get(), slots_.get(), frozen.slot_count_ * sizeof(Slot));
  return frozen;
}

void FrozenStore::Detach() {
  if (!retired_) return;
  // The only owner: dropping it expires the store's weak pointer.
  detached_ = std::make_unique<Store::Retired>();
  detached_->blocks.swap(retired_->blocks);
  retired_.reset();
}

FreezeBuffer FrozenStore::TakeBuffer() {
  KV_ASSERT(!retired_);  // Detached: the store no longer refers to the view.
  FreezeBuffer buffer;
  buffer.slots_ = std::move(slots_);
  buffer.capacity_ = std::exchange(slot_capacity_, 0);
  slot_count_ = 0;
  size_ = 0;
  return buffer;
}

bool Store::Apply(const Write& write) {
  return Apply(write.key, write.value, write.clock.counts(), write.origin, write.is_delete);
}

bool Store::Apply(const Entry& entry) {
  return Apply(entry.key(), entry.value(), entry.version_counts(), entry.origin(),
               entry.tombstone());
}

bool Store::Apply(std::string_view key, std::string_view value, std::span<const uint64_t> version,
                  uint32_t origin, bool is_delete) {
  if (is_delete) value = {};
  uint64_t hash = HashKey(key);
  size_t slot = slots_ ? Probe(key, hash) : 0;
  StoreEntry* entry = slots_ ? slots_[slot].entry() : nullptr;
  size_t block_bytes = StoreEntry::BlockBytes(version.size(), key.size(), value.size());
  if (entry != nullptr) {
    bool wins = Supersedes(SumOf(version), origin, entry->version_sum(), entry->origin_);
    // Planted bug (tests only): the last write to arrive wins.
    if constexpr (kPlantedBug == PlantedBug::kTieBreakByArrival) wins = true;
    if (!wins) return false;
    if (entry->tombstone_) --tombstones_;
    // Same layout (the common overwrite: same cluster, same value size)
    // and not seen by a frozen view: rewrite in place. Otherwise a new block.
    if (entry->clock_size_ != version.size() || entry->value_size_ != value.size() ||
        SharedWithFreeze(entry)) {
      Release(entry);
      entry = nullptr;
    }
  } else {
    if (!slots_ || OverLoaded(size_ + 1, mask_ + 1)) {
      Grow();
      slot = Probe(key, hash);
    }
    ++size_;
  }
  if (entry == nullptr) {
    void* block = AllocateOrDie(block_bytes);
    // The slot's tag lives in the pointer's top 16 bits.
    KV_ASSERT((reinterpret_cast<uintptr_t>(block) & ~Slot::kPointerMask) == 0);
    entry = new (block) StoreEntry();
    entry->clock_size_ = static_cast<uint8_t>(version.size());
    entry->generation_ = generation_;
    entry->key_size_ = static_cast<uint32_t>(key.size());
    std::memcpy(entry->bytes() + version.size() * sizeof(uint64_t), key.data(), key.size());
    slots_[slot] = Slot::Of(entry, hash);
  }
  entry->value_size_ = static_cast<uint32_t>(value.size());
  entry->origin_ = static_cast<uint8_t>(origin);
  entry->tombstone_ = is_delete;
  std::memcpy(entry->counts(), version.data(), version.size() * sizeof(uint64_t));
  if (!value.empty()) {
    std::memcpy(entry->bytes() + version.size() * sizeof(uint64_t) + key.size(), value.data(),
                value.size());
  }
  if (is_delete) {
    ++tombstones_;
    pending_tombstones_.push_back({std::string(key), origin, version[origin], false, {}});
  }
  return true;
}

size_t Store::Probe(std::string_view key, uint64_t hash) const {
  size_t i = hash & mask_;
  uint64_t tag = Slot::TagOf(hash);
  while (true) {
    const Slot& slot = slots_[i];
    if (slot.empty()) return i;
    if (slot.tag() == tag && slot.entry()->key() == key) return i;
    i = (i + 1) & mask_;
  }
}

void Store::Grow() {
  size_t slot_count = slots_ ? 2 * (mask_ + 1) : kSlotsMin;
  auto grown = AllocatePageArray<Slot>(slot_count);
  size_t mask = slot_count - 1;
  if (slots_) {
    for (size_t i = 0; i <= mask_; ++i) {
      if (slots_[i].empty()) continue;
      size_t j = HashKey(slots_[i].entry()->key()) & mask;
      while (!grown[j].empty()) j = (j + 1) & mask;
      grown[j] = slots_[i];
    }
  }
  slots_ = std::move(grown);
  mask_ = mask;
}

// Backward-shift deletion: entries after the hole that may legally sit in
// it move back, so lookups never need "deleted" markers and probe chains
// stay as short as if the key had never been there.
void Store::Erase(size_t hole) {
  Release(slots_[hole].entry());
  size_t next = hole;
  while (true) {
    next = (next + 1) & mask_;
    if (slots_[next].empty()) break;
    size_t home = HashKey(slots_[next].entry()->key()) & mask_;
    // The entry at `next` may move into the hole if the hole lies on its
    // probe path, from its home slot up to `next`.
    if (((next - home) & mask_) >= ((next - hole) & mask_)) {
      slots_[hole] = slots_[next];
      hole = next;
    }
  }
  slots_[hole] = {};
  --size_;
}

const Store::Entry* Store::Find(std::string_view key) const {
  if (!slots_) return nullptr;
  return slots_[Probe(key, HashKey(key))].entry();
}

void Store::PrefetchSlot(std::string_view key) const {
  if (slots_) __builtin_prefetch(&slots_[HashKey(key) & mask_]);
}

void Store::PrefetchEntry(std::string_view key) const {
  if (!slots_) return;
  uint64_t hash = HashKey(key);
  const Slot& home = slots_[hash & mask_];
  if (!home.empty() && home.tag() == Slot::TagOf(hash)) __builtin_prefetch(home.entry());
}

Store::Iterator Store::begin() const {
  const Slot* first = slots_.get();
  return Iterator(first, slots_ ? first + mask_ + 1 : first);
}

Store::Iterator Store::end() const {
  const Slot* last = slots_ ? slots_.get() + mask_ + 1 : slots_.get();
  return Iterator(last, last);
}

size_t Store::CollectTombstones(const VectorClock& all_applied, const VectorClock& issued_bound,
                                const VectorClock& applied) {
  size_t collected = 0;
  while (!pending_tombstones_.empty()) {
    PendingTombstone& pending = pending_tombstones_.front();
    size_t slot = slots_ ? Probe(pending.key, HashKey(pending.key)) : 0;
    const StoreEntry* entry = slots_ ? slots_[slot].entry() : nullptr;
    bool current = entry != nullptr && entry->tombstone() && entry->origin() == pending.origin &&
                   entry->version_counts()[pending.origin] == pending.seq;
    if (!current) {  // Overwritten since: nothing to collect.
      pending_tombstones_.pop_front();
      continue;
    }
    if (!pending.stable) {
      if (!all_applied.Dominates(entry->version())) break;
      pending.stable = true;
      pending.issued_bound = issued_bound;
    }
    if (!applied.Dominates(pending.issued_bound)) break;
    Erase(slot);
    --tombstones_;
    ++collected;
    pending_tombstones_.pop_front();
  }
  return collected;
}

}  // namespace kvd::core
