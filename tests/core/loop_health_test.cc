// LoopHealth: the per-second account of the event loop (busy, on a CPU,
// waiting for one, turns, the longest turn), fed with made-up times.
#include "daemon/core/loop_health.h"

#include <criterion/criterion.h>

#include <cstdint>

using kvd::core::LoopHealth;

namespace {
constexpr uint64_t kMs = 1'000'000;

// What the shell does at each prepare phase.
bool Turn(LoopHealth& health, uint64_t now, const LoopHealth::Counters& totals) {
  if (!health.OnTurn(now, totals.idle_ns)) return false;
  health.Close(now, totals);
  return true;
}
}  // namespace

Test(loop_health, the_first_turn_starts_the_first_window_and_reports_nothing) {
  LoopHealth health;
  cr_assert(Turn(health, 100 * kMs, {}), "the first turn opens a window");
  cr_assert_not(Turn(health, 900 * kMs, {600 * kMs, 10 * kMs, 0}), "0.8 s is not a window");
  cr_assert_eq(health.last().wall_ns, 0);
  cr_assert_eq(health.last().turns, 0);
}

// One second of turns with 2, 5 and 1 ms of handling between poll waits,
// then one long poll wait. The loop was busy 8 ms; the thread was on a CPU
// 6 ms of those and queued for one 1.5 ms (kernel counts, given as such).
Test(loop_health, a_window_adds_up_busy_cpu_cpu_wait_and_the_longest_turn) {
  LoopHealth health;
  uint64_t t = 1000 * kMs;
  LoopHealth::Counters c{};
  Turn(health, t, c);
  struct Step {
    uint64_t wait, work;
  };
  for (Step s : {Step{100 * kMs, 2 * kMs}, Step{200 * kMs, 5 * kMs}, Step{10 * kMs, 1 * kMs}}) {
    t += s.wait + s.work;
    c.idle_ns += s.wait;
    cr_assert_not(Turn(health, t, c));
  }
  cr_assert_eq(health.last().turns, 0, "still open");
  // The next turn starts after a poll wait that ends past the second.
  c.idle_ns += 700 * kMs;
  t += 700 * kMs;
  c.cpu_ns = 6 * kMs;
  c.cpu_wait_ns = 1500000;
  cr_assert(Turn(health, t, c));
  const LoopHealth::Window& w = health.last();
  cr_assert_eq(w.wall_ns, 1018 * kMs);
  cr_assert_eq(w.busy_ns, 8 * kMs, "wall minus the 1010 ms of poll wait");
  cr_assert_eq(w.cpu_ns, 6 * kMs);
  cr_assert_eq(w.cpu_wait_ns, 1500000);
  cr_assert_eq(w.turns, 4);
  cr_assert_eq(w.longest_turn_ns, 5 * kMs, "the poll wait inside a turn is not part of it");
}

// The window closes at a turn boundary, so a long turn at its end is in
// the same window as the busy time it caused, and the next starts afresh.
Test(loop_health, a_long_turn_at_the_end_of_a_window_is_counted_in_it) {
  LoopHealth health;
  Turn(health, 1, {});
  cr_assert_not(Turn(health, 1 + 900 * kMs, {899 * kMs, 1 * kMs, 0}));
  // A 300 ms turn, no poll wait in it, that crosses the second.
  cr_assert(Turn(health, 1 + 1200 * kMs, {899 * kMs, 250 * kMs, 50 * kMs}));
  const LoopHealth::Window& first = health.last();
  cr_assert_eq(first.longest_turn_ns, 300 * kMs);
  cr_assert_eq(first.busy_ns, 301 * kMs);
  cr_assert_eq(first.cpu_ns, 250 * kMs);
  cr_assert_eq(first.cpu_wait_ns, 50 * kMs);
  cr_assert_eq(first.turns, 2);
  // The next window: one 3 ms turn after a poll wait, then quiet.
  cr_assert_not(Turn(health, 1 + 1700 * kMs, {1396 * kMs, 253 * kMs, 50 * kMs}));
  cr_assert(Turn(health, 1 + 2300 * kMs, {1996 * kMs, 253 * kMs, 50 * kMs}));
  const LoopHealth::Window& second = health.last();
  cr_assert_eq(second.wall_ns, 1100 * kMs);
  cr_assert_eq(second.busy_ns, 3 * kMs);
  cr_assert_eq(second.cpu_ns, 3 * kMs);
  cr_assert_eq(second.cpu_wait_ns, 0);
  cr_assert_eq(second.turns, 2);
  cr_assert_eq(second.longest_turn_ns, 3 * kMs, "the 300 ms turn was the last window's");
}

// Separate clocks may disagree a little; nothing goes negative.
Test(loop_health, nothing_is_ever_negative) {
  LoopHealth health;
  Turn(health, 5, {});
  cr_assert(Turn(health, 5 + 1000 * kMs, {1001 * kMs, 0, 0}));
  cr_assert_eq(health.last().busy_ns, 0);
}
