// GroupCommit: when the next fdatasync starts under --fsync always.
#include "daemon/core/group_commit.h"

#include <criterion/criterion.h>

#include <cstdint>

using kvd::core::GroupCommit;

namespace {
constexpr uint64_t kUs = 1000;

// One sync of everything appended so far, from `start` to `end`.
void Sync(GroupCommit* gc, uint64_t start, uint64_t end) {
  gc->SyncStarted(start);
  gc->SyncFinished(end);
}
}  // namespace

Test(group_commit, the_first_sync_starts_at_once) {
  GroupCommit gc;
  gc.Queued(1);
  cr_assert_eq(gc.StartBy(), 0u);
  cr_assert(gc.ShouldStart(0));
}

// One client: one reply released, its next request is back, nothing to wait for.
Test(group_commit, a_lone_client_never_waits) {
  GroupCommit gc;
  uint64_t now = 1'000'000;
  for (int round = 0; round < 100; ++round) {
    gc.Queued(1);
    cr_assert(gc.ShouldStart(now), "round %d", round);
    Sync(&gc, now, now + 400 * kUs);
    now += 450 * kUs;
    cr_assert_eq(gc.last_covered(), 1u);
  }
}

// The sync released 25 clients; 25 more queued while it ran (the other
// group) and do not count as the released clients coming back.
Test(group_commit, waits_for_as_many_requests_as_the_last_sync_released) {
  GroupCommit gc;
  gc.Queued(25);
  gc.SyncStarted(0);
  gc.Queued(25);  // While the sync runs.
  gc.SyncFinished(400 * kUs);
  cr_assert_eq(gc.last_covered(), 25u);
  cr_assert_not(gc.ShouldStart(400 * kUs));
  gc.Queued(24);
  cr_assert_not(gc.ShouldStart(500 * kUs));
  gc.Queued(1);
  cr_assert(gc.ShouldStart(500 * kUs));
  cr_assert_eq(gc.StartBy(), 0u);
  // The next sync then covers both groups.
  Sync(&gc, 500 * kUs, 900 * kUs);
  cr_assert_eq(gc.last_covered(), 50u);
}

// Clients that do not come back hold the sync for twice the last sync's
// duration, no longer.
Test(group_commit, the_hold_lasts_twice_the_last_sync) {
  GroupCommit gc;
  gc.Queued(50);
  Sync(&gc, 1000 * kUs, 1300 * kUs);  // 300 us.
  gc.Queued(10);
  uint64_t deadline = 1300 * kUs + GroupCommit::kHoldSyncMultiple * 300 * kUs;
  cr_assert_eq(gc.StartBy(), deadline);
  cr_assert_not(gc.ShouldStart(deadline - 1));
  cr_assert(gc.ShouldStart(deadline));
}

// A slow disk does not stretch the hold past its bound.
Test(group_commit, the_hold_is_bounded_on_a_slow_disk) {
  GroupCommit gc;
  gc.Queued(50);
  Sync(&gc, 0, 20'000 * kUs);  // 20 ms.
  gc.Queued(1);
  cr_assert_eq(gc.StartBy(), 20'000 * kUs + GroupCommit::kHoldMaxNs);
}

// A clock that went backwards (it should not: CLOCK_MONOTONIC) gives a
// zero hold rather than an enormous one.
Test(group_commit, a_sync_that_ends_before_it_starts_holds_nothing) {
  GroupCommit gc;
  gc.Queued(5);
  Sync(&gc, 1000, 500);
  cr_assert_eq(gc.last_sync_ns(), 0u);
  gc.Queued(1);
  cr_assert(gc.ShouldStart(500));
}

// A sync that released no client (it covered writes replicated from
// peers) holds the next one for nobody.
Test(group_commit, a_sync_that_released_no_client_waits_for_nobody) {
  GroupCommit gc;
  Sync(&gc, 0, 300 * kUs);
  cr_assert_eq(gc.last_covered(), 0u);
  cr_assert(gc.ShouldStart(300 * kUs));
}
