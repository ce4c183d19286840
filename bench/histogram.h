// LatencyHistogram: a fixed-size, log-bucketed histogram of nanosecond
// values, in the spirit of HdrHistogram (Debian 12 ships none for C/C++).
//
// Values below 128 get one bucket each; above, every power of two is split
// into 64 equal buckets, so a reported percentile is within 1/64 (~1.6 %,
// about two significant digits) of the true value. Recording is one
// count-leading-zeros and one increment: no allocation after construction,
// cheap enough to call for every reply.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace kvbench {

class LatencyHistogram {
 public:
  void Record(uint64_t value_ns) {
    ++counts_[IndexOf(value_ns)];
    ++total_;
    sum_ns_ += value_ns;
    max_ns_ = std::max(max_ns_, value_ns);
  }

  void Reset() { *this = LatencyHistogram(); }

  uint64_t total() const { return total_; }
  uint64_t max_ns() const { return max_ns_; }
  double mean_ns() const { return total_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / total_; }

  // Calls f(bucket_midpoint_ns, count) for every non-empty bucket, in
  // increasing order (for dumping the distribution, e.g. to draw a CDF).
  template <typename F>
  void ForEachBucket(F&& f) const {
    for (size_t i = 0; i < kBuckets; ++i) {
      if (counts_[i] != 0) f(std::min(Midpoint(i), max_ns_), counts_[i]);
    }
  }

  // The value at quantile q (0..1): the middle of the bucket holding the
  // ceil(q * total)-th smallest value, never above the exact maximum.
  uint64_t ValueAt(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.5);
    rank = std::clamp<uint64_t>(rank, 1, total_);
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(Midpoint(i), max_ns_);
    }
    return max_ns_;
  }

 private:
  static constexpr unsigned kSubBits = 6;  // 64 buckets per power of two.
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr uint64_t kLinear = 2 * kSub;  // Values below: exact buckets.
  static constexpr size_t kBuckets = kLinear + (64 - kSubBits - 1) * kSub;

  static size_t IndexOf(uint64_t v) {
    if (v < kLinear) return static_cast<size_t>(v);
    const unsigned shift = static_cast<unsigned>(std::bit_width(v)) - 1 - kSubBits;
    return static_cast<size_t>(kLinear + (shift - 1) * kSub + ((v >> shift) - kSub));
  }

  static uint64_t Midpoint(size_t index) {
    if (index < kLinear) return index;
    const uint64_t shift = (index - kLinear) / kSub + 1;
    const uint64_t low = (kSub + (index - kLinear) % kSub) << shift;
    return low + ((uint64_t{1} << shift) - 1) / 2;
  }

  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t sum_ns_ = 0;
  uint64_t max_ns_ = 0;
};

}  // namespace kvbench
