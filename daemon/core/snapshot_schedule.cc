#include "daemon/core/snapshot_schedule.h"

#include <algorithm>

namespace kvd::core {

namespace {
// splitmix64 (Steele, Lea and Flood): one multiply-xorshift step per draw,
// and well-spread outputs even from seeds 1, 2, 3.
uint64_t NextRandom(uint64_t* state) {
  uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}
}  // namespace

SnapshotSchedule::SnapshotSchedule(uint64_t min_log_bytes, uint64_t seed)
    : min_log_bytes_(min_log_bytes), rng_state_(seed) {
  DrawBound();
}

void SnapshotSchedule::Written(uint64_t snapshot_bytes) {
  last_snapshot_bytes_ = snapshot_bytes;
  DrawBound();
}

void SnapshotSchedule::DrawBound() {
  uint64_t base = std::max(min_log_bytes_, kLogRatio * last_snapshot_bytes_);
  // The top 53 bits make a double uniform in [0, 1).
  double unit = static_cast<double>(NextRandom(&rng_state_) >> 11) * 0x1.0p-53;
  bound_ = base + static_cast<uint64_t>(static_cast<double>(base) * kJitter * unit);
}

}  // namespace kvd::core
