#include "daemon/core/vector_clock.h"

#include <algorithm>
#include <cstring>

#include "daemon/core/assert.h"
#include "daemon/core/limits.h"

namespace kvd::core {

VectorClock::VectorClock(size_t node_count) {
  Resize(node_count);
  std::fill_n(data(), size_, 0);
}

VectorClock::VectorClock(std::initializer_list<uint64_t> counts) {
  Resize(counts.size());
  std::copy(counts.begin(), counts.end(), data());
}

VectorClock::VectorClock(std::span<const uint64_t> counts) {
  Resize(counts.size());
  std::copy(counts.begin(), counts.end(), data());
}

VectorClock::VectorClock(const VectorClock& other) { *this = other; }

VectorClock& VectorClock::operator=(const VectorClock& other) {
  if (this != &other) {
    Resize(other.size_);
    std::memcpy(data(), other.data(), size_ * sizeof(uint64_t));
  }
  return *this;
}

VectorClock::VectorClock(VectorClock&& other) noexcept { *this = std::move(other); }

VectorClock& VectorClock::operator=(VectorClock&& other) noexcept {
  if (this == &other) return *this;
  size_ = other.size_;
  if (other.heap_) {
    heap_ = std::move(other.heap_);
  } else {
    heap_.reset();
    std::memcpy(inline_, other.inline_, sizeof(inline_));
  }
  other.size_ = 0;
  return *this;
}

void VectorClock::Resize(size_t node_count) {
  KV_ASSERT(node_count <= kNodesMax);
  if (node_count <= kInlineNodes) {
    heap_.reset();
  } else if (!heap_ || size_ != node_count) {
    heap_ = std::make_unique<uint64_t[]>(node_count);
  }
  size_ = static_cast<uint32_t>(node_count);
}

void VectorClock::Set(size_t node, uint64_t count) {
  KV_ASSERT(node < size_);
  data()[node] = count;
}

void VectorClock::Increment(size_t node) {
  KV_ASSERT(node < size_);
  ++data()[node];
}

ClockOrder VectorClock::Compare(const VectorClock& other) const {
  KV_ASSERT(other.size_ == size_);
  bool less = false;
  bool greater = false;
  const uint64_t* a = data();
  const uint64_t* b = other.data();
  for (size_t i = 0; i < size_; ++i) {
    less |= a[i] < b[i];
    greater |= a[i] > b[i];
  }
  if (less && greater) return ClockOrder::kConcurrent;
  if (less) return ClockOrder::kBefore;
  if (greater) return ClockOrder::kAfter;
  return ClockOrder::kEqual;
}

bool VectorClock::Dominates(const VectorClock& other) const {
  KV_ASSERT(other.size_ == size_);
  const uint64_t* a = data();
  const uint64_t* b = other.data();
  for (size_t i = 0; i < size_; ++i) {
    if (a[i] < b[i]) return false;
  }
  return true;
}

void VectorClock::Merge(const VectorClock& other) {
  KV_ASSERT(other.size_ == size_);
  uint64_t* a = data();
  const uint64_t* b = other.data();
  for (size_t i = 0; i < size_; ++i) a[i] = std::max(a[i], b[i]);
}

void VectorClock::Meet(const VectorClock& other) {
  KV_ASSERT(other.size_ == size_);
  uint64_t* a = data();
  const uint64_t* b = other.data();
  for (size_t i = 0; i < size_; ++i) a[i] = std::min(a[i], b[i]);
}

uint64_t VectorClock::Sum() const {
  uint64_t sum = 0;
  const uint64_t* a = data();
  for (size_t i = 0; i < size_; ++i) sum += a[i];
  return sum;
}

bool VectorClock::operator==(const VectorClock& other) const {
  return size_ == other.size_ && std::memcmp(data(), other.data(), size_ * sizeof(uint64_t)) == 0;
}

std::string VectorClock::ToString() const {
  std::string out = "[";
  for (size_t i = 0; i < size_; ++i) {
    if (i > 0) out += ',';
    out += std::to_string((*this)[i]);
  }
  out += ']';
  return out;
}

}  // namespace kvd::core
