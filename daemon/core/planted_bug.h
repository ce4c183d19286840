// Planted bugs prove that the simulator and the checker can fail. A test
// build compiles the core with -DKV_PLANTED_BUG=N; production builds leave
// it at 0 and every `if constexpr` below folds away.
#pragma once

#ifndef KV_PLANTED_BUG
#define KV_PLANTED_BUG 0
#endif

namespace kvd::core {

enum class PlantedBug {
  kNone = 0,
  kDeliverWithoutDeps = 1,      // Apply remote writes without checking dependencies.
  kNoDuplicateSuppression = 2,  // Re-apply writes already applied.
  kTieBreakByArrival = 3,       // Concurrent writes: the last to arrive wins.
  kContextNoWait = 4,           // Serve requests before the node reaches their context.
};

inline constexpr PlantedBug kPlantedBug = static_cast<PlantedBug>(KV_PLANTED_BUG);

}  // namespace kvd::core
