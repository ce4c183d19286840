// Write: one put or delete as it travels between nodes and lives in the
// replication log, the causal buffer and the write-ahead log.
#pragma once

#include <cstdint>
#include <string>

#include "daemon/core/vector_clock.h"

namespace kvd::core {

struct Write {
  // Index of the node where the write was issued.
  uint32_t origin = 0;
  // The origin's clock right after the write: clock[origin] is the write's
  // sequence number at its origin, the other entries its dependencies.
  VectorClock clock;
  bool is_delete = false;
  std::string key;
  std::string value;  // Empty for deletes.

  uint64_t seq() const { return clock[origin]; }
};

// The convergence order of DESIGN §1: among writes to one key the greatest
// (sum of clock, origin index) wins. It extends happened-before because the
// sum grows strictly along it, so every node picks the same winner in any
// arrival order. Returns true if a write with (sum_a, origin_a) wins over
// one with (sum_b, origin_b).
inline bool Supersedes(uint64_t sum_a, uint32_t origin_a, uint64_t sum_b, uint32_t origin_b) {
  return sum_a != sum_b ? sum_a > sum_b : origin_a > origin_b;
}

}  // namespace kvd::core
