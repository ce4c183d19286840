// SnapshotSchedule: the log's bound before the next snapshot, and the
// jitter that keeps a cluster's nodes from snapshotting together.
#include "daemon/core/snapshot_schedule.h"

#include <criterion/criterion.h>

#include <algorithm>
#include <cstdint>

using kvd::core::SnapshotSchedule;

namespace {
constexpr uint64_t kMiB = 1024 * 1024;
}  // namespace

Test(snapshot_schedule, zero_turns_automatic_snapshots_off) {
  SnapshotSchedule schedule(0, 1);
  cr_assert_not(schedule.Due(UINT64_MAX / 2));
  schedule.Written(100 * kMiB);
  cr_assert_not(schedule.Due(UINT64_MAX / 2));
}

// --snapshot-wal-bytes is a floor, then twice the last snapshot; the jitter
// only ever adds, less than half of it.
Test(snapshot_schedule, the_bound_is_the_floor_or_twice_the_snapshot_plus_under_half) {
  SnapshotSchedule schedule(64 * kMiB, 7);
  for (int round = 0; round < 200; ++round) {
    uint64_t snapshot = (round % 4) * 50 * kMiB;  // 0, 50, 100, 150 MiB.
    schedule.Written(snapshot);
    uint64_t base = std::max<uint64_t>(64 * kMiB, 2 * snapshot);
    cr_assert_geq(schedule.bound(), base, "round %d", round);
    cr_assert_lt(schedule.bound(), base + base / 2, "round %d", round);
    cr_assert_not(schedule.Due(schedule.bound() - 1));
    cr_assert(schedule.Due(schedule.bound()));
  }
}

// Uniform over the range: the mean of many draws near the middle, and both
// ends reached (so the jitter is not a constant).
Test(snapshot_schedule, the_jitter_spreads_over_its_whole_range) {
  SnapshotSchedule schedule(100 * kMiB, 3);
  double sum = 0;
  uint64_t lowest = UINT64_MAX, highest = 0;
  constexpr int kDraws = 4000;
  for (int i = 0; i < kDraws; ++i) {
    schedule.Written(0);
    sum += static_cast<double>(schedule.bound());
    lowest = std::min(lowest, schedule.bound());
    highest = std::max(highest, schedule.bound());
  }
  double mean = sum / kDraws / (100.0 * kMiB);
  cr_assert(mean > 1.23 && mean < 1.27, "mean bound %.3f of the floor", mean);
  cr_assert_lt(lowest, 100 * kMiB + 2 * kMiB, "lowest %llu", (unsigned long long)lowest);
  cr_assert_gt(highest, 148 * kMiB, "highest %llu", (unsigned long long)highest);
}

// The point of it: nodes 1, 2 and 3 (the seeds are their ids) reach the
// bound at different times, while one node's schedule is reproducible.
Test(snapshot_schedule, nodes_draw_different_bounds_and_each_node_the_same_ones) {
  SnapshotSchedule n1(64 * kMiB, 1), n2(64 * kMiB, 2), n3(64 * kMiB, 3), again(64 * kMiB, 1);
  int apart = 0;
  for (int round = 0; round < 100; ++round) {
    cr_assert_eq(n1.bound(), again.bound(), "round %d", round);
    uint64_t b[] = {n1.bound(), n2.bound(), n3.bound()};
    std::sort(b, b + 3);
    // At 20 MB of log a second, 2 % of a 330 MB bound is a third of a second.
    if (b[1] - b[0] > b[0] / 50 && b[2] - b[1] > b[1] / 50) ++apart;
    for (SnapshotSchedule* s : {&n1, &n2, &n3, &again}) s->Written(165 * kMiB);
  }
  cr_assert_gt(apart, 60, "all three bounds pairwise 2 %% apart in only %d of 100 rounds", apart);
}
