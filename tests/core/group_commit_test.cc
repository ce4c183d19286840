// GroupCommit: when the next fdatasync starts under --fsync always.
#include "daemon/core/group_commit.h"

#include <criterion/criterion.h>

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

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

// The clients did not come back within the hold: the sync after the one
// that ended it starts at once; the one after that is held again.
Test(group_commit, a_hold_held_to_its_end_is_not_repeated_for_the_next_sync) {
  GroupCommit gc;
  gc.Queued(50);
  Sync(&gc, 0, 300 * kUs);
  gc.Queued(10);  // Of the 50 released, 10 are back when the hold runs out.
  uint64_t deadline = gc.StartBy();
  cr_assert_eq(deadline, 900 * kUs);
  Sync(&gc, deadline, deadline + 300 * kUs);
  gc.Queued(5);
  cr_assert_eq(gc.StartBy(), 0u, "the next sync is not held");
  Sync(&gc, deadline + 300 * kUs, deadline + 600 * kUs);
  gc.Queued(1);  // Of the 5 it released.
  cr_assert_neq(gc.StartBy(), 0u, "holding resumes after an unheld sync");
}

// A sync started before its hold ran out (the node shutting down) is no
// evidence that the clients do not come back.
Test(group_commit, a_sync_started_early_keeps_the_next_hold) {
  GroupCommit gc;
  gc.Queued(50);
  Sync(&gc, 0, 300 * kUs);
  gc.Queued(10);
  Sync(&gc, 400 * kUs, 700 * kUs);  // Before the 900 us deadline.
  gc.Queued(1);
  cr_assert_neq(gc.StartBy(), 0u);
}

namespace {
// A node under --fsync always, stepped every 10 us: `clients` says how many
// requests arrive at each step (Arrivals) and hears how many replies each
// completed sync released (Released); a sync takes `sync_ns`, and one
// starts whenever the group commit allows and something waits. Returns,
// over the syncs after the first 10 ms, the mean time from a sync's
// completion to the next one's start (the hold) and the mean number of
// requests a sync covered.
struct Run {
  double hold_us_mean;
  double covered_mean;
};
template <typename Clients>
Run Simulate(uint64_t sync_ns, uint64_t duration_ns, Clients* clients) {
  constexpr uint64_t kStepNs = 10 * kUs, kWarmupNs = 10'000 * kUs;
  GroupCommit gc;
  bool syncing = false;
  uint64_t waiting = 0, covering = 0, sync_end = 0, released_at = 0;
  uint64_t holds = 0, hold_ns = 0, syncs = 0, covered = 0;
  for (uint64_t now = 0; now < duration_ns; now += kStepNs) {
    if (syncing && now >= sync_end) {
      gc.SyncFinished(now);
      syncing = false;
      released_at = now;
      clients->Released(now, covering);
      if (now > kWarmupNs) covered += covering, ++syncs;
    }
    uint64_t n = clients->Arrivals(now);
    gc.Queued(n);
    waiting += n;
    if (!syncing && waiting > 0 && gc.ShouldStart(now)) {
      if (released_at > kWarmupNs) hold_ns += now - released_at, ++holds;
      gc.SyncStarted(now);
      syncing = true;
      sync_end = now + sync_ns;
      covering = waiting;
      waiting = 0;
    }
  }
  return {holds ? static_cast<double>(hold_ns) / holds / kUs : 0.0,
          syncs ? static_cast<double>(covered) / syncs : 0.0};
}

// One request every 20 us, whatever the replies.
struct PacedClients {
  uint64_t Arrivals(uint64_t now) const { return now % (20 * kUs) == 0 ? 1 : 0; }
  void Released(uint64_t, uint64_t) {}
};

// `count` clients with one write each in flight: each sends its next one
// 100-290 us after the sync covering the last one completed.
struct ClosedLoopClients {
  explicit ClosedLoopClients(uint64_t count) : count(count) {}
  uint64_t Arrivals(uint64_t now) {
    if (now == 0) return count;
    uint64_t n = 0;
    while (!due.empty() && due.top() <= now) due.pop(), ++n;
    return n;
  }
  void Released(uint64_t now, uint64_t replies) {
    for (uint64_t i = 0; i < replies; ++i) due.push(now + (100 + (next++ * 37) % 200) * kUs);
  }
  uint64_t count;
  uint64_t next = 0;
  std::priority_queue<uint64_t, std::vector<uint64_t>, std::greater<>> due;
};
}  // namespace

// Paced writers never come back in answer to a release. Were every hold
// waited out, each would run to its limit (2 x 300 us): after one held to
// its end the next sync is not held, and the holds cycle through 0, 280,
// 560 and 600 us (360 on average).
Test(group_commit, paced_writers_are_not_held_to_the_limit_every_time) {
  PacedClients clients;
  Run run = Simulate(300 * kUs, 200'000 * kUs, &clients);
  cr_assert_lt(run.hold_us_mean, 1.5 * 300, "mean hold %.0f us", run.hold_us_mean);
}

// 50 closed-loop clients: after the first syncs every sync covers all 50
// (started at once, syncs would split them into two groups taking turns).
Test(group_commit, closed_loop_clients_end_up_in_one_group) {
  ClosedLoopClients clients(50);
  Run run = Simulate(300 * kUs, 100'000 * kUs, &clients);
  cr_assert_gt(run.covered_mean, 49.0, "mean covered %.1f", run.covered_mean);
}
