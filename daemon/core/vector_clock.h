// VectorClock: one counter per node of a fixed cluster. Entry k counts the
// writes that originated at node k and are included (applied, for a node's
// clock; depended upon, for a write's clock).
//
// Clusters of up to kInlineNodes nodes keep their counters inline, so the
// clock stored with every key costs no extra allocation in the common
// three- and five-node deployments; larger clusters use one heap array.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>

namespace kvd::core {

// How two clocks relate in the happened-before order.
enum class ClockOrder { kEqual, kBefore, kAfter, kConcurrent };

class VectorClock {
 public:
  static constexpr size_t kInlineNodes = 5;

  VectorClock() = default;
  // All zeros. REQUIRES: node_count <= kNodesMax.
  explicit VectorClock(size_t node_count);
  VectorClock(std::initializer_list<uint64_t> counts);
  // REQUIRES: counts.size() <= kNodesMax.
  explicit VectorClock(std::span<const uint64_t> counts);

  VectorClock(const VectorClock& other);
  VectorClock& operator=(const VectorClock& other);
  VectorClock(VectorClock&& other) noexcept;
  VectorClock& operator=(VectorClock&& other) noexcept;
  ~VectorClock() = default;

  size_t size() const { return size_; }
  std::span<const uint64_t> counts() const { return {data(), size_}; }
  uint64_t operator[](size_t node) const { return data()[node]; }
  void Set(size_t node, uint64_t count);
  void Increment(size_t node);

  // REQUIRES for all comparisons and Merge: other.size() == size().
  ClockOrder Compare(const VectorClock& other) const;
  // True if every entry is >= the other's: this clock includes `other`.
  bool Dominates(const VectorClock& other) const;
  // Entry-wise maximum.
  void Merge(const VectorClock& other);
  // Entry-wise minimum.
  void Meet(const VectorClock& other);
  // Sum of all entries: the number of writes this clock includes. Strictly
  // grows along happened-before, which the convergence order relies on.
  uint64_t Sum() const;

  bool operator==(const VectorClock& other) const;

  // "[1,0,2]".
  std::string ToString() const;

 private:
  const uint64_t* data() const { return heap_ ? heap_.get() : inline_; }
  uint64_t* data() { return heap_ ? heap_.get() : inline_; }
  void Resize(size_t node_count);  // Contents are unspecified afterwards.

  uint32_t size_ = 0;
  uint64_t inline_[kInlineNodes] = {};
  std::unique_ptr<uint64_t[]> heap_;
};

}  // namespace kvd::core
