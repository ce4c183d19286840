// LoopHealth: the per-second account of the event loop (busy, on a CPU,
// waiting, turns, the longest turn), fed with made-up times.
#include "daemon/core/loop_health.h"

#include <criterion/criterion.h>

#include <cstdint>

using kvd::core::LoopHealth;

namespace {
constexpr uint64_t kMs = 1'000'000;
}  // namespace

Test(loop_health, nothing_is_reported_before_a_whole_window) {
  LoopHealth health;
  cr_assert_not(health.Close(100 * kMs, 0, 0), "the first call only starts the window");
  health.OnTurn(200 * kMs, 50 * kMs);
  cr_assert_not(health.Close(900 * kMs, 60 * kMs, 10 * kMs), "0.8 s is not a window yet");
  cr_assert_eq(health.last().wall_ns, 0);
  cr_assert_eq(health.last().turns, 0);
}

// One second: turns of 2, 5 and 1 ms of handling between poll waits. The
// loop waited in poll for 600 ms in all, so it was busy 400 ms, and the
// thread was on a CPU for 250 ms of those: 150 ms ready but not running.
Test(loop_health, a_window_adds_up_busy_cpu_waiting_and_the_longest_turn) {
  LoopHealth health;
  uint64_t t = 1000 * kMs, idle = 0;
  health.Close(t, idle, 0);
  health.OnTurn(t, idle);
  // Each turn: poll waits `wait`, then handling takes `work`.
  struct Step { uint64_t wait, work; };
  for (Step s : {Step{100 * kMs, 2 * kMs}, Step{200 * kMs, 5 * kMs}, Step{10 * kMs, 1 * kMs}}) {
    t += s.wait + s.work;
    idle += s.wait;
    health.OnTurn(t, idle);
  }
  cr_assert_eq(health.last().turns, 0, "still open");
  // The rest of the second: poll waits 290 ms more, untimed handling the rest.
  idle += 290 * kMs;
  uint64_t end = 2000 * kMs;
  cr_assert(health.Close(end, idle, 250 * kMs));
  const LoopHealth::Window& w = health.last();
  cr_assert_eq(w.wall_ns, 1000 * kMs);
  cr_assert_eq(w.busy_ns, 400 * kMs, "wall minus the 600 ms of poll wait");
  cr_assert_eq(w.cpu_ns, 250 * kMs);
  cr_assert_eq(w.waiting_ns(), 150 * kMs);
  cr_assert_eq(w.turns, 3);
  cr_assert_eq(w.longest_turn_ns, 5 * kMs, "the poll wait inside a turn is not part of it");
}

// A turn belongs to the window it ends in.
Test(loop_health, each_window_starts_afresh) {
  LoopHealth health;
  health.Close(1, 0, 0);
  health.OnTurn(1, 0);
  health.OnTurn(1 + 40 * kMs, 0);  // A 40 ms turn, then poll waits.
  cr_assert(health.Close(1 + 1000 * kMs, 960 * kMs, 30 * kMs));
  cr_assert_eq(health.last().busy_ns, 40 * kMs);
  cr_assert_eq(health.last().cpu_ns, 30 * kMs);
  cr_assert_eq(health.last().longest_turn_ns, 40 * kMs);
  cr_assert_eq(health.last().turns, 1);
  // Poll waits until 1497 ms, then 3 ms of handling, then poll again.
  health.OnTurn(1 + 1500 * kMs, 1457 * kMs);
  cr_assert_not(health.Close(1 + 1999 * kMs, 1956 * kMs, 33 * kMs));
  cr_assert(health.Close(1 + 2100 * kMs, 2057 * kMs, 33 * kMs));
  const LoopHealth::Window& w = health.last();
  cr_assert_eq(w.wall_ns, 1100 * kMs);
  cr_assert_eq(w.busy_ns, 3 * kMs);
  cr_assert_eq(w.cpu_ns, 3 * kMs);
  cr_assert_eq(w.turns, 1);
  cr_assert_eq(w.longest_turn_ns, 3 * kMs, "the 40 ms turn was the last window's");
}

// The CPU clock and the wall clock are separate clocks: a loop that was on
// a CPU for longer than it was busy by their reckoning waited for nothing.
Test(loop_health, waiting_is_never_negative) {
  LoopHealth health;
  health.Close(5, 0, 0);
  cr_assert(health.Close(5 + 1000 * kMs, 900 * kMs, 101 * kMs));
  cr_assert_eq(health.last().busy_ns, 100 * kMs);
  cr_assert_eq(health.last().waiting_ns(), 0);
}
